"""Trust hosts through Ansible (ansible-runner): facts and host steps, one run per call.

Each call is ONE run over every host it is given (one inventory host per trust, forks =
hosts, capped), so ten trusts cost about the wall time of one, and a host that fails or
cannot be reached fails alone. Each host step is one host program run per host
(`reconcilers/ansible/host_program.py`: one Python start on the host); `run_steps` runs
several steps of each host (an onboarding's provision → … → verify) as one run and one
program run per host, the steps in order, each only after those it depends on succeeded;
`run_steps_then_gather` also takes each host's facts at the end of that same program run,
which an apply's re-observation uses instead of a run of its own.

Secrets never touch the controller's disk and nothing is ever templated:
- step arguments (every manifest value, the kit file, the FL kit's keys) and the sudo
  password are served in memory over the run's channel (`hosts_channel.py`) to the
  `flipgitops_step` action plugin, which puts them in the host program it pipes to the
  host's interpreter over stdin, and `no_log` tasks keep them out of Ansible's events;
- the inventory holds connection facts only, each `!unsafe`; an ssh key given as key
  material lives in a memfd (RAM) reached through /proc, never in a file;
- the runner's environment is built here from a short list (no AWS credentials: the
  runner writes its environment into `artifacts/*/command`);
- events stay in memory and the whole private dir is deleted when the run ends; a run
  SIGKILLed leaves a dir holding no secret, and the next run removes it.

ansible-runner's own signal handlers are never installed (we pass the cancel callback);
while a run is in flight SIGINT/SIGTERM cancel it, and the previous handlers are restored
and then called once it has stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

from pydantic import SecretStr, ValidationError

from flipgitops.adapters import hosts_build as build
from flipgitops.adapters.endpoints import EndpointsError, endpoints_from_env
from flipgitops.adapters.hosts_channel import ChannelServer
from flipgitops.adapters.secret_refs import SecretRefs
from flipgitops.engine.ports_hosts import (
    Cancel,
    HostResult,
    HostStep,
    HostTarget,
    HostTask,
    KitSecrets,
)
from flipgitops.errors import AdapterError, HostError
from flipgitops.model.actions import KINDS, ActionKind
from flipgitops.model.flip import image_tag
from flipgitops.model.observed import ObservedContainer, ObservedHost
from flipgitops.reconcilers import ansible as content
from flipgitops.reconcilers.ansible.flipgitops_host.masking import SCRUBBED, leaves, scrub

log = logging.getLogger(__name__)

MAX_FORKS = 20
RUN_TIMEOUT_SECONDS = 3600
PRIVATE_PREFIX = "flipgitops-ansible-"
CONTROL_DIR = "cp"  # ssh ControlPath sockets of one run, inside its private dir
SSH_EXIT_TIMEOUT_SECONDS = 10
_PRIVATE_RE = re.compile(re.escape(PRIVATE_PREFIX) + r"(\d+)-")
# The environment the runner (and so Ansible and its host programs on local hosts) gets from us.
_PASS_ENV = ("HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "TERM")


@dataclass
class _Outcome:
    """What the events and the channel said about one host."""

    unreachable: str | None = None
    failed: str | None = None
    changed: bool = False
    finished: bool = False
    result: dict[str, Any] | None = None  # what the action plugin put on the channel


@dataclass
class _Call:
    target: HostTarget
    entry: str  # the host program's entry (runner.ENTRIES)
    spec: dict[str, Any]
    secret: dict[str, Any] | None = field(default=None, repr=False)


def host_endpoints() -> dict[str, Any]:
    """What hosts need of FLIPGITOPS_ENDPOINTS (adapters/endpoints.py parses it): `resolve`
    ("host:port" or "host" -> address) and the `egress_probe` URL template."""
    try:
        found = endpoints_from_env()
    except EndpointsError as exc:
        raise HostError(str(exc)) from None
    return {"resolve": dict(found.resolve), "egress_probe": found.egress_probe}


_I = TypeVar("_I")
_Built = tuple[str, dict[str, Any], dict[str, Any] | None]  # entry, spec, secret


def _calls(items: Iterable[tuple[HostTarget, _I]], make: Callable[[HostTarget, _I], _Built]
           ) -> tuple[dict[str, _Call], dict[str, str]]:
    """One call per trust, ``make(target, input)`` for each item, and the trusts whose call
    could not be built (BuildError) with its message, which the caller turns into that
    trust's failure: a task that cannot be built fails its trust alone, before anything
    runs. A second item for one trust is refused (one run handles each host once)."""
    calls: dict[str, _Call] = {}
    problems: dict[str, str] = {}
    for target, given in items:
        trust = target.trust
        if trust in calls or trust in problems:
            raise HostError("two host tasks name the same trust; one run handles each "
                            "host once")
        try:
            entry, spec, secret = make(target, given)
        except build.BuildError as exc:
            problems[trust] = str(exc)
            continue
        calls[trust] = _Call(target, entry, spec, secret)
    return calls, problems


class AnsibleHosts:
    """The HostPort on real hosts (ssh with become) and local ones (sandbox, tests)."""

    def __init__(self, *, refs: SecretRefs | None = None,
                 endpoints: Mapping[str, Any] | None = None, max_forks: int = MAX_FORKS,
                 timeout_seconds: int = RUN_TIMEOUT_SECONDS, tmp_root: str | None = None,
                 observer: Callable[[dict[str, Any]], None] | None = None) -> None:
        """``observer`` sees every event Ansible emits, while the run is in flight (audits
        and the tests that prove no secret is ever in one)."""
        self._observer = observer
        self._refs = refs
        self._endpoints = endpoints
        self._max_forks = max_forks
        self._timeout = timeout_seconds
        self._tmp_root = tmp_root
        self.module_invocations: dict[str, int] = {}  # trust -> host program runs (issue 20)

    def __repr__(self) -> str:
        return f"AnsibleHosts(forks<={self._max_forks})"

    def _host_endpoints(self) -> Mapping[str, Any]:
        """The endpoints given here, else FLIPGITOPS_ENDPOINTS' (facts need both halves)."""
        return self._endpoints if self._endpoints is not None else host_endpoints()

    # -- HostPort ---------------------------------------------------------------------------

    def gather(self, targets: Sequence[HostTarget]) -> dict[str, ObservedHost]:
        endpoints = self._host_endpoints()
        calls, problems = _calls(((t, None) for t in targets), lambda t, _: (
            build.FACTS_STEP, build.facts_spec(t, endpoints), None))
        outcomes = self._run(build.FACTS_STEP, calls, cancel=None)
        out = {t: ObservedHost(trust=t, reachable=False, reason=why)
               for t, why in problems.items()}
        for trust, outcome in outcomes.items():
            out[trust] = _observed(trust, outcome)
        return out

    def run(self, kind: ActionKind, tasks: Sequence[HostTask], *,
            cancel: Cancel | None = None) -> dict[str, HostResult]:
        step = KINDS[kind].host_step
        if step is None:
            raise HostError(f"{kind} is not a host action")
        calls, problems = _calls(((task.target, task.input) for task in tasks),
                                 lambda t, step_input: build.host_call(kind, t, step_input))
        results = {t: HostResult(t, False, False, why) for t, why in problems.items()}
        secrets = [v for c in calls.values() for v in leaves(c.secret)]
        for trust, outcome in self._run(step, calls, cancel=cancel).items():
            results[trust] = _result(kind, trust, outcome, secrets)
        return results

    def read_kit_secrets(self, targets: Sequence[HostTarget],
                         keys: Sequence[str]) -> dict[str, KitSecrets]:
        """adopt: the values of ``keys`` in each target's kit file. The host program returns them
        to the action plugin, which sends them here over the channel and strips them from
        what Ansible sees (the task is no_log as well); they become SecretStr at once."""
        calls, problems = _calls(((t, None) for t in targets), lambda t, _: (
            build.READ_SECRETS_STEP, build.read_secrets_spec(t, keys), None))
        out = {t: KitSecrets(t, False, why) for t, why in problems.items()}
        for trust, outcome in self._run(build.READ_SECRETS_STEP, calls, cancel=None).items():
            res = outcome.result or {}
            raw = res.pop("secrets", None)
            outcome.result = None
            if outcome.unreachable is not None:
                out[trust] = KitSecrets(trust, False, f"unreachable: {outcome.unreachable}",
                                        unreachable=True)
            elif res.get("failed") or not isinstance(raw, dict):
                why = res.get("msg") or outcome.failed or "no values returned"
                out[trust] = KitSecrets(trust, False, f"failed: {why}")
            else:
                values = {str(k): SecretStr(v) for k, v in raw.items()
                          if isinstance(v, str) and v and str(k) in keys}
                out[trust] = KitSecrets(trust, True, str(res.get("msg") or ""), values)
            if isinstance(raw, dict):
                raw.clear()
        return out

    def run_steps(self, steps: Sequence[HostStep], *,
                  cancel: Cancel | None = None) -> dict[str, HostResult]:
        return self.run_steps_then_gather(steps, (), cancel=cancel)[0]

    def run_steps_then_gather(self, steps: Sequence[HostStep], facts_after: Sequence[HostTarget],
                              *, cancel: Cancel | None = None
                              ) -> tuple[dict[str, HostResult], dict[str, ObservedHost]]:
        """`run_steps`, and in the same run (each host's same program run, after its
        steps) the facts of every target in ``facts_after``; a target with no steps gets a
        facts-only invocation. Facts that could not be taken are left out (the caller
        gathers those hosts again), never reported as an unreachable host."""
        results: dict[str, HostResult] = {}
        per_host: dict[str, list[dict[str, Any]]] = {}
        secret_parts: dict[str, dict[str, Any]] = {}
        targets: dict[str, HostTarget] = {}
        kinds: dict[str, ActionKind] = {}
        own_secrets: dict[str, list[str]] = {}  # key -> that step's secret values
        for s in steps:
            trust = s.task.target.trust
            if s.key in kinds:
                raise HostError(f"two host steps have the key {s.key}")
            kinds[s.key] = s.kind
            name = KINDS[s.kind].host_step
            if name is None:
                raise HostError(f"{s.kind} is not a host action")
            try:
                _entry, spec, secret = build.host_call(s.kind, s.task.target, s.task.input)
            except build.BuildError as exc:
                results[s.key] = HostResult(trust, False, False, str(exc))
                continue
            targets.setdefault(trust, s.task.target)
            per_host.setdefault(trust, []).append(
                {"key": s.key, "step": name, "spec": spec, "after": list(s.after)})
            if secret is not None:
                # One opaque JSON string per step: the host program masks every leaf of
                # `secret` in everything it returns (runner.secret_values), so a step's
                # non-secret leaves (an FL kit file's mode "0600") would otherwise blank
                # the other steps' messages.
                secret_parts.setdefault(trust, {})[s.key] = json.dumps(secret)
                own_secrets[s.key] = list(leaves(secret))
        calls = {trust: _Call(targets[trust], build.STEPS_STEP, {"steps": items},
                              secret_parts.get(trust))
                 for trust, items in per_host.items()}
        wanted: dict[str, HostTarget] = {}
        if facts_after:
            endpoints = self._host_endpoints()
            for target in facts_after:
                trust = target.trust
                if trust in wanted:
                    raise HostError("two facts targets name the same trust")
                if trust in targets and targets[trust].host != target.host:
                    continue  # another host than its steps': gathered on its own later
                wanted[trust] = target
                call = calls.setdefault(trust, _Call(target, build.STEPS_STEP,
                                                     {"steps": []}, None))
                call.spec["facts"] = build.facts_spec(target, endpoints)
        facts: dict[str, ObservedHost] = {}
        for trust, outcome in self._run(build.STEPS_STEP, calls, cancel=cancel).items():
            if trust in wanted and outcome.unreachable is None and outcome.result is not None:
                res = outcome.result
                if isinstance(res.get("facts"), dict) and not res.get("failed"):
                    seen = _observed(trust, _Outcome(result={"facts": res["facts"]}))
                    if seen.reachable:
                        facts[trust] = seen
            if trust not in per_host:
                continue
            got = (outcome.result or {}).get("steps")
            host_secrets = [v for item in per_host[trust]
                            for v in own_secrets.get(item["key"], ())]
            stopped_at: str | None = None  # the first step the host did not report
            for item in per_host[trust]:
                key = item["key"]
                one = got.get(key) if isinstance(got, dict) else None
                if isinstance(one, dict):
                    results[key] = _step_result(trust, kinds[key], one,
                                                own_secrets.get(key, []))
                elif stopped_at is not None:
                    # The host run ended (cancelled, crashed, unreachable) before this
                    # step: it never ran, so it is "not run", not a second failure.
                    results[key] = HostResult(
                        trust, False, False, f"not run: {trust}'s host run stopped at "
                        f"{stopped_at}", skipped_after=stopped_at)
                elif outcome.result is not None and outcome.result.get("failed"):
                    stopped_at = key
                    results[key] = _result(kinds[key], trust, outcome, host_secrets)  # crashed
                else:  # the host never reported this step: why the whole host stopped
                    stopped_at = key
                    results[key] = _result(kinds[key], trust, replace(outcome, result=None),
                                           host_secrets)
        return results, facts

    def resolve_references(self, refs: Mapping[str, str], *,
                           region: str | None = None) -> dict[str, SecretStr]:
        resolver = self._refs or SecretRefs(region=region)
        out: dict[str, SecretStr] = {}
        for key, ref in refs.items():
            try:
                out[key] = SecretStr(resolver.resolve(ref))
            except AdapterError as exc:
                raise HostError(f"credentials.{key} ({ref}): {exc}") from None
        return out

    # -- one run ----------------------------------------------------------------------------

    def _run(self, step: str, calls: Mapping[str, _Call],
             cancel: Cancel | None) -> dict[str, _Outcome]:
        outcomes = {trust: _Outcome() for trust in calls}
        if not calls:
            return outcomes
        if not build.names_ok(list(calls)):
            raise HostError("trust names must be letters, digits, '_' and '-' to be host names")
        tmp = self._tmp_root or _short_tmp()
        remove_stale_private_dirs(tmp)
        pdd = Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-", dir=tmp))
        keys = _KeyFiles()
        try:
            entries: dict[str, dict[str, Any]] = {}
            hosts: dict[str, dict[str, Any]] = {}
            for trust, call in calls.items():
                try:
                    key_file, become = self._credentials(call.target, keys)
                except HostError as exc:
                    outcomes[trust].unreachable = str(exc)
                    continue
                args: dict[str, Any] = dict(call.spec) if step == build.STEPS_STEP else {
                    "spec": call.spec}
                if call.secret is not None:
                    args["secret"] = call.secret
                entries[trust] = {step: {"entry": call.entry, "args": args},
                                  "become_password": become}
                hosts[trust] = build.host_vars(call.target, python=sys.executable,
                                               known_hosts=_known_hosts(), key_file=key_file)
            if hosts:
                inventory = pdd / "inventory.yml"
                _write_private(inventory, build.inventory_yaml(build.inventory(hosts)))
                with ChannelServer(pdd, entries) as channel:
                    self._execute(pdd, step, inventory, channel, len(hosts), cancel, outcomes)
                    for trust, got in channel.received.items():
                        if trust in outcomes and isinstance(got.get(step), dict):
                            outcomes[trust].result = got[step]
                for trust in hosts:
                    self.module_invocations[trust] = self.module_invocations.get(trust, 0) + (
                        1 if outcomes[trust].result is not None else 0)
        finally:
            close_ssh_masters(pdd / CONTROL_DIR)
            keys.close()
            shutil.rmtree(pdd, ignore_errors=True)
        return outcomes

    def _credentials(self, target: HostTarget, keys: _KeyFiles) -> tuple[str | None, str]:
        """(ssh key file path, sudo password) of an ssh host; both empty for local hosts."""
        host = target.host
        if host.connection != "ssh":
            return None, ""
        resolver = self._refs or SecretRefs(region=target.region)
        self._refs = resolver
        key_file = None
        if host.ssh_key:
            try:
                value = resolver.resolve(host.ssh_key)
            except AdapterError as exc:
                raise HostError(f"host.ssh_key of {target.trust} ({host.ssh_key}): {exc}") \
                    from None
            if "PRIVATE KEY" in value:
                key_file = keys.add(target.trust, value)
            elif host.ssh_key.startswith("env:") and Path(value.strip()).expanduser().is_file():
                key_file = str(Path(build.anchor(value.strip(), target.base_dir)))
            else:
                raise HostError(f"host.ssh_key of {target.trust}: {host.ssh_key} holds neither "
                                "a private key nor (env: only) the path of a key file")
        become = ""
        if host.become_password:
            try:
                become = resolver.resolve(host.become_password)
            except AdapterError as exc:
                raise HostError(f"host.become_password of {target.trust} "
                                f"({host.become_password}): {exc}") from None
        return key_file, become

    def _execute(self, pdd: Path, step: str, inventory: Path, channel: ChannelServer,
                 count: int, cancel: Cancel | None, outcomes: dict[str, _Outcome]) -> None:
        from ansible_runner import Runner, RunnerConfig

        with content.as_file(content.content()) as root:
            playbook = Path(root) / "playbooks" / f"{step}.yml"
            config = RunnerConfig(
                private_data_dir=str(pdd), playbook=str(playbook), inventory=str(inventory),
                forks=min(count, self._max_forks), quiet=True, suppress_env_files=True,
                timeout=self._timeout,
            )
            config.prepare()
            config.suppress_output_file = True
            config.env = _runner_env(config.env, Path(root), pdd, channel)
            stop = threading.Event()

            def cancelled() -> bool:
                return stop.is_set() or bool(cancel and cancel())

            errors: list[str] = []

            def on_event(event: dict[str, Any]) -> bool:
                if self._observer is not None:
                    self._observer(event)
                _record_event(event, outcomes)
                text = str(event.get("stdout") or "").strip()
                if text.startswith(("[ERROR]", "ERROR!")):
                    errors.append(text.splitlines()[0][:300])
                return False  # events stay in memory: never written into the artifacts

            runner = Runner(config, cancel_callback=cancelled, event_handler=on_event)
            with _signals_cancel(stop) as pending:
                try:
                    runner.run()
                except Exception as exc:  # the runner raises bare exceptions on setup errors
                    raise HostError(f"ansible-runner could not run {step}: "
                                    f"{type(exc).__name__}") from None
            for outcome in outcomes.values():
                if outcome.unreachable is None and outcome.failed is None and \
                        outcome.result is None and not outcome.finished:
                    outcome.failed = ("cancelled before this host finished" if runner.canceled
                                      else f"the Ansible run ended ({runner.status}) before "
                                      "this host finished" + (f": {errors[-1]}" if errors else ""))
        for signum in pending:
            _deliver(signum)


# --- signals ---------------------------------------------------------------------------------

@contextlib.contextmanager
def _signals_cancel(stop: threading.Event) -> Iterator[list[int]]:
    """While a run is in flight (main thread only), SIGINT/SIGTERM stop it; afterwards the
    previous handlers are back, and each signal received is delivered to them once."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, _frame: FrameType | None) -> None:
        received.append(signum)
        stop.set()

    for s in previous:
        signal.signal(s, handler)
    try:
        yield received
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _deliver(signum: int) -> None:
    """Call the restored handler of a signal that arrived during the run."""
    handler = signal.getsignal(signum)
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        signal.raise_signal(signum)


# --- private dirs, keys, environment ---------------------------------------------------------


def _short_tmp() -> str:
    """ssh control sockets and the channel socket need a path under 108 bytes."""
    tmp = tempfile.gettempdir()
    return tmp if len(tmp) <= 40 or not os.path.isdir("/tmp") else "/tmp"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_private_dirs(tmp: str) -> list[str]:
    """Private dirs of runs whose process is gone (a SIGKILL): they hold no secret, but are
    removed so nothing accumulates."""
    removed: list[str] = []
    try:
        names = os.listdir(tmp)
    except OSError:
        return removed
    for name in names:
        match = _PRIVATE_RE.match(name)
        if match and int(match.group(1)) != os.getpid() and not _alive(int(match.group(1))):
            shutil.rmtree(os.path.join(tmp, name), ignore_errors=True)
            removed.append(name)
    return removed


def close_ssh_masters(control_dir: Path) -> int:
    """Stop the ssh connection masters a run left behind; returns how many were asked.

    Ansible's ssh connection runs with `ControlMaster=auto -o ControlPersist=60s`: the first
    connection to a host forks a master that outlives ansible-playbook for a minute, holding
    an authenticated session to the trust host (and a process of ours) after the run ended
    and its private dir was deleted. Each socket in the run's control dir is a live master;
    `ssh -O exit` asks it to close its session and exit.
    """
    try:
        sockets = [e.path for e in os.scandir(control_dir)
                   if stat.S_ISSOCK(e.stat(follow_symlinks=False).st_mode)]
    except OSError:
        return 0
    for path in sockets:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            subprocess.run(["ssh", "-o", f"ControlPath={path}", "-O", "exit", "flipgitops"],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=SSH_EXIT_TIMEOUT_SECONDS, check=False)
    return len(sockets)


class _KeyFiles:
    """SSH private keys in memfds (RAM only), reached by ssh as /proc/<pid>/fd/<n>."""

    def __init__(self) -> None:
        self._fds: list[int] = []

    def add(self, trust: str, key: str) -> str:
        fd = os.memfd_create(f"flipgitops-ssh-{trust}", os.MFD_CLOEXEC)
        self._fds.append(fd)
        os.write(fd, (key.strip() + "\n").encode())
        os.fchmod(fd, 0o600)
        return f"/proc/{os.getpid()}/fd/{fd}"

    def close(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()


def _known_hosts() -> str | None:
    home = os.environ.get("HOME")
    return str(Path(home) / ".ssh" / "known_hosts") if home else None


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


def _runner_env(prepared: Mapping[str, str], root: Path, pdd: Path,
                channel: ChannelServer) -> dict[str, str]:
    """What ansible-runner added (its callback plugin), our pinned settings and the channel;
    nothing else of this process's environment (AWS credentials stay out)."""
    added = {k: v for k, v in prepared.items()
             if os.environ.get(k) != v and (k.startswith(("ANSIBLE_", "AWX_", "RUNNER_")))}
    env = {k: os.environ[k] for k in _PASS_ENV if k in os.environ}
    env.update(added)
    env.update({
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/sbin",
                                 "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]),
        "ANSIBLE_CONFIG": str(root / "ansible.cfg"),
        "ANSIBLE_ACTION_PLUGINS": str(root / "action_plugins"),
        "ANSIBLE_HOME": str(pdd / "ansible_home"),
        "ANSIBLE_LOCAL_TEMP": str(pdd / "local_tmp"),
        "ANSIBLE_REMOTE_TEMP": "~/.ansible/tmp",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(pdd / CONTROL_DIR),
        "ANSIBLE_LOG_PATH": os.devnull,
        "ANSIBLE_DEBUG": "False",
        "ANSIBLE_VERBOSITY": "0",
        "ANSIBLE_KEEP_REMOTE_FILES": "False",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_NOCOLOR": "True",
        **channel.env,
    })
    return env


# --- events and results ----------------------------------------------------------------------


def _record_event(event: dict[str, Any], outcomes: dict[str, _Outcome]) -> None:
    kind = event.get("event", "")
    data = event.get("event_data") or {}
    if kind == "playbook_on_stats":
        changed = data.get("changed") or {}
        for trust in data.get("processed") or {}:
            if trust in outcomes:
                outcomes[trust].finished = True
                outcomes[trust].changed = outcomes[trust].changed or bool(changed.get(trust))
        return
    outcome = outcomes.get(str(data.get("host", "")))
    if outcome is None:
        return
    res = data.get("res") or {}
    if kind == "runner_on_unreachable":
        outcome.unreachable = _reason(res) or "host unreachable"
    elif kind == "runner_on_failed" and not data.get("ignore_errors"):
        outcome.failed = outcome.failed or _reason(res) or "failed"
    elif kind == "runner_on_ok":
        outcome.changed = outcome.changed or bool(res.get("changed"))


def _reason(res: Mapping[str, Any]) -> str:
    if res.get("censored"):
        return "a step handling secrets failed before it could report (output hidden)"
    parts = [str(res.get("msg") or "").strip()]
    stderr = str(res.get("stderr") or res.get("module_stderr") or "").strip()
    if stderr:
        parts.append(stderr.splitlines()[-1])
    return "; ".join(p for p in parts if p)[:500]


def _mask(text: str, secrets: Sequence[str]) -> str:
    text = scrub(text, secrets)
    for secret in secrets:  # a line of a multi-line secret (a kit file, a key)
        for line in secret.splitlines():
            value = line.partition("=")[2] if "=" in line else line
            if len(value) >= 8:
                text = text.replace(value, SCRUBBED)
    return text


def _result(kind: ActionKind, trust: str, outcome: _Outcome,
            secrets: Sequence[str]) -> HostResult:
    if outcome.unreachable is not None:
        return HostResult(trust, False, False, _mask(f"unreachable: {outcome.unreachable}",
                                                     secrets), unreachable=True)
    res = outcome.result
    if res is not None:
        message = _mask(str(res.get("msg") or ""), secrets)
        changed = bool(res.get("changed"))
        if res.get("failed"):
            return HostResult(trust, False, changed, f"failed: {message or kind}")
        return HostResult(trust, True, changed, message or f"{kind}: done")
    if outcome.failed is not None:
        return HostResult(trust, False, outcome.changed,
                          _mask(f"failed: {outcome.failed}", secrets))
    return HostResult(trust, False, outcome.changed, f"{kind}: no result")


def _step_result(trust: str, kind: ActionKind, res: Mapping[str, Any],
                 secrets: Sequence[str]) -> HostResult:
    """One step's share of a `run_steps` host result."""
    message = _mask(str(res.get("msg") or ""), secrets)
    changed = bool(res.get("changed"))
    if res.get("skipped"):
        return HostResult(trust, False, False, message or f"{kind}: not run",
                          skipped_after=str(res.get("after") or "") or None)
    if not res.get("ok"):
        return HostResult(trust, False, changed, f"failed: {message or kind}")
    return HostResult(trust, True, changed, message or f"{kind}: done")


def _observed(trust: str, outcome: _Outcome) -> ObservedHost:
    if outcome.unreachable is not None:
        return ObservedHost(trust=trust, reachable=False, reason=outcome.unreachable)
    res = outcome.result or {}
    facts = res.get("facts")
    if res.get("failed") or not isinstance(facts, dict):
        # Facts we could not read are unknown, never "absent": the planner must not act.
        reason = res.get("msg") or outcome.failed or "no facts returned"
        return ObservedHost(trust=trust, reachable=False, reason=f"facts failed: {reason}")
    facts = dict(facts)
    containers = tuple(
        ObservedContainer(service=str(c.get("service", "")), image=str(c.get("image", "")),
                          tag=image_tag(str(c.get("image", ""))), state=str(c.get("state", "")),
                          config_hash=c.get("config_hash"))
        for c in facts.pop("containers", None) or []
    )
    try:
        return ObservedHost(trust=trust, reachable=True, containers=containers, **facts)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return ObservedHost(trust=trust, reachable=False,
                            reason=f"facts did not fit the model at {where}: {first['msg']}")
