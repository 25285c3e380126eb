"""The seeder builds what FLIP's Terraform and procedures leave, in both eras."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hubworld import CLUSTER, aws, http

from flipgitops.sandbox.flip.hub import sha256_hex
from flipgitops.sandbox.flip.kits import nvflare_prefix
from flipgitops.sandbox.flip.seed import SeedError
from flipgitops.sandbox.flip.world import StandinHub


def container_env(ecs: Any, family: str) -> dict[str, str]:
    td = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    [container] = td["containerDefinitions"]
    assert container["name"] == family
    return {e["name"]: e["value"] for e in container["environment"]}


@pytest.mark.parametrize("era", ["database", "secret"])
def test_both_eras_are_named_as_flip_names_them(
        hub: StandinHub, seed: Any, ecs: Any, ssm: Any, secretsmanager: Any, era: str) -> None:
    _, result = seed(era=era, existing=["Hospital-A"])
    ec2 = aws("ec2", hub.moto_url)

    [nlb] = ec2.describe_security_groups(
        Filters=[{"Name": "tag:Name", "Values": ["flip-fl-server-nlb"]}])["SecurityGroups"]
    assert nlb["GroupName"].startswith("flip-fl-server-nlb-")
    assert len(nlb["GroupName"]) == len("flip-fl-server-nlb-") + 26
    assert {t["Key"]: t["Value"] for t in nlb["Tags"]} == {
        "Name": "flip-fl-server-nlb", "FlipSG": "true"}
    rules = {(r["CidrIp"], r.get("Description")) for p in nlb["IpPermissions"]
             if p["FromPort"] == 8002 for r in p["IpRanges"]}
    assert rules == {
        (f"{result.nat_ip}/32", "Allow inbound FL server traffic only from trusted FL client IP"),
        ("203.0.113.10/32", "FL Server/Admin NLB from on-prem Trust (203.0.113.10)"),
    }
    [egress] = nlb["IpPermissionsEgress"]
    assert (egress["IpProtocol"], egress["FromPort"]) == ("tcp", 8002)
    names = {g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]}
    assert {"ecs-flip-api", "ecs-fl-api", "ecs-fl-server"} <= names
    vpc = ec2.describe_vpc_attribute(VpcId=result.vpc_id, Attribute="enableDnsHostnames")
    assert vpc["EnableDnsHostnames"]["Value"] is True
    assert len(result.private_subnet_ids) == 2

    env = container_env(ecs, "flip-api")
    assert (env["ENV"], env["AWS_SECRET_NAME"], env["TRUST_API_KEY_HEADER"]) == (
        "production", "FLIP_API", "Authorization")
    assert env["INTERNAL_SERVICE_KEY_HEADER"] == "X-Internal-Service-Key"
    assert "FL_KIT_SLOT_NAMES" not in env  # locals.tf@1894a697: SSM is the single source
    fl_server = ecs.describe_task_definition(taskDefinition="fl-server-net-1")["taskDefinition"]
    assert fl_server["containerDefinitions"][0]["secrets"] == [
        {"name": "INTERNAL_SERVICE_KEY",
         "valueFrom": f"{result.secret_arn}:internal_service_key::"}]
    assert fl_server["containerDefinitions"][0]["image"] == \
        "ghcr.io/londonaicentre/flare-fl-server:v2.3.0"
    services = ecs.describe_services(cluster=CLUSTER, services=[
        "flip-api", "fl-api-net-1", "fl-server-net-1"])["services"]
    assert [s["serviceName"] for s in services] == ["flip-api", "fl-api-net-1", "fl-server-net-1"]
    assert all(s["networkConfiguration"]["awsvpcConfiguration"]["assignPublicIp"] == "DISABLED"
               for s in services)

    secret = json.loads(secretsmanager.get_secret_value(SecretId="FLIP_API")["SecretString"])
    assert secret["internal_service_key_hash"] == sha256_hex(secret["internal_service_key"])
    db = aws("rds", hub.moto_url).describe_db_instances(DBInstanceIdentifier="flip-database")
    assert db["DBInstances"][0]["Engine"] == "postgres"
    assert "TagList" not in db["DBInstances"][0] or db["DBInstances"][0]["TagList"] == []
    cognito = aws("cognito-idp", hub.moto_url)
    pools = cognito.list_user_pools(MaxResults=10)["UserPools"]
    assert [p["Name"] for p in pools] == ["flip-user-pool"]
    assert cognito.get_user_pool_mfa_config(UserPoolId=pools[0]["Id"])[
        "MfaConfiguration"] == "ON"
    groups = aws("logs", hub.moto_url).describe_log_groups(logGroupNamePrefix="/ecs/")
    assert "/ecs/flip-api" in {g["logGroupName"] for g in groups["logGroups"]}
    assert not ssm.describe_parameters(ParameterFilters=[
        {"Key": "Name", "Option": "BeginsWith", "Values": ["/flipgitops"]}])["Parameters"]

    key = {"Authorization": result.trust_keys["Hospital-A"]}
    assert http("GET", f"{hub.api_url}/tasks/pending", key)[0] == 200
    if era == "secret":
        assert json.loads(env["TRUST_NAMES"]) == ["Hospital-A"]
        assert json.loads(secret["trust_api_key_hashes"]) == {
            "Hospital-A": sha256_hex(result.trust_keys["Hospital-A"])}
        assert not ssm.describe_parameters()["Parameters"]
        assert result.trust_kits == {}
    else:
        assert "TRUST_NAMES" not in env and "trust_api_key_hashes" not in secret
        pool = ssm.get_parameter(Name="/flip/fl_kit_slot_names")["Parameter"]["Value"]
        assert json.loads(pool) == ["Trust_1", "Trust_2", "Trust_3"]
        kit = result.trust_kits["Hospital-A"]
        assert kit["trust_api_key"] == result.trust_keys["Hospital-A"]
        assert (kit["fl_kit_slot"], kit["trust_id"]) == ("Trust_1",
                                                         result.trust_ids["Hospital-A"])


def test_the_registry_holds_the_release_images(hub: StandinHub, seed: Any) -> None:
    seed(backend="flower")
    tags = hub.registry.tags()
    for repo, tag in [("flip-api", "v2.3.0"), ("flower-fl-api", "v2.3.0"),
                      ("flower-superlink", "v2.3.0"), ("trust-api", "v2.3.0"),
                      ("imaging-api", "v2.3.0"), ("data-access-api", "v2.3.0"),
                      ("orthanc", "v2.3.0"), ("flower-supernode", "v2.3.0"),
                      ("omop-db", "latest")]:
        assert (f"londonaicentre/{repo}", tag) in tags
    assert ("londonaicentre/flare-fl-server", "v2.3.0") not in tags


def test_kits_for_every_slot_and_date(hub: StandinHub, seed: Any) -> None:
    seed(kit_dates=["2025-06-01", "2025-07-01"], slot_count=2)
    s3 = aws("s3", hub.moto_url)
    listed = s3.list_objects_v2(Bucket="flipdev-aicentre", Prefix=nvflare_prefix("2025-06-01"),
                                Delimiter="/")
    dirs = sorted(p["Prefix"].rsplit("/", 2)[-2] for p in listed["CommonPrefixes"])
    assert dirs == ["Trust_1", "Trust_2", "fl-server-net-1", "flip-fl-api-net-1"]

    def fed(date: str, slot: str) -> Any:
        key = f"{nvflare_prefix(date)}{slot}/startup/fed_client.json"
        return json.loads(s3.get_object(Bucket="flipdev-aicentre", Key=key)["Body"].read())
    assert fed("2025-06-01", "Trust_2")["client"]["fqsn"] == "Trust_2"

    def key_of(date: str, slot: str) -> bytes:
        key = f"{nvflare_prefix(date)}{slot}/startup/client.key"
        return bytes(s3.get_object(Bucket="flipdev-aicentre", Key=key)["Body"].read())
    assert key_of("2025-06-01", "Trust_1") != key_of("2025-06-01", "Trust_2")
    assert key_of("2025-06-01", "Trust_1") != key_of("2025-07-01", "Trust_1")


def test_bad_requests_name_the_problem(hub: StandinHub, seed: Any) -> None:
    with pytest.raises(SeedError, match="Nobody"):
        seed(existing=["Nobody"])
