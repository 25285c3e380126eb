"""Find the reviewed plan of the pull request that produced a commit on main.

commit -> the merged pull request associated with it -> the latest successful run of the
plan workflow for that pull request's head commit -> its ``flipgitops-plan-<env>`` artifact.
Writes ``found``, ``run-id``, ``artifact``, ``pr`` and ``overrides`` (the flipgitops options
the pull request's labels ask for, pr_overrides.py) to $GITHUB_OUTPUT; ``found=false`` (not
an error) when any link is missing, so apply falls back to a fresh, guarded plan, which
takes no overrides.

    find_plan_artifact.py --sha "$GITHUB_SHA" --env prod [--workflow plan.yml]
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gh_api import GitHub, GitHubError, write_outputs
from pr_overrides import LabelError, label_names, overrides


def artifact_name(env: str) -> str:
    return f"flipgitops-plan-{env}"


def pick_pr(prs: list[dict[str, Any]], sha: str) -> dict[str, Any] | None:
    """The merged PR whose merge commit is ``sha``, else the most recently merged one."""
    merged = [p for p in prs if p.get("merged_at")]
    exact = [p for p in merged if p.get("merge_commit_sha") == sha]
    pool = exact or merged
    return max(pool, key=lambda p: str(p["merged_at"])) if pool else None


def pick_run(runs: list[dict[str, Any]], head_sha: str) -> dict[str, Any] | None:
    """The latest successful pull_request run of the plan workflow for ``head_sha``."""
    ok = [r for r in runs
          if r.get("head_sha") == head_sha and r.get("event") == "pull_request"
          and r.get("status") == "completed" and r.get("conclusion") == "success"]
    return max(ok, key=lambda r: (str(r.get("created_at", "")), int(r.get("run_attempt", 1))),
               default=None)


def pick_artifact(artifacts: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    live = [a for a in artifacts if a.get("name") == name and not a.get("expired")]
    return max(live, key=lambda a: str(a.get("created_at", "")), default=None)


def find(gh: GitHub, sha: str, env: str, workflow: str) -> dict[str, str]:
    missing = {"found": "false", "run-id": "", "artifact": "", "pr": "", "overrides": ""}
    pr = pick_pr(gh.request("GET", gh.repo_path(f"commits/{sha}/pulls")) or [], sha)
    if pr is None:
        return missing
    head = str(pr["head"]["sha"])
    runs = gh.paginate(gh.repo_path(f"actions/workflows/{workflow}/runs"),
                       {"head_sha": head, "event": "pull_request", "status": "success"},
                       key="workflow_runs")
    run = pick_run(runs, head)
    if run is None:
        return {**missing, "pr": str(pr["number"])}
    name = artifact_name(env)
    artifacts = gh.paginate(gh.repo_path(f"actions/runs/{run['id']}/artifacts"),
                            {"name": name}, key="artifacts")
    if pick_artifact(artifacts, name) is None:
        return {**missing, "pr": str(pr["number"])}
    return {"found": "true", "run-id": str(run["id"]), "artifact": name, "pr": str(pr["number"]),
            "overrides": pr_flags(pr)}


def pr_flags(pr: dict[str, Any]) -> str:
    """The overrides the merged pull request's labels give; none when a label is not one
    (plan.yml failed on it, so no reviewed plan carries it)."""
    try:
        return " ".join(overrides(label_names(pr.get("labels", []))))
    except LabelError as exc:
        print(f"::warning::{exc}; applying without overrides", file=sys.stderr)
        return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sha", required=True)
    parser.add_argument("--env", required=True)
    parser.add_argument("--workflow", default="plan.yml")
    args = parser.parse_args(argv)
    try:
        result = find(GitHub.from_env(), args.sha, args.env, args.workflow)
    except GitHubError as exc:
        # Not finding the reviewed plan is safe (apply re-plans behind the guards); say why.
        print(f"::warning::reviewed plan lookup failed, will re-plan: {exc}", file=sys.stderr)
        result = {"found": "false", "run-id": "", "artifact": "", "pr": "", "overrides": ""}
    write_outputs(result)
    where = f"run {result['run-id']} of PR #{result['pr']}" if result["found"] == "true" else "none"
    print(f"reviewed plan for {args.env} at {args.sha[:12]}: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
