"""Reading `terraform show -json` plans, so guards can refuse what Terraform would destroy.

Only what guards need is kept: addresses, types and the action list of each resource change,
plus a few facts about FLIP's own resources (the database's protection settings, whether the
slot pool parameter is emptied, which secret a secret version writes). ``before``/``after``
values are dropped on purpose: Terraform's JSON carries sensitive attribute values in clear
text, and nothing read here may end up in a plan file or a log.
"""

from __future__ import annotations

import json
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
# FLIP's FL control plane in its root: aws_ecs_service.fl_server["net-1"] / .fl_api["net-1"]
# and their task definitions, one per `local.fl_networks` (ecs_fl.tf@148693c5; older roots
# named them fl_server_net_1 with count). Changing them rolls the FL server or API (FG007).
ECS_TYPES = frozenset({"aws_ecs_service", "aws_ecs_task_definition"})
FL_SERVICE_MARKERS = ("fl_server", "fl_api", "fl-server", "fl-api")

# FLIP's root (`deploy/providers/AWS`) resources a plan must show for what they are:
# - the cloud trust EC2, `module "trust_ec2"` with `count = var.deploy_trust_ec2 ? 1 : 0`
#   (`main.tf`@65f052ba; `deploy_trust_ec2` defaults to true, `variables.tf`@2e00fa22);
# - the slot pool, `aws_ssm_parameter.fl_kit_slot_names` = `var.FL_KIT_SLOT_NAMES`, default
#   "[]": "Empty => NoFreeKitSlotError on trust registration" (`variables.tf`@2e00fa22);
# - FLIP_API, `module.flip_api_secret` (terraform-aws-modules/secrets-manager 2.0.0) whose
#   `secret_string` is jsonencode of `var.AES_KEY_BASE64`, `INTERNAL_SERVICE_KEY_HASH`,
#   `INTERNAL_SERVICE_KEY` (and on E2 `TRUST_API_KEY_HASHES`) (`main.tf`@65f052ba, @01328ab0).
TRUST_EC2_MODULE = "module.trust_ec2"
SLOT_POOL_ADDRESS = "aws_ssm_parameter.fl_kit_slot_names"
SECRET_VERSION_TYPE = "aws_secretsmanager_secret_version"
# Kubernetes trusts' NLB rules (`main.tf`@65f052ba), from `var.k8s_trust_public_ips`
# (default []), which flipgitops does not supply.
K8S_RULE_PREFIX = "aws_security_group_rule.k8s_trust_fl_server_nlb"
FLIP_API_SECRET_MODULE = "module.flip_api_secret"


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
    # aws_ssm_parameter.fl_kit_slot_names only: the parameter is set to an empty JSON list.
    empties_slot_pool: bool = False
    # aws_secretsmanager_secret_version only: the secret_id it writes (an ARN or a name).
    secret_id: str | None = None

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

    def notes(self) -> tuple[str, ...]:
        """What a reviewer must read in the plan even though no guard blocks it."""
        out: list[str] = []
        trust = self.trust_ec2_changes()
        created = [rc.address for rc in trust if rc.kind == "create"]
        removed = [rc.address for rc in trust if rc.removes]
        if created:
            out.append(f"the hub's Terraform would CREATE the cloud trust EC2 host "
                       f"({TRUST_EC2_MODULE}: {', '.join(created[:4])}): FLIP's "
                       "deploy_trust_ec2 defaults to true; export TF_VAR_deploy_trust_ec2=false "
                       "for a hub whose trusts all run on their own hosts")
        if removed:
            out.append(f"the hub's Terraform would DESTROY the cloud trust EC2 host "
                       f"({TRUST_EC2_MODULE}: {', '.join(removed[:4])}) and any trust stack on "
                       "it: TF_VAR_deploy_trust_ec2 is false in this environment")
        k8s = [rc.address for rc in self._changing()
               if rc.address.startswith(K8S_RULE_PREFIX) and rc.removes]
        if k8s:
            out.append(f"the hub's Terraform would REVOKE {len(k8s)} Kubernetes trust rule(s) on "
                       f"the FL server NLB ({', '.join(k8s[:4])}): check TF_VAR_"
                       "k8s_trust_public_ips in this environment")
        return tuple(out)

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

    def _changing(self) -> tuple[ResourceChange, ...]:
        return tuple(rc for rc in self.resource_changes
                     if rc.mode == "managed" and rc.kind not in ("no-op", "read"))

    def trust_ec2_changes(self) -> tuple[ResourceChange, ...]:
        """Resources of FLIP's cloud trust host (`module.trust_ec2[0]`) the plan changes."""
        return tuple(rc for rc in self._changing()
                     if rc.address == TRUST_EC2_MODULE
                     or rc.address.startswith((TRUST_EC2_MODULE + ".", TRUST_EC2_MODULE + "[")))

    def slot_pool_emptied(self) -> tuple[ResourceChange, ...]:
        return tuple(rc for rc in self._changing() if rc.empties_slot_pool)

    def secret_rewrites(self, secret_name: str) -> tuple[ResourceChange, ...]:
        """Versions of the hub secret the plan would write over (update, replace, delete):
        Terraform puts its variables' keys back, whatever flipgitops rotated or wrote since.
        A first version (create) is a new hub, not a rewrite."""
        def of_secret(rc: ResourceChange) -> bool:
            sid = rc.secret_id or ""
            return (rc.address.startswith(FLIP_API_SECRET_MODULE + ".") or sid == secret_name
                    or f":secret:{secret_name}-" in sid)
        return tuple(rc for rc in self._changing()
                     if rc.type == SECRET_VERSION_TYPE and rc.kind != "create" and of_secret(rc))


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
    address = str(raw["address"])
    return ResourceChange(
        address=address,
        type=rtype,
        name=str(raw.get("name", "")),
        provider_name=str(raw.get("provider_name", "")),
        actions=tuple(actions),
        mode=str(raw.get("mode", "managed")),
        disables_protection=rtype == DATABASE_TYPE and _disables_protection(change),
        empties_slot_pool=address == SLOT_POOL_ADDRESS and _empty_list(change),
        secret_id=_secret_id(change) if rtype == SECRET_VERSION_TYPE else None,
    )


def _side(change: Mapping[str, Any], side: str) -> Mapping[str, Any]:
    value = change.get(side)
    return value if isinstance(value, Mapping) else {}


def _empty_list(change: Mapping[str, Any]) -> bool:
    """The parameter's new value is the JSON list ``[]`` (a known value, not one Terraform
    computes at apply time)."""
    value = _side(change, "after").get("value")
    if not isinstance(value, str):
        return False
    try:
        return bool(json.loads(value) == [])
    except ValueError:
        return False


def _secret_id(change: Mapping[str, Any]) -> str | None:
    for side in ("before", "after"):
        sid = _side(change, side).get("secret_id")
        if isinstance(sid, str) and sid:
            return sid
    return None


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
