"""The hub's Terraform root driven by flipgitops: the real terraform binary, the offline
stand-in root (tests/fixtures/terraform/flip_root, FLIP's variable names), S3 backend on moto."""

from __future__ import annotations

import shutil
import sys
import types
from pathlib import Path
from typing import Any

import pytest
from aws_hubworld import REGION, context, make_manifest, new_clients, ports, run

from flipgitops.adapters.terraform import HubTerraform
from flipgitops.errors import TerraformError
from flipgitops.model.actions import ActionKind, TerraformParams
from flipgitops.sandbox.moto_server import MotoServer
from tests.tfroots import require_terraform, s3_backend, tree

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "terraform" / "flip_root"
BUCKET = "flip-tfstate-test"
KEY = "flip/terraform.tfstate"

pytestmark = pytest.mark.slow


@pytest.fixture(autouse=True)
def _terraform_on_path() -> None:
    require_terraform()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    target = tmp_path / "flip_root"
    shutil.copytree(FIXTURE, target)
    return target


@pytest.fixture
def backend(moto: MotoServer, tmp_path: Path) -> dict[str, Any]:
    new_clients().s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={
        "LocationConstraint": REGION})  # type: ignore[typeddict-item]
    rc = tmp_path / "terraformrc"
    rc.write_text("")
    config = s3_backend(moto.url, BUCKET, KEY, REGION)
    # Only the explicit backend endpoint may point Terraform at moto.
    return {"config": config, "env": {"TF_CLI_CONFIG_FILE": str(rc), "AWS_ENDPOINT_URL": ""}}


def params(*ips: str, environment: str = "dev") -> TerraformParams:
    return TerraformParams(local_trust_public_ips=ips, docker_image_tag="v2.3.0",
                           flip_fl_image_tag="v2.3.0", environment=environment)


def test_readonly_plan_leaves_the_root_byte_identical(root: Path, backend: dict[str, Any]
                                                      ) -> None:
    before = tree(root)
    tf = HubTerraform(root, backend["config"], env=backend["env"], timeout=180)
    plan = tf.plan_readonly(params("203.0.113.10"))
    assert tree(root) == before  # no tfvars, no .terraform, no lock file, no plan file
    changes = {rc["address"]: rc["change"] for rc in plan["resource_changes"]}
    rule = changes['terraform_data.local_trust_fl_server_nlb["203.0.113.10"]']
    assert rule["actions"] == ["create"]
    # `environment` went through FLIP's mapping: every non-prod environment is stag.
    assert changes["terraform_data.flip_api_image"]["after"]["input"]["environment"] == "stag"
    objects = new_clients().s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    assert objects == []  # nothing applied, no state lock left


def test_inputs_without_default_must_be_supplied(root: Path, backend: dict[str, Any],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (root / "variables_extra.tf").write_text(
        'variable "ADMIN_USER_PASSWORD" {\n  type      = string\n  sensitive = true\n}\n'
        'variable "AES_KEY_BASE64" {\n  type = string\n  validation {\n'
        '    condition     = length(var.AES_KEY_BASE64) > 0\n    error_message = "default = x"\n'
        '  }\n}\n')
    tf = HubTerraform(root, backend["config"], env=backend["env"], timeout=180)
    with pytest.raises(TerraformError) as err:
        tf.plan_readonly(params())
    assert "ADMIN_USER_PASSWORD, AES_KEY_BASE64" in str(err.value)
    assert "print-tf-env" in str(err.value)
    monkeypatch.setenv("TF_VAR_ADMIN_USER_PASSWORD", "from-ci")
    monkeypatch.setenv("TF_VAR_AES_KEY_BASE64", "QUVT")
    assert tf.plan_readonly(params())["resource_changes"]


def _guards(monkeypatch: pytest.MonkeyPatch, findings: list[str]) -> list[dict[str, Any]]:
    """Stands in for the core helper's `core.guards.check_terraform_plan` (not written yet)."""
    seen: list[dict[str, Any]] = []
    module = types.ModuleType("flipgitops.core.guards")

    def check_terraform_plan(manifest: Any, plan: dict[str, Any], *, allow: Any,
                             fl_quiesced: bool) -> list[str]:
        seen.append(plan)
        return findings

    module.check_terraform_plan = check_terraform_plan  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "flipgitops.core.guards", module)
    return seen


def test_apply_refused_by_the_guards_applies_nothing(root: Path, backend: dict[str, Any],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _guards(monkeypatch, ["FG008: terraform_data.flip_api_secret would be replaced"])
    m = make_manifest()
    p = ports(m, new_clients())
    p.terraform = HubTerraform(root, backend["config"], env=backend["env"], timeout=180)
    out = run(context(m, p), ActionKind.TERRAFORM_APPLY, "terraform",
              params("203.0.113.10").model_dump())
    assert out.blocked and not out.ok and "FG008" in out.message
    assert seen and "resource_changes" in seen[0]
    assert "Contents" not in new_clients().s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)


def test_apply_applies_the_checked_plan(root: Path, backend: dict[str, Any],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    _guards(monkeypatch, [])
    m = make_manifest()
    p = ports(m, new_clients())
    p.terraform = HubTerraform(root, backend["config"], env=backend["env"], timeout=180)
    before = tree(root)
    out = run(context(m, p), ActionKind.TERRAFORM_APPLY, "terraform",
              params("203.0.113.10").model_dump())
    assert out.ok and out.changed, out.message
    assert new_clients().s3.list_objects_v2(Bucket=BUCKET, Prefix=KEY)["KeyCount"] == 1
    added = set(tree(root)) - set(before)
    assert added <= {".terraform.lock.hcl"}  # no tfvars, no plan, no .terraform in the root
    again = run(context(m, p), ActionKind.TERRAFORM_APPLY, "terraform",
                params("203.0.113.10").model_dump())
    assert again.ok and not again.changed
