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
from flipgitops.engine.apply import EXIT_BLOCKED, EXIT_LOCKED, EXIT_OK, ApplyResult
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
    prefix = {EXIT_LOCKED: "error", EXIT_BLOCKED: "blocked"}.get(result.exit_code, "error")
    if result.interrupted:
        prefix = "interrupted"
    echo(f"{prefix}: {safe_text(result.message)}", err=True)


_MARK = {"ok": "✓", "warn": "!", "fail": "✗"}


def render_status(report: StatusReport, fmt: str, *, color: bool = False) -> str:
    if fmt == "json":
        data = {"format_version": "1", "environment": report.environment,
                "healthy": report.healthy, "failing": list(report.failing),
                "observed_at": report.observed_at,
                "rows": [r.model_dump(mode="json") for r in report.rows]}
        return json.dumps(data, indent=2)
    if fmt == "markdown":
        from flipgitops.core.render.md import code_cell, text

        head = "healthy" if report.healthy else "UNHEALTHY: " + ", ".join(report.failing)
        lines = [f"### flipgitops status for {code_cell(report.environment)}: {text(head)}", "",
                 "| | section | check | detail |", "|---|---|---|---|"]
        lines += [f"| {_MARK[r.state]} | {code_cell(r.section)} | {text(r.check)} | "
                  f"{text(r.detail)} |" for r in report.rows]
        return "\n".join(lines)
    width = max((len(r.check) for r in report.rows), default=10)
    lines = [f"flipgitops status for {report.environment}"
             + (f" at {report.observed_at}" if report.observed_at else ""), ""]
    section = None
    for r in report.rows:
        if r.section != section:
            section = r.section
            lines.append(safe_text(section if section == "hub" else f"trust {section}"))
        mark = _MARK[r.state]
        if color:
            style = {"ok": "green", "warn": "yellow", "fail": "bold red"}[r.state]
            mark = click.style(mark, fg=style.split()[-1], bold=r.state == "fail")
        lines.append(f"  {mark} {safe_text(r.check).ljust(width)}  {safe_text(r.detail)}")
    lines += ["", "healthy" if report.healthy else
              "UNHEALTHY: " + ", ".join(safe_text(s) for s in report.failing)]
    return "\n".join(lines)


def render_adoption(result: Any, fmt: str) -> str:
    """Filled in with `engine/adopt.py`."""
    return str(result)
