"""Reading `terraform show -json` plans, so guards can refuse what Terraform would destroy.

Only what guards need is kept: addresses, types and the action list of each resource change,
plus two booleans for the database's protection settings. ``before``/``after`` values are
dropped on purpose: Terraform's JSON carries sensitive attribute values in clear text, and
nothing read here may end up in a plan file or a log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

ChangeKind = Literal["create", "update", "delete", "replace", "no-op", "read", "other"]

# Resource types whose loss is unrecoverable or locks users out (FG008, every environment).
PROTECTED_TYPES = frozenset(
    {
        "aws_db_instance",
        "aws_secretsmanager_secret",
        "aws_cognito_user_pool",
        "aws_s3_bucket",
        "aws_kms_key",
    }
)
DATABASE_TYPE = "aws_db_instance"
# FLIP's FL control plane in its root: aws_ecs_service.fl_server_net_1 / .fl_api_net_1 and
# their task definitions. Changing them rolls the FL server or API (FG007).
ECS_TYPES = frozenset({"aws_ecs_service", "aws_ecs_task_definition"})
FL_SERVICE_MARKERS = ("fl_server", "fl_api", "fl-server", "fl-api")


class TerraformPlanFormatError(ValueError):
    """The JSON is not a `terraform show -json` plan we can judge; refuse rather than guess."""


@dataclass(frozen=True)
class ResourceChange:
    address: str
    type: str
    name: str
    provider_name: str
    actions: tuple[str, ...]
    mode: str = "managed"
    # aws_db_instance only: the change turns deletion protection off / skips the final snapshot.
    disables_protection: bool = False

    @property
    def kind(self) -> ChangeKind:
        acts = set(self.actions)
        if {"delete", "create"} <= acts:
            return "replace"
        singles: tuple[ChangeKind, ...] = ("create", "update", "delete", "no-op", "read")
        return next((k for k in singles if acts == {k}), "other")

    @property
    def removes(self) -> bool:
        """Deleted outright or replaced: either way the live object is destroyed."""
        return "delete" in self.actions


@dataclass(frozen=True)
class TerraformPlan:
    format_version: str
    terraform_version: str
    resource_changes: tuple[ResourceChange, ...]

    def removing(self, types: Iterable[str]) -> tuple[ResourceChange, ...]:
        """Managed resources of ``types`` the plan would delete or replace, by address."""
        wanted = frozenset(types)
        return tuple(
            rc
            for rc in self.resource_changes
            if rc.mode == "managed" and rc.type in wanted and rc.removes
        )

    def fl_service_changes(self) -> tuple[ResourceChange, ...]:
        """FL server/API services or task definitions the plan would change. FLIP's services
        follow the newest task-definition revision, so even a Terraform run meant only for
        the allowlist restarts the FL server when its image variable moved since Terraform
        last ran (flipgitops deploys images through ECS)."""
        return tuple(
            rc for rc in self.resource_changes
            if rc.mode == "managed" and rc.type in ECS_TYPES
            and rc.kind not in ("no-op", "read")
            and any(m in rc.address for m in FL_SERVICE_MARKERS)
        )

    def database_unprotecting(self) -> tuple[ResourceChange, ...]:
        return tuple(rc for rc in self.resource_changes if rc.disables_protection)


def parse_plan(data: Mapping[str, Any]) -> TerraformPlan:
    """Typed view of a plan; raises TerraformPlanFormatError on anything unexpected."""
    if not isinstance(data, Mapping):
        raise TerraformPlanFormatError("terraform plan JSON must be an object")
    if "format_version" not in data:
        raise TerraformPlanFormatError(
            "not a `terraform show -json` plan: no format_version (pass the plan file, "
            "not the state)"
        )
    raw_changes = data.get("resource_changes", [])
    if not isinstance(raw_changes, list):
        raise TerraformPlanFormatError("resource_changes must be a list")
    changes = tuple(_resource_change(i, rc) for i, rc in enumerate(raw_changes))
    return TerraformPlan(
        format_version=str(data["format_version"]),
        terraform_version=str(data.get("terraform_version", "")),
        resource_changes=tuple(sorted(changes, key=lambda rc: rc.address)),
    )


def _resource_change(index: int, raw: Any) -> ResourceChange:
    where = f"resource_changes[{index}]"
    if not isinstance(raw, Mapping):
        raise TerraformPlanFormatError(f"{where} must be an object")
    change = raw.get("change")
    if not isinstance(change, Mapping):
        raise TerraformPlanFormatError(f"{where}.change must be an object")
    actions = change.get("actions")
    if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
        raise TerraformPlanFormatError(f"{where}.change.actions must be a list of strings")
    for key in ("address", "type"):
        if not isinstance(raw.get(key), str):
            raise TerraformPlanFormatError(f"{where}.{key} must be a string")
    rtype = str(raw["type"])
    return ResourceChange(
        address=str(raw["address"]),
        type=rtype,
        name=str(raw.get("name", "")),
        provider_name=str(raw.get("provider_name", "")),
        actions=tuple(actions),
        mode=str(raw.get("mode", "managed")),
        disables_protection=rtype == DATABASE_TYPE and _disables_protection(change),
    )


def _disables_protection(change: Mapping[str, Any]) -> bool:
    before = change.get("before") if isinstance(change.get("before"), Mapping) else {}
    after = change.get("after") if isinstance(change.get("after"), Mapping) else {}
    assert isinstance(before, Mapping) and isinstance(after, Mapping)
    if not after:
        return False
    protection_off = after.get("deletion_protection") is False and before.get(
        "deletion_protection", True
    ) is not False
    snapshot_off = after.get("skip_final_snapshot") is True and before.get(
        "skip_final_snapshot", False
    ) is not True
    return protection_off or snapshot_off
