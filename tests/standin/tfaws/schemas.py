"""The resource types the stand-in plays, with the AWS provider's attribute names and which
changes replace the object (ForceNew) rather than update it in place.

Sources, hashicorp/terraform-provider-aws v6 documentation (registry pages
`docs/resources/<type>`) and the changelog where a behaviour changed:

- ``aws_db_instance`` (r/db_instance): ``username``, ``db_name``, ``storage_encrypted``,
  ``kms_key_id``, ``availability_zone``, ``engine``, ``character_set_name``, ``timezone`` and
  ``snapshot_identifier`` force a new instance; ``identifier`` has been renamed in place
  (ModifyDBInstance NewDBInstanceIdentifier) since v5.0.0, which also made ``id`` the
  resource id (``db-…``) rather than the identifier (terraform-provider-aws#31232).
  ``instance_class``, ``engine_version``, ``allocated_storage``, ``deletion_protection``,
  ``skip_final_snapshot``, ``backup_retention_period`` update in place.
- ``aws_ecs_task_definition`` (r/ecs_task_definition): task definitions are immutable
  revisions, so every argument but ``tags`` forces a new one (a new revision; the old one is
  deregistered). ``arn`` and ``revision`` are computed.
- ``aws_ecs_service`` (r/ecs_service): ``name``, ``cluster`` and ``launch_type`` force a new
  service; ``task_definition``, ``desired_count`` and the deployment percentages update it
  in place (UpdateService, which starts a new deployment: the tasks roll).
- ``aws_security_group_rule`` (r/security_group_rule): every argument forces a new rule
  except ``description`` (UpdateSecurityGroupRuleDescriptions*).

Nested blocks (``timeouts``, ``network_configuration``, ``volume`` …) are left out: the
stand-in root does not use them, and an argument the schema lacks is refused by Terraform
itself with its usual "Unsupported argument" error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STRING = "string"
NUMBER = "number"
BOOL = "bool"
STRING_SET = ["set", "string"]
STRING_LIST = ["list", "string"]
STRING_MAP = ["map", "string"]


@dataclass(frozen=True)
class Attr:
    name: str
    type: Any  # cty type in its JSON form: "string", ["set", "string"], ...
    required: bool = False
    optional: bool = False
    computed: bool = False
    force_new: bool = False
    sensitive: bool = False
    default: Any = None  # what an unset optional+computed attribute becomes on create
    description: str = ""


@dataclass(frozen=True)
class ResourceType:
    name: str
    attrs: tuple[Attr, ...]
    version: int = 0

    def attr(self, name: str) -> Attr | None:
        return next((a for a in self.attrs if a.name == name), None)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(a.name for a in self.attrs)


def _req(name: str, type_: Any = STRING, *, force_new: bool = False, **kw: Any) -> Attr:
    return Attr(name, type_, required=True, force_new=force_new, **kw)


def _opt(name: str, type_: Any = STRING, *, force_new: bool = False, computed: bool = False,
         default: Any = None, **kw: Any) -> Attr:
    return Attr(name, type_, optional=True, computed=computed or default is not None,
                force_new=force_new, default=default, **kw)


def _out(name: str, type_: Any = STRING, **kw: Any) -> Attr:
    return Attr(name, type_, computed=True, **kw)


_TAGS = (_opt("tags", STRING_MAP), _out("tags_all", STRING_MAP))

DB_INSTANCE = ResourceType("aws_db_instance", (
    _out("id", description="The RDS resource id (db-...), since provider v5"),
    _out("arn"), _out("address"), _out("endpoint"), _out("resource_id"),
    _opt("identifier", computed=True),
    _opt("engine", computed=True, force_new=True),
    _opt("engine_version", computed=True),
    _req("instance_class"),
    _opt("allocated_storage", NUMBER, computed=True),
    _opt("username", computed=True, force_new=True),
    _opt("password", sensitive=True),
    _opt("db_name", computed=True, force_new=True),
    _opt("storage_encrypted", BOOL, force_new=True, default=False),
    _opt("kms_key_id", computed=True, force_new=True),
    _opt("availability_zone", computed=True, force_new=True),
    _opt("character_set_name", computed=True, force_new=True),
    _opt("timezone", computed=True, force_new=True),
    _opt("snapshot_identifier", force_new=True),
    _opt("deletion_protection", BOOL),
    _opt("skip_final_snapshot", BOOL, default=False),
    _opt("final_snapshot_identifier"),
    _opt("backup_retention_period", NUMBER, computed=True),
    _opt("auto_minor_version_upgrade", BOOL, default=True),
    _opt("db_subnet_group_name", computed=True),
    _opt("vpc_security_group_ids", STRING_SET, computed=True),
    _opt("parameter_group_name", computed=True),
    *_TAGS,
), version=2)

ECS_TASK_DEFINITION = ResourceType("aws_ecs_task_definition", (
    _out("id"), _out("arn"), _out("arn_without_revision"), _out("revision", NUMBER),
    _req("family", force_new=True),
    _req("container_definitions", force_new=True),
    _opt("cpu", force_new=True),
    _opt("memory", force_new=True),
    _opt("network_mode", computed=True, force_new=True),
    _opt("requires_compatibilities", STRING_SET, force_new=True),
    _opt("execution_role_arn", force_new=True),
    _opt("task_role_arn", force_new=True),
    *_TAGS,
), version=1)

ECS_SERVICE = ResourceType("aws_ecs_service", (
    _out("id"),
    _req("name", force_new=True),
    _opt("cluster", computed=True, force_new=True),
    _opt("task_definition"),
    _opt("desired_count", NUMBER),
    _opt("launch_type", computed=True, force_new=True),
    _opt("deployment_minimum_healthy_percent", NUMBER, default=100),
    _opt("deployment_maximum_percent", NUMBER, default=200),
    *_TAGS,
), version=1)

SECURITY_GROUP_RULE = ResourceType("aws_security_group_rule", (
    _out("id"), _out("security_group_rule_id"),
    _req("type", force_new=True),
    _req("from_port", NUMBER, force_new=True),
    _req("to_port", NUMBER, force_new=True),
    _req("protocol", force_new=True),
    _req("security_group_id", force_new=True),
    _opt("cidr_blocks", STRING_LIST, force_new=True),
    _opt("ipv6_cidr_blocks", STRING_LIST, force_new=True),
    _opt("prefix_list_ids", STRING_LIST, force_new=True),
    _opt("source_security_group_id", computed=True, force_new=True),
    _opt("self", BOOL, force_new=True, default=False),
    _opt("description"),
), version=2)

RESOURCES: dict[str, ResourceType] = {r.name: r for r in (
    DB_INSTANCE, ECS_TASK_DEFINITION, ECS_SERVICE, SECURITY_GROUP_RULE)}

# The provider block: what FLIP's root sets (`region = var.AWS_REGION`) and what a test sets
# to keep a real provider offline; the stand-in accepts them and never calls AWS.
PROVIDER = ResourceType("provider", (
    _opt("region"), _opt("profile"), _opt("access_key"), _opt("secret_key", sensitive=True),
    _opt("skip_credentials_validation", BOOL), _opt("skip_requesting_account_id", BOOL),
    _opt("skip_metadata_api_check", STRING), _opt("skip_region_validation", BOOL),
))
