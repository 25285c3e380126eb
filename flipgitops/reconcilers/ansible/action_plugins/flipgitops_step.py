"""Action plugin: run one flipgitops host step with arguments fetched from the channel.

Runs on the controller inside Ansible's worker. The task names only the step
(`flipgitops_step: {step: write_kit_file}`); the module name and its arguments come from the
flipgitops process over `flipgitops.adapters.hosts_channel`, built in Python, so no manifest
value is ever a template and no secret is ever in a task, a variable or a file. The module's
result goes back over the channel (without `invocation`), so the parent reads what a `no_log`
task did and why it failed, while Ansible's own events stay censored. Values a host step read
for the controller (`secrets`, the host->controller direction) go over the channel only and
are never part of the result Ansible sees.
"""

from __future__ import annotations

from typing import Any

from ansible.plugins.action import ActionBase  # type: ignore[import-untyped]

from flipgitops.adapters.hosts_channel import ChannelError, fetch, put

# Result keys the parent may read; anything else a module returns is dropped.
_KEEP = ("changed", "failed", "msg", "facts", "facts_error", "steps", "rc", "path",
         "details")
# Result keys that go to the parent over the channel ONLY (secret values a host step read
# for the controller, e.g. read_kit_secrets): removed from what Ansible receives, so no
# event, callback or artifact ever holds them, whatever the task's no_log says.
_CHANNEL_ONLY = ("secrets",)


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
        module = self._execute_module(module_name=str(spec["module"]),
                                      module_args=dict(spec["args"]), task_vars=task_vars)
        private = {k: module.pop(k) for k in _CHANNEL_ONLY if k in module}
        kept = {k: module[k] for k in _KEEP if k in module}
        if module.get("failed") and "msg" not in kept:
            # A module that died before AnsibleModule reported (no interpreter, a crash):
            # Ansible's own message names the cause; the module's output is left out.
            kept["msg"] = str(module.get("module_stderr") or "the module failed")[-400:]
        module.clear()
        try:
            put(host, step, {**kept, **private})
        except ChannelError as exc:
            kept = {"failed": True, "msg": str(exc)}
        private.clear()
        result.update(kept)
        return result
