"""Terminal output, Terraform-like: ``+`` add, ``-`` remove, ``~`` change, ``!`` guard.

Colour is opt-in (``color=True``) so logs, pipes and CI captures never carry escape codes.
Guards come first because they decide whether anything below will happen at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from flipgitops.core.drift import DriftReport
from flipgitops.core.render._common import (
    SYMBOL_STYLE,
    action_symbol,
    added_trusts,
    change_symbol,
    describe_change,
    guard_state,
    paint,
    plural,
    short_hash,
    summary_line,
    waves,
)
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Change, Plan, Violation

_SEVERITY_STYLE = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}


def _sym(symbol: str, color: bool) -> str:
    return paint(symbol, SYMBOL_STYLE[symbol], color)


def _violations(violations: Iterable[Violation], color: bool) -> list[str]:
    lines = []
    for v in violations:
        lines.append(f"  {_sym('!', color)} {paint(v.guard, 'bold', color)} {v.target}: "
                     f"{v.message} [{guard_state(v)}]")
        lines.append(f"      how to proceed: {v.how_to_proceed}")
    return lines


def _manifest_change(changes: tuple[Change, ...], color: bool) -> list[str]:
    if not changes:
        return ["Manifest change: none (the manifest is the same at the base revision)", ""]
    lines = [paint("Manifest change (base → working tree):", "bold", color)]
    lines += [f"  {_sym(change_symbol(c), color)} {describe_change(c)}" for c in changes]
    return [*lines, ""]


def _section(title: str, items: Iterable[str], color: bool) -> list[str]:
    items = list(items)
    if not items:
        return []
    return [paint(title, "bold", color), *[f"  {i}" for i in items], ""]


def _after(deps: tuple[str, ...]) -> str:
    if not deps:
        return ""
    if len(deps) > 3:
        return f" (after {len(deps)} actions)"
    return f" (after {', '.join(deps)})"


def render_plan_text(plan: Plan, *, color: bool = False,
                     manifest_change: tuple[Change, ...] | None = None) -> str:
    lines = [paint(f"flipgitops plan for {plan.environment}", "bold", color),
             f"fingerprint: {plan.fingerprint}", ""]
    if manifest_change is not None:
        lines += _manifest_change(manifest_change, color)
    if plan.violations:
        lines += [paint("Guards:", "bold", color), *_violations(plan.violations, color), ""]
    new = added_trusts(plan.changes)
    if plan.changes:
        lines.append(paint("Changes (manifest vs live):", "bold", color))
        lines += [f"  {_sym(change_symbol(c), color)} {describe_change(c)}" for c in plan.changes]
        lines.append("")
    for n, wave in enumerate(waves(plan), start=1):
        lines.append(paint(f"Wave {n}:", "bold", color))
        for a in wave:
            deps = _after(a.depends_on)
            lines.append(f"  {_sym(action_symbol(a, new), color)} {a.id}: {a.describe()}{deps}")
        lines.append("")
    if plan.is_empty:
        lines += ["No changes: live state matches the manifest.", ""]
    lines += _section("Unmanaged (live but not in the manifest; removed only with --prune):",
                      plan.unmanaged, color)
    lines += _section("Left behind (paused trusts not moved by this upgrade):",
                      plan.left_behind, color)
    lines += _section("Unknown (unreachable hosts; their state could not be checked):",
                      plan.unknown, color)
    lines += _section("Notes:", plan.notes, color)
    lines.append(paint(summary_line(plan), "bold", color))
    return "\n".join(lines)


def render_observed_text(state: ObservedState, *, color: bool = False) -> str:
    hub = state.hub

    def b(text: str) -> str:
        return paint(text, "bold", color)

    lines = [b(f"Live state of {state.environment}") + (f" at {state.observed_at}"
                                                          if state.observed_at else ""),
             f"account: {hub.account_id or '(unknown)'}  region: {hub.region or '(unknown)'}", ""]
    al = hub.allowlist
    lines.append(b(f"Allowlist (security group {al.group_name}):"))
    if not al.exists:
        lines.append("  (security group not found)")
    for r in al.rules:
        desc = f"  {r.description}" if r.description else ""
        lines.append(f"  {r.protocol} {r.from_port}-{r.to_port} {r.cidr}{desc}")
    sec = hub.secret
    lines += ["", b(f"Hub secret {sec.name}:")]
    if not sec.exists:
        lines.append("  (secret not found)")
    for name in sec.trust_names:
        lines.append(f"  {name}: {short_hash(sec.trust_api_key_hashes.get(name)) or '(no hash)'}")
    if sec.aes_key_sha256:
        lines.append(f"  aes_key: {short_hash(sec.aes_key_sha256)}")
    for key, val in sorted(sec.other_keys.items()):
        lines.append(f"  {key}: {short_hash(val) if val.startswith('sha256:') else val}")
    lines += ["", b("Hub services:")]
    for role, svc in sorted(hub.services.items()):
        shown = (svc.tag or "(no tag)") if svc.exists else "(not found)"
        lines.append(f"  {role} ({svc.name}): {shown}")
    db = hub.database
    lines += ["", b(f"Database {db.identifier}:")]
    if db.exists:
        facts = {"status": db.status, "class": db.instance_class, "engine": db.engine_version,
                 "deletion protection": db.deletion_protection,
                 "backup days": db.backup_retention_days, "generation": db.generation}
        lines.append("  " + ", ".join(f"{k} {v}" for k, v in facts.items() if v is not None))
    else:
        lines.append("  (not found)")
    cg = hub.cognito
    lines += ["", b(f"Cognito {cg.name}:"),
              f"  MFA {cg.mfa}" if cg.exists else "  (not found)"]
    if state.hosts:
        lines += ["", b("Trust hosts:")]
    for name, h in sorted(state.hosts.items()):
        if not h.reachable:
            lines.append(f"  {name}: UNREACHABLE ({h.reason or 'no reason given'})")
            continue
        stack = ", ".join(f"{c.service}:{c.tag or '?'}({c.state})" for c in h.containers) or "none"
        lines.append(f"  {name}: kit {'yes' if h.kit_present else 'no'}, env file "
                     f"{h.env_file_mode or 'absent'}, key {short_hash(h.trust_api_key_sha256)}, "
                     f"polling {h.polling_ok}, containers {stack}")
    return "\n".join(lines)


def render_drift_text(report: DriftReport, *, color: bool = False) -> str:
    lines = [paint(f"flipgitops drift for {report.environment}", "bold", color), ""]
    titles = {"changed": "Changed", "missing": "Missing", "unmanaged": "Unmanaged (live, not in "
              "the manifest)", "unknown": "Unknown (could not be checked)"}
    symbols = {"changed": "~", "missing": "+", "unmanaged": "-", "unknown": "?"}
    for group, title in titles.items():
        found = report.by_group(group)
        if not found:
            continue
        lines.append(paint(f"{title}:", "bold", color))
        for f in found:
            sev = paint(f"[{f.severity}]", _SEVERITY_STYLE[f.severity], color)
            lines.append(f"  {symbols[group]} {sev} {f.target}: {f.message}")
        lines.append("")
    if report.in_sync:
        lines += ["In sync: live state matches the manifest.", ""]
    counts = report.severity_counts()
    detail = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    lines.append(paint(f"Drift: {plural(len(report.findings), 'finding')}"
                       + (f" ({detail})" if detail else ""), "bold", color))
    return "\n".join(lines)
