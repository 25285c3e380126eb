"""``flipgitops plan`` end to end: the real CLI against a real moto server seeded like FLIP.

Trusts here are of kind ``tre`` (hub-side only), so planning needs AWS and nothing else;
host facts are covered by the host and apply tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

pytest.importorskip("flipgitops.core.planner", reason="core/planner.py not written yet")
pytest.importorskip("flipgitops.engine.observe", reason="engine/observe.py not written yet")
seed = pytest.importorskip("flipgitops.sandbox.seed", reason="sandbox/seed.py not written yet")

from flipgitops.cli import main  # noqa: E402
from flipgitops.core.render import load_plan_json  # noqa: E402
from flipgitops.engine.manifests import load_manifest  # noqa: E402
from flipgitops.sandbox.moto_server import MotoServer  # noqa: E402

TRUST_IPS = {"Trust_1": "203.0.113.11", "Trust_2": "203.0.113.12"}


def manifest_yaml(env: str, *, ips: dict[str, str] = TRUST_IPS, hub_tag: str = "v2.3.0",
                  fl_tag: str = "v2.3.0") -> str:
    trusts = "".join(
        f"  - name: {name}\n    kind: tre\n    public_ip: {ip}\n    fl_kit_slot: {name}\n"
        for name, ip in ips.items()
    )
    return f"""\
# yaml-language-server: $schema=../schemas/flip-environment.schema.json
version: 1
environment: {env}
aws:
  account_id: "123456789012"
  region: eu-west-2
state:
  bucket: flip-gitops-state-{env}
hub:
  domain: app.example.org
  images:
    hub_tag: {hub_tag}
    fl_tag: {fl_tag}
trusts:
{trusts}"""


@pytest.fixture
def env_file(tmp_path: Path, moto: MotoServer) -> Path:
    """environments/dev.yaml for a hub seeded to match it exactly."""
    path = tmp_path / "environments" / "dev.yaml"
    path.parent.mkdir()
    path.write_text(manifest_yaml("dev"), encoding="utf-8")
    seed.seed_hub(load_manifest(path))
    return path


def plan(path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["plan", "--env", str(path), *args])


def test_matching_hub_has_no_changes(env_file: Path) -> None:
    result = plan(env_file)
    assert result.exit_code == 0, result.output
    assert "Plan: 0 actions" in result.stdout
    data = json.loads(plan(env_file, "--format", "json").stdout)
    assert data["actions"] == []
    assert data["format_version"] == "1"


def test_ip_change_is_one_rule_replacement(env_file: Path) -> None:
    env_file.write_text(manifest_yaml("dev", ips={**TRUST_IPS, "Trust_2": "198.51.100.7"}))
    result = plan(env_file, "--format", "json")
    assert result.exit_code == 2, result.output
    data = json.loads(result.stdout)
    assert len(data["actions"]) == 1, data["actions"]
    action = data["actions"][0]
    assert action["kind"] == "allowlist.update"
    adds = [r["cidr"] for r in action["params"].get("add", [])]
    revokes = [r["cidr"] for r in action["params"].get("revoke", [])]
    assert adds == ["198.51.100.7/32"]
    assert revokes == ["203.0.113.12/32"]
    text = plan(env_file)
    assert text.exit_code == 2
    assert "198.51.100.7" in text.stdout
    assert "Plan: 1 action in 1 wave" in text.stdout


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_lockstep_violation_exits_3_naming_fg001(env_file: Path, fmt: str) -> None:
    env_file.write_text(manifest_yaml("dev", hub_tag="v2.4.0"))
    result = plan(env_file, "--format", fmt)
    assert result.exit_code == 3, result.output
    assert "FG001" in result.stdout
    if fmt == "json":
        data = json.loads(result.stdout)
        assert [v["guard"] for v in data["violations"] if not v["allowed"]] == ["FG001"]


def test_out_writes_the_artifact_apply_reads(env_file: Path, tmp_path: Path) -> None:
    env_file.write_text(manifest_yaml("dev", ips={**TRUST_IPS, "Trust_1": "198.51.100.8"}))
    out = tmp_path / "artifacts" / "plan-dev.json"
    result = plan(env_file, "--format", "markdown", "--out", str(out))
    assert result.exit_code == 2, result.output
    assert out.is_file()
    reviewed = load_plan_json(out.read_text())
    assert reviewed.environment == "dev"
    assert len(reviewed.actions) == 1
    assert not list(out.parent.glob(".*.tmp"))  # the temp file was renamed, not left behind
    again = plan(env_file, "--format", "json")
    assert load_plan_json(again.stdout).fingerprint == reviewed.fingerprint


def test_base_shows_the_manifest_change(env_file: Path, tmp_path: Path) -> None:
    import git

    repo = git.Repo.init(tmp_path, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Test")
        cw.set_value("user", "email", "test@example.org")
    repo.index.add([str(env_file.relative_to(tmp_path))])
    repo.index.commit("dev")
    env_file.write_text(manifest_yaml("dev", ips={**TRUST_IPS, "Trust_2": "198.51.100.7"}))
    result = plan(env_file, "--base", "HEAD", "--format", "json")
    assert result.exit_code == 2, result.output
    change = json.loads(result.stdout)["manifest_change"]
    assert change == [{"op": "change", "path": "trusts.Trust_2.public_ip",
                       "before": "203.0.113.12", "after": "198.51.100.7"}]
    text = plan(env_file, "--base", "HEAD")
    assert "Manifest change" in text.stdout
    missing = plan(env_file, "--base", "no-such-rev")
    assert missing.exit_code == 1
    assert "unknown revision 'no-such-rev'" in missing.output
