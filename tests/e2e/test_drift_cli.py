"""``flipgitops drift`` end to end: a seeded hub in a real moto server, then one change made
behind flipgitops' back (plain boto3, as an operator with the AWS CLI would), then the report
in every format must name it with the right group and severity.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner, Result

pytest.importorskip("flipgitops.engine.observe", reason="engine/observe.py not written yet")
seed = pytest.importorskip("flipgitops.sandbox.seed", reason="sandbox/seed.py not written yet")

from flipgitops.cli import main  # noqa: E402
from flipgitops.engine.manifests import load_manifest  # noqa: E402
from flipgitops.model.manifest import Manifest  # noqa: E402
from flipgitops.sandbox import tamper  # noqa: E402
from flipgitops.sandbox.moto_server import MotoServer  # noqa: E402

REGION = "eu-west-2"


def manifest_yaml(env: str, trusts: str = "") -> str:
    trusts = trusts or "".join(
        f"  - name: Trust_{i}\n    kind: tre\n    public_ip: 203.0.113.1{i}\n"
        f"    fl_kit_slot: Trust_{i}\n" for i in (1, 2)
    )
    return f"""\
# yaml-language-server: $schema=../schemas/flip-environment.schema.json
version: 1
environment: {env}
aws:
  account_id: "123456789012"
  region: {REGION}
state:
  bucket: flip-gitops-state-{env}
hub:
  domain: app.example.org
  images:
    hub_tag: v2.3.0
    fl_tag: v2.3.0
trusts:
{trusts}"""


@pytest.fixture
def prod(tmp_path: Path, moto: MotoServer) -> tuple[Path, Manifest]:
    """environments/prod.yaml (prod: protection off is critical) and a hub matching it."""
    path = tmp_path / "environments" / "prod.yaml"
    path.parent.mkdir()
    path.write_text(manifest_yaml("prod"), encoding="utf-8")
    manifest = load_manifest(path)
    seed.seed_hub(manifest)
    return path, manifest


def drift(path: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["drift", "--env", str(path), *args])


def protection_off(m: Manifest) -> None:
    rds: Any = boto3.client("rds", region_name=REGION)
    rds.modify_db_instance(DBInstanceIdentifier=m.hub.database.identifier,
                           DeletionProtection=False, ApplyImmediately=True)


def drop_trust_from_secret(m: Manifest) -> None:
    sm: Any = boto3.client("secretsmanager", region_name=REGION)
    data = json.loads(sm.get_secret_value(SecretId=m.hub.secret)["SecretString"])
    data["trust_names"] = [n for n in data["trust_names"] if n != "Trust_2"]
    data["trust_api_key_hashes"].pop("Trust_2", None)
    sm.put_secret_value(SecretId=m.hub.secret, SecretString=json.dumps(data))


def extra_rule(m: Manifest) -> None:
    tamper.add_manual_ingress_rule(m, "198.51.100.99/32")


def hub_tag(m: Manifest) -> None:
    tamper.deploy_image_by_hand(m, "flip_api", "v2.2.9")


CASES: dict[str, tuple[Callable[[Manifest], None], str, str, str]] = {
    "extra-ingress-rule": (extra_rule, "unmanaged", "high", "ingress:198.51.100.99/32"),
    "hub-image-tag": (hub_tag, "changed", "high", "service:flip-api"),
    "db-protection-off": (protection_off, "changed", "critical", "database:flip-database"),
    "trust-missing-from-secret": (drop_trust_from_secret, "missing", "high", "trust:Trust_2"),
}


def test_seeded_hub_is_in_sync(prod: tuple[Path, Manifest]) -> None:
    path, _ = prod
    result = drift(path)
    assert result.exit_code == 0, result.output
    assert "In sync" in result.stdout
    data = json.loads(drift(path, "--format", "json").stdout)
    assert data["in_sync"] is True
    assert data["findings"] == []


@pytest.mark.parametrize("case", sorted(CASES))
def test_drift_is_reported_in_every_format(prod: tuple[Path, Manifest], case: str) -> None:
    path, manifest = prod
    change, group, severity, target = CASES[case]
    change(manifest)

    result = drift(path, "--format", "json")
    assert result.exit_code == 2, result.output
    findings = json.loads(result.stdout)["findings"]
    assert {"group": group, "severity": severity, "target": target} in [
        {k: f[k] for k in ("group", "severity", "target")} for f in findings]
    assert len(findings) == 1, findings

    text = drift(path)
    assert text.exit_code == 2
    assert f"{group.capitalize()}" in text.stdout
    assert f"[{severity}] {target}:" in text.stdout

    md = drift(path, "--format", "markdown")
    assert md.exit_code == 2
    assert f"### {group.capitalize()}" in md.stdout
    assert f"| **{severity}** | {target} |" in md.stdout


def test_report_file(prod: tuple[Path, Manifest], tmp_path: Path) -> None:
    path, manifest = prod
    extra_rule(manifest)
    report = tmp_path / "out" / "drift.md"
    result = drift(path, "--format", "markdown", "--report", str(report))
    assert result.exit_code == 2
    assert report.read_text().strip() == result.stdout.strip()


@pytest.mark.slow
def test_unreachable_host_is_unknown_not_in_sync(tmp_path: Path, moto: MotoServer) -> None:
    pytest.importorskip("flipgitops.adapters.hosts", reason="adapters/hosts.py not written yet")
    trusts = ("  - name: Trust_1\n    kind: on-prem\n    public_ip: 203.0.113.11\n"
              "    fl_kit_slot: Trust_1\n    host:\n      connection: ssh\n"
              "      address: trust1.invalid\n      user: ubuntu\n")
    path = tmp_path / "environments" / "dev.yaml"
    path.parent.mkdir()
    path.write_text(manifest_yaml("dev", trusts), encoding="utf-8")
    seed.seed_hub(load_manifest(path))
    for fmt in ("json", "text"):
        result = drift(path, "--format", fmt)
        assert result.exit_code == 2, result.output
        if fmt == "json":
            groups = {(f["group"], f["target"]) for f in json.loads(result.stdout)["findings"]}
            assert ("unknown", "host:Trust_1") in groups
        else:
            assert "Unknown" in result.stdout


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_observe_never_shows_a_secret(tmp_path: Path, moto: MotoServer, fmt: str) -> None:
    """The seeded secret holds real-looking keys; no value and no full hash may be printed."""
    import hashlib
    import re

    path = tmp_path / "environments" / "dev.yaml"
    path.parent.mkdir()
    path.write_text(manifest_yaml("dev"), encoding="utf-8")
    seeded = seed.seed_hub(load_manifest(path))
    result = CliRunner().invoke(main, ["observe", "--env", str(path), "--format", fmt])
    assert result.exit_code == 0, result.output
    secrets = [seeded.aes_key, seeded.internal_service_key, *seeded.trust_keys.values()]
    for value in secrets:
        assert value not in result.output
        assert hashlib.sha256(value.encode()).hexdigest() not in result.output
    assert not re.search(r"[0-9a-f]{64}", result.output)
    short = "sha256:" + hashlib.sha256(seeded.trust_keys["Trust_1"].encode()).hexdigest()[:12]
    assert short in result.output
