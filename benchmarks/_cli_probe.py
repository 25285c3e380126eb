"""The real flipgitops CLI, with its host adapter counting what Ansible did.

`python benchmarks/_cli_probe.py <flipgitops args>` runs `flipgitops.cli.main` exactly as
`python -m flipgitops` does, with timers around a few calls and `AnsibleHosts`
(adapters/hosts.py) replaced by a subclass that watches the events the adapter already
receives through its `observer` hook. At exit it writes to the JSON file named by
BENCH_PROBE_OUT:

- `module_events`: per host, the task results Ansible reported (`runner_on_ok`,
  `runner_on_failed`, `runner_on_unreachable`). Every flipgitops playbook has one task, an
  action plugin that runs ONE host program on the host (`flipgitops_step.py`: one Python
  start there, what was an Ansible module invocation), so this is the number of module
  invocations per host;
- `module_invocations`: the adapter's own counter (results that came back over its channel);
- `playbooks`: the playbook of each ansible-runner run (`playbook_on_start` events);
- `steps`: per host, the flipgitops host steps `run_steps` carried in its one invocation;
- `phases`: wall time of each `Wiring.observe`, each host-adapter call (one ansible-runner
  run each, with its hosts) and each executor group the engine ran (`engine/apply.py`
  `_run_group`: hub actions one by one, host kinds not chained), and `main`, from just
  before the CLI is imported to exit.

Nothing else changes: same commands, same playbooks, same hosts, same output and exit code.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

STARTED = time.monotonic()

from flipgitops.adapters import hosts  # noqa: E402  (after STARTED: imports are timed)

OUT = os.environ.get("BENCH_PROBE_OUT", "")
RESULT_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable")

_playbooks: list[str] = []
_modules: Counter[str] = Counter()
_steps: Counter[str] = Counter()
_phases: list[dict[str, Any]] = []
_adapters: list[hosts.AnsibleHosts] = []


def _event(event: dict[str, Any]) -> None:
    kind = str(event.get("event", ""))
    data = event.get("event_data") or {}
    if kind == "playbook_on_start":
        _playbooks.append(Path(str(data.get("playbook", "?"))).name)
    elif kind in RESULT_EVENTS and data.get("host"):
        _modules[str(data["host"])] += 1


def _timing(phase: str, size: Callable[..., int]) -> Callable[[Callable[..., Any]],
                                                             Callable[..., Any]]:
    """Record the wall time of each call, with ``size(*args)`` (hosts, actions)."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return fn(*args, **kwargs)
            finally:
                _phases.append({"phase": phase, "size": size(*args),
                                "seconds": round(time.monotonic() - started, 3)})
        return timed
    return wrap


def _hosts_of(_self: Any, items: Sequence[Any], *_: Any) -> int:
    return len({getattr(getattr(i, "task", i), "target", i).trust for i in items})


class CountingHosts(hosts.AnsibleHosts):
    def __init__(self, **kwargs: Any) -> None:
        theirs = kwargs.pop("observer", None)

        def both(event: dict[str, Any]) -> None:
            _event(event)
            if theirs is not None:
                theirs(event)

        super().__init__(observer=both, **kwargs)
        _adapters.append(self)

    @_timing("hosts.gather (facts)", lambda _s, targets, *_: len(targets))
    def gather(self, targets: Sequence[Any]) -> Any:
        return super().gather(targets)

    @_timing("hosts.run", lambda _s, _kind, tasks, *_: len(tasks))
    def run(self, kind: Any, tasks: Sequence[Any], **kwargs: Any) -> Any:
        return super().run(kind, tasks, **kwargs)

    @_timing("hosts.run_steps (chain)", _hosts_of)
    def run_steps_then_gather(self, steps: Sequence[Any], facts_after: Sequence[Any],
                              **kwargs: Any) -> Any:
        _steps.update(s.task.target.trust for s in steps)
        return super().run_steps_then_gather(steps, facts_after, **kwargs)


def _write() -> None:
    _phases.append({"phase": "main", "size": 0,
                    "seconds": round(time.monotonic() - STARTED, 3)})
    if not OUT:
        return
    invocations: Counter[str] = Counter()
    for adapter in _adapters:
        invocations.update(adapter.module_invocations)
    doc = {"module_events": dict(_modules), "module_invocations": dict(invocations),
           "playbooks": _playbooks, "steps": dict(_steps), "phases": _phases}
    Path(OUT).write_text(json.dumps(doc, indent=1), encoding="utf-8")


def _instrument() -> None:
    from flipgitops.engine import apply
    from flipgitops.engine.wiring import Wiring

    hosts.AnsibleHosts = CountingHosts  # type: ignore[misc]  # Wiring imports it lazily
    Wiring.observe = _timing("observe", lambda *_: 0)(Wiring.observe)  # type: ignore[method-assign]
    run_group = apply._run_group

    def group(ctx: Any, actions: list[Any]) -> Any:
        return _timing(f"group {actions[0].kind}", lambda *_: len(actions))(run_group)(
            ctx, actions)

    apply._run_group = group  # type: ignore[assignment]


if __name__ == "__main__":
    _instrument()
    atexit.register(_write)
    from flipgitops.cli import main

    main()
