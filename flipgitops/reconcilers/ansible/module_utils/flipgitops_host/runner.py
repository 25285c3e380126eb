"""The body every flipgitops host module shares: arguments in, one step, a result out.

Modules take ``spec`` (non-secret, built in Python by the controller) and, for the steps
that carry keys, ``secret`` (declared ``no_log``, so Ansible masks its values in anything
the module returns). Errors become ``fail_json(msg=…)`` with the message the step wrote: it
names the path or command and never a secret.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ansible.module_utils.basic import AnsibleModule  # type: ignore[import-untyped]

from . import fsutil, stack, steps

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping



def run_step(step: Callable[[Mapping[str, Any]], tuple[bool, str]], *,
             secret: bool = False) -> None:
    argument_spec: dict[str, Any] = {"spec": {"type": "dict", "required": True}}
    if secret:
        argument_spec["secret"] = {"type": "dict", "required": True, "no_log": True}
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=False)
    spec = dict(module.params["spec"])
    if secret:
        spec.update(module.params["secret"])
    try:
        changed, message = step(spec)
    except (steps.StepError, fsutil.HostFileError, stack.StackError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=changed, msg=message)


def run_read(read: Callable[[Mapping[str, Any]], tuple[dict[str, str], str]]) -> None:
    """A step that reads secret values for the controller: they travel in ``secrets``,
    which the action plugin sends over the channel only (never back to Ansible)."""
    module = AnsibleModule(argument_spec={"spec": {"type": "dict", "required": True}},
                           supports_check_mode=True)
    try:
        values, message = read(module.params["spec"])
    except (steps.StepError, fsutil.HostFileError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, msg=message, secrets=values)


def run_facts(gather: Callable[[Mapping[str, Any]], dict[str, Any]]) -> None:
    module = AnsibleModule(argument_spec={"spec": {"type": "dict", "required": True}},
                           supports_check_mode=True)
    try:
        found = gather(module.params["spec"])
    except (fsutil.HostFileError, stack.StackError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, facts=found)
