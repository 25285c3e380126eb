"""Reading a plan file back (`apply --plan`): refuse anything that is not a plan we wrote.

A plan file crosses a trust boundary (a CI artifact, a file a person may have edited), so it
is checked before it is believed: UTF-8 text, JSON without duplicate keys or lone
surrogates, our ``format_version``, and every action a known kind whose params fit that
kind's model *strictly* (a ``"2"`` is not a generation; an unknown key is not ignored), every
dependency and wave naming an action of the plan. Whatever is wrong is reported as one
`PlanFileError` with one line per problem, each naming the action by id and kind, never as a
traceback.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from flipgitops.core.render._common import clean, clip
from flipgitops.errors import FlipGitopsError
from flipgitops.model.actions import KINDS, ActionKind
from flipgitops.model.plan import FORMAT_VERSION, Change, Plan

# Keys `render_plan_json` adds for readers; not part of the Plan.
REPORT_KEYS = ("manifest_change", "summary")
_MAX_PROBLEMS = 20
_FIX = "regenerate it with `flipgitops plan --out FILE` and review it again"


class PlanFileError(FlipGitopsError):
    """A plan file could not be read back: not a plan, another format version, corrupt."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:_MAX_PROBLEMS]
        more = len(problems) - len(shown)
        head = ("plan file is not a valid flipgitops plan"
                + (f" ({len(problems)} problems)" if len(problems) > 1 else ""))
        lines = [f"{head}:", *(f"  {p}" for p in shown)]
        if more:
            lines.append(f"  … and {more} more")
        lines.append(f"  fix: {_FIX}")
        super().__init__("\n".join(lines))


def _q(value: object, limit: int = 80) -> str:
    """A value from the file, quoted for a message: printable and short."""
    return repr(clip(clean(value) if isinstance(value, str) else clean(repr(value)), limit))


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _Duplicate(key)
        out[key] = value
    return out


class _Duplicate(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _surrogates(value: Any, where: str, out: list[str]) -> None:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            out.append(f"{where}: a lone surrogate (a broken UTF-16 escape such as \\ud800): "
                       "the file is corrupt")
    elif isinstance(value, dict):
        for k, v in value.items():
            _surrogates(k, where, out)
            _surrogates(v, f"{where}.{k}" if where else str(k), out)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _surrogates(v, f"{where}[{i}]", out)


def _parse(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        if b"\x00" in text:
            raise PlanFileError(["the file is binary, not JSON text"])
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PlanFileError([f"the file is not UTF-8 text (byte 0x{text[exc.start]:02x} at "
                                 f"offset {exc.start}): it is binary or corrupt"]) from None
    if "\x00" in text:
        raise PlanFileError(["the file is binary, not JSON text"])
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PlanFileError([f"the text holds a lone surrogate at offset {exc.start}: it was "
                             "decoded wrongly or is corrupt"]) from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except _Duplicate as exc:
        raise PlanFileError([f"key {_q(exc.key)} appears twice in one object: which one "
                             "counts is ambiguous"]) from None
    except json.JSONDecodeError as exc:
        raise PlanFileError([f"not JSON: {exc.msg} at line {exc.lineno} column "
                             f"{exc.colno}"]) from None
    except RecursionError:
        raise PlanFileError(["not a plan: JSON nested too deeply"]) from None


def _action_name(raw: Any, index: int) -> str:
    if not isinstance(raw, dict):
        return f"action #{index + 1}"
    return f"action #{index + 1} (id {_q(raw.get('id'))}, kind {_q(raw.get('kind'))})"


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _message(error: Any) -> str:
    msg = str(error.get("msg", "invalid"))
    if msg.startswith("Value error, "):
        msg = msg.removeprefix("Value error, ")
    if error.get("type") == "missing":
        return "missing (required)"
    if error.get("type") == "extra_forbidden":
        return "unexpected key (not part of this model)"
    if "input" in error and error.get("type") not in ("missing",):
        return f"{msg} (got {_q(error['input'], 60)})"
    return msg


def _check_actions(actions: Any) -> list[str]:
    """Each action: a known kind, params that fit its model strictly."""
    if not isinstance(actions, list):
        return [f"actions: must be a list of actions (got {_q(actions, 40)})"]
    problems = []
    for i, raw in enumerate(actions):
        name = _action_name(raw, i)
        if not isinstance(raw, dict):
            problems.append(f"{name}: must be an object")
            continue
        for key in ("id", "kind", "target"):
            if not isinstance(raw.get(key), str) or not raw.get(key):
                problems.append(f"{name}: {key} is missing or not a string")
        kind = raw.get("kind")
        if not isinstance(kind, str):
            continue
        try:
            spec = KINDS[ActionKind(kind)]
        except ValueError:
            problems.append(f"{name}: unknown action kind {_q(kind)}; known kinds: "
                            + ", ".join(k.value for k in ActionKind))
            continue
        params = raw.get("params", {})
        if not isinstance(params, dict):
            problems.append(f"{name}: params must be an object (got {_q(params, 40)})")
            continue
        try:
            spec.params.model_validate_json(json.dumps(params), strict=True)
        except ValidationError as exc:
            for err in exc.errors():
                problems.append(f"{name}: params.{_loc(tuple(err['loc']))}: {_message(err)}")
    return problems


def _check_references(plan: Plan) -> list[str]:
    ids = [a.id for a in plan.actions]
    known = set(ids)
    problems = [f"action id {_q(i)} appears more than once"
                for i in sorted({i for i in ids if ids.count(i) > 1})]
    for a in plan.actions:
        for dep in a.depends_on:
            if dep not in known:
                problems.append(f"action {_q(a.id)} (kind {_q(a.kind.value)}): depends on "
                                f"{_q(dep)}, which the plan does not hold")
    placed = [i for wave in plan.waves for i in wave]
    for i in placed:
        if i not in known:
            problems.append(f"waves: name {_q(i)}, which the plan does not hold")
    if plan.waves and sorted(placed) != sorted(ids):
        missing = sorted(known - set(placed))
        if missing:
            problems.append("waves: leave out " + ", ".join(_q(i) for i in missing[:5]))
    return problems


def load_plan_json(text: str | bytes) -> Plan:
    """The Plan a `render_plan_json` artifact holds (report-only keys are dropped)."""
    data = _parse(text)
    if not isinstance(data, dict):
        raise PlanFileError([f"not a plan: the JSON is a {type(data).__name__}, not an object"])
    problems: list[str] = []
    _surrogates(data, "", problems)
    if problems:
        raise PlanFileError(problems)
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        shown = "missing" if "format_version" not in data else _q(version)
        raise PlanFileError([f"format_version is {shown}; this flipgitops reads "
                             f"{FORMAT_VERSION!r} (make the plan with the same flipgitops "
                             "version that applies it)"])
    for key in REPORT_KEYS:
        data.pop(key, None)
    problems += _check_actions(data.get("actions", []))
    if problems:
        raise PlanFileError(problems)
    try:
        plan = Plan.model_validate(data)
    except ValidationError as exc:
        actions = data.get("actions", [])
        for err in exc.errors():
            loc = tuple(err["loc"])
            if len(loc) >= 2 and loc[0] == "actions" and isinstance(loc[1], int) \
                    and isinstance(actions, list) and loc[1] < len(actions):
                where = _action_name(actions[loc[1]], loc[1])
                rest = _loc(loc[2:])
                problems.append(f"{where}: {rest + ': ' if loc[2:] else ''}{_message(err)}")
            else:
                problems.append(f"{_loc(loc)}: {_message(err)}")
        raise PlanFileError(problems) from None
    problems = _check_references(plan)
    if problems:
        raise PlanFileError(problems)
    return plan


def load_manifest_change(text: str | bytes) -> tuple[Change, ...] | None:
    """The manifest change recorded next to a plan, if the plan was made with ``--base``."""
    data = _parse(text)
    raw = data.get("manifest_change") if isinstance(data, dict) else None
    if raw is None:
        return None
    try:
        if not isinstance(raw, list):
            raise TypeError
        return tuple(Change.model_validate(c) for c in raw)
    except (ValidationError, TypeError):
        raise PlanFileError(["manifest_change: not a list of changes"]) from None
