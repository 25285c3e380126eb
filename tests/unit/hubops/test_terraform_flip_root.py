"""Terraform plans of FLIP's real root, shown for what they are (plan JSON fixtures with FLIP's
addresses): the cloud trust EC2 created or destroyed is a note; FLIP_API rewritten from CI's
variables and the slot pool emptied are FG008, overridable, and both guard plan and apply."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flipgitops.core.guards import check_terraform_plan, terraform_violations
from flipgitops.core.planner import plan
from flipgitops.core.render import render_plan
from flipgitops.core.terraform_plan import parse_plan
from flipgitops.model.flip import terraform_environment
from flipgitops.model.plan import PlanOptions
from tests.builders import manifest, observed_matching

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "tfplans"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def fg008(name: str, **kw: Any) -> list[str]:
    return [v.message for v in terraform_violations(manifest(1, **kw), load(name))
            if v.guard == "FG008"]


def test_the_environment_goes_to_the_roots_prod_or_stag() -> None:
    assert [terraform_environment(e) for e in ("prod", "lza-prod", "stag", "dev", "qa")] == [
        "prod", "prod", "stag", "stag", "stag"]


def test_a_cloud_trust_host_created_or_destroyed_is_a_note_not_a_block() -> None:
    created = parse_plan(load("trust_ec2_create.json"))
    assert [rc.address for rc in created.trust_ec2_changes()] == [
        "module.trust_ec2[0].aws_iam_role.ssm", "module.trust_ec2[0].aws_instance.this"]
    (note,) = created.notes()
    assert "CREATE the cloud trust EC2" in note and "TF_VAR_deploy_trust_ec2=false" in note
    gone, k8s = parse_plan(load("trust_ec2_destroy.json")).notes()
    assert "DESTROY the cloud trust EC2" in gone
    assert "REVOKE 1 Kubernetes trust rule" in k8s and "198.51.100.40" in k8s
    assert fg008("trust_ec2_create.json") == []
    for quiet in ("allowlist_only.json", "no_changes.json", "slot_pool_empty.json"):
        assert parse_plan(load(quiet)).notes() == ()


def test_the_note_reaches_the_pr_plan() -> None:
    m = manifest(1, allowlist="terraform")
    p = plan(m, observed_matching(m), PlanOptions(terraform_plan=load("trust_ec2_create.json")))
    assert any("CREATE the cloud trust EC2" in n for n in p.notes)
    assert "cloud trust EC2" in render_plan(p, "markdown")
    assert not any(v.guard == "FG008" for v in p.violations)


def test_an_emptied_slot_pool_is_fg008_a_grown_one_is_not() -> None:
    (msg,) = fg008("slot_pool_empty.json")
    assert "aws_ssm_parameter.fl_kit_slot_names" in msg and "TF_VAR_FL_KIT_SLOT_NAMES" in msg
    assert fg008("slot_pool_grown.json") == []


@pytest.mark.parametrize(("registry", "hashes"), [("database", False), ("secret", True)])
def test_flip_api_rewritten_from_ci_is_fg008_naming_the_variables(registry: str,
                                                                   hashes: bool) -> None:
    (msg,) = fg008("flip_api_rewrite.json", registry=registry)
    assert "module.flip_api_secret.aws_secretsmanager_secret_version.this[0]" in msg
    assert "INTERNAL_SERVICE_KEY_HASH" in msg and ("TRUST_API_KEY_HASHES" in msg) is hashes
    assert "this-is-sensitive" not in msg  # values are never read
    assert fg008("other_secret_rewrite.json") == []


def test_apply_time_refuses_the_same_plans_unless_allowed() -> None:
    m = manifest(1)
    for name in ("flip_api_rewrite.json", "slot_pool_empty.json"):
        refused = check_terraform_plan(m, load(name), allow=frozenset(), fl_quiesced=False)
        assert refused and refused[0].startswith("FG008: ")
        assert check_terraform_plan(m, load(name), allow=frozenset({"FG008"}),
                                    fl_quiesced=False) == []
    assert check_terraform_plan(m, load("trust_ec2_create.json"), allow=frozenset(),
                                fl_quiesced=False) == []


def test_missing_root_inputs_are_named_before_any_terraform_runs(tmp_path: Path) -> None:
    """FLIP's root declares most of its inputs without a default (variables.tf@2e00fa22);
    flipgitops supplies four, CI's `make print-tf-env` the rest as TF_VAR_*."""
    from flipgitops.adapters.terraform import HubTerraform
    from flipgitops.errors import TerraformError
    from flipgitops.model.actions import TerraformParams

    blocks = [f'variable "{n}" {{\n  type = string\n}}\n' for n in
              ("AWS_REGION", "VPC_NAME", "INTERNAL_SERVICE_KEY", "INTERNAL_SERVICE_KEY_HASH")]
    blocks += ['variable "environment" {\n  type    = string\n  default = "stag"\n}\n',
               'variable "local_trust_public_ips" {\n  type    = list(string)\n'
               '  default = []\n}\n',
               'variable "FL_KIT_SLOT_NAMES" {\n  type    = string\n  default = "[]"\n}\n']
    (tmp_path / "variables.tf").write_text("\n".join(blocks))
    tf = HubTerraform(tmp_path, {}, env={"TF_VAR_AWS_REGION": "eu-west-2"})
    params = TerraformParams(local_trust_public_ips=("203.0.113.11",), docker_image_tag="v2.3.0",
                             flip_fl_image_tag="v2.3.0", environment="prod")
    with pytest.raises(TerraformError) as err:
        tf.plan_readonly(params)
    text = str(err.value)
    assert "needs 3 input(s)" in text
    assert "INTERNAL_SERVICE_KEY, INTERNAL_SERVICE_KEY_HASH, VPC_NAME" in text
    assert "make print-tf-env" in text


def test_a_root_without_the_allowlist_variable_is_refused_before_terraform_runs(
        tmp_path: Path) -> None:
    """FLIP's older roots named it `local_trust_public_ip` (one string). flipgitops passes
    only declared variables, so such a root would apply cleanly and never allow an IP."""
    import shutil

    from flipgitops.adapters.terraform import HubTerraform
    from flipgitops.errors import TerraformError
    from flipgitops.model.actions import TerraformParams

    root = tmp_path / "root"
    shutil.copytree(FIXTURES.parent / "terraform" / "flip_root", root)
    variables = root / "variables.tf"
    variables.write_text(variables.read_text().replace(
        'variable "local_trust_public_ips"', 'variable "local_trust_public_ip"'))
    before = sorted((p.name, p.read_bytes()) for p in root.iterdir() if p.is_file())
    params = TerraformParams(local_trust_public_ips=("203.0.113.10",),
                             docker_image_tag="v2.3.0", flip_fl_image_tag="v2.3.0",
                             environment="dev")
    tf = HubTerraform(root, {}, binary="terraform-is-never-run")
    with pytest.raises(TerraformError, match="declares no variable 'local_trust_public_ips'"):
        tf.plan_readonly(params)
    assert sorted((p.name, p.read_bytes()) for p in root.iterdir() if p.is_file()) == before
