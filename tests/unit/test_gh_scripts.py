"""The workflow scripts in .github/scripts: their pure decisions, and their HTTP against a
small GitHub stand-in served over real HTTP on 127.0.0.1 (no mocks, no network)."""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / ".github" / "scripts"
REPO = "londonaicentre/flip-gitops"
TOKEN = "test-token"
PAGE = 2  # the stand-in pages by two so every listing exercises Link: rel="next"


def _script(name: str) -> ModuleType:
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return importlib.import_module(name)


gh_api = _script("gh_api")
plan_comment = _script("plan_comment")
drift_issue = _script("drift_issue")
find_plan = _script("find_plan_artifact")
env_matrix = _script("env_matrix")
pr_overrides = _script("pr_overrides")


# --- a GitHub stand-in ----------------------------------------------------------------------


class FakeGitHub:
    """In-memory issues, comments, PRs, workflow runs and artifacts behind the REST paths the
    scripts use. Records every request as (method, path)."""

    def __init__(self) -> None:
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.issues: list[dict[str, Any]] = []
        self.commit_pulls: dict[str, list[dict[str, Any]]] = {}
        self.runs: list[dict[str, Any]] = []
        self.artifacts: dict[int, list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []
        self.next_id = 1000

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def handle(self, method: str, path: str, query: dict[str, str], body: Any) -> tuple[int, Any]:
        self.requests.append((method, path))
        prefix = f"/repos/{REPO}/"
        if not path.startswith(prefix):
            return 404, {"message": "Not Found"}
        rest = path[len(prefix):]
        if m := re.fullmatch(r"issues/(\d+)/comments", rest):
            number = int(m.group(1))
            if method == "GET":
                return 200, self.comments.get(number, [])
            comment = {"id": self.new_id(), "body": body["body"], "user": {"type": "Bot"}}
            self.comments.setdefault(number, []).append(comment)
            return 201, comment
        if m := re.fullmatch(r"issues/comments/(\d+)", rest):
            for comment in (c for cs in self.comments.values() for c in cs):
                if comment["id"] == int(m.group(1)):
                    comment["body"] = body["body"]
                    return 200, comment
            return 404, {"message": "Not Found"}
        if rest == "issues" and method == "GET":
            label = query.get("labels")
            return 200, [i for i in self.issues if i["state"] == query.get("state", "open")
                         and (label is None or label in i["labels"])]
        if rest == "issues" and method == "POST":
            issue = {"number": len(self.issues) + 1, "state": "open", **body}
            self.issues.append(issue)
            return 201, issue
        if m := re.fullmatch(r"issues/(\d+)", rest):
            issue = next(i for i in self.issues if i["number"] == int(m.group(1)))
            issue.update(body)
            return 200, issue
        if m := re.fullmatch(r"commits/([0-9a-f]+)/pulls", rest):
            return 200, self.commit_pulls.get(m.group(1), [])
        if m := re.fullmatch(r"actions/workflows/([\w.-]+)/runs", rest):
            runs = [r for r in self.runs if r["path"] == m.group(1)
                    and r["head_sha"] == query.get("head_sha")]
            return 200, {"total_count": len(runs), "workflow_runs": runs}
        if m := re.fullmatch(r"actions/runs/(\d+)/artifacts", rest):
            arts = [a for a in self.artifacts.get(int(m.group(1)), [])
                    if a["name"] == query.get("name", a["name"])]
            return 200, {"total_count": len(arts), "artifacts": arts}
        return 404, {"message": f"no route for {method} {path}"}


def _paged(payload: Any, page: int) -> tuple[Any, bool]:
    """Cut a listing (bare or wrapped) to one page; returns (page, has_more)."""
    if isinstance(payload, list):
        return payload[(page - 1) * PAGE: page * PAGE], len(payload) > page * PAGE
    if isinstance(payload, dict):
        for key in ("workflow_runs", "artifacts"):
            if key in payload:
                items = payload[key]
                cut = {**payload, key: items[(page - 1) * PAGE: page * PAGE]}
                return cut, len(items) > page * PAGE
    return payload, False


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[FakeGitHub]:
    fake = FakeGitHub()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _serve(self) -> None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._reply(401, {"message": "Bad credentials"}, None)
                return
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            status, payload = fake.handle(self.command, url.path, query, body)
            link = None
            if self.command == "GET" and status == 200:
                page = int(query.get("page", "1"))
                payload, more = _paged(payload, page)
                if more:
                    nxt = urllib.parse.urlencode({**query, "page": str(page + 1)})
                    link = f'<http://{self.headers["Host"]}{url.path}?{nxt}>; rel="next"'
            self._reply(status, payload, link)

        def _reply(self, status: int, payload: Any, link: str | None) -> None:
            raw = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            if link:
                self.send_header("Link", link)
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_PATCH = _serve

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    monkeypatch.setenv("GITHUB_API_URL", url)
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setenv("GITHUB_REPOSITORY", REPO)
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "github_output"))
    fake.url = url  # type: ignore[attr-defined]
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def _outputs(tmp_path: Path) -> dict[str, str]:
    lines = (tmp_path / "github_output").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


# --- plan comment ---------------------------------------------------------------------------


def test_plan_comment_body_has_marker_status_and_stays_under_the_limit() -> None:
    body = plan_comment.compose_body("prod", "| a | b |", 2, "https://run", "flipgitops-plan-prod")
    assert body.splitlines()[0] == "<!-- flipgitops-plan:prod -->"
    assert "changes planned" in body and "flipgitops-plan-prod" in body and "https://run" in body
    blocked = plan_comment.compose_body("prod", "x", 3)
    assert "blocked" in blocked and "artifact" not in blocked
    assert "exit 1" in plan_comment.compose_body("prod", "", 1)
    huge = plan_comment.compose_body("prod", "y" * 200_000, 2, "https://run")
    assert len(huge) <= plan_comment.MAX_BODY and "truncated" in huge and "https://run" in huge


def test_plan_comment_finds_only_its_own_marker() -> None:
    comments = [
        {"id": 1, "body": "quoting <!-- flipgitops-plan:prod --> here", "user": {"type": "Bot"}},
        {"id": 2, "body": "<!-- flipgitops-plan:prod -->\nby a person", "user": {"type": "User"}},
        {"id": 3, "body": "<!-- flipgitops-plan:stag -->\n...", "user": {"type": "Bot"}},
        {"id": 4, "body": "<!-- flipgitops-plan:prod -->\n...", "user": {"type": "Bot"}},
    ]
    assert plan_comment.find_comment(comments, "prod")["id"] == 4
    assert plan_comment.find_comment(comments, "stag")["id"] == 3
    assert plan_comment.find_comment(comments, "dev") is None


def test_plan_comment_is_created_once_then_updated(github: FakeGitHub, tmp_path: Path) -> None:
    github.comments[7] = [{"id": i, "body": f"chatter {i}", "user": {"type": "User"}}
                          for i in range(5)]
    plan = tmp_path / "plan-prod.md"
    plan.write_text("first plan")
    args = ["--env", "prod", "--pr", "7", "--body-file", str(plan), "--exit-code", "2"]
    assert plan_comment.main(args) == 0
    plan.write_text("second plan")
    assert plan_comment.main(args) == 0
    assert plan_comment.main([*args[:-1], "0", "--env", "stag"]) == 0
    ours = [c for c in github.comments[7] if "flipgitops-plan" in c["body"]]
    assert len(ours) == 2
    prod = next(c for c in ours if "plan:prod" in c["body"])
    assert "second plan" in prod["body"] and "first plan" not in prod["body"]
    assert ("PATCH", f"/repos/{REPO}/issues/comments/{prod['id']}") in github.requests


def test_api_errors_are_reported_not_raised(github: FakeGitHub, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    plan = tmp_path / "p.md"
    plan.write_text("x")
    code = plan_comment.main(["--env", "prod", "--pr", "7", "--body-file", str(plan),
                              "--exit-code", "2"])
    assert code == 1
    err = capsys.readouterr().err
    assert "HTTP 401 Bad credentials" in err and "wrong" not in err


# --- drift issue ----------------------------------------------------------------------------


def test_drift_decisions() -> None:
    issue = {"number": 5, "title": "Drift detected in prod", "state": "open"}
    assert drift_issue.decide(2, None) == drift_issue.Decision("open")
    assert drift_issue.decide(2, issue) == drift_issue.Decision("update", 5)
    assert drift_issue.decide(0, issue) == drift_issue.Decision("close", 5)
    assert drift_issue.decide(0, None).kind == "none"
    assert drift_issue.decide(1, issue).kind == "none", "an error is not 'in sync'"


def test_drift_issue_lookup_skips_prs_and_other_envs() -> None:
    issues = [
        {"number": 1, "title": "Drift detected in prod", "pull_request": {}, "state": "open"},
        {"number": 2, "title": "Drift detected in stag", "state": "open"},
        {"number": 3, "title": "renamed", "body": "<!-- flipgitops-drift:prod -->\n",
         "state": "open"},
    ]
    assert drift_issue.find_issue(issues, "prod")["number"] == 3
    assert drift_issue.find_issue(issues, "stag")["number"] == 2
    assert drift_issue.find_issue(issues, "dev") is None


def test_drift_issue_opens_updates_and_closes(github: FakeGitHub, tmp_path: Path) -> None:
    for n in range(3):  # other drift-labelled issues, so the lookup has to page
        github.issues.append({"number": n + 1, "title": f"other {n}", "state": "open",
                              "labels": ["drift"], "body": ""})
    report = tmp_path / "drift-prod.md"
    report.write_text("~ trusts.Trust_1.public_ip changed")
    args = ["--env", "prod", "--report", str(report), "--run-url", "https://run/1"]
    assert drift_issue.main([*args, "--exit-code", "2"]) == 0
    opened = [i for i in github.issues if i["title"] == "Drift detected in prod"]
    assert len(opened) == 1 and opened[0]["labels"] == ["drift"]
    assert "Trust_1.public_ip" in opened[0]["body"]

    report.write_text("~ hub.images.fl_tag changed")
    assert drift_issue.main([*args, "--exit-code", "2"]) == 0
    assert len([i for i in github.issues if i["title"] == "Drift detected in prod"]) == 1
    assert "fl_tag" in opened[0]["body"]

    assert drift_issue.main([*args, "--exit-code", "1"]) == 0
    assert opened[0]["state"] == "open"
    assert drift_issue.main([*args, "--exit-code", "0"]) == 0
    assert opened[0]["state"] == "closed"
    assert "in sync again" in github.comments[opened[0]["number"]][0]["body"]
    assert all(i["state"] == "open" for i in github.issues if i is not opened[0])


# --- reviewed plan artifact -----------------------------------------------------------------


MERGE_SHA = "a" * 40
HEAD_SHA = "b" * 40


def _run(run_id: int, conclusion: str, created: str, head: str = HEAD_SHA) -> dict[str, Any]:
    return {"id": run_id, "path": "plan.yml", "head_sha": head, "event": "pull_request",
            "status": "completed", "conclusion": conclusion, "created_at": created,
            "run_attempt": 1}


def test_pick_pr_run_and_artifact() -> None:
    prs = [{"number": 1, "merged_at": None, "merge_commit_sha": MERGE_SHA},
           {"number": 2, "merged_at": "2026-11-20T10:00:00Z", "merge_commit_sha": "c" * 40},
           {"number": 3, "merged_at": "2026-11-19T10:00:00Z", "merge_commit_sha": MERGE_SHA}]
    assert find_plan.pick_pr(prs, MERGE_SHA)["number"] == 3
    assert find_plan.pick_pr(prs[:2], MERGE_SHA)["number"] == 2
    assert find_plan.pick_pr(prs[:1], MERGE_SHA) is None
    runs = [_run(1, "success", "2026-11-19T09:00:00Z"), _run(2, "failure", "2026-11-19T09:30:00Z"),
            _run(3, "success", "2026-11-19T09:10:00Z"),
            _run(4, "success", "2026-11-19T09:50:00Z", head="d" * 40)]
    assert find_plan.pick_run(runs, HEAD_SHA)["id"] == 3
    arts = [{"name": "flipgitops-plan-prod", "expired": True, "created_at": "2"},
            {"name": "flipgitops-plan-stag", "expired": False, "created_at": "1"}]
    assert find_plan.pick_artifact(arts, "flipgitops-plan-prod") is None
    assert find_plan.pick_artifact(arts, "flipgitops-plan-stag") is not None


def test_find_plan_artifact_follows_commit_pr_run_artifact(github: FakeGitHub,
                                                           tmp_path: Path) -> None:
    github.commit_pulls[MERGE_SHA] = [{"number": 42, "merged_at": "2026-11-19T10:00:00Z",
                                       "merge_commit_sha": MERGE_SHA, "head": {"sha": HEAD_SHA},
                                       "labels": [{"name": "flipgitops:allow-FG008"},
                                                  {"name": "documentation"}]}]
    github.runs = [_run(10, "success", "2026-11-19T09:00:00Z"),
                   _run(11, "success", "2026-11-19T09:20:00Z"),
                   _run(12, "failure", "2026-11-19T09:40:00Z")]
    github.artifacts[11] = [{"name": "flipgitops-plan-stag", "expired": False, "created_at": "1"},
                            {"name": "flipgitops-plan-prod", "expired": False, "created_at": "1"}]
    assert find_plan.main(["--sha", MERGE_SHA, "--env", "prod"]) == 0
    assert _outputs(tmp_path) == {"found": "true", "run-id": "11",
                                  "artifact": "flipgitops-plan-prod", "pr": "42",
                                  "overrides": "--allow FG008"}

    (tmp_path / "github_output").unlink()
    assert find_plan.main(["--sha", MERGE_SHA, "--env", "dev"]) == 0
    assert _outputs(tmp_path)["found"] == "false"

    (tmp_path / "github_output").unlink()
    assert find_plan.main(["--sha", "e" * 40, "--env", "prod"]) == 0  # pushed without a PR
    assert _outputs(tmp_path) == {"found": "false", "run-id": "", "artifact": "", "pr": "",
                                  "overrides": ""}


def test_overrides_come_from_flipgitops_labels_only(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_OUTPUT", str(tmp_path / "github_output"))
    names = ["bug", "flipgitops:fl-quiesced", "flipgitops:allow-FG008", "flipgitops:allow-FG003",
             "flipgitops:allow-FG008"]
    assert pr_overrides.overrides(names) == ["--allow", "FG003", "--allow", "FG008",
                                             "--fl-quiesced"]
    assert pr_overrides.overrides(["bug"]) == []
    with pytest.raises(pr_overrides.LabelError, match="flipgitops:allow-FG0NN"):
        pr_overrides.overrides(["flipgitops:allow-fg008"])
    assert pr_overrides.main(["--labels-json", '[{"name": "flipgitops:fl-quiesced"}]']) == 0
    assert _outputs(tmp_path) == {"flags": "--fl-quiesced"}
    assert pr_overrides.main(["--labels-json", '[{"name": "flipgitops:allow-all"}]']) == 1
    assert pr_overrides.main(["--labels-json", "{not json"]) == 1


def test_a_merged_pr_with_a_label_that_is_no_override_applies_without_overrides() -> None:
    assert find_plan.pr_flags({"labels": [{"name": "flipgitops:allow-everything"}]}) == ""
    assert find_plan.pr_flags({}) == ""


def test_scripts_run_on_a_bare_python(github: FakeGitHub, tmp_path: Path) -> None:
    """No site-packages (-S): the workflow scripts need the standard library only."""
    github.commit_pulls[MERGE_SHA] = []
    proc = subprocess.run(
        [sys.executable, "-S", str(SCRIPTS / "find_plan_artifact.py"), "--sha", MERGE_SHA,
         "--env", "prod"], capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert _outputs(tmp_path)["found"] == "false"
    assert ("GET", f"/repos/{REPO}/commits/{MERGE_SHA}/pulls") in github.requests


# --- matrix ---------------------------------------------------------------------------------


def test_env_matrix(tmp_path: Path) -> None:
    assert env_matrix.from_changed({"format_version": "1", "environments": ["stag", "prod"]}) == [
        "prod", "stag"]
    assert env_matrix.from_changed([]) == []
    with pytest.raises(env_matrix.MatrixError):
        env_matrix.from_changed({"environments": ["prod; rm -rf /"]})
    with pytest.raises(env_matrix.MatrixError):
        env_matrix.from_changed({"envs": ["prod"]})
    for name in ("dev", "prod"):
        (tmp_path / f"{name}.yaml").write_text("")
    (tmp_path / "notes.txt").write_text("")
    assert env_matrix.from_dir(tmp_path) == ["dev", "prod"]
    changed = tmp_path / "changed.json"
    changed.write_text('{"environments": ["prod"]}')
    proc = subprocess.run([sys.executable, "-S", str(SCRIPTS / "env_matrix.py"),
                           "--changed-json", str(changed)],
                          capture_output=True, text=True, timeout=30, check=False)
    assert (proc.returncode, proc.stdout.strip()) == (0, '["prod"]')


def test_write_outputs_rejects_multiline(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        gh_api.write_outputs({"x": "a\nb"}, str(tmp_path / "out"))


# --- where FLIP is checked out --------------------------------------------------------------


def _flip_checkout(workspace: Path, env: str = "dev") -> subprocess.CompletedProcess[str]:
    out = workspace / "github_output"
    out.unlink(missing_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    environ.update({"GITHUB_OUTPUT": str(out), "GITHUB_WORKSPACE": str(workspace)})
    return subprocess.run([sys.executable, str(SCRIPTS / "flip_checkout.py"), "--env", env],
                          cwd=workspace, env=environ, capture_output=True, text=True,
                          timeout=60, check=False)


def test_flip_checkout_names_the_manifests_checkout_and_ref(tmp_path: Path) -> None:
    shipped = (SCRIPTS.parents[1] / "environments" / "stag.yaml").read_text()
    (tmp_path / "environments").mkdir()
    manifest = tmp_path / "environments" / "stag.yaml"
    manifest.write_text(shipped)
    proc = _flip_checkout(tmp_path, "stag")
    assert proc.returncode == 0, proc.stderr
    assert _outputs(tmp_path) == {"path": "FLIP", "ref": "v2.4.0-rc.1"}

    manifest.write_text(shipped.replace("checkout: ../FLIP", "checkout: ../vendor/FLIP"))
    assert _flip_checkout(tmp_path, "stag").returncode == 0
    assert _outputs(tmp_path)["path"] == "vendor/FLIP"

    manifest.write_text(shipped.replace("checkout: ../FLIP", "checkout: ../../FLIP"))
    proc = _flip_checkout(tmp_path, "stag")
    assert proc.returncode == 1 and "outside the workspace" in proc.stderr
    assert not (tmp_path / "github_output").exists()

    manifest.write_text(shipped.replace("checkout: ../FLIP", "checkout: .."))
    proc = _flip_checkout(tmp_path, "stag")
    assert proc.returncode == 1 and "names the repository itself" in proc.stderr

    manifest.write_text("version: 1\n")
    proc = _flip_checkout(tmp_path, "stag")
    assert proc.returncode == 1 and "cannot read the manifest of stag" in proc.stderr
    assert "Traceback" not in proc.stderr
