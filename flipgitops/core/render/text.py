"""Terminal output, Terraform-like: each action's symbol from `KINDS` (``+`` add, ``~``
change, ``-`` remove, ``!`` destroys data, ``?`` verifies), guards first.

Colour is opt-in (``color=True``) so logs, pipes and CI captures never carry escape codes,
and the only escape codes ever printed are ours: every value from the data goes through
`clean` (a rule description carrying ``\\x1b[2J`` prints without it, a missing value
prints ``(none)``, a hash prints ``sha256:<12 hex>``).
"""

from __future__ import annotations

from collections.abc import Iterable

from flipgitops.core.drift import DriftReport
from flipgitops.core.render._common import (
    change_symbol,
    clean,
    confirmation_text,
    dependencies,
    describe_change,
    guard_state,
    ordered_violations,
    plural,
    short_hash,
    summary_line,
    symbol,
    waves,
)
from flipgitops.core.render.observed import Section, sections
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Change, Plan

_SGR = {"bold": "1", "red": "31", "green": "32", "yellow": "33", "cyan": "36",
        "bold red": "1;31", "dim": "2"}
SYMBOL_STYLE = {"+": "green", "-": "red", "~": "yellow", "!": "bold red", "?": "cyan"}
_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def paint(text: str, style: str, color: bool) -> str:
    """``text`` in an ANSI style when colour is on; unchanged otherwise."""
    if not color or style not in _SGR:
        return text
    return f"\x1b[{_SGR[style]}m{text}\x1b[0m"


def _sym(sym: str, color: bool) -> str:
    return paint(sym, SYMBOL_STYLE.get(sym, "bold"), color)


def _section(title: str, items: Iterable[str], color: bool) -> list[str]:
    entries = [clean(i) for i in items]
    if not entries:
        return []
    return [paint(title, "bold", color), *(f"  {i}" for i in entries), ""]


def _changes(title: str, changes: Iterable[Change], color: bool) -> list[str]:
    lines = [paint(title, "bold", color)]
    lines += [f"  {_sym(change_symbol(c), color)} {describe_change(c, 300)}" for c in changes]
    return [*lines, ""]


def _guards(plan: Plan, color: bool) -> list[str]:
    if not plan.violations:
        return []
    lines = [paint("Guards:", "bold", color)]
    for v in ordered_violations(plan):
        state = guard_state(v)
        style = "green" if v.allowed else "bold red"
        lines.append(f"  {_sym('!', color)} {paint(clean(v.guard), 'bold', color)} "
                     f"{clean(v.target)}: {clean(v.message)} [{paint(state, style, color)}]")
        lines.append(f"      how to proceed: {clean(v.how_to_proceed)}")
    return [*lines, ""]


def render_plan_text(plan: Plan, *, color: bool = False,
                     manifest_change: tuple[Change, ...] | None = None) -> str:
    lines = [paint(f"flipgitops plan for {clean(plan.environment)}", "bold", color),
             f"fingerprint: {short_hash(plan.fingerprint)}", ""]
    lines += _guards(plan, color)
    lines += [paint(summary_line(plan), "bold", color), ""]
    if manifest_change is not None:
        if manifest_change:
            lines += _changes("Manifest change (base → working tree):", manifest_change, color)
        else:
            lines += ["Manifest change: none (the manifest is the same at the base revision)", ""]
    if plan.changes:
        lines += _changes("Changes (live → manifest):", plan.changes, color)
    for n, wave in enumerate(waves(plan), start=1):
        lines.append(paint(f"Wave {n}:", "bold", color))
        for a in wave:
            deps = dependencies(a)
            tail = (f" ({deps})" if deps else "") + (
                " " + paint("[destructive]", "bold red", color) if a.destructive else "")
            lines.append(f"  {_sym(symbol(a), color)} {clean(a.id)}: {clean(a.describe())}"
                         f"{tail}")
        lines.append("")
    if plan.is_empty:
        lines += ["No actions: nothing needs to change on the hub or the trust hosts.", ""]
    lines += _section("Registrations (what the hub itself confirmed):",
                      (f"{clean(c.trust)}: {confirmation_text(c)}" for c in plan.confirmations),
                      color)
    lines += _section("Advisories (reported, never acted on):", plan.advisories, color)
    lines += _section("Unmanaged (live but not in the manifest; removed only with --prune):",
                      plan.unmanaged, color)
    lines += _section("Left behind (paused trusts not moved by this upgrade):",
                      plan.left_behind, color)
    lines += _section("Unknown (unreachable hosts; their state could not be checked):",
                      plan.unknown, color)
    lines += _section("Notes:", plan.notes, color)
    lines.append(paint(summary_line(plan), "bold", color))
    return "\n".join(lines)


def _section_lines(section: Section, color: bool) -> list[str]:
    title = section.title + (f" {clean(section.subject)}" if section.subject else "")
    lines = [paint(f"{title}:", "bold", color)]
    width = max((len(k) for k, _ in section.facts), default=0)
    lines += [f"  {clean(k).ljust(width)}  {clean(v)}" for k, v in section.facts]
    if section.columns:
        if not section.rows:
            lines.append(f"  ({clean(section.empty)})")
        else:
            table = [tuple(clean(c) for c in section.columns),
                     *(tuple(clean(c) for c in r) for r in section.rows)]
            widths = [max(len(r[i]) for r in table) for i in range(len(section.columns))]
            for n, r in enumerate(table):
                text = "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                lines.append("  " + (paint(text, "dim", color) if n == 0 else text))
    return [*lines, ""]


def render_observed_text(state: ObservedState, *, color: bool = False) -> str:
    lines = [paint(f"Live state of {clean(state.environment)}", "bold", color), ""]
    for section in sections(state):
        lines += _section_lines(section, color)
    lines.append("Secrets are never shown: hashes only, as sha256:<12 hex>.")
    return "\n".join(lines)


def render_drift_text(report: DriftReport, *, color: bool = False) -> str:
    lines = [paint(f"flipgitops drift for {clean(report.environment)}", "bold", color), ""]
    titles = {"changed": "Changed", "missing": "Missing",
              "unmanaged": "Unmanaged (live, not in the manifest)",
              "unknown": "Unknown (could not be checked)"}
    symbols = {"changed": "~", "missing": "+", "unmanaged": "-", "unknown": "?"}
    for group, title in titles.items():
        found = report.by_group(group)
        if not found:
            continue
        lines.append(paint(f"{title}:", "bold", color))
        for f in found:
            sev = paint(f"[{clean(f.severity)}]", _SEVERITY_STYLE.get(f.severity, "bold"), color)
            lines.append(f"  {_sym(symbols[group], color)} {sev} {clean(f.target)}: "
                         f"{clean(f.message)}")
            lines.append(f"      fix: {clean(f.fix or 'apply repairs it')}")
        lines.append("")
    if report.in_sync:
        lines += ["In sync: live state matches the manifest.", ""]
    counts = report.severity_counts()
    detail = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines.append(paint(f"Drift: {plural(len(report.findings), 'finding')}"
                       + (f" ({detail})" if detail else ""), "bold", color))
    return "\n".join(lines)
