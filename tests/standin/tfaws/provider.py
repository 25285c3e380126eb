"""The provider's RPCs as bytes in, bytes out: tfplugin6 requests decoded, answered, encoded.

Kept apart from the gRPC server so the unit tests can drive every RPC without a process.
Field numbers are tfplugin6.8's (`docs/plugin-protocol/tfplugin6.8.proto`, Terraform).

Planning follows what Terraform asks of a provider (`docs/resource-instance-change-
lifecycle.md`): the planned state keeps every configured value as Terraform proposed it;
a computed attribute the configuration leaves unset keeps its prior value on update and is
its default or *unknown* on create; a changed ForceNew attribute is returned in
``requires_replace`` (Terraform then plans the replacement as a create). Apply fills what
was unknown with made-up ids and ARNs in the account and region the provider was given.

Errors the user can cause (an unknown resource type, a missing required argument, state
this provider cannot read) come back as Terraform diagnostics, never as a traceback: every
handler is wrapped by :meth:`Provider.call`.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.standin.tfaws import cty, wire
from tests.standin.tfaws.schemas import PROVIDER, RESOURCES, Attr, ResourceType

ACCOUNT_ID = "123456789012"  # moto's default account, the sandbox's
ERROR, WARNING = 1, 2


class ProviderError(Exception):
    """An error for the user: becomes one ERROR diagnostic (summary, detail)."""

    def __init__(self, summary: str, detail: str = "", attribute: str | None = None) -> None:
        super().__init__(summary)
        self.summary, self.detail, self.attribute = summary, detail, attribute


# --- encoding helpers -------------------------------------------------------------------------


def diagnostic(severity: int, summary: str, detail: str = "", attribute: str | None = None
               ) -> bytes:
    # Diagnostic: 1 severity, 2 summary, 3 detail, 4 attribute (AttributePath).
    body = wire.message([(1, severity), (2, summary), (3, detail)])
    if attribute:
        body += wire.submessage(4, attribute_path(attribute))
    return body


def attribute_path(name: str) -> bytes:
    # AttributePath: 1 repeated Step; Step: 1 attribute_name.
    return wire.submessage(1, wire.message([(1, name)]))


def dynamic_value(value: Any) -> bytes:
    # DynamicValue: 1 msgpack, 2 json.
    return wire.submessage(1, cty.dumps(value))


def _dynamic(fields: dict[int, list[int | bytes]], number: int) -> Any:
    raw = wire.get_bytes(fields, number)
    if raw is None:
        return None
    dv = wire.decode(raw)
    packed = wire.get_bytes(dv, 1)
    if packed is not None:
        return cty.loads(packed)
    text = wire.get_bytes(dv, 2)
    return json.loads(text) if text else None


def _attribute(a: Attr) -> bytes:
    # Schema.Attribute: 1 name, 2 type (JSON), 3 description, 4 required, 5 optional,
    # 6 computed, 7 sensitive.
    return wire.message([(1, a.name), (2, json.dumps(a.type).encode()), (3, a.description),
                         (4, a.required), (5, a.optional), (6, a.computed), (7, a.sensitive)])


def schema(rt: ResourceType) -> bytes:
    # Schema: 1 version, 2 block; Block: 1 version, 2 repeated attributes.
    block = wire.field(1, rt.version) + b"".join(wire.submessage(2, _attribute(a))
                                                  for a in rt.attrs)
    return wire.field(1, rt.version) + wire.submessage(2, block)


def _map_entry(key: str, value: bytes) -> bytes:
    return wire.field(1, key) + wire.submessage(2, value)


# --- values -----------------------------------------------------------------------------------


def _resource(type_name: str) -> ResourceType:
    rt = RESOURCES.get(type_name)
    if rt is None:
        raise ProviderError(
            f"The stand-in aws provider does not support resource type {type_name!r}",
            "It plays only " + ", ".join(sorted(RESOURCES)) + " (tests/standin/tfaws).")
    return rt


def conform(rt: ResourceType, value: Any, what: str) -> dict[str, Any] | None:
    """An object with exactly the schema's attributes (cty requires every one present)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ProviderError(f"{rt.name}: {what} is not an object",
                            f"got {type(value).__name__}")
    extra = sorted(set(value) - set(rt.names))
    if extra:
        raise ProviderError(f"{rt.name}: {what} has attributes this schema lacks",
                            ", ".join(extra))
    return {name: value.get(name) for name in rt.names}


def _changed(a: Any, b: Any) -> bool:
    if a is cty.UNKNOWN or b is cty.UNKNOWN:
        return True
    if isinstance(a, list) and isinstance(b, list) and a and not isinstance(a[0], dict):
        return sorted(map(str, a)) != sorted(map(str, b))
    return bool(a != b)


def plan_change(rt: ResourceType, prior: dict[str, Any] | None,
                proposed: dict[str, Any] | None) -> tuple[dict[str, Any] | None, list[str]]:
    """The planned state and the attributes whose change forces a replacement."""
    if proposed is None:  # destroy
        return None, []
    planned = dict(proposed)
    replace: list[str] = []
    if prior is None:  # create
        for a in rt.attrs:
            if a.computed and planned.get(a.name) is None:
                planned[a.name] = a.default if a.default is not None else cty.UNKNOWN
    else:
        replace = [a.name for a in rt.attrs
                   if a.force_new and _changed(prior.get(a.name), planned.get(a.name))]
    if "tags_all" in planned:
        planned["tags_all"] = planned.get("tags") or {}
    return planned, replace


def _fill(rt: ResourceType, planned: dict[str, Any], region: str) -> dict[str, Any]:
    """What AWS would have answered: ids and ARNs for the unknowns, in this region."""
    out = dict(planned)
    token = secrets.token_hex(6)

    def put(name: str, value: Any) -> None:
        if out.get(name) is cty.UNKNOWN:
            out[name] = value

    if rt.name == "aws_db_instance":
        ident = out.get("identifier")
        if ident is cty.UNKNOWN or ident is None:
            ident = f"terraform-{token}"
        resource_id = f"db-{token.upper()}"
        put("identifier", ident)
        put("id", resource_id)
        put("resource_id", resource_id)
        put("arn", f"arn:aws:rds:{region}:{ACCOUNT_ID}:db:{ident}")
        put("address", f"{ident}.stand-in.{region}.rds.amazonaws.com")
        put("endpoint", f"{ident}.stand-in.{region}.rds.amazonaws.com:5432")
        major = str(out.get("engine_version") or "17.9").split(".")[0]
        for name, value in (("engine_version", "17.9"), ("allocated_storage", 20),
                            ("backup_retention_period", 0), ("username", "postgres"),
                            ("db_name", None), ("availability_zone", f"{region}a"),
                            ("parameter_group_name", f"default.postgres{major}"),
                            ("db_subnet_group_name", "default"),
                            ("vpc_security_group_ids", []), ("engine", "postgres")):
            put(name, value)
    elif rt.name == "aws_ecs_task_definition":
        arn = f"arn:aws:ecs:{region}:{ACCOUNT_ID}:task-definition/{out['family']}"
        put("revision", 1)
        put("arn", f"{arn}:1")
        put("arn_without_revision", arn)
        put("id", out["family"])
        put("network_mode", "bridge")
    elif rt.name == "aws_ecs_service":
        cluster = out.get("cluster")
        put("cluster", f"arn:aws:ecs:{region}:{ACCOUNT_ID}:cluster/default")
        put("launch_type", "EC2")
        put("id", f"arn:aws:ecs:{region}:{ACCOUNT_ID}:service/"
                  f"{str(cluster or 'default').rsplit('/', 1)[-1]}/{out['name']}")
    elif rt.name == "aws_security_group_rule":
        put("id", f"sgrule-{secrets.randbelow(10**10):010d}")
        put("security_group_rule_id", f"sgr-{token}")
        put("source_security_group_id", None)
    # Whatever is still unknown has no made-up value: null, as AWS leaves it unset.
    return {k: (None if v is cty.UNKNOWN else v) for k, v in out.items()}


# --- the RPCs ---------------------------------------------------------------------------------


# The response field of `repeated Diagnostic diagnostics`, per RPC (tfplugin6.8).
DIAGNOSTICS_FIELD: dict[str, int] = {
    "GetMetadata": 2, "GetProviderSchema": 4, "ValidateProviderConfig": 2,
    "ValidateResourceConfig": 1, "ValidateDataResourceConfig": 1,
    "UpgradeResourceState": 2, "ConfigureProvider": 1, "ReadResource": 2,
    "PlanResourceChange": 4, "ApplyResourceChange": 3, "ImportResourceState": 2,
    "ReadDataSource": 2, "GetFunctions": 2, "MoveResourceState": 2,
    "ValidateEphemeralResourceConfig": 1,
}


@dataclass
class Provider:
    """One provider process's worth of RPCs; ``region`` comes from ConfigureProvider."""

    region: str = "eu-west-2"

    def handlers(self) -> dict[str, Callable[[bytes], bytes]]:
        return {
            "GetMetadata": self.get_metadata,
            "GetProviderSchema": self.get_provider_schema,
            "ValidateProviderConfig": self.validate_provider_config,
            "ValidateResourceConfig": self.validate_resource_config,
            "ValidateDataResourceConfig": self.unsupported("data sources"),
            "UpgradeResourceState": self.upgrade_resource_state,
            "ConfigureProvider": self.configure_provider,
            "ReadResource": self.read_resource,
            "PlanResourceChange": self.plan_resource_change,
            "ApplyResourceChange": self.apply_resource_change,
            "ImportResourceState": self.unsupported("import"),
            "MoveResourceState": self.unsupported("moving state between resource types"),
            "ReadDataSource": self.unsupported("data sources"),
            "GetFunctions": lambda _req: b"",
            "ValidateEphemeralResourceConfig": self.unsupported("ephemeral resources"),
            "StopProvider": self.stop_provider,
        }

    def call(self, method: str, request: bytes) -> bytes:
        """Run one RPC; a failure becomes an ERROR diagnostic in that RPC's response."""
        handler = self.handlers().get(method)
        number = DIAGNOSTICS_FIELD.get(method)
        try:
            if handler is None:
                raise ProviderError(f"The stand-in aws provider does not implement {method}")
            return handler(request)
        except ProviderError as exc:
            diag = diagnostic(ERROR, exc.summary, exc.detail, exc.attribute)
        except (wire.WireError, cty.CtyError, ValueError, KeyError, TypeError) as exc:
            diag = diagnostic(ERROR, f"stand-in aws provider: {method} could not be answered",
                              f"{type(exc).__name__}: {exc}")
        if number is None:  # StopProvider: its error is a string field
            return wire.field(1, "stand-in aws provider: stop failed")
        return wire.submessage(number, diag)

    def unsupported(self, what: str) -> Callable[[bytes], bytes]:
        def handler(_request: bytes) -> bytes:
            raise ProviderError(f"The stand-in aws provider does not support {what}",
                                "It plays managed resources only (tests/standin/tfaws).")
        return handler

    def get_metadata(self, _request: bytes) -> bytes:
        # Response: 1 server_capabilities, 4 repeated ResourceMetadata {1 type_name}.
        return (wire.submessage(1, b"")
                + b"".join(wire.submessage(4, wire.field(1, name)) for name in RESOURCES))

    def get_provider_schema(self, _request: bytes) -> bytes:
        # Response: 1 provider, 2 map resource_schemas, 6 server_capabilities
        # (plan_destroy=1 and get_provider_schema_optional=2 both false: Terraform plans
        # destroys itself and asks for the schema in every process).
        return (wire.submessage(1, schema(PROVIDER))
                + b"".join(wire.submessage(2, _map_entry(name, schema(rt)))
                           for name, rt in RESOURCES.items())
                + wire.submessage(6, b""))

    def validate_provider_config(self, _request: bytes) -> bytes:
        return b""

    def validate_resource_config(self, request: bytes) -> bytes:
        # Request: 1 type_name, 2 config.
        req = wire.decode(request)
        rt = _resource(wire.get_str(req, 1))
        config = conform(rt, _dynamic(req, 2), "the configuration") or {}
        diags = [diagnostic(ERROR, f"{rt.name}: missing required argument {a.name!r}",
                            f"The argument {a.name!r} is required by {rt.name}.", a.name)
                 for a in rt.attrs if a.required and config.get(a.name) is None]
        if rt.name == "aws_security_group_rule" and config.get("type") not in (
                None, cty.UNKNOWN, "ingress", "egress"):
            diags.append(diagnostic(ERROR, "aws_security_group_rule: type must be ingress or "
                                    f"egress, not {config['type']!r}", attribute="type"))
        return b"".join(wire.submessage(1, d) for d in diags)

    def configure_provider(self, request: bytes) -> bytes:
        # Request: 1 terraform_version, 2 config.
        config = _dynamic(wire.decode(request), 2) or {}
        region = config.get("region") if isinstance(config, dict) else None
        if isinstance(region, str) and region:
            self.region = region
        return b""

    def upgrade_resource_state(self, request: bytes) -> bytes:
        # Request: 1 type_name, 2 version, 3 raw_state {1 json, 2 flatmap}.
        req = wire.decode(request)
        rt = _resource(wire.get_str(req, 1))
        raw = wire.decode(wire.get_bytes(req, 3) or b"")
        text = wire.get_bytes(raw, 1)
        if text is None:
            raise ProviderError(f"{rt.name}: state in the legacy flatmap format",
                                "The stand-in reads only JSON state (Terraform >= 0.12).")
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProviderError(f"{rt.name}: the state is not JSON", exc.msg) from None
        return wire.submessage(1, dynamic_value(conform(rt, value, "the stored state")))

    def read_resource(self, request: bytes) -> bytes:
        # Request: 1 type_name, 2 current_state, 3 private. Response: 1 new_state, 3 private.
        # Nothing exists outside Terraform's state: what it holds is what there is.
        req = wire.decode(request)
        rt = _resource(wire.get_str(req, 1))
        state = conform(rt, _dynamic(req, 2), "the current state")
        return (wire.submessage(1, dynamic_value(state))
                + wire.field(3, wire.get_bytes(req, 3)))

    def plan_resource_change(self, request: bytes) -> bytes:
        # Request: 1 type_name, 2 prior_state, 3 proposed_new_state, 4 config,
        # 5 prior_private. Response: 1 planned_state, 2 repeated requires_replace,
        # 3 planned_private.
        req = wire.decode(request)
        rt = _resource(wire.get_str(req, 1))
        prior = conform(rt, _dynamic(req, 2), "the prior state")
        proposed = conform(rt, _dynamic(req, 3), "the proposed state")
        planned, replace = plan_change(rt, prior, proposed)
        return (wire.submessage(1, dynamic_value(planned))
                + b"".join(wire.submessage(2, attribute_path(name)) for name in replace)
                + wire.field(3, wire.get_bytes(req, 5)))

    def apply_resource_change(self, request: bytes) -> bytes:
        # Request: 1 type_name, 2 prior_state, 3 planned_state, 4 config, 5 planned_private.
        # Response: 1 new_state, 2 private.
        req = wire.decode(request)
        rt = _resource(wire.get_str(req, 1))
        planned = conform(rt, _dynamic(req, 3), "the planned state")
        new = None if planned is None else _fill(rt, planned, self.region)
        return wire.submessage(1, dynamic_value(new)) + wire.field(2, wire.get_bytes(req, 5))

    def stop_provider(self, _request: bytes) -> bytes:
        return b""  # nothing runs between calls: there is nothing to stop
