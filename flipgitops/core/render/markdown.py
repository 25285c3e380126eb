"""Pull-request comments: summary, guards first, actions per wave, per-trust details, a graph.

GitHub rejects comments over 65,536 characters, so a plan comment is kept under 60,000: the
per-trust details go first, then the Mermaid graph, then the tail of the action list, and a
note points reviewers at the JSON artifact, which always holds the whole plan.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from flipgitops.core.drift import DriftReport
from flipgitops.core.render._common import (
    action_symbol,
    added_trusts,
    change_symbol,
    counts,
    describe_change,
    guard_state,
    guard_summary,
    mentioned,
    plural,
    short_hash,
    summary_line,
    waves,
)
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Action, Change, Plan

MAX_CHARS = 60_000
_MAX_LIST = 200  # unmanaged / left-behind / unknown entries listed before "and N more"


def cell(text: object) -> str:
    """Text safe inside a table cell: no pipes or newlines breaking the row."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def code(text: object) -> str:
    return "`" + str(text).replace("`", "'") + "`"


def node_id(action_id: str, taken: dict[str, str]) -> str:
    """A Mermaid-safe, unique node id for an action id (ids hold ':' and '.')."""
    if action_id in taken:
        return taken[action_id]
    base = "n_" + re.sub(r"[^A-Za-z0-9_]", "_", action_id)
    candidate, n = base, 1
    used = set(taken.values())
    while candidate in used:
        n += 1
        candidate = f"{base}_{n}"
    taken[action_id] = candidate
    return candidate


def _label(text: str) -> str:
    return re.sub(r"[\"\[\]{}()<>|`]", " ", text)


def mermaid(plan: Plan) -> str:
    taken: dict[str, str] = {}
    lines = ["```mermaid", "flowchart TD"]
    for a in plan.actions:
        lines.append(f'  {node_id(a.id, taken)}["{_label(a.kind)}<br/>{_label(a.target)}"]')
    ids = {a.id for a in plan.actions}
    for a in plan.actions:
        for dep in a.depends_on:
            if dep in ids:
                lines.append(f"  {node_id(dep, taken)} --> {node_id(a.id, taken)}")
    lines.append("```")
    return "\n".join(lines)


def _action_line(a: Action, new: frozenset[str]) -> str:
    return f"- `{action_symbol(a, new)}` {code(a.id)}: {a.describe()}"


def _summary(plan: Plan) -> list[str]:
    add, change, remove = counts(plan)
    status = ("⛔ blocked by a guard" if plan.blocked else
              "✅ no changes" if plan.is_empty else "📝 changes to apply")
    return ["| | |", "|---|---|",
            f"| Status | {status} |",
            f"| Actions | {len(plan.actions)} in {plural(len(waves(plan)), 'wave')} |",
            f"| Add / change / remove | {add} / {change} / {remove} |",
            f"| Guards | {cell(guard_summary(plan.violations))} |",
            f"| Unmanaged / left behind / unknown | {len(plan.unmanaged)} / "
            f"{len(plan.left_behind)} / {len(plan.unknown)} |",
            f"| Fingerprint | {code(plan.fingerprint)} |", ""]


def _guards(plan: Plan) -> list[str]:
    if not plan.violations:
        return []
    out = ["### ⛔ Guard violations", "",
           "| ID | Target | Message | How to proceed | Status |", "|---|---|---|---|---|"]
    for v in plan.violations:
        out.append(f"| **{v.guard}** | {cell(v.target)} | {cell(v.message)} | "
                   f"{cell(v.how_to_proceed)} | {guard_state(v)} |")
    return [*out, ""]


def _manifest_change(changes: tuple[Change, ...] | None) -> list[str]:
    if changes is None:
        return []
    if not changes:
        return ["### Manifest change", "", "None: the manifest is unchanged since the base.", ""]
    body = [f"{change_symbol(c)} {describe_change(c)}" for c in changes]
    return ["### Manifest change (base → this branch)", "", "```diff", *body, "```", ""]


def _listing(title: str, items: Iterable[str]) -> list[str]:
    items = list(items)
    if not items:
        return []
    shown = [f"- {code(i)}" for i in items[:_MAX_LIST]]
    if len(items) > _MAX_LIST:
        shown.append(f"- … and {len(items) - _MAX_LIST} more (see the JSON artifact)")
    return [f"### {title}", "", *shown, ""]


def _trailer(plan: Plan) -> list[str]:
    return [*_listing("Unmanaged (live, not in the manifest; removed only with --prune)",
                      plan.unmanaged),
            *_listing("Left behind (paused trusts not moved by this upgrade)", plan.left_behind),
            *_listing("Unknown (unreachable hosts)", plan.unknown),
            *_listing("Notes", plan.notes)]


def _per_trust(plan: Plan, new: frozenset[str]) -> list[str]:
    trust_names = {c.path.split(".")[1] for c in plan.changes
                   if c.path.startswith("trusts.") and len(c.path.split(".")) >= 2}
    by_trust: dict[str, list[Action]] = {}
    for a in plan.actions:
        for name in sorted(trust_names & ({a.target} | mentioned(a.params))):
            by_trust.setdefault(name, []).append(a)
    if not trust_names:
        return []
    out = ["### Per-trust details", ""]
    for name in sorted(trust_names):
        changes = [c for c in plan.changes if c.path == f"trusts.{name}"
                   or c.path.startswith(f"trusts.{name}.")]
        acts = by_trust.get(name, [])
        out += [f"<details><summary>{name}: {plural(len(changes), 'change')}, "
                f"{plural(len(acts), 'action')}</summary>", ""]
        out += [f"- `{change_symbol(c)}` {describe_change(c)}" for c in changes]
        out += [_action_line(a, new) for a in acts]
        out += ["", "</details>", ""]
    return out


def render_plan_markdown(plan: Plan, *, manifest_change: tuple[Change, ...] | None = None,
                         artifact_name: str = "plan.json", limit: int = MAX_CHARS) -> str:
    new = added_trusts(plan.changes)
    head = [f"## flipgitops plan: `{plan.environment}`", "", *_summary(plan), *_guards(plan),
            *_manifest_change(manifest_change)]
    wave_blocks = []
    for n, wave in enumerate(waves(plan), start=1):
        wave_blocks.append((f"#### Wave {n}", [_action_line(a, new) for a in wave]))
    if plan.is_empty:
        head += ["No changes: live state matches the manifest.", ""]
    details = _per_trust(plan, new)
    graph = ["### Action graph", "", mermaid(plan), ""] if plan.actions else []
    tail = _trailer(plan)
    footer = [f"_{summary_line(plan)}_"]

    def actions_part(max_lines: int | None) -> tuple[list[str], int]:
        out = ["### Actions", ""] if wave_blocks else []
        shown = 0
        total = sum(len(lines) for _, lines in wave_blocks)
        for title, lines in wave_blocks:
            if max_lines is not None and shown >= max_lines:
                break
            take = lines if max_lines is None else lines[: max_lines - shown]
            out += [title, "", *take, ""]
            shown += len(take)
        return out, total - shown

    full_actions, _ = actions_part(None)
    stages: list[tuple[list[str], list[str], str]] = [
        (details, graph, ""),
        ([], graph, "per-trust details"),
        ([], [], "per-trust details and the action graph"),
    ]
    for extra_details, extra_graph, dropped in stages:
        note = [_note(0, artifact_name, dropped), ""] if dropped else []
        doc = "\n".join([*head, *full_actions, *extra_details, *extra_graph, *tail, *note,
                         *footer])
        if len(doc) <= limit:
            return doc

    # Still too long: show as many actions as fit (binary search; length grows with count).
    def trimmed(k: int) -> str:
        part, hidden = actions_part(k)
        line = _note(hidden, artifact_name, "per-trust details and the action graph")
        return "\n".join([*head, *part, *tail, line, "", *footer])

    lo, hi = 0, sum(len(lines) for _, lines in wave_blocks)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if len(trimmed(mid)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    doc = trimmed(lo)
    if len(doc) <= limit:
        return doc
    # Guards or listings alone overflow: cut hard, but keep the note pointing at the artifact.
    last = _note(len(plan.actions), artifact_name, "everything after this point")
    return doc[: limit - len(last) - 4] + "\n\n" + last


def _note(hidden: int, artifact_name: str, dropped: str) -> str:
    return (f"> **Truncated: {plural(hidden, 'action')} not shown; see the JSON artifact "
            f"{artifact_name}** ({dropped} omitted to stay under {MAX_CHARS:,} characters).")


def render_observed_markdown(state: ObservedState) -> str:
    hub = state.hub
    lines = [f"## flipgitops live state: `{state.environment}`", "",
             "| | |", "|---|---|",
             f"| Account / region | {hub.account_id or '?'} / {hub.region or '?'} |",
             f"| Observed at | {state.observed_at or '?'} |", ""]
    lines += ["### Allowlist", "", "| CIDR | Ports | Description |", "|---|---|---|"]
    lines += [f"| {r.cidr} | {r.from_port}-{r.to_port} | {cell(r.description or '')} |"
              for r in hub.allowlist.rules]
    sec = hub.secret
    lines += ["", f"### Hub secret `{sec.name}`", "", "| Trust | API key hash |", "|---|---|"]
    lines += [f"| {cell(n)} | {short_hash(sec.trust_api_key_hashes.get(n)) or '(none)'} |"
              for n in sec.trust_names]
    lines += ["", "### Hub services", "", "| Role | Service | Tag |", "|---|---|---|"]
    lines += [f"| {role} | {svc.name} | {svc.tag if svc.exists else '(not found)'} |"
              for role, svc in sorted(hub.services.items())]
    db = hub.database
    lines += ["", "### Database", "",
              f"`{db.identifier}`: " + (f"{db.status}, {db.instance_class}, engine "
                                        f"{db.engine_version}, deletion protection "
                                        f"{db.deletion_protection}, generation {db.generation}"
                                        if db.exists else "not found"), ""]
    if state.hosts:
        lines += ["### Trust hosts", "", "| Trust | Reachable | Kit | Key hash | Polling |",
                  "|---|---|---|---|---|"]
        for name, h in sorted(state.hosts.items()):
            lines.append(f"| {cell(name)} | {h.reachable} | {h.kit_present} | "
                         f"{short_hash(h.trust_api_key_sha256) or '-'} | {h.polling_ok} |")
    return "\n".join(lines)


def render_drift_markdown(report: DriftReport) -> str:
    counts_ = report.severity_counts()
    status = "✅ in sync" if report.in_sync else "⚠️ drift"
    lines = [f"## flipgitops drift: `{report.environment}`", "", "| | |", "|---|---|",
             f"| Status | {status} |", f"| Findings | {len(report.findings)} |"]
    lines += [f"| {sev.capitalize()} | {n} |" for sev, n in counts_.items()]
    lines.append("")
    for group in ("changed", "missing", "unmanaged", "unknown"):
        found = report.by_group(group)
        if not found:
            continue
        lines += [f"### {group.capitalize()}", "", "| Severity | Target | Finding |",
                  "|---|---|---|"]
        lines += [f"| **{f.severity}** | {cell(f.target)} | {cell(f.message)} |" for f in found]
        lines.append("")
    if report.in_sync:
        lines.append("Live state matches the manifest.")
    return "\n".join(lines)
