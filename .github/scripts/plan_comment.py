"""Post or update the one plan comment per environment on a pull request.

Each environment's comment carries a hidden marker, ``<!-- flipgitops-plan:<env> -->``, as
its first line, so a new push edits the comment in place instead of piling up comments.
What this script adds around flipgitops' (already escaped) markdown goes through
`gh_markdown`: a checked environment name, code spans, an http(s)-only run link, and a cut
that never leaves a code fence or `<details>` open.

    plan_comment.py --env prod --pr 12 --body-file plan-prod.md --exit-code 2 --run-url URL
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from gh_api import GitHub, GitHubError
from gh_markdown import UnsafeInput, code, command_data, env_name, fit, link

# GitHub rejects comment bodies over 65,536 characters; flipgitops keeps plans under 60,000.
MAX_BODY = 65_000

STATUS = {
    0: "✅ no changes",
    2: "📝 changes planned",
    3: "⛔ blocked by a guard",
}


def marker(env: str) -> str:
    return f"<!-- flipgitops-plan:{env_name(env)} -->"


def compose_body(env: str, markdown: str, exit_code: int, run_url: str = "",
                 artifact: str = "") -> str:
    status = STATUS.get(exit_code, f"❌ plan failed (exit {int(exit_code)})")
    head = [marker(env), f"### flipgitops plan · {code(env)} · {status}", ""]
    text = markdown.strip() or "_The plan printed nothing; see the workflow run log._"
    foot = ["", "---"]
    if artifact and exit_code in (0, 2):
        foot.append(f"JSON plan artifact: {code(artifact)} (applied on merge).")
    if run_url:
        foot.append(link("Workflow run", run_url))
    tail = "\n".join(foot) + "\n"
    note = "_…truncated: the full plan is in the workflow run and its JSON artifact._\n"
    body = fit("\n".join([*head, text]) + "\n", MAX_BODY - len(tail), note)
    return body.rstrip("\n") + "\n" + tail


def find_comment(comments: list[dict[str, Any]], env: str) -> dict[str, Any] | None:
    """Our earlier comment for ``env``: starts with the marker and was written by a bot.

    Requiring both keeps a human's comment that quotes the marker from being overwritten.
    """
    mark = marker(env)
    for comment in comments:
        body = str(comment.get("body") or "")
        user = comment.get("user") or {}
        if body.lstrip().startswith(mark) and user.get("type", "Bot") == "Bot":
            return comment
    return None


def upsert(gh: GitHub, pr: int, env: str, body: str) -> tuple[str, int]:
    comments = gh.paginate(gh.repo_path(f"issues/{pr}/comments"))
    existing = find_comment(comments, env)
    if existing is not None:
        gh.request("PATCH", gh.repo_path(f"issues/comments/{existing['id']}"), {"body": body})
        return "updated", int(existing["id"])
    created = gh.request("POST", gh.repo_path(f"issues/{pr}/comments"), {"body": body})
    return "created", int(created["id"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--pr", required=True, type=int)
    parser.add_argument("--body-file", required=True, type=Path)
    parser.add_argument("--exit-code", required=True, type=int)
    parser.add_argument("--run-url", default="")
    parser.add_argument("--artifact", default="")
    args = parser.parse_args(argv)
    try:
        env_name(args.env)
    except UnsafeInput as exc:
        print(f"::error::{command_data(exc)}", file=sys.stderr)
        return 1
    markdown = (args.body_file.read_text(encoding="utf-8", errors="replace")
                if args.body_file.exists() else "")
    body = compose_body(args.env, markdown, args.exit_code, args.run_url, args.artifact)
    try:
        action, comment_id = upsert(GitHub.from_env(), args.pr, args.env, body)
    except GitHubError as exc:
        print(f"::error::{command_data(f'could not post the {args.env} plan comment: {exc}')}",
              file=sys.stderr)
        return 1
    print(f"{action} plan comment {comment_id} for {args.env} on #{args.pr}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
