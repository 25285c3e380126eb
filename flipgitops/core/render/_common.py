"""What every renderer shares: making data printable, masking hashes, and how a plan reads.

Everything a plan, an observation or a drift report carries is *data* (manifest text, AWS
text, host log lines), so every format passes each value through `clean` before it adds its
own escaping: control characters (an ANSI sequence in an AWS rule description, a newline in
an error message) never reach a terminal or a PR comment, a full sha256 is shortened to
``sha256:<12 hex>`` wherever it appears, and a missing value reads ``(none)``, never ``None``.

The counts, symbols, wave grouping, guard wording and the per-trust grouping live here so
text and markdown say the same thing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from flipgitops.model.actions import Action
from flipgitops.model.plan import Change, Confirmation, Plan, Violation

NONE = "(none)"

# ANSI/VT sequences (CSI, OSC, two-character ESC forms), then single control characters:
# C0 (but \t \n \r, which become spaces), DEL, C1, and the invisible Unicode format
# characters that can reorder or hide text (bidi overrides, zero-width characters, BOM).
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI ... final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL or ST
    r"|\x1b[@-Z\\-_]"  # two-character escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
)
_BLANKS = re.compile(r"[\t\n\r\v\f\u0085\u2028\u2029]+")
_CONTROL = re.compile(
    r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069"
    r"\ufeff\ufff9-\ufffb\ud800-\udfff]"
)
# A run of 64 or more hex digits is a sha256 (or longer digest); shorten it wherever it is,
# whatever touches it (a hash glued to other text must not slip through).
_HEX_RUN = re.compile(r"(?:sha256:)?([0-9a-fA-F]{64,})")
_FULL_HASH = re.compile(r"^(?:sha256:)?[0-9a-fA-F]{64}$")


def clean(value: object) -> str:
    """``value`` as one printable line: escape sequences and control characters removed,
    line breaks turned into spaces, full hashes shortened. ``None`` reads ``(none)``."""
    if value is None:
        return NONE
    text = value if isinstance(value, str) else str(value)
    text = _ANSI.sub("", text)
    text = _BLANKS.sub(" ", text)
    text = _CONTROL.sub("", text)
    return mask_text(text)


def clip(text: str, limit: int) -> str:
    """At most ``limit`` characters, an ellipsis marking the cut (applied before escaping,
    so an escape sequence is never cut in half)."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def mask_text(text: str) -> str:
    return _HEX_RUN.sub(lambda m: "sha256:" + m.group(1)[:12].lower(), text)


def short_hash(value: str | None) -> str:
    """``sha256:<first 12 hex>``: enough to compare by eye, useless to an attacker."""
    if not value:
        return NONE
    hexpart = value.split(":", 1)[1] if value.startswith("sha256:") else value
    return "sha256:" + clean(hexpart[:12])


def mask_hashes(data: Any) -> Any:
    """Shorten every full sha256 found anywhere in dumped data (JSON-shaped).

    Applied to whole dumps rather than named fields so a field added to a model later can
    never leak a full hash into a report by being forgotten here.
    """
    if isinstance(data, dict):
        return {k: mask_hashes(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [mask_hashes(v) for v in data]
    if isinstance(data, str):
        if _FULL_HASH.match(data):
            return short_hash(data)
        return mask_text(data)
    return data


def show(value: Any, limit: int = 160) -> str:
    """One value of a change or a fact, for a reader: scalars as themselves, booleans as
    yes/no, ``None`` as ``(none)``, an object as ``key=value`` pairs (nested parts elided)."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return clip(clean(value), limit)
    if isinstance(value, dict):
        parts = [f"{clean(k)}={{…}}" if isinstance(v, dict | list | tuple)
                 else f"{clean(k)}={show(v, limit)}"
                 for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))]
        return clip(", ".join(parts) or "{}", limit)
    if isinstance(value, list | tuple):
        return clip("[" + ", ".join(show(v, limit) for v in value) + "]", limit)
    return clip(clean(json.dumps(value, default=str)), limit)


def yes_no(value: bool | None) -> str:
    return NONE if value is None else ("yes" if value else "no")


def plural(n: int, word: str, words: str | None = None) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {words or word + 's'}"


# --- how a plan reads ----------------------------------------------------------------------

# Symbols (model/actions.py KINDS) in summary order, with the words the summary uses.
SYMBOL_WORDS = (("+", "to add"), ("~", "to change"), ("-", "to remove"),
                ("!", "destroying data"), ("?", "to verify"))


def symbol(action: Action) -> str:
    """The Terraform-like symbol of an action's kind, from the one registry."""
    return action.spec.symbol


def change_symbol(change: Change) -> str:
    return {"add": "+", "remove": "-", "change": "~"}[change.op]


def counts(plan: Plan) -> dict[str, int]:
    out = dict.fromkeys((s for s, _ in SYMBOL_WORDS), 0)
    for a in plan.actions:
        out[symbol(a)] = out.get(symbol(a), 0) + 1
    return out


def waves(plan: Plan) -> list[list[Action]]:
    """Actions grouped by wave; a plan without waves is one wave in action order. An action
    no wave names is shown in a last wave rather than hidden."""
    by_id = {a.id: a for a in plan.actions}
    if not plan.waves:
        return [list(plan.actions)] if plan.actions else []
    out = [[by_id[i] for i in wave if i in by_id] for wave in plan.waves]
    placed = {i for wave in plan.waves for i in wave}
    stray = [a for a in plan.actions if a.id not in placed]
    if stray:
        out.append(stray)
    return [w for w in out if w]


def blocking(violations: Iterable[Violation]) -> list[Violation]:
    return [v for v in violations if not v.allowed]


def ordered_violations(plan: Plan) -> list[Violation]:
    """Never-overridable blocks first, then overridable blocks, then allowed ones."""
    rank = {(False, False): 0, (False, True): 1, (True, True): 2, (True, False): 2}
    return sorted(plan.violations, key=lambda v: (rank[(v.allowed, v.overridable)], v.guard))


def guard_state(v: Violation) -> str:
    if v.allowed:
        return "allowed (overridden for this run)"
    if not v.overridable:
        return "blocking, never overridable"
    return "blocking, overridable"


def guard_summary(violations: Iterable[Violation]) -> str:
    """``none`` or ``2 blocking (FG001, FG004), 1 allowed (FG003)``."""
    vs = list(violations)
    if not vs:
        return "none"
    parts = []
    blocked = [v for v in vs if not v.allowed]
    allowed = [v for v in vs if v.allowed]
    if blocked:
        ids = ", ".join(sorted({clean(v.guard) for v in blocked}))
        parts.append(f"{len(blocked)} blocking ({ids})")
    if allowed:
        ids = ", ".join(sorted({clean(v.guard) for v in allowed}))
        parts.append(f"{len(allowed)} allowed ({ids})")
    return ", ".join(parts)


def summary_line(plan: Plan) -> str:
    c = counts(plan)
    detail = ", ".join(f"{c[s]} {w}" for s, w in SYMBOL_WORDS)
    return (f"Plan: {plural(len(plan.actions), 'action')} in {plural(len(waves(plan)), 'wave')}"
            f" ({detail}); guards: {guard_summary(plan.violations)}")


def status(plan: Plan) -> str:
    if plan.blocked:
        return "blocked by a guard"
    if plan.is_empty:
        return "no changes" if plan.in_sync else "nothing to apply (see the report below)"
    return "changes to apply"


def confirmation_text(c: Confirmation) -> str:
    """Whether the hub itself backs a registration, or only flipgitops' own ledger does."""
    if c.confirmed_by:
        return "confirmed by the hub: " + ", ".join(clean(e) for e in c.confirmed_by)
    return "flipgitops' ledger only (the hub did not confirm it in this observation)"


def change_parts(change: Change, limit: int = 160) -> tuple[str, str, str]:
    """(path, before, after) as a reader sees them; absent sides read ``(absent)``."""
    before = "(absent)" if change.op == "add" else show(change.before, limit)
    after = "(absent)" if change.op == "remove" else show(change.after, limit)
    return clean(change.path), before, after


def describe_change(change: Change, limit: int = 160) -> str:
    path, before, after = change_parts(change, limit)
    return f"{path}: {before} → {after}"


def dependencies(action: Action, limit: int = 3) -> str:
    """``after a, b`` (or ``after 5 actions``); empty when the action waits for nothing."""
    deps = action.depends_on
    if not deps:
        return ""
    if len(deps) > limit:
        return f"after {len(deps)} actions"
    return "after " + ", ".join(clean(d) for d in deps)


def _strings(value: Any) -> set[str]:
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
    return out


def trust_of_change(change: Change, names: Iterable[str] = ()) -> str | None:
    """The trust a change is about: ``trusts.<name>.…``. A live name may hold dots (names
    from the hub's registry are not the manifest's, which has none), so a known name that
    prefixes the path wins over the first dotted part."""
    path = change.path
    for name in sorted(names, key=len, reverse=True):
        if path == f"trusts.{name}" or path.startswith(f"trusts.{name}."):
            return name
    parts = path.split(".")
    return parts[1] if len(parts) >= 2 and parts[0] == "trusts" else None


def per_trust(plan: Plan) -> dict[str, tuple[list[Change], list[Action]]]:
    """For every trust a plan touches: its changes and the actions that name it (its own
    actions, and hub-wide ones whose params name it, such as an allowlist update)."""
    candidates = ({a.target for a in plan.actions} | {c.trust for c in plan.confirmations}
                  | {u.removeprefix("trust:") for u in plan.unmanaged if u.startswith("trust:")})
    of = {id(c): trust_of_change(c, candidates) for c in plan.changes}
    known = {n for n in of.values() if n} | {c.trust for c in plan.confirmations}
    changes: dict[str, list[Change]] = {n: [] for n in known}
    actions: dict[str, list[Action]] = {n: [] for n in known}
    for c in plan.changes:
        if (n := of[id(c)]) is not None:
            changes[n].append(c)
    for a in plan.actions:
        for name in sorted(({a.target} | _strings(a.params.model_dump(mode="json"))) & known):
            actions[name].append(a)
    return {n: (changes[n], actions[n]) for n in sorted(known) if changes[n] or actions[n]}
