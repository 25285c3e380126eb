"""The one entry of every flipgitops host program: a request in, a result out.

The controller's `flipgitops_step` action plugin sends the host a program
(`reconcilers/ansible/host_program.py`): these sources and one request
``{"entry": …, "args": …}``, on the interpreter's stdin. Its bootstrap imports this package
from memory and prints ``run(request)`` as one JSON document. Nothing here imports Ansible:
an Ansible module's runtime (AnsiballZ, `ansible.module_utils.basic`) cost each invocation
~0.4 CPU-s before a line of ours ran, more than the host's own work
(`docs/decisions/2026-12-02-host-programs-without-ansiballz.md`).

Entries take ``spec`` (non-secret, built in Python by the controller) and, for the steps
that carry keys, ``secret``. Values of ``secret`` are masked in everything the result
holds (what AnsibleModule's ``no_log`` did; the controller masks again). Errors become
``{"failed": True, "msg": …}`` with the message the step wrote: it names the path or
command and never a secret.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from . import compose, facts, fsutil, stack, steps
from .masking import CHANNEL_ONLY, mask, secret_values

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

_ERRORS = (steps.StepError, fsutil.HostFileError, stack.StackError)


def run(request: Mapping[str, Any]) -> dict[str, Any]:
    """The result of ``request["entry"]`` with ``request["args"]``, secrets masked."""
    entry = str(request.get("entry", ""))
    args = request.get("args")
    if not isinstance(args, dict):
        return {"failed": True, "changed": False, "msg": f"host program {entry!r}: no arguments"}
    handler = ENTRIES.get(entry)
    if handler is None:
        return {"failed": True, "changed": False,
                "msg": f"unknown host program entry {entry!r}"}
    compose.forget()  # what a run learns of the engine is its own
    try:
        result = handler(args)
    except KeyError as exc:
        result = {"failed": True, "changed": False,
                  "msg": f"host program {entry!r}: argument {exc} missing"}
    private = {k: result.pop(k) for k in CHANNEL_ONLY if k in result}
    masked: dict[str, Any] = mask(result, secret_values(args.get("secret")))
    masked.update(private)
    return masked


def run_step(step: Callable[[Mapping[str, Any]], tuple[bool, str]],
             args: Mapping[str, Any]) -> dict[str, Any]:
    """One step: ``spec`` (and ``secret``, merged into it) -> ``{changed, msg}``."""
    spec = dict(args["spec"])
    spec.update(args.get("secret") or {})
    try:
        changed, message = step(spec)
    except _ERRORS as exc:
        return {"failed": True, "changed": False, "msg": str(exc)}
    return {"changed": changed, "msg": message}


def run_read(args: Mapping[str, Any]) -> dict[str, Any]:
    """A step that reads secret values for the controller: they travel in ``secrets``,
    which the action plugin sends over the channel only (never back to Ansible)."""
    try:
        values, message = steps.read_kit_secrets(args["spec"])
    except (steps.StepError, fsutil.HostFileError) as exc:
        return {"failed": True, "changed": False, "msg": str(exc)}
    return {"changed": False, "msg": message, "secrets": values}


def run_facts(args: Mapping[str, Any]) -> dict[str, Any]:
    try:
        found = facts.gather(args["spec"])
    except (fsutil.HostFileError, stack.StackError) as exc:
        return {"failed": True, "changed": False, "msg": str(exc)}
    return {"changed": False, "facts": found}


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
        except _ERRORS as exc:
            results[key] = {"ok": False, "changed": False, "msg": str(exc)}
            continue
        results[key] = {"ok": True, "changed": changed, "msg": message}
    return results


def run_steps(args: Mapping[str, Any]) -> dict[str, Any]:
    """Several steps on this host in ONE program run (one interpreter start): an
    onboarding's provision → … → verify costs one, not six.

    ``steps`` is a list of ``{key, step, spec, after}`` and ``secret`` maps a key to its
    secret part as one JSON string (`run_in_order`). The run itself never fails on a
    step's failure: the result says per step.

    ``facts`` (optional, the facts entry's spec): the host's facts taken after the steps,
    in the same run, so the apply's re-observation need not start another run for this
    host (adapters/hosts.py `run_steps_then_gather`). Facts that cannot be read are
    reported as ``facts_error``, never as facts.
    """
    results = run_in_order(list(args["steps"]), args.get("secret") or {}, steps.STEPS)
    out: dict[str, Any] = {"changed": any(r["changed"] for r in results.values()),
                           "steps": results}
    if args.get("facts"):
        try:
            out["facts"] = facts.gather(args["facts"])
        except (fsutil.HostFileError, stack.StackError) as exc:
            out["facts_error"] = str(exc)
    return out


def _step_entry(step: Callable[[Mapping[str, Any]], tuple[bool, str]]
                ) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    return lambda args: run_step(step, args)


# entry -> handler; an entry is the host step's name (the playbook's `step:`).
ENTRIES: dict[str, Callable[[Mapping[str, Any]], dict[str, Any]]] = {
    **{name: _step_entry(step) for name, step in steps.STEPS.items()},
    "facts": run_facts,
    "read_kit_secrets": run_read,
    "steps": run_steps,
}
