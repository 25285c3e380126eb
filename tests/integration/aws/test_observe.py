"""Observation of the hub against moto: FLIP-shaped resources, set up with plain boto3
(or the stand-in's FLIP-shaped seeder), read back through `observe_hub` and its parts."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aws_hubworld import FAST, REGION, Standin, make_manifest, new_clients

from flipgitops.adapters import allowlist as al
from flipgitops.adapters.aws import observe_hub, observe_services, observe_slot_pool
from flipgitops.adapters.aws_session import CallCounter, Clients
from flipgitops.adapters.endpoints import Endpoints
from flipgitops.adapters.hub import AwsHub
from flipgitops.adapters.hub_secret import observe_secret
from flipgitops.adapters.kit_listing import observe_kits
from flipgitops.errors import AwsError
from flipgitops.sandbox.moto_server import MotoServer

NLB = "flip-fl-server-nlb"


def _vpc(c: Clients) -> str:
    vpc = c.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    c.ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    return vpc


def _group(c: Clients, vpc: str, name: str, tag: str | None = None) -> str:
    spec: Any = ([{"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": tag}]}]
                 if tag else [])
    return c.ec2.create_security_group(GroupName=name, Description="nlb", VpcId=vpc,
                                       TagSpecifications=spec)["GroupId"]


def _rule(c: Clients, group: str, cidr: str, port: int, description: str) -> None:
    c.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
        "IpRanges": [{"CidrIp": cidr, "Description": description}]}])


# --- the NLB security group ----------------------------------------------------------------


def test_group_found_by_name_tag_when_its_name_has_a_suffix(clients: Clients) -> None:
    vpc = _vpc(clients)
    group = _group(clients, vpc, f"{NLB}-20251201113551000000000001", tag=NLB)
    _rule(clients, group, "203.0.113.1/32", 8002, "flipgitops:Trust_1")
    _rule(clients, group, "10.0.0.0/16", 443, "other port")
    seen = al.observe_allowlist(clients, NLB, 8002, manifest_quota=60)
    assert seen.exists and seen.group_id == group and not seen.ambiguous
    assert [(r.cidr, r.managed_trust) for r in seen.rules] == [("203.0.113.1/32", "Trust_1")]
    assert seen.other_rules == 1  # the 443 rule counts against the quota too
    assert seen.rule_quota == 60  # from Service Quotas (moto serves L-0EA8095F)


def test_exact_group_name_is_accepted(clients: Clients) -> None:
    group = _group(clients, _vpc(clients), "my-nlb-group")
    assert al.observe_allowlist(clients, "my-nlb-group", 8002, 60).group_id == group


def test_two_matching_groups_are_ambiguous_and_named(clients: Clients) -> None:
    vpc = _vpc(clients)
    tagged = _group(clients, vpc, f"{NLB}-20251201", tag=NLB)
    exact = _group(clients, vpc, NLB)
    seen = al.observe_allowlist(clients, NLB, 8002, 60)
    assert seen.group_id is None and seen.rules == ()
    assert {a.split()[0] for a in seen.ambiguous} == {tagged, exact}
    with pytest.raises(AwsError) as err:
        al.the_group(clients, NLB, 8002, 60)
    assert tagged in str(err.value) and exact in str(err.value)
    assert "ambiguous" in str(err.value)


def test_missing_group_is_a_fact(clients: Clients) -> None:
    seen = al.observe_allowlist(clients, NLB, 8002, 60)
    assert not seen.exists and seen.group_name == NLB


# --- FLIP_API --------------------------------------------------------------------------------

AES = "QUVTLWtleS1zdGFuZC1pbi12YWx1ZS0zMi1ieXRlcyE="
INTERNAL = "internal-service-key-value-0123456789abcdef"


def _secret(c: Clients, doc: object) -> None:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    c.secretsmanager.create_secret(Name="FLIP_API", SecretString=text)


def test_secret_holds_hashes_never_values(clients: Clients) -> None:
    hashes = {"Trust_1": "a" * 64}
    _secret(clients, {"aes_key": AES, "internal_service_key": INTERNAL,
                      "internal_service_key_hash": "b" * 64,
                      "trust_api_key_hashes": json.dumps(hashes),  # FLIP's Terraform: a string
                      "flipgitops_credentials_generations": {"Trust_1": 1},
                      "trust_names": ["Trust_1"], "SOMETHING_ELSE": "x"})
    seen, _ = observe_secret(clients, "FLIP_API")
    assert seen.exists and seen.malformed == ()
    assert seen.trust_api_key_hashes == hashes
    assert seen.internal_key_hash == "b" * 64 and seen.internal_key_sha256 not in (None, "b" * 64)
    assert seen.legacy_keys == ("flipgitops_credentials_generations", "trust_names")
    assert seen.other_keys == ("SOMETHING_ELSE",)
    assert seen.last_changed is not None
    dumped = seen.model_dump_json()
    assert AES not in dumped and INTERNAL not in dumped


def test_secret_hashes_as_an_object_are_accepted(clients: Clients) -> None:
    _secret(clients, {"aes_key": AES, "trust_api_key_hashes": {"T": "c" * 64}})
    assert observe_secret(clients, "FLIP_API")[0].trust_api_key_hashes == {"T": "c" * 64}


@pytest.mark.parametrize(("doc", "problem"), [
    ({"aes_key": ""}, "aes_key is empty"),
    ({"aes_key": 5}, "aes_key is a int"),
    ({"internal_service_key": "x"}, "aes_key is missing"),
    ({"aes_key": AES, "trust_api_key_hashes": ["T"]}, "trust_api_key_hashes is a JSON list"),
    ({"aes_key": AES, "trust_api_key_hashes": "not json"}, "string that is not JSON"),
    ({"aes_key": AES, "trust_api_key_hashes": 7}, "trust_api_key_hashes is a JSON int"),
    ({"aes_key": AES, "trust_api_key_hashes": {"T": None}}, "non-string or empty hashes for T"),
    ("[1, 2]", "not a JSON object"),
])
def test_malformed_secret_is_named_never_silently_empty(clients: Clients, doc: object,
                                                        problem: str) -> None:
    _secret(clients, doc)
    seen, _ = observe_secret(clients, "FLIP_API")
    assert any(problem in m for m in seen.malformed), seen.malformed
    assert seen.trust_api_key_hashes is None


# --- ECS --------------------------------------------------------------------------------------


def _ecs(c: Clients, env: dict[str, str] | None = None) -> str:
    vpc = _vpc(c)
    subnet = c.ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
    group = _group(c, vpc, "ecs-flip-api")
    c.ecs.create_cluster(clusterName="flip-cluster")
    arn = c.ecs.register_task_definition(
        family="flip-api", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="512", memory="1024", containerDefinitions=[{
            "name": "flip-api", "image": "ghcr.io/londonaicentre/flip-api:v2.3.0",
            "memory": 1024, "environment": [{"name": k, "value": v}
                                            for k, v in (env or {}).items()]}],
    )["taskDefinition"]["taskDefinitionArn"]
    c.ecs.create_service(cluster="flip-cluster", serviceName="flip-api", taskDefinition=arn,
                         desiredCount=1, launchType="FARGATE", networkConfiguration={
                             "awsvpcConfiguration": {"subnets": [subnet],
                                                     "securityGroups": [group]}})
    return arn


def test_trust_names_from_flip_api_environment(clients: Clients) -> None:
    _ecs(clients, {"TRUST_NAMES": '["Trust_1", "Trust_2"]'})
    api = observe_services(clients, make_manifest(), None)["flip_api"]
    assert api.trust_names == ("Trust_1", "Trust_2") and not api.trust_names_malformed
    assert api.tag == "v2.3.0" and api.revision == 1
    assert api.network["subnets"] and api.network["securityGroups"]
    assert api.stable is False  # no scheduler ran a task: not stable, never assumed


def test_malformed_trust_names_are_flagged(clients: Clients) -> None:
    _ecs(clients, {"TRUST_NAMES": "Trust_1,Trust_2"})
    api = observe_services(clients, make_manifest(), None)["flip_api"]
    assert api.trust_names is None and api.trust_names_malformed


def test_service_whose_task_definition_was_deleted_is_reported(clients: Clients) -> None:
    arn = _ecs(clients)
    clients.ecs.deregister_task_definition(taskDefinition=arn)
    clients.ecs.delete_task_definitions(taskDefinitions=[arn])
    services = observe_services(clients, make_manifest(), None)
    assert services["flip_api"].exists and not services["flip_api"].task_definition_exists
    assert not services["fl_api"].exists


# --- SSM slot pool, FL kits ------------------------------------------------------------------


def test_slot_pool_as_flip_reads_it(clients: Clients) -> None:
    assert observe_slot_pool(clients) is None
    clients.ssm.put_parameter(Name="/flip/fl_kit_slot_names", Type="String",
                              Value='["Trust_1", "Trust_2"]')
    assert observe_slot_pool(clients) == ("Trust_1", "Trust_2")
    clients.ssm.put_parameter(Name="/flip/fl_kit_slot_names", Type="String", Value="{",
                              Overwrite=True)
    assert observe_slot_pool(clients) == ()  # FLIP reads a broken pool as empty


def _bucket(c: Clients, name: str) -> None:
    c.s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]


def test_flower_slices_are_the_ca_and_the_slot_numbers_credentials(clients: Clients) -> None:
    _bucket(clients, "kits")
    base = "fl-flower-participant-kits/2025-06-01/net-1/"
    for key in ("certificates/ca.crt", "keys/supernode_credentials_1",
                "keys/supernode_credentials_2", "keys/superlink_credentials"):
        clients.s3.put_object(Bucket="kits", Key=base + key, Body=key.encode())
    seen = observe_kits(clients, "kits", "2025-06-01", "flower", ["Trust_1", "Trust_2", "X_9"])
    assert sorted(seen.slices) == ["Trust_1", "Trust_2"]
    assert seen.slices["Trust_1"].keys == ("net-1/certificates/ca.crt",
                                           "net-1/keys/supernode_credentials_1")
    before = seen.slices["Trust_1"].fingerprint
    clients.s3.put_object(Bucket="kits", Key=base + "keys/supernode_credentials_1", Body=b"new")
    after = observe_kits(clients, "kits", "2025-06-01", "flower", ["Trust_1"])
    assert after.slices["Trust_1"].fingerprint != before  # a new kit under the same names
    assert after.shared_fingerprint == seen.shared_fingerprint


def test_missing_kit_bucket_is_a_fact(clients: Clients) -> None:
    seen = observe_kits(clients, "no-such-bucket", "2025-06-01", "nvflare", [])
    assert not seen.exists and seen.slices == {}


# --- the whole hub, against the stand-in FLIP ------------------------------------------------


def _observe_count(manifest_trusts: int, standin: Callable[..., Standin],
                   moto: MotoServer) -> tuple[int, Any]:
    moto.reset()
    m = make_manifest(manifest_trusts, admin_token="env:FLIP_ADMIN_TOKEN")
    world = standin(m, existing="all")
    counter = CallCounter()
    seen = observe_hub(m, new_clients(counter), world.endpoints)
    return counter.total, seen


@pytest.mark.slow
def test_observe_call_count_is_the_same_for_5_and_50_trusts(
        standin: Callable[..., Standin], moto: MotoServer,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLIP_ADMIN_TOKEN", "set-below")
    small_calls, _ = _observe_count(5, standin, moto)
    big_calls, big = _observe_count(50, standin, moto)
    assert small_calls == big_calls, (small_calls, big_calls)
    assert len(big.allowlist.rules) >= 50 and len(big.kits.slices) >= 50
    assert big.registry.era == "database" and big.slot_pool and len(big.slot_pool) == 51
    assert all(s.stable is not None for s in big.services.values())


@pytest.mark.slow
def test_observe_the_seeded_hub(standin: Callable[..., Standin],
                                monkeypatch: pytest.MonkeyPatch) -> None:
    m = make_manifest(2, admin_token="env:FLIP_ADMIN_TOKEN")
    world = standin(m, existing="all")
    assert world.seed is not None
    monkeypatch.setenv("FLIP_ADMIN_TOKEN", world.seed.admin_token)
    # ECS's scheduler (the stand-in's) starts the services' tasks after the seed returns.
    AwsHub(m, new_clients(), endpoints=world.endpoints, waits=FAST).wait_stable(
        ["flip_api", "fl_api", "fl_server"], lambda _: None)
    seen = observe_hub(m, new_clients(), world.endpoints)
    assert seen.allowlist.group_id == world.seed.security_groups["nlb"]
    assert seen.allowlist.group_name == NLB  # found by its Name tag; the name has a suffix
    assert {r.description for r in seen.allowlist.rules} >= {
        "FL Server/Admin NLB from on-prem Trust (203.0.113.1)"}
    assert seen.registry.era == "database"
    assert all(s.stable for s in seen.services.values()), seen.services
    assert seen.admin.ok and {t.name for t in seen.admin.trusts} == {"Trust_1", "Trust_2"}
    assert seen.kits is not None
    # every participant directory is listed (the FL server's and admin's sit beside them)
    assert set(seen.kits.slices) >= set(world.seed.slot_names)
    assert world.seed.aes_key not in seen.model_dump_json()


def test_admin_api_errors_are_reported_not_raised(clients: Clients,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLIP_ADMIN_TOKEN", "a-token-that-must-not-appear-anywhere")
    m = make_manifest(1, admin_token="env:FLIP_ADMIN_TOKEN")
    seen = observe_hub(m, clients, Endpoints(hub="http://127.0.0.1:9"))
    assert seen.admin.queried and not seen.admin.ok
    assert seen.admin.error and "127.0.0.1:9/api/admin/trusts" in seen.admin.error
    assert "a-token-that" not in seen.model_dump_json()
