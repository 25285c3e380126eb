"""The body every flipgitops host module shares: arguments in, one step, a result out.

Modules take ``spec`` (non-secret, built in Python by the controller) and, for the steps
that carry keys, ``secret`` (declared ``no_log``, so Ansible masks its values in anything
the module returns). Errors become ``fail_json(msg=…)`` with the message the step wrote: it
names the path or command and never a secret.
"""

from __future__ import annotations

import json
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


def run_in_order(items: list[Mapping[str, Any]], secret: Mapping[str, str],
                 registry: Mapping[str, Callable[[Mapping[str, Any]], tuple[bool, str]]]
                 ) -> dict[str, dict[str, Any]]:
    """Each ``{key, step, spec, after}`` in order, each only after its ``after`` keys ran and
    succeeded here (otherwise ``skipped``, naming the first that did not); ``secret`` maps a
    key to the secret part of its arguments as one JSON string. -> ``{key: {ok, changed,
    msg[, skipped, after]}}``."""
    results: dict[str, dict[str, Any]] = {}
    for item in items:
        key, name = str(item["key"]), str(item["step"])
        blocker = next((str(k) for k in item.get("after") or []
                        if not results.get(str(k), {}).get("ok")), None)
        if blocker is not None:
            results[key] = {"ok": False, "changed": False, "skipped": True, "after": blocker,
                            "msg": f"not run: {blocker} did not succeed"}
            continue
        step = registry.get(name)
        if step is None:
            results[key] = {"ok": False, "changed": False, "msg": f"unknown host step {name}"}
            continue
        spec = dict(item["spec"])
        if key in secret:
            spec.update(json.loads(secret[key]))
        try:
            changed, message = step(spec)
        except (steps.StepError, fsutil.HostFileError, stack.StackError) as exc:
            results[key] = {"ok": False, "changed": False, "msg": str(exc)}
            continue
        results[key] = {"ok": True, "changed": changed, "msg": message}
    return results


def run_steps(registry: Mapping[str, Callable[[Mapping[str, Any]], tuple[bool, str]]],
              gather: Callable[[Mapping[str, Any]], dict[str, Any]]) -> None:
    """Several steps on this host in ONE module invocation (one interpreter start, one
    AnsiballZ payload): an onboarding's provision → … → verify costs one, not six.

    ``steps`` is a list of ``{key, step, spec, after}`` and ``secret`` (``no_log``) maps a
    key to its secret part as one JSON string, so Ansible masks it whole and the non-secret
    leaves of one step's secret part never blank another step's message (`run_in_order`).
    The module itself never fails on a step's failure: the result says per step.

    ``facts`` (optional, the facts module's spec): the host's facts taken after the steps,
    in the same invocation, so the apply's re-observation need not start another run for
    this host (adapters/hosts.py `run_steps_then_gather`). Facts that cannot be read are
    reported as ``facts_error``, never as facts.
    """
    module = AnsibleModule(
        argument_spec={"steps": {"type": "list", "elements": "dict", "required": True},
                       "secret": {"type": "dict", "default": {}, "no_log": True},
                       "facts": {"type": "dict", "required": False}},
        supports_check_mode=False)
    results = run_in_order(module.params["steps"], module.params["secret"] or {}, registry)
    out: dict[str, Any] = {"changed": any(r["changed"] for r in results.values()),
                           "steps": results}
    if module.params.get("facts"):
        try:
            out["facts"] = gather(module.params["facts"])
        except (fsutil.HostFileError, stack.StackError) as exc:
            out["facts_error"] = str(exc)
    module.exit_json(**out)
