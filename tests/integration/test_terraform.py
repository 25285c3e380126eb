"""The Terraform wrapper against the real terraform binary and a real S3 backend on moto.

The root module is a stand-in for the FLIP AWS root built from the builtin terraform_data
resource (no provider download), with the FLIP variable names and resource addresses.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from flipgitops.adapters.terraform import (
    REDACTED,
    TFVARS_FILE,
    Terraform,
    plan_and_apply_allowlist,
    strip_ansi,
)
from flipgitops.errors import GuardBlocked, LockHeld, TerraformError
from flipgitops.sandbox.moto_server import MotoServer

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "terraform" / "flip_root"
BUCKET = "flip-tfstate-test"
KEY = "flip/terraform.tfstate"
REGION = "eu-west-2"
# sha256 the stand-in module marks sensitive; it must never come back out of the wrapper.
SECRET_HASH = hashlib.sha256(b"stand-in-stag").hexdigest()

needs_terraform = pytest.mark.skipif(
    shutil.which("terraform") is None,
    reason="the terraform binary is not on PATH (install Terraform >= 1.10 to run these)",
)
pytestmark = pytest.mark.slow


@dataclass
class Root:
    tf: Terraform
    s3: Any
    backend: dict[str, str]


def _vars(*ips: str, tag: str = "v2.3.0") -> dict[str, Any]:
    return {
        "environment": "stag",
        "local_trust_public_ips": list(ips),
        "docker_image_tag": tag,
        "flip_fl_image_tag": tag,
    }


def _changes(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rc["address"]: rc["change"] for rc in plan["resource_changes"]}


def _state_keys(s3: Any) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []))


@pytest.fixture
def root(moto: MotoServer, tmp_path: Path) -> Iterator[Root]:
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    workdir = tmp_path / "flip_root"
    shutil.copytree(FIXTURE, workdir)
    rc = tmp_path / "terraformrc"
    rc.write_text("")
    backend = {
        "bucket": BUCKET,
        "key": KEY,
        "region": REGION,
        "use_lockfile": "true",
        "endpoints": f'{{s3="{moto.url}"}}',
        "use_path_style": "true",
        "skip_credentials_validation": "true",
        "skip_requesting_account_id": "true",
        "skip_metadata_api_check": "true",
        "skip_region_validation": "true",
    }
    # Only the explicit endpoints backend setting may point Terraform at moto.
    tf = Terraform(workdir, env={"TF_CLI_CONFIG_FILE": str(rc), "AWS_ENDPOINT_URL": ""},
                   timeout=180)
    tf.init(backend)
    yield Root(tf, s3, backend)


@needs_terraform
def test_plan_apply_cycle_against_s3_backend_on_moto(root: Root, tmp_path: Path) -> None:
    tf = root.tf
    tfvars = tf.write_tfvars(_vars("203.0.113.10", "198.51.100.7"))
    assert tfvars.name == TFVARS_FILE
    assert json.loads(tfvars.read_text())["local_trust_public_ips"] == [
        "203.0.113.10", "198.51.100.7"]
    assert not list(tf.workdir.glob(".flipgitops-tfvars-*")), "temp file left behind"

    planfile = tmp_path / "first.tfplan"
    assert tf.plan(planfile) == 2
    plan = tf.show_json(planfile)
    changes = _changes(plan)
    rule = changes['terraform_data.local_trust_fl_server_nlb["203.0.113.10"]']
    assert rule["actions"] == ["create"]
    assert rule["after"]["input"]["cidr_blocks"] == ["203.0.113.10/32"]
    ingress = changes["terraform_data.fl_server_nlb_ingress"]
    assert ingress["after"]["input"]["cidrs"] == ["198.51.100.7/32", "203.0.113.10/32"]
    assert changes["terraform_data.flip_api_image"]["after"]["input"]["tag"] == "v2.3.0"
    assert SECRET_HASH not in json.dumps(plan)
    secret = changes["terraform_data.flip_api_secret"]["after"]["input"]
    assert secret["internal_service_key_hash"] == REDACTED

    tf.apply(planfile)
    outputs = tf.output_json()
    assert outputs["fl_server_allowlist"] == ["198.51.100.7/32", "203.0.113.10/32"]
    assert outputs["docker_image_tag"] == "v2.3.0"
    assert outputs["internal_service_key_hash"] == REDACTED
    # State lives in the moto bucket; the S3-native lock was released.
    assert _state_keys(root.s3) == [KEY]
    state = json.loads(root.s3.get_object(Bucket=BUCKET, Key=KEY)["Body"].read())
    assert len(state["resources"]) == 5

    assert tf.plan(tmp_path / "again.tfplan") == 0

    tf.write_tfvars(_vars("203.0.113.10", "198.51.100.8"))
    assert tf.plan(tmp_path / "ip.tfplan") == 2
    changes = _changes(tf.show_json(tmp_path / "ip.tfplan"))
    assert changes["terraform_data.fl_server_nlb_ingress"]["actions"] == ["update"]
    assert changes['terraform_data.local_trust_fl_server_nlb["198.51.100.8"]']["actions"] == [
        "create"]
    assert changes['terraform_data.local_trust_fl_server_nlb["198.51.100.7"]']["actions"] == [
        "delete"]
    assert changes['terraform_data.local_trust_fl_server_nlb["203.0.113.10"]']["actions"] == [
        "no-op"]


@needs_terraform
def test_guard_and_dry_run_leave_state_alone(root: Root) -> None:
    seen: list[dict[str, Any]] = []

    def refuse(plan: dict[str, Any]) -> list[str]:
        seen.append(plan)
        return ["FG008 terraform_data.fl_server_nlb_ingress: stand-in problem"]

    with pytest.raises(GuardBlocked, match="FG008"):
        plan_and_apply_allowlist(root.tf, _vars("203.0.113.10"), refuse, dry_run=False)
    assert seen and _changes(seen[0])["terraform_data.fl_server_nlb_ingress"]["actions"] == [
        "create"]
    assert _state_keys(root.s3) == [], "a blocked plan must not write state"

    dry = plan_and_apply_allowlist(root.tf, _vars("203.0.113.10"), lambda p: [], dry_run=True)
    assert (dry["changed"], dry["applied"], dry["outputs"]) == (True, False, {})
    assert "terraform_data.fl_server_nlb_ingress" in dry["addresses"]
    assert _state_keys(root.s3) == []

    done = plan_and_apply_allowlist(root.tf, _vars("203.0.113.10"), lambda p: [], dry_run=False)
    assert (done["exit_code"], done["applied"]) == (2, True)
    assert done["outputs"]["fl_server_allowlist"] == ["203.0.113.10/32"]
    assert _state_keys(root.s3) == [KEY]

    again = plan_and_apply_allowlist(root.tf, _vars("203.0.113.10"), lambda p: [], dry_run=False)
    assert (again["exit_code"], again["changed"], again["applied"]) == (0, False, False)
    assert again["addresses"] == []


@needs_terraform
def test_held_state_lock_and_invalid_vars_are_named(root: Root, tmp_path: Path) -> None:
    root.tf.write_tfvars(_vars("203.0.113.10", tag="latest"))
    with pytest.raises(TerraformError) as bad:
        root.tf.plan(tmp_path / "bad.tfplan")
    message = str(bad.value)
    assert "docker_image_tag must not be a floating latest tag" in message
    assert message == strip_ansi(message) and "\x1b[" not in message

    root.tf.write_tfvars(_vars("203.0.113.10"))
    lock = {"ID": "someone-else", "Operation": "OperationTypeApply", "Who": "ci@runner"}
    root.s3.put_object(Bucket=BUCKET, Key=f"{KEY}.tflock", Body=json.dumps(lock).encode())
    with pytest.raises(LockHeld, match="someone-else"):
        root.tf.plan(tmp_path / "locked.tfplan")


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TerraformError, match="terraform is not on PATH"):
        Terraform(tmp_path, env={"PATH": str(tmp_path)})
