"""Read side of the hub in AWS: one `ObservedHub` per observation (DESIGN.md §3).

The number of calls is fixed (about ten) whatever the number of trusts: the allowlist is one
filtered `describe_security_groups`, the registry one `get_secret_value`, the three services
one `describe_services`. Missing resources are facts (``exists=False``), never exceptions.
Secret values are reduced to hashes here, before anything else can see them.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from flipgitops.adapters.aws_session import Clients, call, error_code, must, translate
from flipgitops.errors import AwsError
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import (
    IngressRule,
    ObservedAllowlist,
    ObservedCognito,
    ObservedDatabase,
    ObservedHub,
    ObservedSecret,
    ObservedService,
)

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import IpPermissionOutputTypeDef

GENERATION_TAG = "flipgitops:generation"
SERVICE_ROLES = ("flip_api", "fl_api", "fl_server")

# Keys of the hub secret flipgitops understands; every other key is only shown masked.
REGISTRY_KEYS = (
    "trust_names",
    "trust_api_key_hashes",
    "trust_api_key_hashes_previous",
    "flipgitops_credentials_generations",
    "flipgitops_database_generations",
    "flipgitops_redeploy_pending",
)
AES_KEY = "aes_key"
CREDENTIALS_GENERATIONS = "flipgitops_credentials_generations"
DATABASE_GENERATIONS = "flipgitops_database_generations"
REDEPLOY_PENDING = "flipgitops_redeploy_pending"


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def mask(value: object) -> str:
    """The most a secret value may ever be shown as."""
    if isinstance(value, str):
        return "sha256:" + sha256_hex(value)[:12]
    return "present"


def image_tag(image: str | None) -> str | None:
    """The tag is the part after the last ':' (when that ':' is not a registry port)."""
    if not image:
        return None
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def with_tag(image: str, tag: str) -> str:
    """The same repository at another tag (a digest pin is dropped)."""
    name = image.split("@", 1)[0]
    head, _, last = name.rpartition("/")
    repo = last.rsplit(":", 1)[0]
    return f"{head}/{repo}:{tag}" if head else f"{repo}:{tag}"


# --- secret -------------------------------------------------------------------------------


def parse_secret(text: str | None, name: str) -> dict[str, Any]:
    """The hub secret as a dict; the error never quotes the content."""
    try:
        data = json.loads(text or "")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise AwsError(
            f"secret {name} is not a JSON object; flipgitops expects FLIP's key/value secret "
            "(fix it in Secrets Manager; its content is not shown)"
        )
    return data


def _json_field(data: dict[str, Any], key: str, kind: type) -> Any:
    """FLIP has stored registry fields both as JSON values and as JSON-encoded strings."""
    value = data.get(key)
    if isinstance(value, str) and kind is not str:
        try:
            value = json.loads(value)
        except ValueError:
            value = None
    return value if isinstance(value, kind) else kind()


Registry = tuple[list[str], dict[str, str], dict[str, str], dict[str, int]]


def _int_map(data: dict[str, Any], key: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for k, v in _json_field(data, key, dict).items():
        if isinstance(v, int) and not isinstance(v, bool):
            out[str(k)] = v
        elif isinstance(v, str) and v.isdigit():
            out[str(k)] = int(v)
    return out


def registry(data: dict[str, Any]) -> Registry:
    """(trust_names, hashes, previous hashes, generations) from a hub secret dict."""
    names = [str(n) for n in _json_field(data, "trust_names", list)]
    hashes = {str(k): str(v) for k, v in _json_field(data, "trust_api_key_hashes", dict).items()}
    previous = {
        str(k): str(v)
        for k, v in _json_field(data, "trust_api_key_hashes_previous", dict).items()
    }
    return names, hashes, previous, _int_map(data, CREDENTIALS_GENERATIONS)


def registry_database_generations(data: dict[str, Any]) -> dict[str, int]:
    """Trust name -> database generation its key was minted for. A separate key, so the
    int-valued credentials generations older flipgitops versions wrote keep their form;
    a trust missing here was registered at database generation 1."""
    return _int_map(data, DATABASE_GENERATIONS)


def redeploy_pending(data: dict[str, Any]) -> bool:
    """Whether a registry change was written that flip-api has not been redeployed for."""
    value = data.get(REDEPLOY_PENDING)
    return value is True or (isinstance(value, str) and value.lower() == "true")


def get_secret(clients: Clients, name: str, version_id: str | None = None) -> Any:
    """get_secret_value, None when the secret does not exist."""
    args: dict[str, Any] = {"SecretId": name}
    if version_id:
        args["VersionId"] = version_id
    doing = f"reading hub secret {name}"
    try:
        return clients.secretsmanager.get_secret_value(**args)
    except ClientError as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            return None
        if code == "InvalidRequestException":
            raise AwsError(
                f"AWS refused {doing} (InvalidRequestException): it is most likely scheduled "
                f"for deletion; restore it with `aws secretsmanager restore-secret --secret-id "
                f"{name}` if that was a mistake"
            ) from None
        raise translate(exc, doing=doing) from None
    except BotoCoreError as exc:
        raise translate(exc, doing=doing) from None


def observe_secret(clients: Clients, name: str) -> ObservedSecret:
    resp = get_secret(clients, name)
    if resp is None:
        return ObservedSecret(exists=False, name=name)
    data = parse_secret(resp.get("SecretString"), name)
    names, hashes, previous, generations = registry(data)
    aes = data.get(AES_KEY)
    return ObservedSecret(
        exists=True,
        name=name,
        version_id=resp.get("VersionId"),
        trust_names=tuple(names),
        trust_api_key_hashes=hashes,
        previous_key_hashes=previous,
        credentials_generations=generations,
        database_generations=registry_database_generations(data),
        redeploy_pending=redeploy_pending(data),
        aes_key_sha256=sha256_hex(aes) if isinstance(aes, str) else None,
        other_keys={
            k: mask(v) for k, v in sorted(data.items()) if k not in (*REGISTRY_KEYS, AES_KEY)
        },
    )


# --- allowlist ----------------------------------------------------------------------------


def find_group(clients: Clients, group_name: str) -> dict[str, Any] | None:
    """The security group by name (one filtered call); None when there is none."""
    resp = call(
        lambda: clients.ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [group_name]}]
        ),
        doing=f"reading security group {group_name}",
        missing=("InvalidGroup.NotFound",),
    )
    found = resp["SecurityGroups"] if resp else []
    groups = sorted(found, key=lambda g: g.get("GroupId", ""))
    groups = [g for g in groups if g.get("GroupName") == group_name]
    return dict(groups[0]) if groups else None


def _covers(perm: IpPermissionOutputTypeDef, port: int) -> bool:
    if perm.get("IpProtocol") == "-1":
        return True
    if perm.get("IpProtocol") not in ("tcp", "6"):
        return False
    return perm.get("FromPort", -1) <= port <= perm.get("ToPort", -1)


def rules_on_port(group: dict[str, Any], port: int) -> list[IngressRule]:
    """One rule per CIDR that lets traffic reach the FL port, descriptions kept."""
    rules: list[IngressRule] = []
    for perm in group.get("IpPermissions", []):
        if not _covers(perm, port):
            continue
        protocol = "tcp" if perm.get("IpProtocol") == "6" else str(perm.get("IpProtocol"))
        lo = perm.get("FromPort", 0) if protocol != "-1" else 0
        hi = perm.get("ToPort", 65535) if protocol != "-1" else 65535
        ranges = [(r.get("CidrIp"), r.get("Description")) for r in perm.get("IpRanges", [])]
        ranges += [(r.get("CidrIpv6"), r.get("Description")) for r in perm.get("Ipv6Ranges", [])]
        for cidr, description in ranges:
            if cidr:
                rules.append(
                    IngressRule(
                        cidr=cidr, from_port=lo, to_port=hi, protocol=protocol,
                        description=description,
                    )
                )
    return sorted(rules, key=lambda r: (r.cidr, r.from_port, r.to_port, r.protocol))


def observe_allowlist(clients: Clients, group_name: str, port: int) -> ObservedAllowlist:
    group = find_group(clients, group_name)
    if group is None:
        return ObservedAllowlist(exists=False, group_name=group_name)
    return ObservedAllowlist(
        exists=True,
        group_name=group_name,
        group_id=group.get("GroupId"),
        rules=tuple(rules_on_port(group, port)),
    )


# --- ECS ----------------------------------------------------------------------------------


def service_names(manifest: Manifest) -> dict[str, str]:
    services = manifest.hub.ecs.services
    return {role: getattr(services, role) for role in SERVICE_ROLES}


def describe_services(
    clients: Clients, cluster: str, names: list[str]
) -> dict[str, dict[str, Any]]:
    """Live (non-INACTIVE) services by name, in one call; absent ones are left out."""
    resp = call(
        lambda: clients.ecs.describe_services(cluster=cluster, services=names),
        doing=f"describing ECS services in cluster {cluster}",
        missing=("ClusterNotFoundException",),
    )
    found: dict[str, dict[str, Any]] = {}
    for svc in resp["services"] if resp else []:
        if svc.get("status") != "INACTIVE" and svc.get("serviceName"):
            found[svc["serviceName"]] = dict(svc)
    return found


def app_container(task_def: dict[str, Any], service_name: str) -> dict[str, Any] | None:
    """The container named like the service (FLIP: container name == family == service)."""
    containers = task_def.get("containerDefinitions", [])
    for wanted in (service_name, task_def.get("family")):
        for c in containers:
            if c.get("name") == wanted:
                return dict(c)
    return None


def read_task_definition(clients: Clients, arn: str, service: str) -> dict[str, Any]:
    resp = must(
        lambda: clients.ecs.describe_task_definition(taskDefinition=arn),
        doing=f"reading task definition {arn} of ECS service {service}",
    )
    return dict(resp["taskDefinition"])


def observe_services(clients: Clients, manifest: Manifest) -> dict[str, ObservedService]:
    cluster = manifest.hub.ecs.cluster
    names = service_names(manifest)
    live = describe_services(clients, cluster, list(names.values()))
    task_defs: dict[str, dict[str, Any]] = {}
    out: dict[str, ObservedService] = {}
    for role, name in names.items():
        svc = live.get(name)
        if svc is None:
            out[role] = ObservedService(role=role, name=name, exists=False)
            continue
        arn = svc.get("taskDefinition")
        image = None
        if arn:
            if arn not in task_defs:
                task_defs[arn] = read_task_definition(clients, arn, name)
            container = app_container(task_defs[arn], name)
            image = container.get("image") if container else None
        out[role] = ObservedService(
            role=role, name=name, exists=True, task_definition_arn=arn,
            image=image, tag=image_tag(image),
        )
    return out


# --- RDS ----------------------------------------------------------------------------------


def describe_db(clients: Clients, identifier: str) -> dict[str, Any] | None:
    resp = call(
        lambda: clients.rds.describe_db_instances(DBInstanceIdentifier=identifier),
        doing=f"describing RDS instance {identifier}",
        missing=("DBInstanceNotFound", "DBInstanceNotFoundFault"),
    )
    dbs = resp["DBInstances"] if resp else []
    return dict(dbs[0]) if dbs else None


def db_tags(clients: Clients, db: dict[str, Any]) -> dict[str, str]:
    """Tags from the describe response; one extra call only when it carries none."""
    tags = db.get("TagList")
    if tags is None and db.get("DBInstanceArn"):
        resp = must(
            lambda: clients.rds.list_tags_for_resource(ResourceName=db["DBInstanceArn"]),
            doing=f"reading tags of RDS instance {db.get('DBInstanceIdentifier')}",
        )
        tags = resp.get("TagList", [])
    return {t["Key"]: t["Value"] for t in tags or [] if "Key" in t and "Value" in t}


def observe_database(clients: Clients, identifier: str) -> ObservedDatabase:
    db = describe_db(clients, identifier)
    if db is None:
        return ObservedDatabase(exists=False, identifier=identifier)
    generation = db_tags(clients, db).get(GENERATION_TAG, "")
    return ObservedDatabase(
        exists=True,
        identifier=identifier,
        status=db.get("DBInstanceStatus"),
        deletion_protection=db.get("DeletionProtection"),
        instance_class=db.get("DBInstanceClass"),
        engine_version=db.get("EngineVersion"),
        backup_retention_days=db.get("BackupRetentionPeriod"),
        generation=int(generation) if generation.isdigit() else None,
        arn=db.get("DBInstanceArn"),
    )


# --- Cognito ------------------------------------------------------------------------------

_MFA = {"ON": "required", "OPTIONAL": "optional", "OFF": "off"}


def find_user_pool(clients: Clients, name: str) -> str | None:
    doing = f"listing Cognito user pools (looking for {name})"
    pool_ids: list[str] = []
    pages = must(
        lambda: list(clients.cognito.get_paginator("list_user_pools").paginate(
            PaginationConfig={"PageSize": 60}
        )),
        doing=doing,
    )
    for page in pages:
        pool_ids += [p["Id"] for p in page.get("UserPools", []) if p.get("Name") == name]
    return sorted(pool_ids)[0] if pool_ids else None


def observe_cognito(clients: Clients, name: str) -> ObservedCognito:
    pool_id = find_user_pool(clients, name)
    if pool_id is None:
        return ObservedCognito(exists=False, name=name)
    resp = call(
        lambda: clients.cognito.get_user_pool_mfa_config(UserPoolId=pool_id),
        doing=f"reading MFA configuration of Cognito user pool {name}",
        missing=("ResourceNotFoundException",),
    )
    if resp is None:
        return ObservedCognito(exists=False, name=name)
    raw = str(resp.get("MfaConfiguration", "OFF"))
    return ObservedCognito(
        exists=True, name=name, user_pool_id=pool_id, mfa=_MFA.get(raw, raw.lower())
    )


# --- the hub ------------------------------------------------------------------------------


def observe_account(clients: Clients) -> str | None:
    resp = must(
        lambda: clients.sts.get_caller_identity(), doing="identifying the AWS account (STS)"
    )
    return resp.get("Account")


def observe_hub(manifest: Manifest, clients: Clients) -> ObservedHub:
    """Everything DESIGN.md §3 lists, in a call count independent of the number of trusts."""
    hub = manifest.hub
    return ObservedHub(
        account_id=observe_account(clients),
        region=clients.region,
        allowlist=observe_allowlist(clients, hub.fl_server.security_group, hub.fl_server.port),
        secret=observe_secret(clients, hub.secret),
        services=observe_services(clients, manifest),
        database=observe_database(clients, hub.database.identifier),
        cognito=observe_cognito(clients, hub.cognito.user_pool),
    )


class AwsHubReader:
    """The read-side Protocol object the engine holds; a thin wrapper for injection."""

    def __init__(self, clients: Clients) -> None:
        self.clients = clients

    def observe_hub(self, manifest: Manifest) -> ObservedHub:
        return observe_hub(manifest, self.clients)
