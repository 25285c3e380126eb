"""core/terraform_plan: typed records from `terraform show -json` plans (fixture JSON)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flipgitops.core.terraform_plan import (
    PROTECTED_TYPES,
    TerraformPlanFormatError,
    parse_plan,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tfplans"
DB = "module.flip_db.module.db_instance.aws_db_instance.this[0]"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


def test_action_lists_become_kinds() -> None:
    plan = parse_plan(load("allowlist_only.json"))
    kinds = {rc.address: rc.kind for rc in plan.resource_changes}
    assert kinds == {
        'aws_security_group_rule.local_trust_fl_server_nlb["203.0.113.11"]': "no-op",
        'aws_security_group_rule.local_trust_fl_server_nlb["203.0.113.12"]': "create",
        'aws_security_group_rule.local_trust_fl_server_nlb["203.0.113.99"]': "delete",
        DB: "no-op",
        "data.aws_caller_identity.current": "read",
        "aws_ecs_service.flip_api": "update",
    }
    assert plan.format_version == "1.2"
    assert plan.terraform_version == "1.9.8"
    assert plan.removing(PROTECTED_TYPES) == ()


def test_both_replace_orders_are_replacements() -> None:
    plan = parse_plan(load("protected_replace.json"))
    by_addr = {rc.address: rc for rc in plan.resource_changes}
    assert by_addr["aws_secretsmanager_secret.flip_api"].actions == ("create", "delete")
    assert by_addr["aws_secretsmanager_secret.flip_api"].kind == "replace"
    assert by_addr["aws_s3_bucket.uploads"].kind == "replace"
    assert by_addr["aws_kms_key.flip"].kind == "delete"
    removing = [rc.address for rc in plan.removing(PROTECTED_TYPES)]
    # The cognito pool is only updated; the EC2 instance is replaced but is not protected.
    assert removing == ["aws_kms_key.flip", "aws_s3_bucket.uploads",
                        "aws_secretsmanager_secret.flip_api"]


def test_database_replace_and_delete_are_removals() -> None:
    replace = parse_plan(load("db_replace.json"))
    delete = parse_plan(load("db_delete.json"))
    assert [rc.kind for rc in replace.removing({"aws_db_instance"})] == ["replace"]
    assert [rc.kind for rc in delete.removing({"aws_db_instance"})] == ["delete"]
    assert parse_plan(load("no_changes.json")).removing({"aws_db_instance"}) == ()


@pytest.mark.parametrize("fixture", ["db_unprotect.json", "db_skip_final_snapshot.json"])
def test_database_protection_turned_off_is_detected(fixture: str) -> None:
    plan = parse_plan(load(fixture))
    assert [rc.address for rc in plan.database_unprotecting()] == [DB]
    assert plan.removing({"aws_db_instance"}) == ()


def test_protection_kept_is_not_unprotecting() -> None:
    for fixture in ("no_changes.json", "allowlist_only.json", "db_delete.json"):
        assert parse_plan(load(fixture)).database_unprotecting() == ()


def test_attribute_values_are_not_kept() -> None:
    """Terraform JSON carries sensitive values in clear; the parsed plan must not."""
    raw = load("db_replace.json")
    assert "this-is-sensitive" in json.dumps(raw)
    assert "this-is-sensitive" not in repr(parse_plan(raw))


def test_data_sources_are_never_removals() -> None:
    raw = {"format_version": "1.2", "resource_changes": [
        {"address": "data.aws_kms_key.k", "mode": "data", "type": "aws_kms_key", "name": "k",
         "provider_name": "aws", "change": {"actions": ["delete"]}}]}
    assert parse_plan(raw).removing(PROTECTED_TYPES) == ()


def test_empty_plan_has_no_changes() -> None:
    plan = parse_plan({"format_version": "1.2", "terraform_version": "1.9.8"})
    assert plan.resource_changes == ()


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"resource_changes": []}, "format_version"),
        ({"format_version": "1.2", "resource_changes": {}}, "must be a list"),
        ({"format_version": "1.2", "resource_changes": [{"address": "a", "type": "t"}]},
         "change must be an object"),
        ({"format_version": "1.2", "resource_changes": [
            {"address": "a", "type": "t", "change": {"actions": "delete"}}]}, "actions"),
        ({"format_version": "1.2", "resource_changes": [
            {"type": "t", "change": {"actions": []}}]}, "address"),
    ],
)
def test_malformed_plans_are_refused(raw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TerraformPlanFormatError, match=fragment):
        parse_plan(raw)
