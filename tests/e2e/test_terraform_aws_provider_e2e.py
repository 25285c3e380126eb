"""Terraform mode through the real CLI and the real terraform binary, on aws_* resources.

Issue 12's last "must show": in terraform mode, ``flipgitops plan --format markdown`` on a
Terraform change that replaces the prod ``aws_db_instance`` exits 3 naming FG008 and FG002
before anything is applied; a change that would roll fl-server names FG007; a change of
the allowlist alone passes; and ``plan`` leaves the hub's Terraform directory byte-identical.

The hub root is the stand-in of FLIP's (tests/fixtures/terraform/flip_root_aws: FLIP's
addresses, `module.flip_db.module.db_instance.aws_db_instance.this[0]` among them), its
state in an S3 backend on moto, written by a first real ``terraform apply``; the aws
provider is the stand-in (tests/standin/tfaws), installed by a CLI config filesystem mirror
exactly as Terraform installs the real one. flipgitops' code is unchanged.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from flipgitops.sandbox.environment import REGION, Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.flip.seed import seed_hub
from flipgitops.sandbox.moto_server import SANDBOX_ENV, MotoServer
from tests.standin.tfaws.install import install
from tests.tfroots import require_terraform, s3_backend, tree

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _terraform_on_path() -> None:
    require_terraform()

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "terraform" / "flip_root_aws"
BUCKET = "flip-tfstate-prod"
KEY = "flip/terraform.tfstate"
DB = "module.flip_db.module.db_instance.aws_db_instance.this[0]"
# To onboard: one rule to add. A TRE trust (no host of ours): plan gathers no host facts.
TRUSTS = [TrustSpec("Trust_1", "GSTT", "203.0.113.11", kind="tre")]
# What FLIP's CI exports for the root's inputs without a default (`make print-tf-env`).
CI_VARS = {"TF_VAR_AWS_REGION": REGION, "TF_VAR_POSTGRES_USER": "flip",
           "TF_VAR_POSTGRES_DB": "flip"}


def backend_config(moto: MotoServer) -> dict[str, str]:
    return s3_backend(moto.url, BUCKET, KEY, REGION)


def terraform(args: list[str], cwd: Path, env: dict[str, str]) -> str:
    proc = subprocess.run(["terraform", *args, "-no-color", "-input=false"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, f"terraform {args[0]}: {proc.stderr[-3000:]}"
    return proc.stdout


def apply_baseline(root: Path, work: Path, moto: MotoServer, env: dict[str, str]) -> None:
    """The hub as FLIP's CI left it: the root applied once (database, FL services, no trust
    rule yet), in a copy so the hub's directory stays as committed."""
    copy = work / "baseline"
    shutil.copytree(root, copy)
    env = {**env, "TF_DATA_DIR": str(work / "baseline-data")}
    terraform(["init", *[f"-backend-config={k}={v}"
                         for k, v in backend_config(moto).items()]], copy, env)
    (work / "ci.tfvars.json").write_text(json.dumps({
        "environment": "prod", "local_trust_public_ips": [],
        "docker_image_tag": "v2.3.0", "flip_fl_image_tag": "v2.3.0"}))
    terraform(["apply", "-auto-approve", f"-var-file={work / 'ci.tfvars.json'}"], copy, env)


def prod_box(box: Sandbox, moto: MotoServer) -> None:
    """The sandbox's manifest made prod and terraform mode: the allowlist is the hub
    Terraform's, the database protected as FG002 requires, then the hub seeded from it."""
    doc = box.manifest_doc(TRUSTS, allowlist="terraform")
    doc["hub"]["terraform"] = {"dir": "../terraform", "backend_config": backend_config(moto)}
    doc["hub"]["database"] = {"deletion_protection": True, "final_snapshot": True,
                              "backup_retention_days": 7}
    box.write_manifest(doc, commit="prod, terraform mode")
    box.seed = seed_hub(box.load_manifest(), box.hub)


def state_object(s3: Any) -> tuple[str, bytes]:
    obj = s3.get_object(Bucket=BUCKET, Key=KEY)
    return obj["ETag"], obj["Body"].read()


def hub_snapshot(moto: MotoServer) -> dict[str, Any]:
    rds = boto3.client("rds", region_name=REGION, endpoint_url=moto.url)
    ec2 = boto3.client("ec2", region_name=REGION, endpoint_url=moto.url)
    return {"rds": [(d["DBInstanceIdentifier"], d["DBInstanceStatus"], d["DeletionProtection"])
                    for d in rds.describe_db_instances()["DBInstances"]],
            "sg": sorted(json.dumps(g["IpPermissions"], sort_keys=True)
                         for g in ec2.describe_security_groups()["SecurityGroups"])}


def edit(path: Path, old: str, new: str) -> str:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))
    return text


def test_terraform_mode_plan_guards_a_real_aws_plan(tmp_path: Path, moto: MotoServer) -> None:
    started = time.monotonic()
    provider = install(tmp_path / "tfaws")
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto.url)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    tf_env = {**provider.env(), **CI_VARS}
    with sandbox(tmp_path / "box", env_name="prod", trusts=TRUSTS, allowlist="terraform",
                 moto=moto, seed=False) as box:
        prod_box(box, moto)
        root = box.repo / "terraform"
        shutil.copytree(FIXTURE, root)
        base_env = {**os.environ, **SANDBOX_ENV, "AWS_ENDPOINT_URL": moto.url, **tf_env}
        apply_baseline(root, tmp_path, moto, base_env)
        state = state_object(s3)
        assert b'"module": "module.flip_db.module.db_instance"' in state[1]
        assert b'"type": "aws_db_instance"' in state[1]
        assert b'"deletion_protection": true' in state[1]  # prod hardening, as FLIP's root
        live = hub_snapshot(moto)
        committed = tree(root)
        timings: dict[str, float] = {}

        def plan(label: str) -> tuple[int, str]:
            t0 = time.monotonic()
            r = box.cli("plan", "--env", "prod", "--format", "markdown", extra_env=tf_env,
                        timeout=300)
            timings[label] = time.monotonic() - t0
            # Nothing applied, nothing written: state, AWS and the hub's root as they were.
            assert state_object(s3) == state, label
            assert hub_snapshot(moto) == live, label
            assert tree(root) == committed, label
            # Markdown escapes `_` and `[`; the addresses are asserted as Terraform writes them.
            return r.code, re.sub(r"\\(.)", r"\1", r.out) + r.err

        # 1. The allowlist alone (Trust_1 to onboard: one new rule): planned, no guard.
        code, out = plan("allowlist")
        assert code == 2, out
        assert "running the hub's terraform plan" in out, out  # Terraform did judge it
        for guard in ("FG002", "FG007", "FG008"):
            assert guard not in out, out

        # 2. A FLIP change that replaces the database (a customer-managed KMS key is
        #    ForceNew on aws_db_instance): blocked at plan time, FG008 and FG002 named.
        original = edit(root / "rds.tf", '  family                     = "postgres13"\n',
                        '  family                     = "postgres13"\n  kms_key_id        '
                        '         = "arn:aws:kms:eu-west-2:123456789012:key/flip-db"\n')
        committed = tree(root)
        code, out = plan("db-replace")
        assert code == 3, out
        assert "FG008" in out and "FG002" in out, out
        assert DB in out, out
        (root / "rds.tf").write_text(original)
        committed = tree(root)

        # 3. A change that rolls fl-server (its task definition: a new revision, and the
        #    service moves to it): FG007 names it; the database is untouched.
        port_env = '{ name = "FL_SERVER_PORT", value = tostring(var.FL_SERVER_PORT) },'
        edit(root / "ecs_fl.tf", port_env,
             port_env + '\n      { name = "LOG_LEVEL", value = "DEBUG" },')
        committed = tree(root)
        code, out = plan("fl-server-roll")
        assert code == 3, out
        assert "FG007" in out and 'aws_ecs_task_definition.fl_server["net-1"]' in out, out
        assert "FG002" not in out and "FG008" not in out, out
    print(f"\nwall: terraform aws e2e {time.monotonic() - started:.1f}s, plans {timings}")


def test_bad_configuration_is_a_clear_terraform_error(tmp_path: Path) -> None:
    """What the provider refuses reaches the operator as Terraform's own error block, with
    the provider's words and no Python traceback."""
    provider = install(tmp_path / "tfaws")
    root = tmp_path / "root"
    root.mkdir()
    (root / "main.tf").write_text(
        'terraform {\n  required_providers {\n    aws = { source = "hashicorp/aws", '
        'version = "~> 6.0" }\n  }\n}\n'
        'resource "aws_security_group_rule" "bad" {\n  type = "sideways"\n'
        '  from_port = 8002\n  to_port = 8002\n  protocol = "tcp"\n'
        '  security_group_id = "sg-1"\n}\n')
    env = {**os.environ, **provider.env(), "TF_DATA_DIR": str(tmp_path / "data")}
    terraform(["init"], root, env)
    proc = subprocess.run(["terraform", "validate", "-no-color"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "type must be ingress or egress, not 'sideways'" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
