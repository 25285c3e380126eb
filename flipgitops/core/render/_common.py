"""Helpers every renderer shares: masking, colour and how an action reads to a reviewer.

Kept apart from the format modules so text, markdown and json agree on what counts as an
addition, a change or a removal, and on how a secret hash is shortened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from rich.color import ColorSystem
from rich.style import Style

from flipgitops.model.plan import Action, ActionKind, Change, Plan, Violation

_HEX64 = re.compile(r"^(sha256:)?[0-9a-fA-F]{64}$")

# Kinds that only ever bring something into existence / take something away.
_ADD_KINDS = frozenset(
    {ActionKind.CREDENTIALS_ESCROW, ActionKind.HOST_PROVISION, ActionKind.DATABASE_SNAPSHOT}
)
_REMOVE_KINDS = frozenset({ActionKind.HOST_STOP_STACK})


def short_hash(value: str | None) -> str | None:
    """``sha256:<first 12 hex>``: enough to compare by eye, useless to an attacker."""
    if value is None:
        return None
    hexpart = value.split(":", 1)[1] if value.startswith("sha256:") else value
    return "sha256:" + hexpart[:12]


def mask_hashes(data: Any) -> Any:
    """Shorten every full sha256 found anywhere in dumped data.

    Applied to whole dumps rather than named fields so a field added to a model later can
    never leak a full hash into a report by being forgotten here.
    """
    if isinstance(data, dict):
        return {k: mask_hashes(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [mask_hashes(v) for v in data]
    if isinstance(data, str) and _HEX64.match(data):
        return short_hash(data)
    return data


def paint(text: str, style: str, color: bool) -> str:
    """ANSI-styled text when colour is on; the text unchanged otherwise (no escape codes)."""
    if not color:
        return text
    return Style.parse(style).render(text, color_system=ColorSystem.STANDARD)


SYMBOL_STYLE = {"+": "green", "-": "red", "~": "yellow", "!": "bold red"}


def added_trusts(changes: Iterable[Change]) -> frozenset[str]:
    """Trusts the plan's changes bring in whole (``trusts.<name>`` added)."""
    out = set()
    for c in changes:
        parts = c.path.split(".")
        if c.op == "add" and len(parts) == 2 and parts[0] == "trusts":
            out.add(parts[1])
    return frozenset(out)


def action_symbol(action: Action, new_trusts: frozenset[str] = frozenset()) -> str:
    """``+``, ``-`` or ``~`` for one action, as a reviewer would read it."""
    if action.destructive or action.kind in _REMOVE_KINDS:
        return "-"
    if action.kind in _ADD_KINDS or action.target in new_trusts:
        return "+"
    adds = removes = False
    if action.kind == ActionKind.ALLOWLIST_UPDATE:
        adds, removes = bool(action.params.get("add")), bool(action.params.get("revoke"))
    elif action.kind == ActionKind.HUB_SECRET_UPDATE:
        adds = bool(action.params.get("register"))
        removes = bool(action.params.get("deregister") or action.params.get("drop_previous"))
    if adds and not removes:
        return "+"
    if removes and not adds:
        return "-"
    return "~"


def change_symbol(change: Change) -> str:
    return {"add": "+", "remove": "-", "change": "~"}[change.op]


def counts(plan: Plan) -> tuple[int, int, int]:
    """(to add, to change, to remove) over the plan's actions."""
    new = added_trusts(plan.changes)
    symbols = [action_symbol(a, new) for a in plan.actions]
    return symbols.count("+"), symbols.count("~"), symbols.count("-")


def waves(plan: Plan) -> list[list[Action]]:
    """Actions grouped by wave; a plan without waves is one wave in action order."""
    by_id = {a.id: a for a in plan.actions}
    if not plan.waves:
        return [list(plan.actions)] if plan.actions else []
    out = [[by_id[i] for i in wave if i in by_id] for wave in plan.waves]
    placed = {i for wave in plan.waves for i in wave}
    stray = [a for a in plan.actions if a.id not in placed]
    if stray:  # never hide an action because the waves forgot it
        out.append(stray)
    return out


def guard_summary(violations: Iterable[Violation]) -> str:
    """``none`` or ``2 blocking (FG001, FG004), 1 allowed (FG003)``."""
    vs = list(violations)
    if not vs:
        return "none"
    blocking = sorted({v.guard for v in vs if not v.allowed})
    allowed = sorted({v.guard for v in vs if v.allowed})
    parts = []
    if blocking:
        parts.append(f"{sum(not v.allowed for v in vs)} blocking ({', '.join(blocking)})")
    if allowed:
        parts.append(f"{sum(v.allowed for v in vs)} allowed ({', '.join(allowed)})")
    return ", ".join(parts)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def summary_line(plan: Plan) -> str:
    a, c, d = counts(plan)
    nwaves = len(waves(plan))
    return (
        f"Plan: {plural(len(plan.actions), 'action')} in {plural(nwaves, 'wave')} "
        f"({a} to add, {c} to change, {d} to remove); guards: {guard_summary(plan.violations)}"
    )


def _scalar(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


def fmt_value(value: Any, limit: int = 120) -> str:
    """A one-line rendering of a change value, hashes masked, long values clipped.

    A whole object (a trust being added) reads as ``key=value`` pairs of its scalar fields,
    nested sections elided, so the line says what the trust is rather than dumping JSON.
    """
    masked = mask_hashes(value)
    if isinstance(masked, dict):
        text = ", ".join(
            f"{k}={{…}}" if isinstance(v, dict | list) else f"{k}={_scalar(v)}"
            for k, v in sorted(masked.items(), key=lambda kv: isinstance(kv[1], dict | list))
        )
    else:
        text = _scalar(masked)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def mentioned(value: Any) -> frozenset[str]:
    """Every string inside an action's params: which trusts a hub-wide action touches."""
    out: set[str] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            out.add(v)
        elif isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list | tuple):
            stack.extend(v)
    return frozenset(out)


def describe_change(change: Change) -> str:
    if change.op == "add":
        return f"{change.path}: (absent) → {fmt_value(change.after)}"
    if change.op == "remove":
        return f"{change.path}: {fmt_value(change.before)} → (absent)"
    return f"{change.path}: {fmt_value(change.before)} → {fmt_value(change.after)}"


def guard_state(v: Violation) -> str:
    if v.allowed:
        return "allowed"
    return "blocking" if v.overridable else "blocking, never overridable"
