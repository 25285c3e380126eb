"""Action plugin: run one flipgitops host step with arguments fetched from the channel.

Runs on the controller inside Ansible's worker. The task names only the step
(`flipgitops_step: {step: write_kit_file}`); the program's entry and its arguments come from
the flipgitops process over `flipgitops.adapters.hosts_channel`, built in Python, so no
manifest value is ever a template and no secret is ever in a task, a variable or a file.

The step runs on the host as one flipgitops host program (`host_program.py`) piped to the
host's Python over the task's connection and become, not as an AnsiballZ module. Its result
goes back over the channel, so the parent reads what a `no_log` task did and why it failed,
while Ansible's own events stay censored. Values a host step read for the controller
(`secrets`, the host->controller direction) go over the channel only and are never part of
the result Ansible sees.
"""

from __future__ import annotations

import shlex
from typing import Any

from ansible.executor.interpreter_discovery import (  # type: ignore[import-untyped]
    discover_interpreter,
)
from ansible.plugins.action import ActionBase  # type: ignore[import-untyped]

from flipgitops.adapters.hosts_channel import ChannelError, fetch, put
from flipgitops.reconcilers.ansible import host_program
from flipgitops.reconcilers.ansible.flipgitops_host.masking import CHANNEL_ONLY

# Result keys the parent may read; anything else a program returns is dropped.
_KEEP = ("changed", "failed", "msg", "facts", "facts_error", "steps")
_DISCOVERED = "discovered_interpreter_python"


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset({"step"})

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        host = str(task_vars.get("inventory_hostname", ""))
        step = str(self._task.args.get("step", ""))
        try:
            spec = fetch(host, step)
            if self._connection.become is not None:
                password = fetch(host, "become_password")
                if password:
                    self._connection.become.set_option("become_pass", password)
        except ChannelError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        python = self._python(task_vars, result)
        command = shlex.join([python, *host_program.COMMAND_FLAGS])
        ran = self._low_level_execute_command(
            command, sudoable=True,
            in_data=host_program.program(str(spec["entry"]), dict(spec["args"])))
        answer = host_program.answer(int(ran.get("rc") or 0), str(ran.get("stdout") or ""),
                                     str(ran.get("stderr") or ""))
        ran.clear()
        # never in what Ansible receives (events, callbacks, artifacts), whatever no_log says
        private = {k: answer.pop(k) for k in CHANNEL_ONLY if k in answer}
        kept = {k: answer[k] for k in _KEEP if k in answer}
        answer.clear()
        try:
            put(host, step, {**kept, **private})
        except ChannelError as exc:
            kept = {"failed": True, "msg": str(exc)}
        private.clear()
        result.update(kept)
        return result

    def _python(self, task_vars: dict[str, Any], result: dict[str, Any]) -> str:
        """The host's interpreter: the inventory's, or (``auto…``) Ansible's discovery, as
        a module run would find it; a discovery is reported as a fact, as Ansible does."""
        configured = str(task_vars.get("ansible_python_interpreter") or "auto_silent")
        if not configured.startswith("auto"):
            return configured
        facts = task_vars.get("ansible_facts") or {}
        if facts.get(_DISCOVERED):
            return str(facts[_DISCOVERED])
        found = str(discover_interpreter(action=self, interpreter_name="python",
                                         discovery_mode=configured, task_vars=task_vars))
        result.setdefault("ansible_facts", {})[_DISCOVERED] = found
        return found
