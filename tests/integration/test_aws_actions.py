"""AwsActions against a real moto server: each executor, idempotency, concurrent edits."""

from __future__ import annotations

import inspect
import json
import re
from typing import Any

import pytest
from awsworld import make_manifest, new_clients

from flipgitops.adapters.aws import observe_hub
from flipgitops.adapters.aws_actions import AwsActions, escrow_parameter
from flipgitops.adapters.aws_session import CallCounter, Clients
from flipgitops.errors import AwsError, TransientError
from flipgitops.model.manifest import Manifest
from flipgitops.sandbox.moto_server import MotoServer
from flipgitops.sandbox.seed import SeedResult, seed_hub
from tests.awshelpers import secret, sha, versions

Hub = tuple[Manifest, SeedResult]


# --- escrow --------------------------------------------------------------------------------


def test_escrow_mints_once_per_generation(actions: AwsActions, clients: Clients) -> None:
    assert actions.escrowed_key("Trust_9") is None
    key = actions.ensure_escrowed_key("Trust_9", 1)
    assert len(key) >= 43
    assert actions.ensure_escrowed_key("Trust_9", 1) == key  # idempotent
    assert actions.escrowed_key("Trust_9") == (1, key)
    param = clients.ssm.get_parameter(Name="/flipgitops/dev/trusts/Trust_9/api-key",
                                      WithDecryption=True)["Parameter"]
    assert param["Type"] == "SecureString"
    assert json.loads(param["Value"]) == {"generation": 1, "database_generation": 1,
                                          "api_key": key}

    rotated = actions.ensure_escrowed_key("Trust_9", 2)
    assert rotated != key and actions.escrowed_key("Trust_9") == (2, rotated)


def test_seeded_keys_are_escrowed(hub: Hub, actions: AwsActions) -> None:
    _, seed = hub
    assert actions.escrowed_key("Trust_2") == (1, seed.trust_keys["Trust_2"])
    assert escrow_parameter("prod", "T") == "/flipgitops/prod/trusts/T/api-key"


# --- hub secret ----------------------------------------------------------------------------


def test_register_adds_name_hash_and_generation_and_keeps_other_keys(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    before = secret(clients)
    assert actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], []) is True
    after = secret(clients)
    assert after["trust_names"] == ["Trust_0", "Trust_1", "Trust_2", "Trust_3"]
    assert after["trust_api_key_hashes"]["Trust_0"] == "f" * 64
    assert after["flipgitops_credentials_generations"]["Trust_0"] == 1
    for key in ("aes_key", "internal_service_key", "internal_service_key_hash"):
        assert after[key] == before[key]
    assert "trust_api_key_hashes_previous" not in after

    n = versions(clients)
    assert actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], []) is False
    assert actions.update_hub_secret({}, ["Trust_404"], ["Trust_1"]) is False
    assert versions(clients) == n  # no write when nothing changes


def test_rotation_keeps_previous_hash_until_dropped(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    _, seed = hub
    old = sha(seed.trust_keys["Trust_1"])
    actions.update_hub_secret({"Trust_1": ("a" * 64, 2)}, [], [])
    s = observe_hub(actions.manifest, clients).secret
    assert s.trust_api_key_hashes["Trust_1"] == "a" * 64
    assert s.previous_key_hashes == {"Trust_1": old}
    assert s.credentials_generations["Trust_1"] == 2

    actions.update_hub_secret({}, [], ["Trust_1"])
    s = observe_hub(actions.manifest, clients).secret
    assert s.previous_key_hashes == {} and s.trust_api_key_hashes["Trust_1"] == "a" * 64


def test_deregister_removes_every_entry(hub: Hub, actions: AwsActions, clients: Clients) -> None:
    actions.update_hub_secret({"Trust_2": ("b" * 64, 2)}, [], [])  # now has a previous hash
    assert actions.update_hub_secret({}, ["Trust_2"], []) is True
    data = secret(clients)
    assert data["trust_names"] == ["Trust_1", "Trust_3"]
    for key in ("trust_api_key_hashes", "trust_api_key_hashes_previous",
                "flipgitops_credentials_generations"):
        assert "Trust_2" not in data[key]


def test_missing_hub_secret_is_not_created(hub: Hub, actions: AwsActions, clients: Clients) -> None:
    clients.secretsmanager.delete_secret(SecretId="FLIP_API", ForceDeleteWithoutRecovery=True)
    with pytest.raises(AwsError, match="FLIP_API does not exist"):
        actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], [])
    with pytest.raises(Exception, match="ResourceNotFound"):
        clients.secretsmanager.describe_secret(SecretId="FLIP_API")


def _interloper(moto: MotoServer, note: str) -> None:
    """Another operator edits the secret (a separate client, as another process would)."""
    other = new_clients()
    data = json.loads(other.secretsmanager.get_secret_value(SecretId="FLIP_API")["SecretString"])
    data["operator_note"] = note
    other.secretsmanager.put_secret_value(SecretId="FLIP_API", SecretString=json.dumps(data))


def _once(event: str, clients: Clients, fn: Any) -> None:
    fired: list[bool] = []

    def hook(**_: Any) -> None:
        if not fired:
            fired.append(True)
            fn()

    clients.secretsmanager.meta.events.register(event, hook)


def test_edit_between_read_and_write_is_detected_and_nothing_written(
    hub: Hub, moto: MotoServer, clients: Clients
) -> None:
    mine = new_clients()
    actions = AwsActions(hub[0], mine)
    _once("before-call.secretsmanager.DescribeSecret", mine, lambda: _interloper(moto, "x"))
    with pytest.raises(TransientError, match="changed while flipgitops was editing"):
        actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], [])
    data = secret(clients)
    assert data["operator_note"] == "x" and "Trust_0" not in data["trust_names"]
    # the rerun re-reads and applies on top of the other edit
    assert actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], []) is True
    data = secret(clients)
    assert data["operator_note"] == "x" and "Trust_0" in data["trust_names"]


def test_edit_racing_our_write_is_not_lost(hub: Hub, moto: MotoServer, clients: Clients) -> None:
    mine = new_clients()
    actions = AwsActions(hub[0], mine)
    _once("before-call.secretsmanager.PutSecretValue", mine, lambda: _interloper(moto, "y"))
    with pytest.raises(TransientError, match="written by someone else at the same time"):
        actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], [])
    data = secret(clients)
    assert data["operator_note"] == "y"  # theirs kept
    assert data["trust_api_key_hashes"]["Trust_0"] == "f" * 64  # ours re-applied
    assert actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], []) is False


def test_hub_aes_key(hub: Hub, actions: AwsActions) -> None:
    assert actions.hub_aes_key() == hub[1].aes_key


# --- ECS -----------------------------------------------------------------------------------


def test_deploy_image_changes_only_the_app_container(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    old_arn = hub[1].task_definition_arns["fl_api"]
    assert actions.deploy_image("fl_api", "v2.4.0") is True
    svc = clients.ecs.describe_services(cluster="flip-cluster",
                                        services=["fl-api-net-1"])["services"][0]
    assert svc["taskDefinition"] != old_arn and svc["taskDefinition"].endswith(":2")
    old = clients.ecs.describe_task_definition(taskDefinition=old_arn)["taskDefinition"]
    new = clients.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])[
        "taskDefinition"]
    for field in ("family", "cpu", "memory", "networkMode", "requiresCompatibilities"):
        assert new[field] == old[field]
    images = {c["name"]: c["image"] for c in new["containerDefinitions"]}
    assert images == {"fl-api-net-1": "ghcr.io/londonaicentre/fl-api:v2.4.0",
                      "log-router": "amazon/aws-for-fluent-bit:2.32.0"}
    assert new["containerDefinitions"][0]["environment"] == old["containerDefinitions"][0][
        "environment"]
    services = observe_hub(actions.manifest, clients).services
    assert (services["fl_api"].tag, services["fl_server"].tag) == ("v2.4.0", "v2.3.0")

    assert actions.deploy_image("fl_api", "v2.4.0") is False  # already there: no revision
    assert clients.ecs.list_task_definitions(familyPrefix="fl-api-net-1")[
        "taskDefinitionArns"][-1].endswith(":2")


def test_deploy_image_rejects_unknown_role_and_missing_service(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    with pytest.raises(ValueError, match="unknown hub service role"):
        actions.deploy_image("fl-api-net-1", "v1.0.0")
    clients.ecs.delete_service(cluster="flip-cluster", service="flip-api", force=True)
    with pytest.raises(AwsError, match="ECS service flip-api not found"):
        actions.deploy_image("flip_api", "v9.0.0")
    with pytest.raises(AwsError, match="flip-api not found"):
        actions.redeploy_flip_api()


def test_redeploy_forces_a_new_deployment(hub: Hub, counter: CallCounter) -> None:
    mine = new_clients(counter)
    params: list[dict[str, Any]] = []
    mine.ecs.meta.events.register(
        "provide-client-params.ecs.UpdateService", lambda params_=None, **kw: params.append(
            kw.get("params", {}))
    )
    AwsActions(hub[0], mine).redeploy_flip_api()
    assert ("ecs", "UpdateService") in counter.calls
    assert params and params[0]["forceNewDeployment"] is True
    assert params[0]["service"] == "flip-api"


# --- allowlist -----------------------------------------------------------------------------


def rules(actions: AwsActions, clients: Clients) -> dict[str, str | None]:
    return {r.cidr: r.description for r in observe_hub(actions.manifest, clients).allowlist.rules}


def test_update_allowlist_adds_then_revokes_and_is_idempotent(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    m, _ = hub
    t1 = f"{m.trusts[0].public_ip}/32"
    add = [("Trust_1", "198.51.100.50"), ("Trust_4", "198.51.100.51/32")]
    assert actions.update_allowlist(add=add, revoke=[t1]) is True
    after = rules(actions, clients)
    assert after["198.51.100.50/32"] == "flipgitops:Trust_1"
    assert after["198.51.100.51/32"] == "flipgitops:Trust_4"
    assert t1 not in after and len(after) == 4

    assert actions.update_allowlist(add=add, revoke=[t1]) is False
    assert rules(actions, clients) == after  # no duplicates, nothing revoked twice


def test_update_allowlist_relabels_an_existing_unlabelled_rule(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    clients.ec2.authorize_security_group_ingress(
        GroupId=hub[1].group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8002, "ToPort": 8002,
                        "IpRanges": [{"CidrIp": "198.51.100.60/32"}]}],
    )
    assert actions.update_allowlist(add=[("Trust_5", "198.51.100.60/32")], revoke=[]) is True
    after = rules(actions, clients)
    assert after["198.51.100.60/32"] == "flipgitops:Trust_5" and len(after) == 4


def test_update_allowlist_tolerates_a_concurrent_duplicate(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    """Someone adds one of our rules between our look and our batch authorize."""
    group_id = hub[1].group_id

    def add_it(**_: Any) -> None:
        if not fired:
            fired.append(True)
            new_clients().ec2.authorize_security_group_ingress(
                GroupId=group_id,
                IpPermissions=[{"IpProtocol": "tcp", "FromPort": 8002, "ToPort": 8002,
                                "IpRanges": [{"CidrIp": "198.51.100.70/32",
                                              "Description": "flipgitops:Trust_6"}]}],
            )

    fired: list[bool] = []
    clients.ec2.meta.events.register(
        "before-call.ec2.AuthorizeSecurityGroupIngress", add_it
    )
    add = [("Trust_6", "198.51.100.70/32"), ("Trust_7", "198.51.100.71/32")]
    assert actions.update_allowlist(add=add, revoke=[]) is True
    after = rules(actions, clients)
    assert after["198.51.100.70/32"] == "flipgitops:Trust_6"
    assert after["198.51.100.71/32"] == "flipgitops:Trust_7"


def test_update_allowlist_missing_group(moto: MotoServer, clients: Clients) -> None:
    with pytest.raises(AwsError, match="security group flip-fl-server-nlb not found"):
        AwsActions(make_manifest(1), clients).update_allowlist(add=[("T", "1.2.3.4")], revoke=[])


# --- database ------------------------------------------------------------------------------


def test_snapshot_is_named_waited_on_and_reused(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    snap = actions.snapshot_database(1)
    assert re.fullmatch(r"flipgitops-dev-gen1-\d{14}", snap)
    found = clients.rds.describe_db_snapshots(DBSnapshotIdentifier=snap)["DBSnapshots"][0]
    assert found["Status"] == "available" and found["DBInstanceIdentifier"] == "flip-database"
    assert actions.snapshot_database(1) == snap  # reused, not duplicated
    manual = clients.rds.describe_db_snapshots(DBInstanceIdentifier="flip-database",
                                               SnapshotType="manual")["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"] for s in manual] == [snap]
    assert actions.snapshot_database(2) != snap


def test_reset_schema_runs_a_one_off_task_then_tags_the_generation(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    assert actions.reset_schema(2) is True
    assert observe_hub(actions.manifest, clients).database.generation == 2
    tasks = clients.ecs.list_tasks(cluster="flip-cluster", startedBy="flipgitops")["taskArns"]
    assert len(tasks) == 1
    task = clients.ecs.describe_tasks(cluster="flip-cluster", tasks=tasks)["tasks"][0]
    assert task["taskDefinitionArn"] == hub[1].task_definition_arns["flip_api"]
    assert task["overrides"]["containerOverrides"] == [
        {"name": "flip-api", "command": ["uv", "run", "python", "-m",
                                         "flip_api.scripts.reset_db"]}
    ]
    assert actions.reset_schema(2) is False  # already at generation 2: no second task
    assert len(clients.ecs.list_tasks(cluster="flip-cluster",
                                      startedBy="flipgitops")["taskArns"]) == 1


def test_restore_protection_only_turns_it_on(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    assert actions.restore_protection() is False
    clients.rds.modify_db_instance(DBInstanceIdentifier="flip-database",
                                   DeletionProtection=False, ApplyImmediately=True)
    assert actions.restore_protection() is True
    assert observe_hub(actions.manifest, clients).database.deletion_protection is True


def test_no_method_can_delete_the_database_or_drop_protection() -> None:
    source = inspect.getsource(AwsActions)
    assert "delete_db" not in source
    assert "DeletionProtection=False" not in source
    assert not [n for n in dir(AwsActions) if "delete" in n.lower() or "unprotect" in n.lower()]


def test_missing_database(moto: MotoServer, clients: Clients) -> None:
    m = make_manifest(1)
    seed_hub(m, clients)
    clients.rds.modify_db_instance(DBInstanceIdentifier="flip-database",
                                   DeletionProtection=False, ApplyImmediately=True)
    clients.rds.delete_db_instance(DBInstanceIdentifier="flip-database",
                                   SkipFinalSnapshot=True)
    with pytest.raises(AwsError, match="RDS instance flip-database not found"):
        AwsActions(m, clients).restore_protection()


def test_registry_kept_in_flips_string_encoding(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    """FLIP's E2 secret stored the registry as JSON strings; flip-api parses those."""
    data = secret(clients)
    data["trust_names"] = json.dumps(data["trust_names"])
    data["trust_api_key_hashes"] = json.dumps(data["trust_api_key_hashes"])
    clients.secretsmanager.put_secret_value(SecretId="FLIP_API", SecretString=json.dumps(data))
    assert actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], []) is True
    after = secret(clients)
    assert isinstance(after["trust_names"], str)
    assert json.loads(after["trust_names"])[0] == "Trust_0"
    assert json.loads(after["trust_api_key_hashes"])["Trust_0"] == "f" * 64
    assert actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], []) is False
