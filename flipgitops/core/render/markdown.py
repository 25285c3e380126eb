"""Pull-request comments and drift issues: guards first, summary, manifest change, changes,
waves, what the hub confirmed, the report lists, per-trust details and the action graph.

Every value from a plan, an observation or a report is data and goes through `md.text`,
`md.code`, `md.html` or `md.mermaid_label` (see `md.py` for which does what), so a manifest
value or an AWS description can never open a heading, close a fence, mention a team or
inject HTML. GitHub rejects comments over 65,536 characters, so a document is kept under
60,000 (`MAX_CHARS`) by `md.fit`: per-trust details go first, then the graph, then lists are
capped, with a note pointing at the JSON output, which always holds everything.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from flipgitops.core.drift import DriftReport
from flipgitops.core.render import md
from flipgitops.core.render._common import (
    SYMBOL_WORDS,
    change_parts,
    change_symbol,
    clean,
    confirmation_text,
    counts,
    dependencies,
    guard_state,
    guard_summary,
    ordered_violations,
    per_trust,
    plural,
    short_hash,
    status,
    summary_line,
    symbol,
    waves,
)
from flipgitops.core.render.observed import Section, sections
from flipgitops.model.actions import Action
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Change, Plan

MAX_CHARS = 60_000
GRAPH_MAX_ACTIONS = 250  # Mermaid on GitHub gives up on larger graphs
_STATUS_ICON = {"blocked by a guard": "⛔", "no changes": "✅", "changes to apply": "📝"}
_DROP_ORDER = ("per-trust details", "the action graph")


def _note(artifact: str) -> md.Note:
    def note(hidden: dict[str, int], dropped: list[str], limit: int) -> list[str]:
        parts = [f"{kind}: {n}" for kind, n in sorted(hidden.items())]
        left = ("; not shown: " + ", ".join(parts)) if parts else ""
        omitted = (" (" + " and ".join(dropped) + " omitted)") if dropped else ""
        return [f"**⚠️ Truncated to stay under {limit:,} characters**{omitted}{left}. "
                f"The JSON output {md.code(artifact)} holds everything.", ""]
    return note


# --- plans ---------------------------------------------------------------------------------


def _node_ids(plan: Plan) -> dict[str, str]:
    """A Mermaid-safe, unique node id per action id (ids hold ':' and '.')."""
    taken: dict[str, str] = {}
    used: set[str] = set()
    for a in plan.actions:
        if a.id in taken:
            continue
        base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", clean(a.id))[:80]
        candidate, n = base, 1
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate)
        taken[a.id] = candidate
    return taken


def mermaid(plan: Plan) -> list[str]:
    ids = _node_ids(plan)
    lines = ["flowchart TD"]
    for a in plan.actions:
        lines.append(f'  {ids[a.id]}["{md.mermaid_label(a.kind)}<br/>'
                     f'{md.mermaid_label(a.target)}"]')
    for a in plan.actions:
        for dep in a.depends_on:
            if dep in ids:
                lines.append(f"  {ids[dep]} --> {ids[a.id]}")
    return md.fence(lines, "mermaid")


def _action_line(a: Action) -> str:
    deps = dependencies(a)
    after = f" _({md.text(deps)})_" if deps else ""
    destroys = " **destructive**" if a.destructive else ""
    return f"- `{symbol(a)}` {md.code(a.id)}: {md.text(a.describe(), 500)}{after}{destroys}"


def _change_line(c: Change) -> str:
    path, before, after = change_parts(c)
    return f"{change_symbol(c)} {path}: {before} → {after}"


def _summary(plan: Plan) -> md.Block:
    c = counts(plan)
    state = status(plan)
    icon = _STATUS_ICON.get(state, "🔎")
    symbols = " / ".join(f"`{s}` {c[s]}" for s, _ in SYMBOL_WORDS)
    words = " / ".join(w for _, w in SYMBOL_WORDS)
    return md.Block(head=[
        *md.table_head("", ""),
        md.row("Status", f"{icon} {state}"),
        md.row("Actions", f"{len(plan.actions)} in {plural(len(waves(plan)), 'wave')}"),
        md.row(words.capitalize(), symbols),
        md.row("Guards", md.text(guard_summary(plan.violations))),
        md.row("Unmanaged / left behind / unknown / advisories",
               f"{len(plan.unmanaged)} / {len(plan.left_behind)} / {len(plan.unknown)} / "
               f"{len(plan.advisories)}"),
        md.row("Fingerprint", md.code_cell(short_hash(plan.fingerprint))),
        ""])


def _guards(plan: Plan) -> list[md.Block]:
    if not plan.violations:
        return []
    rows = [md.row(f"**{md.text(v.guard)}**", md.text(v.target), md.text(v.message, 600),
                   md.text(v.how_to_proceed, 600), md.text(guard_state(v)))
            for v in ordered_violations(plan)]
    return [md.Block(head=["### ⛔ Guards", "",
                           *md.table_head("Guard", "Target", "Why", "How to proceed", "State")],
                     items=rows, tail=[""], more=md.after_more, kind="guard violations")]


def _diff_block(title: str, changes: Sequence[Change], kind: str) -> md.Block:
    lines = [_change_line(c) for c in changes]
    fenced = md.fence(lines, "diff")
    return md.Block(head=[title, "", fenced[0]], items=fenced[1:-1], tail=[fenced[-1], ""],
                    more=md.fence_more, kind=kind)


def _manifest_change(changes: tuple[Change, ...] | None) -> list[md.Block]:
    if changes is None:
        return []
    if not changes:
        return [md.Block(head=["### Manifest change", "",
                               "None: the manifest is unchanged since the base revision.", ""])]
    return [_diff_block("### Manifest change (base → this branch)", changes, "manifest changes")]


def _waves(plan: Plan) -> list[md.Block]:
    out = []
    for n, wave in enumerate(waves(plan), start=1):
        head = ["### Actions", ""] if n == 1 else []
        out.append(md.Block(head=[*head, f"#### Wave {n}", ""],
                            items=[_action_line(a) for a in wave], tail=[""],
                            more=md.list_more, kind="actions"))
    return out


def _confirmations(plan: Plan) -> list[md.Block]:
    if not plan.confirmations:
        return []
    rows = [md.row(md.text(c.trust),
                   ("✅ " if c.confirmed_by else "⚠️ ") + md.text(confirmation_text(c)))
            for c in plan.confirmations]
    return [md.Block(head=["### Registrations: what the hub itself confirmed", "",
                           *md.table_head("Trust", "Evidence")],
                     items=rows, tail=[""], more=md.after_more, kind="registrations")]


def _listing(title: str, items: Iterable[str], *, as_code: bool, kind: str) -> list[md.Block]:
    entries = list(items)
    if not entries:
        return []
    lines = [f"- {md.code(i) if as_code else md.text(i, 600)}" for i in entries]
    return [md.Block(head=[f"### {title}", ""], items=lines, tail=[""], more=md.list_more,
                     kind=kind)]


def _per_trust(plan: Plan) -> list[md.Block]:
    groups = per_trust(plan)
    if not groups:
        return []
    out = [md.Block(head=["### Per-trust details", ""], optional="per-trust details")]
    for name, (changes, actions) in groups.items():
        lines = [f"<details><summary>{md.html(name)}: {plural(len(changes), 'change')}, "
                 f"{plural(len(actions), 'action')}</summary>", ""]
        lines += [f"- `{change_symbol(c)}` {md.text(_change_line(c)[2:])}" for c in changes]
        lines += [_action_line(a) for a in actions]
        lines += ["", "</details>", ""]
        out.append(md.Block(head=lines, optional="per-trust details"))
    return out


def _graph(plan: Plan) -> list[md.Block]:
    if not plan.actions:
        return []
    if len(plan.actions) > GRAPH_MAX_ACTIONS:
        return [md.Block(head=["### Action graph", "",
                               f"_{len(plan.actions)} actions: too many to draw; the waves "
                               "above give the order._", ""], optional="the action graph")]
    return [md.Block(head=["### Action graph", "", *mermaid(plan), ""],
                     optional="the action graph")]


def render_plan_markdown(plan: Plan, *, manifest_change: tuple[Change, ...] | None = None,
                         artifact_name: str = "plan.json", limit: int = MAX_CHARS) -> str:
    blocks = [md.Block(head=[f"## flipgitops plan: {md.code(plan.environment, 100)}", ""]),
              *_guards(plan), _summary(plan), *_manifest_change(manifest_change)]
    if plan.changes:
        blocks.append(_diff_block("### Changes (live → manifest)", plan.changes, "changes"))
    blocks += _waves(plan)
    if plan.is_empty:
        blocks.append(md.Block(head=["No actions: nothing needs to change on the hub or the "
                                     "trust hosts.", ""]))
    blocks += _confirmations(plan)
    blocks += _listing("Advisories (reported, never acted on)", plan.advisories, as_code=False,
                       kind="advisories")
    blocks += _listing("Unmanaged (live, not in the manifest; removed only with --prune)",
                       plan.unmanaged, as_code=True, kind="unmanaged")
    blocks += _listing("Left behind (paused trusts not moved by this upgrade)",
                       plan.left_behind, as_code=True, kind="left behind")
    blocks += _listing("Unknown (unreachable hosts: their state could not be checked)",
                       plan.unknown, as_code=True, kind="unknown")
    blocks += _listing("Notes", plan.notes, as_code=False, kind="notes")
    blocks += _per_trust(plan)
    blocks += _graph(plan)
    blocks.append(md.Block(head=[f"_{md.text(summary_line(plan), 1000)}_"]))
    return md.fit(blocks, limit, _note(artifact_name), _DROP_ORDER)


# --- observed state ------------------------------------------------------------------------


def _section_blocks(section: Section) -> list[md.Block]:
    facts = ([*md.table_head("", ""), *(md.row(md.text(k), md.text(v)) for k, v in section.facts),
              ""] if section.facts else [])
    if section.detail:
        # one of many alike (a host): collapsed, and the first thing dropped when too long
        summary = md.html(section.title) + (f": {md.html(section.subject)}"
                                            if section.subject else "")
        return [md.Block(head=[f"<details><summary>{summary}</summary>", "", *facts,
                               "</details>", ""], optional="per-host details")]
    title = f"### {section.title}" + (f": {md.code(section.subject)}" if section.subject else "")
    head = [title, "", *facts]
    if not section.columns:
        return [md.Block(head=head)]
    if not section.rows:
        return [md.Block(head=[*head, f"_{md.text(section.empty)}_", ""])]
    rows = [md.row(*(md.text(cell) for cell in r)) for r in section.rows]
    return [md.Block(head=[*head, *md.table_head(*(md.text(c) for c in section.columns))],
                     items=rows, tail=[""], more=md.after_more, kind=section.kind)]


def render_observed_markdown(state: ObservedState, *, limit: int = MAX_CHARS) -> str:
    blocks = [md.Block(head=[f"## flipgitops live state: {md.code(state.environment, 100)}",
                             ""])]
    for section in sections(state):
        blocks += _section_blocks(section)
    blocks.append(md.Block(head=["_Secrets are never shown: hashes only, as "
                                 "`sha256:<12 hex>`._"]))
    return md.fit(blocks, limit, _note("flipgitops observe --format json"),
                  ("per-host details",))


# --- drift ---------------------------------------------------------------------------------

_GROUP_TITLES = {"changed": "Changed", "missing": "Missing",
                 "unmanaged": "Unmanaged (live, not in the manifest)",
                 "unknown": "Unknown (could not be checked)"}


def render_drift_markdown(report: DriftReport, *, limit: int = MAX_CHARS) -> str:
    sev = report.severity_counts()
    state = "✅ in sync" if report.in_sync else "⚠️ drift"
    head = [f"## flipgitops drift: {md.code(report.environment, 100)}", "",
            *md.table_head("", ""), md.row("Status", state),
            md.row("Findings", str(len(report.findings))),
            *(md.row(s.capitalize(), str(n)) for s, n in sev.items()),
            md.row("Observed at", md.text(report.observed_at)), ""]
    blocks = [md.Block(head=head)]
    for group, title in _GROUP_TITLES.items():
        found = report.by_group(group)
        if not found:
            continue
        rows = [md.row(f"**{md.text(f.severity)}**", md.text(f.target), md.text(f.message, 600),
                       md.text(f.fix or "apply repairs it", 600)) for f in found]
        blocks.append(md.Block(head=[f"### {title}", "",
                                     *md.table_head("Severity", "Target", "Finding", "Fix")],
                               items=rows, tail=[""], more=md.after_more,
                               kind=f"{group} findings"))
    tail = ("Live state matches the manifest." if report.in_sync else
            f"_Drift: {plural(len(report.findings), 'finding')}._")
    blocks.append(md.Block(head=[tail]))
    return md.fit(blocks, limit, _note("flipgitops drift --format json"))
