"""Build a FLIP-shaped Central Hub in an AWS emulator, named exactly as FLIP names it.

The demo and the integration tests start from this: a hub that looks like one FLIP's
Terraform and Makefiles produced, optionally already carrying the manifest's trusts. Tests
then make it deliberately differ with plain boto3 calls. Keys minted here are sandbox
values; they are returned so host fixtures can write matching trust env files.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import boto3

from flipgitops.adapters.aws import GENERATION_TAG, service_names, sha256_hex
from flipgitops.adapters.aws_actions import escrow_parameter
from flipgitops.adapters.aws_session import Clients, as_clients
from flipgitops.model.manifest import Manifest

# AWS caps the IP ranges of one authorize call; stay well below it.
AUTHORIZE_BATCH = 50
# Rules per VPC security group: AWS's default quota, and a hard limit in moto. Real hubs
# with more trusts need a quota increase; the sandbox cannot have more.
SANDBOX_RULE_LIMIT = 60


@dataclass
class SeedResult:
    vpc_id: str
    subnet_id: str
    group_id: str
    secret_arn: str
    user_pool_id: str
    db_arn: str
    aes_key: str
    internal_service_key: str
    trust_keys: dict[str, str] = field(default_factory=dict)  # trust name -> API key
    rules_written: int = 0
    task_definition_arns: dict[str, str] = field(default_factory=dict)  # role -> arn


def seed_hub(
    manifest: Manifest,
    clients_or_session: Clients | boto3.Session | None = None,
    *,
    trusts: bool = True,
    aes_key: str | None = None,
    state_bucket: bool = True,
    rule_limit: int | None = None,
    escrow: bool = True,
    instant_tasks: bool = True,
) -> SeedResult:
    """Create the hub for ``manifest``; with ``trusts`` also register its live trusts.

    ``rule_limit`` writes ingress rules only for the first N trusts (the emulator refuses
    more than `SANDBOX_RULE_LIMIT` per group); the secret and escrow still hold them all.
    ``escrow=False`` skips the SSM copies (one call per trust) when a test does not need them.
    ``instant_tasks`` makes the emulator's one-off ECS tasks stop at once (see below).
    """
    c = as_clients(clients_or_session, manifest.aws.region)
    if instant_tasks:
        emulator_instant_tasks(c.ecs.meta.endpoint_url)
    live = [t for t in manifest.trusts if t.state != "decommissioned"] if trusts else []

    vpc_id, subnet_id = network(c)
    group_id = c.ec2.create_security_group(
        GroupName=manifest.hub.fl_server.security_group,
        Description="FLIP FL server NLB",
        VpcId=vpc_id,
    )["GroupId"]
    rules = [(t.name, f"{t.public_ip}/32") for t in live]
    authorize_trusts(c, group_id, manifest.hub.fl_server.port, rules[:rule_limit])

    keys = {t.name: secrets.token_urlsafe(32) for t in live}
    generations = {t.name: t.credentials_generation for t in live}
    # Keys belong to the database generation they were minted for; generation 1 is the
    # default when the record is absent, so a generation-1 hub stays in FLIP's shape.
    db_generation = manifest.hub.database.generation
    db_record = {"database_generation": db_generation} if db_generation != 1 else {}
    aes = aes_key or secrets.token_urlsafe(32)
    internal = secrets.token_urlsafe(32)
    for name, key in keys.items():
        if escrow:
            c.ssm.put_parameter(
                Name=escrow_parameter(manifest.environment, name),
                Type="SecureString",
                Value=json.dumps({"generation": generations[name], **db_record,
                                  "api_key": key}),
                Overwrite=True,
            )
    secret_arn = c.secretsmanager.create_secret(
        Name=manifest.hub.secret,
        SecretString=json.dumps(
            {
                "trust_names": sorted(keys),
                "trust_api_key_hashes": {n: sha256_hex(k) for n, k in sorted(keys.items())},
                "flipgitops_credentials_generations": dict(sorted(generations.items())),
                **({"flipgitops_database_generations": dict.fromkeys(sorted(keys), db_generation)}
                   if db_record else {}),
                "aes_key": aes,
                "internal_service_key": internal,
                "internal_service_key_hash": sha256_hex(internal),
            }
        ),
    )["ARN"]

    task_defs = seed_ecs(c, manifest, subnet_id, group_id)
    db_arn = seed_database(c, manifest)
    pool_id = seed_cognito(c, manifest)
    if state_bucket:
        create_bucket(c, manifest.state.bucket, manifest.aws.region)
    return SeedResult(
        vpc_id=vpc_id, subnet_id=subnet_id, group_id=group_id, secret_arn=secret_arn,
        user_pool_id=pool_id, db_arn=db_arn, aes_key=aes, internal_service_key=internal,
        trust_keys=keys, task_definition_arns=task_defs,
        rules_written=len(rules[:rule_limit]),
    )


def emulator_instant_tasks(endpoint_url: str) -> None:
    """moto advances an ECS task one state per describe (RUNNING ... STOPPED); the schema
    reset waits for STOPPED, which would cost the demo a minute of polling. Only ever sent
    to an emulator on this machine."""
    if urlsplit(endpoint_url).hostname not in ("127.0.0.1", "localhost", "::1"):
        return
    body = {"model_name": "ecs::task", "transition": {"progression": "immediate"}}
    req = urllib.request.Request(
        f"{endpoint_url.rstrip('/')}/moto-api/state-manager/set-transition",
        data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10):
        pass


def network(c: Clients) -> tuple[str, str]:
    """The account's default VPC and a subnet of it (made if the emulator has none)."""
    vpcs = c.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if vpcs:
        vpc_id = vpcs[0]["VpcId"]
        subnets = c.ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])
        if subnets["Subnets"]:
            return vpc_id, subnets["Subnets"][0]["SubnetId"]
    else:
        vpc_id = c.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = c.ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.0.250.0/24")["Subnet"]
    return vpc_id, subnet["SubnetId"]


def authorize_trusts(c: Clients, group_id: str, port: int, rules: list[tuple[str, str]]) -> None:
    """One /32 rule per (trust, cidr), in batched calls."""
    for i in range(0, len(rules), AUTHORIZE_BATCH):
        batch = rules[i : i + AUTHORIZE_BATCH]
        c.ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[
                {
                    "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                    "IpRanges": [
                        {"CidrIp": cidr, "Description": f"flipgitops:{name}"}
                        for name, cidr in batch
                    ],
                }
            ],
        )


# Repository names of the hub images, by service role.
IMAGE_NAMES = {"flip_api": "flip-api", "fl_api": "fl-api", "fl_server": "fl-server"}


def seed_ecs(c: Clients, manifest: Manifest, subnet_id: str, group_id: str) -> dict[str, str]:
    images = manifest.hub.images
    tags = {"flip_api": images.hub_tag, "fl_api": images.fl_tag, "fl_server": images.fl_tag}
    cluster = manifest.hub.ecs.cluster
    c.ecs.create_cluster(clusterName=cluster)
    arns: dict[str, str] = {}
    for role, name in service_names(manifest).items():
        arn = c.ecs.register_task_definition(
            family=name,
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="512",
            memory="1024",
            containerDefinitions=[
                {
                    "name": name,
                    "image": f"{images.registry}/{IMAGE_NAMES[role]}:{tags[role]}",
                    "essential": True,
                    "memory": 896,
                    "portMappings": [{"containerPort": 8000, "protocol": "tcp"}],
                    "environment": [{"name": "ENVIRONMENT", "value": manifest.environment}],
                },
                {"name": "log-router", "image": "amazon/aws-for-fluent-bit:2.32.0",
                 "essential": False, "memory": 128},
            ],
        )["taskDefinition"]["taskDefinitionArn"]
        c.ecs.create_service(
            cluster=cluster,
            serviceName=name,
            taskDefinition=arn,
            desiredCount=1,
            launchType="FARGATE",
            networkConfiguration={
                "awsvpcConfiguration": {"subnets": [subnet_id], "securityGroups": [group_id]}
            },
        )
        arns[role] = arn
    return arns


def seed_database(c: Clients, manifest: Manifest) -> str:
    db = manifest.hub.database
    resp = c.rds.create_db_instance(
        DBInstanceIdentifier=db.identifier,
        Engine="postgres",
        EngineVersion=db.engine_version,
        DBInstanceClass=db.instance_class,
        AllocatedStorage=20,
        MasterUsername="flip",
        ManageMasterUserPassword=True,
        DeletionProtection=db.deletion_protection,
        BackupRetentionPeriod=db.backup_retention_days,
        Tags=[{"Key": GENERATION_TAG, "Value": str(db.generation)}],
    )
    return resp["DBInstance"]["DBInstanceArn"]


def seed_cognito(c: Clients, manifest: Manifest) -> str:
    pool_id = c.cognito.create_user_pool(PoolName=manifest.hub.cognito.user_pool)["UserPool"]["Id"]
    mfa: Any = {"off": "OFF", "optional": "OPTIONAL", "required": "ON"}[manifest.hub.cognito.mfa]
    c.cognito.set_user_pool_mfa_config(
        UserPoolId=pool_id,
        SoftwareTokenMfaConfiguration={"Enabled": mfa != "OFF"},
        MfaConfiguration=mfa,
    )
    return pool_id


def create_bucket(c: Clients, bucket: str, region: str) -> None:
    if region == "us-east-1":
        c.s3.create_bucket(Bucket=bucket)
    else:
        c.s3.create_bucket(
            Bucket=bucket,
            CreateBucketConfiguration={"LocationConstraint": region},  # type: ignore[typeddict-item]
        )
