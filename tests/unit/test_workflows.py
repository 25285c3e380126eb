"""The GitHub Actions workflows: linted by a real actionlint (jactionlint) and held to the
rules the design fixes (pinned actions, OIDC only, per-environment serialised applies...)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.yml"))
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$")
# Deliberate exceptions to jactionlint's default (security + policy) profile:
# - obfuscation: the per-environment role variable is vars[format(...)] by design (one
#   FLIPGITOPS_ROLE_ARN_<ENV> variable per environment);
# - concurrency-limits: apply.yml serialises per environment at job level and must never
#   cancel an apply in progress, so it has no workflow-level cancelling group.
LINT_IGNORES = ("obfuscation", "concurrency-limits")
ROLE = re.compile(
    r"\$\{\{ vars\[format\('FLIPGITOPS_(PLAN_)?ROLE_ARN_\{0\}', matrix\.env\)\] \}\}")


def _load(path: Path) -> dict[str, Any]:
    data = YAML(typ="safe", pure=True).load(path.read_text())
    assert isinstance(data, dict), path
    return data


def _jobs(name: str) -> dict[str, Any]:
    jobs = _load(WORKFLOWS / name)["jobs"]
    assert isinstance(jobs, dict)
    return jobs


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def _uses(step: dict[str, Any], action: str) -> bool:
    return str(step.get("uses", "")).startswith(action + "@")


def _jactionlint() -> str | None:
    try:
        import jactionlint  # type: ignore[import-not-found]
    except ImportError:
        return shutil.which("jactionlint")
    return str(jactionlint.get_binary_path())


def _lint(binary: str, *paths: Path, shellcheck: str = "") -> subprocess.CompletedProcess[str]:
    """actionlint; with ``shellcheck`` it also runs shellcheck on every `run:` script (an
    explicit command: actionlint fails, rather than silently skipping, when it is missing)."""
    args = [binary, "--no-color", "--no-online", f"--shellcheck={shellcheck}"]
    for rule in LINT_IGNORES:
        args += ["--ignore", rule]
    return subprocess.run([*args, *map(str, paths)], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)


def test_the_four_workflows_exist() -> None:
    assert [p.name for p in FILES] == ["apply.yml", "ci.yml", "drift.yml", "plan.yml"]


@pytest.fixture(scope="module")
def linter() -> str:
    binary = _jactionlint()
    if binary is None:
        pytest.skip("jactionlint is not installed (dev dependency `jactionlint==2.3.0`, "
                    "a PyPI wheel that ships the binary)")
    return binary


@pytest.fixture(scope="module")
def shellcheck() -> str:
    """Debian's `shellcheck` (.ci/run installs it). Locally a missing one skips; in CI
    (`CI` set, as GitHub Actions sets it) it fails, so the run: scripts are always checked."""
    found = shutil.which("shellcheck")
    if found is None:
        message = ("shellcheck is not installed: `apt-get install shellcheck` (.ci/run does), "
                   "so actionlint checks the workflows' run: scripts")
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_workflows_pass_actionlint_and_shellcheck(linter: str, shellcheck: str) -> None:
    proc = _lint(linter, *FILES, shellcheck=shellcheck)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shellcheck_checks_the_run_scripts(linter: str, shellcheck: str, tmp_path: Path
                                           ) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\npermissions: {}\nconcurrency: {group: x, cancel-in-progress: true}\n"
        "jobs:\n  a:\n    runs-on: ubuntu-24.04\n    timeout-minutes: 5\n    steps:\n"
        "      - run: for f in $(ls *.yaml); do echo $f; done\n")
    proc = _lint(linter, bad, shellcheck=shellcheck)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "SC2045" in out and "SC2086" in out, out


def test_actionlint_catches_a_bad_workflow(linter: str, tmp_path: Path) -> None:
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-24.04\n"
        "    timeout-minutes: 5\n    steps:\n"
        "      - run: echo ${{ github.event.head_commit.message }}\n"
        "      - uses: actions/checkout@v4\n")
    proc = _lint(linter, bad)
    assert proc.returncode == 1
    out = proc.stdout + proc.stderr
    assert "potentially untrusted" in out and "pinned" in out.lower()


def test_every_action_is_pinned_to_a_commit_sha() -> None:
    seen: dict[str, str] = {}
    for path in FILES:
        for line in path.read_text().splitlines():
            m = re.match(r"^\s*(?:-\s+)?uses:\s*(.+?)\s*$", line)
            if not m:
                continue
            ref = m.group(1)
            assert PINNED.match(ref), f"{path.name}: not pinned to a full SHA + # vX: {ref}"
            action, sha = ref.split(" ")[0].split("@")
            assert seen.setdefault(action, sha) == sha, f"{action} pinned to two SHAs"
    assert set(seen) == {
        "actions/checkout", "actions/setup-python", "astral-sh/setup-uv",
        "actions/upload-artifact", "actions/download-artifact",
        "aws-actions/configure-aws-credentials",
    }


def test_no_expression_is_interpolated_into_a_script() -> None:
    """Untrusted values reach shell only through env: (no ${{ }} in any run:)."""
    for path in FILES:
        for job in _load(path)["jobs"].values():
            for step in _steps(job):
                assert "${{" not in str(step.get("run", "")), (path.name, step)


def test_permissions_are_least_privilege_and_jobs_are_bounded() -> None:
    for path in FILES:
        data = _load(path)
        assert "permissions" in data, f"{path.name}: no top-level permissions"
        for name, job in data["jobs"].items():
            assert "timeout-minutes" in job, (path.name, name)
            perms = job.get("permissions", data["permissions"])
            assert perms != "write-all" and perms.get("contents", "read") == "read"
            aws = [s for s in _steps(job) if _uses(s, "aws-actions/configure-aws-credentials")]
            if aws:
                assert perms.get("id-token") == "write", (path.name, name)
            else:
                assert "id-token" not in perms, (path.name, name)
            for step in aws:
                inputs = step["with"]
                assert not {"aws-access-key-id", "aws-secret-access-key"} & set(inputs)
                assert ROLE.fullmatch(inputs["role-to-assume"]), inputs["role-to-assume"]
    for path in FILES:
        assert "secrets.AWS" not in path.read_text()


def test_ci_runs_the_ci_entry_point() -> None:
    data = _load(WORKFLOWS / "ci.yml")
    assert {"push", "pull_request"} <= set(data["on"])
    runs = [s.get("run") for s in _steps(data["jobs"]["test"])]
    assert "bash .ci/run" in runs


def test_plan_workflow_contract() -> None:
    data = _load(WORKFLOWS / "plan.yml")
    assert data["on"]["pull_request"]["paths"] == ["environments/**"]
    changed = "\n".join(s.get("run", "") for s in _steps(data["jobs"]["changed"]))
    assert 'flipgitops changed --base "$BASE_SHA" --head "$HEAD_SHA" --format json' in changed
    job = data["jobs"]["plan"]
    assert job["strategy"]["matrix"]["env"] == "${{ fromJSON(needs.changed.outputs.envs) }}"
    assert job["permissions"]["pull-requests"] == "write"
    steps = _steps(job)
    script = "\n".join(s.get("run", "") for s in steps)
    assert "flipgitops validate" in script
    assert '--base "$BASE_SHA"' in script and "--format markdown" in script
    assert '--out "plan-$ENV_NAME.json"' in script
    assert "plan_comment.py" in script and "GITHUB_STEP_SUMMARY" in script
    upload = next(s for s in steps if _uses(s, "actions/upload-artifact"))
    assert upload["with"]["name"] == "flipgitops-plan-${{ matrix.env }}"
    assert "'2'" in upload["if"] and "'0'" in upload["if"]
    gate = steps[-1]["run"]
    assert "0|2)" in gate and "3)" in gate and "exit 1" in gate


def test_apply_workflow_contract() -> None:
    data = _load(WORKFLOWS / "apply.yml")
    assert data["on"]["push"] == {"branches": ["main"], "paths": ["environments/**"]}
    changed = "\n".join(s.get("run", "") for s in _steps(data["jobs"]["changed"]))
    step = next(s for s in _steps(data["jobs"]["changed"]) if s.get("id") == "changed")
    assert step["env"]["BEFORE"] == "${{ github.event.before }}"
    assert "flipgitops changed" in changed
    job = data["jobs"]["apply"]
    assert job["environment"] == "${{ matrix.env }}"
    assert job["concurrency"] == {"group": "flipgitops-apply-${{ matrix.env }}",
                                  "cancel-in-progress": False}
    assert job["permissions"]["actions"] == "read"
    steps = _steps(job)
    script = "\n".join(s.get("run", "") for s in steps)
    assert "find_plan_artifact.py" in script
    assert '--plan "reviewed/plan-$ENV_NAME.json"' in script and "--yes" in script
    download = next(s for s in steps if _uses(s, "actions/download-artifact"))
    assert download["with"]["run-id"] == "${{ steps.reviewed.outputs.run-id }}"
    fresh = next(s for s in steps if s.get("id") == "fresh")
    assert "3) " in fresh["run"] and "exit 1" in fresh["run"]
    assert "GITHUB_STEP_SUMMARY" in script


def test_drift_workflow_contract() -> None:
    data = _load(WORKFLOWS / "drift.yml")
    assert data["on"]["schedule"][0]["cron"] and "workflow_dispatch" in data["on"]
    job = data["jobs"]["drift"]
    assert job["permissions"]["issues"] == "write"
    script = "\n".join(s.get("run", "") for s in _steps(job))
    assert '--format markdown' in script and '--report "drift-$ENV_NAME.md"' in script
    assert "drift_issue.py" in script


def test_scripts_the_workflows_call_exist() -> None:
    for path in FILES:
        for script in re.findall(r"\.github/scripts/([\w-]+\.py)", path.read_text()):
            assert (ROOT / ".github" / "scripts" / script).is_file(), script


@pytest.mark.parametrize("name,job,runs", [("plan.yml", "plan", "flipgitops plan"),
                                           ("apply.yml", "apply", "flipgitops apply"),
                                           ("drift.yml", "drift", "flipgitops drift")])
def test_flip_is_checked_out_at_the_manifests_ref_read_only(name: str, job: str,
                                                            runs: str) -> None:
    """Hosts run FLIP's trust/ from flip.checkout at flip.ref: every job that plans, applies
    or reports drift checks londonaicentre/FLIP out there first, at exactly that ref, with
    the pinned checkout action, no persisted credentials, then makes it read-only."""
    steps = _steps(_jobs(name)[job])
    where = next(i for i, s in enumerate(steps) if s.get("id") == "flip")
    assert "flip_checkout.py --env \"$ENV_NAME\"" in steps[where]["run"]
    checkout = steps[where + 1]
    assert _uses(checkout, "actions/checkout")
    assert checkout["with"] == {"repository": "londonaicentre/FLIP",
                                "ref": "${{ steps.flip.outputs.ref }}",
                                "path": "${{ steps.flip.outputs.path }}",
                                "persist-credentials": False}
    readonly = steps[where + 2]
    assert readonly["env"] == {"FLIP_PATH": "${{ steps.flip.outputs.path }}"}
    assert readonly["run"].strip() == 'chmod -R a-w -- "$FLIP_PATH"'
    uses_flip = [i for i, s in enumerate(steps) if runs in str(s.get("run", ""))]
    assert uses_flip and min(uses_flip) > where + 2
    assert {steps[i].get("if") for i in (where, where + 1, where + 2)} == {
        "steps.role.outputs.connected == 'true'"}
    sync = next(i for i, s in enumerate(steps) if "uv sync" in str(s.get("run", "")))
    assert sync < where  # the script reads the manifest with flipgitops' own loader
