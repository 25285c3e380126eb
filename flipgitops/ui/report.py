"""What the CLI prints for apply, status and adopt (the plan/drift renderers are core's).

Presentation only: everything here turns a result the engine returned into lines. Values
that come from outside (messages, names) are passed through `safe_text` so control
characters never reach a terminal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import click

from flipgitops.core.status import StatusReport
from flipgitops.engine.apply import EXIT_BLOCKED, EXIT_DRIFT, EXIT_LOCKED, EXIT_OK, ApplyResult
from flipgitops.model.plan import Plan

Echo = Callable[..., Any]
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|\x1b\[[0-9;?]*[A-Za-z]")


def safe_text(value: object) -> str:
    """One line of data for a terminal: no escape sequences, no control characters."""
    return _CONTROL.sub("", "(none)" if value is None else str(value))


def confirm_prompt(plan: Plan) -> bool:
    return click.confirm(f"Apply {len(plan.actions)} action(s) to {plan.environment}?",
                         default=False)


def print_apply_result(result: ApplyResult, fmt: str, echo: Echo) -> None:
    if fmt == "json":
        echo(json.dumps(result.to_json(), indent=2, sort_keys=False))
        if result.exit_code != EXIT_OK:
            echo(safe_text(result.message), err=True)
        return
    for warning in result.warnings:
        echo(f"warning: {safe_text(warning)}", err=True)
    if result.exit_code == EXIT_OK:
        echo(safe_text(result.message))
        return
    if result.completed or result.failed:
        echo("Completed: " + (", ".join(result.completed) or "(none)"), err=True)
        for action_id, message in result.failed.items():
            echo(f"Failed: {action_id}: {safe_text(message)}", err=True)
        why = result.not_run_reasons
        lines = [f"Not run: {a} ({safe_text(why[a])})" for a in result.not_run if a in why]
        plain = [a for a in result.not_run if a not in why]
        if plain:
            lines.append("Not run: " + ", ".join(plain))
        for line in lines:
            echo(line, err=True)
    prefix = {EXIT_LOCKED: "error", EXIT_BLOCKED: "blocked",
              EXIT_DRIFT: "not in sync"}.get(result.exit_code, "error")
    if result.interrupted:
        prefix = "interrupted"
    echo(f"{prefix}: {safe_text(result.message)}", err=True)


_MARK = {"ok": "✓", "warn": "!", "fail": "✗"}


def _verdict(report: StatusReport) -> str:
    """`healthy (14 ok, 1 warn)` or `UNHEALTHY: Trust_1 (stack, authentication)` — the
    failing sections with their failing checks, so a one-line CI log names the culprit."""
    counts = report.counts
    tally = f"{counts['ok']} ok, {counts['warn']} warn, {counts['fail']} fail"
    if report.healthy:
        return f"healthy ({tally})"
    parts = []
    for section in report.failing:
        checks = [r.check for r in report.rows if r.section == section and r.state == "fail"]
        parts.append(f"{section} ({', '.join(checks)})")
    return f"UNHEALTHY: {'; '.join(parts)} ({tally})"


def render_status(report: StatusReport, fmt: str, *, color: bool = False) -> str:
    """text for terminals, markdown for a PR or issue comment, json (format_version 1)."""
    if fmt == "json":
        data = {"format_version": "1", "environment": report.environment,
                "healthy": report.healthy, "failing": list(report.failing),
                "counts": report.counts, "observed_at": report.observed_at,
                "rows": [r.model_dump(mode="json") for r in report.rows]}
        return json.dumps(data, indent=2)
    if fmt == "markdown":
        from flipgitops.core.render import md

        lines = [f"### flipgitops status for {md.code(report.environment)}: "
                 f"{md.text(_verdict(report))}", "",
                 "| | section | check | detail |", "|---|---|---|---|"]
        lines += [f"| {_MARK[r.state]} | {md.text(r.section)} | {md.text(r.check)} | "
                  f"{md.text(r.detail)} |" for r in report.rows]
        return "\n".join(lines)
    width = max((len(r.check) for r in report.rows), default=10)
    lines = [f"flipgitops status for {safe_text(report.environment)}"
             + (f" at {safe_text(report.observed_at)}" if report.observed_at else ""), ""]
    section = None
    for r in report.rows:
        if r.section != section:
            section = r.section
            lines.append(safe_text(section if section == "hub" else f"trust {section}"))
        mark = _MARK[r.state]
        if color:
            mark = click.style(mark, fg={"ok": "green", "warn": "yellow", "fail": "red"}[r.state],
                               bold=r.state == "fail")
        lines.append(f"  {mark} {safe_text(r.check).ljust(width)}  {safe_text(r.detail)}")
    lines += ["", safe_text(_verdict(report))]
    return "\n".join(lines)


def _edit_value(value: Any) -> Any:
    from flipgitops.core.adopt import REMOVE

    if value is REMOVE:
        return "(removed)"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {v!r}" for k, v in value.items()) + "}"
    return value


def _removed() -> Any:
    from flipgitops.core.adopt import REMOVE

    return REMOVE


def _dotted(path: tuple[str | int, ...]) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path)


_VERDICT = {"held": "held by flipgitops", "already held": "already held by flipgitops",
            "not held": "NOT HELD by flipgitops", "unconfirmed": "NOT HELD by flipgitops "
            "(registration unconfirmed)", "skipped": "skipped"}


def _after(plan: Plan | None) -> list[str]:
    if plan is None:
        return ["(not predicted)"]
    if not plan.actions:
        lines = ["nothing to do: nothing rotated, restarted, redelivered or re-registered"]
    else:
        lines = [f"{len(plan.actions)} action(s) (adopt does not run them; review them with "
                 "`flipgitops plan`):"]
        lines += [f"{a.id}: {a.description}" for a in plan.actions]
    lines += [f"advisory: {a}" for a in plan.advisories]
    lines += [f"unknown: {u}" for u in plan.unknown]
    return lines


def _written(result: Any) -> list[str]:
    w = result.written
    if not result.write or w is None:
        return ["nothing was written (not the manifest, not the escrow, not the ledger); "
                "nothing in AWS or on any host was changed. Run with --write to write the "
                "manifest and escrow the keys found."]
    lines = []
    if w.escrow:
        lines.append("escrow: " + ", ".join(w.escrow))
    if w.escrow_unchanged:
        lines.append("escrow already held the same for: " + ", ".join(w.escrow_unchanged))
    lines.append("ledger: " + (", ".join(w.ledger) if w.ledger else "unchanged"))
    lines.append("manifest: " + ("written" if w.manifest else "unchanged"))
    lines.append("nothing else was changed: nothing in AWS but the escrow parameters and "
                 "flipgitops' own state (ledger, lock), nothing on any host")
    return lines


def adoption_json(result: Any) -> dict[str, Any]:
    w = result.written
    return {
        "format_version": "1", "environment": result.environment,
        "manifest": result.manifest_path, "write": result.write, "ok": result.ok,
        "fatal": list(result.fatal), "invalid": list(result.invalid),
        "diff": result.diff,
        "edits": [{"path": _dotted(e.path),
                   "value": None if isinstance(e.value, type(_removed())) else e.value,
                   "removed": isinstance(e.value, type(_removed())), "why": e.why}
                  for e in result.edits],
        "trusts": [{"name": t.name, "kind": t.kind, "verdict": t.verdict,
                    "reasons": list(t.reasons), "notes": list(t.notes), "code": t.code,
                    "fl_kit_slot": t.slot, "flip_ref": t.release,
                    "ledger": None if t.ledger is None else
                    {"held": t.ledger.held, "source": t.ledger.source}}
                   for t in result.trusts],
        "not_held_means": result.trusts[0].not_held_means if result.trusts else "",
        "problems": list(result.problems), "notes": list(result.notes),
        "unmanaged": list(result.unmanaged),
        "predicted_plan": None if result.predicted is None else {
            "actions": [a.id for a in result.predicted.actions],
            "advisories": list(result.predicted.advisories),
            "unknown": list(result.predicted.unknown)},
        "written": None if w is None else {
            "escrow": list(w.escrow), "escrow_unchanged": list(w.escrow_unchanged),
            "ledger": list(w.ledger), "manifest": w.manifest},
    }


def render_adoption(result: Any, fmt: str) -> str:
    """What `flipgitops adopt` prints: the manifest diff, each trust's verdict (and what
    "not held" means), what was left unmanaged, what plan will still do, what was written."""
    if fmt == "json":
        return json.dumps(adoption_json(result), indent=2, default=str)
    md = fmt == "markdown"
    from flipgitops.core.render import md as markdown

    text = markdown.text if md else safe_text
    out: list[str] = []

    def section(title: str) -> None:
        out.extend(["", f"#### {title}" if md else f"{title}:"])

    def item(line: str, sub: bool = False) -> None:
        if md:
            out.append(("  - " if sub else "- ") + text(line))
        else:
            out.append(("      " if sub else "  ") + safe_text(line))

    out.append(("### " if md else "") + f"flipgitops adopt for {text(result.environment)} "
               f"({text(result.manifest_path)})")
    if result.fatal:
        section("Cannot adopt")
        for f in result.fatal:
            item(f)
    if result.invalid:
        section("The adopted manifest does not validate (nothing written)")
        for p in result.invalid:
            item(p)
    if not result.fatal:
        section("Manifest changes" + ("" if result.write else " (a diff; --write writes it, "
                                      "keeping comments and order)"))
        if result.diff:
            out.extend(markdown.fence(result.diff.rstrip("\n").splitlines(), "diff") if md else
                       [safe_text(line) for line in result.diff.rstrip("\n").splitlines()])
        else:
            item("none: the manifest already describes what runs")
        if result.edits:
            section("Evidence")
            for e in result.edits:
                item(f"{_dotted(e.path)} = {_edit_value(e.value)}: {e.why}")
    if result.trusts:
        section("Trusts")
        for t in result.trusts:
            item(f"{t.name} ({t.kind}): {_VERDICT.get(t.verdict, t.verdict)}")
            for reason in t.reasons:
                item(reason, sub=True)
            if t.verdict in ("not held", "unconfirmed"):
                item(f"not held means: {t.not_held_means}", sub=True)
            for note in t.notes:
                item(f"note: {note}", sub=True)
    if result.unmanaged:
        section("Unmanaged (listed, not fixed)")
        for u in result.unmanaged:
            item(u)
    if result.problems or result.notes:
        section("Not described exactly")
        for p in (*result.problems, *result.notes):
            item(p)
    if not result.fatal and not result.invalid:
        section("After --write, plan will do" if not result.write else "plan will now do")
        for line in _after(result.predicted):
            item(line)
    section("Written")
    for line in _written(result):
        item(line)
    return "\n".join(out)
