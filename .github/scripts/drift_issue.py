"""Keep one drift issue per environment in step with the nightly drift report.

Drift (exit 2) opens the issue ``Drift detected in <env>`` (label ``drift``) or updates its
body; in sync (exit 0) closes it with a comment; an error (exit 1) leaves it alone, because
"could not look" is not "in sync". The issue body starts with a hidden marker so a renamed
issue is still found. What this script adds around flipgitops' (already escaped) report goes
through `gh_markdown` (a checked environment name, code spans, an http(s)-only run link, a
cut that never leaves a code fence or `<details>` open).

    drift_issue.py --env prod --exit-code 2 --report drift-prod.md --run-url URL
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from gh_api import GitHub, GitHubError
from gh_markdown import UnsafeInput, code, command_data, env_name, fit, link

LABEL = "drift"
MAX_BODY = 65_000


def title(env: str) -> str:
    return f"Drift detected in {env_name(env)}"


def marker(env: str) -> str:
    return f"<!-- flipgitops-drift:{env_name(env)} -->"


def compose_body(env: str, report: str, run_url: str = "") -> str:
    lines = [marker(env),
             f"The nightly {code(f'flipgitops drift --env {env}')} found live state that "
             f"differs from {code(f'environments/{env}.yaml')}. Re-apply the manifest or change "
             "it in a pull request; this issue closes itself once a drift run finds the "
             "environment in sync.", ""]
    lines.append(report.strip() or "_The drift report was empty; see the workflow run._")
    tail = f"\nLast checked by {link('this run', run_url)}.\n" if run_url else ""
    note = "_…truncated; the full report is in the run._\n"
    body = fit("\n".join(lines) + "\n", MAX_BODY - len(tail), note)
    return body.rstrip("\n") + "\n" + tail


def find_issue(issues: list[dict[str, Any]], env: str) -> dict[str, Any] | None:
    """The open drift issue for ``env`` (pull requests, which the API also lists, excluded)."""
    for issue in issues:
        if "pull_request" in issue or issue.get("state", "open") != "open":
            continue
        body = str(issue.get("body") or "")
        if body.lstrip().startswith(marker(env)) or issue.get("title") == title(env):
            return issue
    return None


@dataclass(frozen=True)
class Decision:
    kind: Literal["open", "update", "close", "none"]
    number: int | None = None


def decide(exit_code: int, existing: dict[str, Any] | None) -> Decision:
    number = int(existing["number"]) if existing else None
    if exit_code == 2:
        return Decision("update", number) if existing else Decision("open")
    if exit_code == 0 and existing:
        return Decision("close", number)
    return Decision("none", number)


def reconcile(gh: GitHub, env: str, exit_code: int, body: str, run_url: str = "") -> Decision:
    issues = gh.paginate(gh.repo_path("issues"), {"state": "open", "labels": LABEL})
    decision = decide(exit_code, find_issue(issues, env))
    if decision.kind == "open":
        created = gh.request("POST", gh.repo_path("issues"),
                             {"title": title(env), "body": body, "labels": [LABEL]})
        return Decision("open", int(created["number"]))
    if decision.kind == "update":
        gh.request("PATCH", gh.repo_path(f"issues/{decision.number}"), {"body": body})
    elif decision.kind == "close":
        note = f"{code(env)} is in sync again" + (f" ({link('run', run_url)})." if run_url
                                                  else ".")
        gh.request("POST", gh.repo_path(f"issues/{decision.number}/comments"), {"body": note})
        gh.request("PATCH", gh.repo_path(f"issues/{decision.number}"),
                   {"state": "closed", "state_reason": "completed"})
    return decision


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--exit-code", required=True, type=int)
    parser.add_argument("--report", type=Path)
    parser.add_argument("--run-url", default="")
    args = parser.parse_args(argv)
    try:
        env_name(args.env)
    except UnsafeInput as exc:
        print(f"::error::{command_data(exc)}", file=sys.stderr)
        return 1
    report = ""
    if args.report and args.report.exists():
        report = args.report.read_text(encoding="utf-8", errors="replace")
    body = compose_body(args.env, report, args.run_url)
    try:
        decision = reconcile(GitHub.from_env(), args.env, args.exit_code, body, args.run_url)
    except GitHubError as exc:
        print(f"::error::{command_data(f'could not update the drift issue for {args.env}: {exc}')}",
              file=sys.stderr)
        return 1
    print(f"drift issue for {args.env}: {decision.kind}"
          + (f" #{decision.number}" if decision.number else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
