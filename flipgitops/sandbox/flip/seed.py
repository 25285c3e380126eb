"""Build, in moto, the Central Hub FLIP's Terraform and procedures would have left.

Named as FLIP names things (deploy/providers/AWS: main.tf@65f052ba, ecs_sg.tf@1359cf35,
ecs_tasks.tf@067c329c, locals.tf@1894a697 / @01328ab0, ecs.tf@1f564805, parameter_store.tf,
Makefile@00e1b6b0), for either registry era:

- ``database`` (current FLIP): the flip-api task environment has no trust list; the slot
  pool is SSM ``/flip/fl_kit_slot_names``; existing trusts are rows in the hub's database
  with their slots, as ``register_trust`` left them (their kit JSON, keys included, is
  returned so host fixtures can write FLIP kit files).
- ``secret`` (E2): ``TRUST_NAMES`` (a JSON list) in flip-api's task environment and
  ``trust_api_key_hashes`` in ``FLIP_API``, which FLIP's Terraform jsonencodes as a JSON
  *string* inside the secret's JSON (main.tf@01328ab0); keys are returned.

No flipgitops state is written anywhere (no escrow, no ledger, no tags of ours); the
optional state bucket is only created empty.

This is the one stand-in module that reads flipgitops' manifest model: it decides what
environment to build, never how FLIP behaves.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from flipgitops.model.manifest import Manifest
from flipgitops.sandbox.flip import flipnames as fn
from flipgitops.sandbox.flip.aws import client
from flipgitops.sandbox.flip.hub import sha256_hex
from flipgitops.sandbox.flip.kits import write_flower_kits, write_nvflare_kits
from flipgitops.sandbox.flip.registry import split_image
from flipgitops.sandbox.flip.scripts import full_kit
from flipgitops.sandbox.flip.world import StandinHub

VPC_CIDR = "10.0.0.0/16"
PRIVATE_SUBNETS = ("10.0.1.0/24", "10.0.2.0/24")
INTERNAL_SERVICE_KEY_HEADER = "X-Internal-Service-Key"  # parameter_store.tf@2229b616
MIN_SLOTS = 3


class SeedError(Exception):
    """The seeder cannot build what was asked (a clear message names what and why)."""


@dataclass
class SeedResult:
    """Ids of what was built, and the sandbox's secret values (kept out of repr)."""

    era: fn.Era
    region: str
    vpc_id: str
    private_subnet_ids: list[str]
    nat_ip: str
    security_groups: dict[str, str]  # flip_api, fl_api, fl_server, nlb -> group id
    nlb_group_name: str
    cluster: str
    services: dict[str, str]  # role -> service name
    task_definition_arns: dict[str, str]  # role -> arn
    secret_arn: str
    user_pool_id: str
    db_arn: str
    slot_names: list[str]
    kit_dates: list[str]
    kit_bucket: str
    images: dict[str, str]  # role -> image reference in the task definition
    trust_ids: dict[str, str] = field(default_factory=dict)
    aes_key: str = field(default="", repr=False)
    internal_service_key: str = field(default="", repr=False)
    admin_token: str = field(default="", repr=False)
    trust_keys: dict[str, str] = field(default_factory=dict, repr=False)
    trust_kits: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)


def _terraform_suffix() -> str:
    """The 26 characters Terraform's PrefixedUniqueId appends to a `name_prefix`: a UTC
    timestamp to 1/10000 s and an 8-hex-digit counter."""
    stamp = datetime.now(UTC)
    return f"{stamp:%Y%m%d%H%M%S}{stamp.microsecond // 100:04d}{1:08x}"


def seed_hub(
    manifest: Manifest,
    hub: StandinHub,
    *,
    era: fn.Era | None = None,
    existing: Iterable[str] | Literal["all"] = (),
    slot_count: int | None = None,
    slot_names: list[str] | None = None,
    kit_dates: list[str] | None = None,
    state_bucket: bool = True,
    existing_rules: bool = True,
    extra_flip_api_env: Mapping[str, str] | None = None,
    boot_timeout: float = 15.0,
) -> SeedResult:
    """Create the hub for ``manifest`` in the emulator ``hub`` drives, then wait for flip-api
    to boot. ``existing`` names manifest trusts FLIP's procedures already registered
    (``"all"``: every trust that is not decommissioned); ``existing_rules`` gives them the
    NLB rules FLIP's Terraform writes from ``local_trust_public_ips``. ``kit_dates``
    defaults to the manifest's kit date; ``[]`` writes no kits (a faster seed).
    ``extra_flip_api_env`` adds container environment to flip-api (e.g. hub-shared keys an
    operator set by hand; FLIP's Terraform sets only TRUST_API_KEY_HEADER and FL_BACKEND
    of them).
    """
    h = manifest.hub
    era = era or h.trust_registry
    if manifest.aws.region != hub.region:
        raise SeedError(f"the manifest's region {manifest.aws.region} is not the stand-in "
                        f"hub's {hub.region}; start StandinHub with the manifest's region")
    if era == "secret" and hub.state.era != "secret" and hub.state.loaded is not None:
        raise SeedError("flip-api already booted in the database era; seed before it boots")
    names = [t.name for t in manifest.trusts if t.state != "decommissioned"]
    chosen = names if existing == "all" else list(existing)
    unknown = [n for n in chosen if manifest.trust(n) is None]
    if unknown:
        raise SeedError(f"existing trusts {unknown} are not in the manifest's trusts")
    present = [t for t in manifest.trusts if t.name in chosen]
    if era == "secret":
        slotless = [t.name for t in present if not t.fl_kit_slot]
        if slotless:
            raise SeedError(f"trusts {slotless} need fl_kit_slot with the secret registry")
    count = slot_count if slot_count is not None else max(MIN_SLOTS, len(manifest.trusts) + 1)
    pool = slot_names if slot_names is not None else [f"Trust_{i}" for i in range(1, count + 1)]
    dates = [h.fl_kits.date] if kit_dates is None else list(kit_dates)
    hub.state.set_era(era)

    c = _Clients(hub.moto_url, hub.region)

    def kits() -> None:
        _create_bucket(c, h.fl_kits.bucket, hub.region)
        for date in dates:
            if h.fl_backend == "flower":
                write_flower_kits(c.s3, h.fl_kits.bucket, date, len(pool))
            else:
                write_nvflare_kits(c.s3, h.fl_kits.bucket, date, pool, fl_host=h.fl_hostname,
                                   fl_port=h.fl_server.port)

    def identity_and_database() -> tuple[tuple[str, str], tuple[str, str]]:
        return _cognito(c, manifest), _database(c, manifest)

    # The kit bucket, Cognito and the database need nothing from the network, and moto's
    # first EC2 call builds its whole EC2 backend (about two seconds): do them meanwhile.
    background = ThreadPoolExecutor(max_workers=2, thread_name_prefix="seed")
    kits_done = background.submit(kits)
    idb_done = background.submit(identity_and_database)
    try:
        vpc_id, subnets, nat_ip = _network(c, hub.region)
    finally:
        background.shutdown(wait=True)
    groups, nlb_name = _security_groups(c, vpc_id, h.fl_server.port, nat_ip)
    if existing_rules:
        _terraform_trust_rules(c, groups["nlb"], h.fl_server.port,
                               [t.public_ip for t in present])

    aes_key = base64.b64encode(secrets.token_bytes(32)).decode()
    internal = secrets.token_urlsafe(32)
    trust_keys: dict[str, str] = {}
    secret_doc: dict[str, Any] = {"aes_key": aes_key, "internal_service_key": internal,
                                  "internal_service_key_hash": sha256_hex(internal)}
    if era == "secret":
        trust_keys = {n: secrets.token_urlsafe(32) for n in chosen}
        secret_doc[fn.SECRET_TRUST_HASHES] = json.dumps(
            {n: sha256_hex(k) for n, k in trust_keys.items()})
    secret_arn = c.secrets.create_secret(Name=h.secret, SecretString=json.dumps(secret_doc))["ARN"]
    secret_made = time.time()

    if era == "database":
        c.ssm.put_parameter(Name=fn.SLOT_POOL_PARAMETER, Type="String",
                            Value=json.dumps(pool),
                            Description="JSON list of FL kit-slot names seeding/reconciling "
                                        "flip-api's fl_kit_slot pool (register_trust claims "
                                        "from it)")
    for group in (fn.FLIP_API_LOG_GROUP, "/ecs/fl-api-net-1", "/ecs/fl-server-net-1"):
        c.logs.create_log_group(logGroupName=group)
        c.logs.put_retention_policy(logGroupName=group, retentionInDays=90)

    kits_done.result()
    images = _images(manifest)
    _publish(hub, manifest, images)

    (pool_id, client_id), (db_arn, db_host) = idb_done.result()
    env = _flip_api_env(manifest, pool_id, client_id, db_host, era, chosen, extra_flip_api_env)
    arns = _task_definitions(c, manifest, images, env, secret_arn)
    roles = {"flip_api": h.ecs.services.flip_api, "fl_api": h.ecs.services.fl_api,
             "fl_server": h.ecs.services.fl_server}
    # FLIP's Terraform takes minutes between the secret and the services. A seed faster than
    # that could start flip-api in the second the secret was created (Secrets Manager dates
    # to the second), a tie flipgitops rightly reads as "may not have loaded it".
    time.sleep(max(0.0, math.floor(secret_made) + 1.05 - time.time()))
    _services(c, manifest, roles, arns, subnets, groups)
    if state_bucket:
        _create_bucket(c, manifest.state.bucket, hub.region)

    hub.worker.poke()
    if not hub.wait_booted(h.images.hub_tag, timeout=boot_timeout):
        raise SeedError(
            f"flip-api did not boot within {boot_timeout:.0f}s (worker errors: "
            f"{hub.worker.errors[-3:] or 'none'}; events: {hub.state.events[-3:]})")

    result = SeedResult(
        era=era, region=hub.region, vpc_id=vpc_id, private_subnet_ids=subnets, nat_ip=nat_ip,
        security_groups=groups, nlb_group_name=nlb_name, cluster=h.ecs.cluster,
        services=roles, task_definition_arns=arns, secret_arn=secret_arn,
        user_pool_id=pool_id, db_arn=db_arn, slot_names=list(pool), kit_dates=list(dates),
        kit_bucket=h.fl_kits.bucket, images=images, aes_key=aes_key,
        internal_service_key=internal, admin_token=hub.admin_token, trust_keys=trust_keys,
    )
    if era == "database":
        for trust in present:
            reg = hub.state.register_trust(trust.name, trust.code, trust.region,
                                           lambda: list(pool), slot=trust.fl_kit_slot)
            result.trust_keys[trust.name] = reg.api_key
            result.trust_ids[trust.name] = reg.trust.id
            result.trust_kits[trust.name] = full_kit(reg, env)
    else:
        for name in chosen:
            row = hub.state.trust(name)
            if row is not None:
                result.trust_ids[name] = row.id
    return result


class _Clients:
    def __init__(self, url: str, region: str) -> None:
        self.ec2: Any = client("ec2", url, region)
        self.ecs: Any = client("ecs", url, region)
        self.s3: Any = client("s3", url, region)
        self.ssm: Any = client("ssm", url, region)
        self.secrets: Any = client("secretsmanager", url, region)
        self.logs: Any = client("logs", url, region)
        self.rds: Any = client("rds", url, region)
        self.cognito: Any = client("cognito-idp", url, region)


def _network(c: _Clients, region: str) -> tuple[str, list[str], str]:
    """module.flip_vpc: DNS hostnames on (awsvpc tasks need it), two private subnets, and
    the NAT gateway's Elastic IP (the hub's egress; FLIP allowlists it on the NLB)."""
    vpc = c.ec2.create_vpc(CidrBlock=VPC_CIDR, TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "flip-vpc"}]}])["Vpc"]["VpcId"]
    c.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsSupport={"Value": True})
    c.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    subnets = []
    for cidr, az in zip(PRIVATE_SUBNETS, ("a", "b"), strict=True):
        subnets.append(c.ec2.create_subnet(
            VpcId=vpc, CidrBlock=cidr, AvailabilityZone=f"{region}{az}",
            TagSpecifications=[{"ResourceType": "subnet", "Tags": [
                {"Key": "Name", "Value": f"flip-vpc-private-{region}{az}"}]}],
        )["Subnet"]["SubnetId"])
    nat_ip = c.ec2.allocate_address(Domain="vpc", TagSpecifications=[
        {"ResourceType": "elastic-ip", "Tags": [{"Key": "Name", "Value": f"flip-vpc-{region}a"}]}],
    )["PublicIp"]
    return vpc, subnets, nat_ip


def _security_groups(c: _Clients, vpc: str, fl_port: int,
                     nat_ip: str) -> tuple[dict[str, str], str]:
    groups = {}
    for role, name, description in (
        ("flip_api", "ecs-flip-api", "ECS flip-api task - inbound HTTP from ALB"),
        ("fl_api", "ecs-fl-api", "ECS fl-api-net-1 task - inbound HTTP from VPC"),
        ("fl_server", "ecs-fl-server",
         "ECS fl-server-net-1 task - inbound gRPC from NLB + HTTP from VPC"),
    ):
        groups[role] = c.ec2.create_security_group(
            GroupName=name, Description=description, VpcId=vpc)["GroupId"]
    # module "fl_server_nlb" (terraform-aws-modules/alb): no security_group_name is set, so
    # the module names the group from `name` with a Terraform name_prefix suffix and tags
    # it Name=<name>; FLIP adds FlipSG=true (main.tf@65f052ba).
    nlb_name = f"{fn.NLB_NAME}-{_terraform_suffix()}"
    nlb = c.ec2.create_security_group(
        GroupName=nlb_name, VpcId=vpc,
        Description=f"Security group for {fn.NLB_NAME} network load balancer",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [
            {"Key": "Name", "Value": fn.NLB_NAME}, {"Key": "FlipSG", "Value": "true"}]}],
    )["GroupId"]
    groups["nlb"] = nlb
    # Terraform removes the default allow-all egress and writes the module's own rules.
    c.ec2.revoke_security_group_egress(GroupId=nlb, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    port_rule = {"IpProtocol": "tcp", "FromPort": fl_port, "ToPort": fl_port}
    c.ec2.authorize_security_group_ingress(GroupId=nlb, IpPermissions=[{**port_rule, "IpRanges": [
        {"CidrIp": f"{nat_ip}/32", "Description": fn.NLB_INGRESS_DESCRIPTION}]}])
    c.ec2.authorize_security_group_egress(GroupId=nlb, IpPermissions=[{**port_rule, "IpRanges": [
        {"CidrIp": VPC_CIDR, "Description": fn.NLB_EGRESS_DESCRIPTION}]}])
    return groups, nlb_name


def _terraform_trust_rules(c: _Clients, group: str, port: int, ips: list[str]) -> None:
    """aws_security_group_rule.local_trust_fl_server_nlb: one /32 per IP (main.tf@65f052ba)."""
    for ip in ips:
        c.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [
                {"CidrIp": f"{ip}/32", "Description": fn.TERRAFORM_TRUST_RULE.format(ip=ip)}]}])


def _create_bucket(c: _Clients, bucket: str, region: str) -> None:
    if region == "us-east-1":
        c.s3.create_bucket(Bucket=bucket)
    else:
        c.s3.create_bucket(Bucket=bucket,
                           CreateBucketConfiguration={"LocationConstraint": region})


def _images(manifest: Manifest) -> dict[str, str]:
    i = manifest.hub.images
    fl = fn.FL_HUB_IMAGES[manifest.hub.fl_backend]
    return {"flip_api": f"{i.registry}/flip-api:{i.hub_tag}",
            "fl_api": f"{i.registry}/{fl['fl_api']}:{i.fl_tag}",
            "fl_server": f"{i.registry}/{fl['fl_server']}:{i.fl_tag}"}


def publish_release(hub: StandinHub, manifest: Manifest) -> None:
    """What FLIP's CI publishes for the manifest's tags (a release build ahead of a
    deploy-centralhub), e.g. before an upgrade test moves hub_tag/fl_tag."""
    _publish(hub, manifest, _images(manifest))


def _publish(hub: StandinHub, manifest: Manifest, images: dict[str, str]) -> None:
    """The tags CI publishes for this release: hub images, and the trust images FLIP's
    production compose files pull from ghcr.io/londonaicentre."""
    for image in images.values():
        host, repo, tag = split_image(image)
        if host == hub.registry.host:
            hub.registry.add(repo, tag)
    i = manifest.hub.images
    for name in fn.TRUST_IMAGES:
        hub.registry.add(f"londonaicentre/{name}", i.hub_tag)
    hub.registry.add(f"londonaicentre/{fn.FL_CLIENT_IMAGES[manifest.hub.fl_backend]}", i.fl_tag)
    hub.registry.add(f"londonaicentre/{fn.OMOP_IMAGE[0]}", fn.OMOP_IMAGE[1])


def _cognito(c: _Clients, manifest: Manifest) -> tuple[str, str]:
    cog = manifest.hub.cognito
    pool = c.cognito.create_user_pool(PoolName=cog.user_pool)["UserPool"]["Id"]
    mfa = {"off": "OFF", "optional": "OPTIONAL", "required": "ON"}[cog.mfa]
    c.cognito.set_user_pool_mfa_config(
        UserPoolId=pool, SoftwareTokenMfaConfiguration={"Enabled": mfa != "OFF"},
        MfaConfiguration=mfa)
    client = c.cognito.create_user_pool_client(
        UserPoolId=pool, ClientName="flip-cognito-client")["UserPoolClient"]["ClientId"]
    return pool, client


def _database(c: _Clients, manifest: Manifest) -> tuple[str, str]:
    db = manifest.hub.database
    inst = c.rds.create_db_instance(
        DBInstanceIdentifier=db.identifier, Engine="postgres", EngineVersion=db.engine_version,
        DBInstanceClass=db.instance_class, AllocatedStorage=20, MasterUsername="postgres",
        ManageMasterUserPassword=True, DBName="flip_db",
        DeletionProtection=db.deletion_protection,
        BackupRetentionPeriod=db.backup_retention_days,
    )["DBInstance"]
    host = (inst.get("Endpoint") or {}).get("Address") or f"{db.identifier}.local"
    return inst["DBInstanceArn"], host


def _flip_api_env(manifest: Manifest, pool_id: str, client_id: str, db_host: str, era: str,
                  names: list[str], extra: Mapping[str, str] | None) -> dict[str, str]:
    """ecs_task_env.flip_api (locals.tf@1894a697; E2 adds TRUST_NAMES, locals.tf@01328ab0)
    plus DB_HOST/DB_PORT (ecs_tasks.tf@067c329c). Of the hub-shared keys register_trust
    forwards, FLIP's Terraform sets TRUST_API_KEY_HEADER and FL_BACKEND."""
    h = manifest.hub
    env = {
        "ENV": "production",
        "AWS_REGION": manifest.aws.region,
        "AWS_COGNITO_USER_POOL_ID": pool_id,
        "AWS_COGNITO_APP_CLIENT_ID": client_id,
        "POSTGRES_USER": "postgres",
        "POSTGRES_DB": "flip_db",
        "TRUST_API_KEY_HEADER": h.trust_api_key_header,
        "INTERNAL_SERVICE_KEY_HEADER": INTERNAL_SERVICE_KEY_HEADER,
        "AWS_SECRET_NAME": h.secret,
        "NET_ENDPOINTS": json.dumps({"net-1": "http://fl-api-net-1.flip.local:8000"}),
        "FL_BACKEND": h.fl_backend,
        "DB_HOST": db_host,
        "DB_PORT": "5432",
    }
    if era == "secret":
        env["TRUST_NAMES"] = json.dumps(names)
    env.update(extra or {})
    return env


def _container(name: str, image: str, env: dict[str, str], group: str,
               secrets_: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "name": name, "image": image, "essential": True, "cpu": 512, "memory": 1024,
        "portMappings": [{"containerPort": fn.API_CONTAINER_PORT, "protocol": "tcp"}],
        "environment": [{"name": k, "value": v} for k, v in env.items()],
        "secrets": secrets_ or [],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": group, "awslogs-region": "", "awslogs-stream-prefix": name}},
    }


def _task_definitions(c: _Clients, manifest: Manifest, images: dict[str, str],
                      flip_env: dict[str, str], secret_arn: str) -> dict[str, str]:
    h = manifest.hub
    region = manifest.aws.region
    fl_server_env = {
        "LOCAL_DEV": "false", "NET_ID": "net-1", "MIN_CLIENTS": "1",
        "IMAGES_DIR": "/app/data/images",
        "FLIP_API_INTERNAL_URL": f"http://flip-api.flip.local:{fn.API_CONTAINER_PORT}/api",
        "INTERNAL_SERVICE_KEY_HEADER": INTERNAL_SERVICE_KEY_HEADER,
    }
    fl_api_env = ({"ENV": "production", "FL_ADMIN_DIRECTORY": "/app/admin"}
                  if h.fl_backend == "nvflare" else
                  {"ENV": "production", "SUPERLINK_ADDRESS": "fl-server-net-1.flip.local:9093",
                   "SUPERLINK_ROOT_CERTIFICATES": "/certs/ca.crt"})
    specs = {
        "flip_api": (fn.FLIP_API_FAMILY, fn.FLIP_API_CONTAINER, flip_env, fn.FLIP_API_LOG_GROUP,
                     None),
        "fl_api": ("fl-api-net-1", "fl-api-net-1", fl_api_env, "/ecs/fl-api-net-1", None),
        "fl_server": ("fl-server-net-1", "fl-server-net-1", fl_server_env,
                      "/ecs/fl-server-net-1",
                      [{"name": "INTERNAL_SERVICE_KEY",
                        "valueFrom": f"{secret_arn}:internal_service_key::"}]),
    }
    arns = {}
    for role, (family, container, env, group, secret_refs) in specs.items():
        definition = _container(container, images[role], env, group, secret_refs)
        definition["logConfiguration"]["options"]["awslogs-region"] = region
        arns[role] = c.ecs.register_task_definition(
            family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
            cpu="512", memory="1024", containerDefinitions=[definition],
            tags=[{"key": "Service", "value": family}],
        )["taskDefinition"]["taskDefinitionArn"]
    return arns


def _services(c: _Clients, manifest: Manifest, roles: dict[str, str], arns: dict[str, str],
              subnets: list[str], groups: dict[str, str]) -> None:
    """ecs_services.tf@65f052ba: private subnets, no public IP, desired 1; the update makes
    moto report the service stable (running == desired), as ECS would once it started."""
    cluster = manifest.hub.ecs.cluster
    c.ecs.create_cluster(clusterName=cluster)
    for role, name in roles.items():
        c.ecs.create_service(
            cluster=cluster, serviceName=name, taskDefinition=arns[role], desiredCount=1,
            launchType="FARGATE",
            deploymentConfiguration={"minimumHealthyPercent": 100, "maximumPercent": 200},
            networkConfiguration={"awsvpcConfiguration": {
                "subnets": subnets, "securityGroups": [groups[role]],
                "assignPublicIp": "DISABLED"}},
        )
        c.ecs.update_service(cluster=cluster, service=name, desiredCount=1)
