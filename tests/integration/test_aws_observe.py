"""observe_hub against a real moto server: each observed item, absences, drift, call counts."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
from collections.abc import Iterator

import pytest
from awsworld import REGION, make_manifest, new_clients
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from flipgitops.adapters.aws import image_tag, observe_hub, with_tag
from flipgitops.adapters.aws_session import CallCounter, Clients, translate
from flipgitops.engine.observe import observe
from flipgitops.errors import AwsError, TransientError
from flipgitops.model.manifest import Manifest
from flipgitops.sandbox.moto_server import MOTO_ACCOUNT_ID, MotoServer
from flipgitops.sandbox.seed import SeedResult, seed_hub


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_in_sync_hub_is_observed_field_by_field(
    hub: tuple[Manifest, SeedResult], clients: Clients
) -> None:
    m, seed = hub
    o = observe_hub(m, clients)

    assert (o.account_id, o.region) == (MOTO_ACCOUNT_ID, REGION)

    assert o.allowlist.exists and o.allowlist.group_id == seed.group_id
    assert [(r.cidr, r.from_port, r.to_port, r.protocol, r.managed_trust)
            for r in o.allowlist.rules] == [
        (f"{t.public_ip}/32", 8002, 8002, "tcp", t.name) for t in m.trusts
    ]

    s = o.secret
    assert s.exists and s.version_id
    assert s.trust_names == ("Trust_1", "Trust_2", "Trust_3")
    assert s.trust_api_key_hashes == {n: sha(k) for n, k in seed.trust_keys.items()}
    assert s.credentials_generations == {"Trust_1": 1, "Trust_2": 1, "Trust_3": 1}
    assert s.previous_key_hashes == {}
    assert s.aes_key_sha256 == sha(seed.aes_key)
    assert s.other_keys == {
        "internal_service_key": "sha256:" + sha(seed.internal_service_key)[:12],
        "internal_service_key_hash": "sha256:" + sha(sha(seed.internal_service_key))[:12],
    }

    assert {role: (svc.name, svc.tag) for role, svc in o.services.items()} == {
        "flip_api": ("flip-api", "v2.3.0"),
        "fl_api": ("fl-api-net-1", "v2.3.0"),
        "fl_server": ("fl-server-net-1", "v2.3.0"),
    }
    assert o.services["flip_api"].image == "ghcr.io/londonaicentre/flip-api:v2.3.0"
    assert o.services["fl_api"].task_definition_arn == seed.task_definition_arns["fl_api"]

    db = o.database
    assert db.exists and db.status == "available"
    assert (db.deletion_protection, db.instance_class, db.engine_version,
            db.backup_retention_days, db.generation) == (True, "db.t3.micro", "17.9", 7, 1)
    assert db.arn == seed.db_arn

    assert o.cognito.exists and o.cognito.user_pool_id == seed.user_pool_id
    assert o.cognito.mfa == "required"


def test_empty_account_reports_everything_missing_without_raising(
    moto: MotoServer, clients: Clients
) -> None:
    o = observe_hub(make_manifest(2), clients)
    assert not o.allowlist.exists and o.allowlist.rules == ()
    assert not o.secret.exists and o.secret.trust_names == ()
    assert all(not svc.exists for svc in o.services.values())
    assert not o.database.exists
    assert not o.cognito.exists
    assert o.account_id == MOTO_ACCOUNT_ID


def test_missing_secret(hub: tuple[Manifest, SeedResult], clients: Clients) -> None:
    m, _ = hub
    clients.secretsmanager.delete_secret(SecretId=m.hub.secret, ForceDeleteWithoutRecovery=True)
    o = observe_hub(m, clients)
    assert not o.secret.exists and o.secret.name == "FLIP_API"
    assert o.database.exists  # the rest is still observed


def test_secret_scheduled_for_deletion_says_how_to_restore(
    hub: tuple[Manifest, SeedResult], clients: Clients
) -> None:
    m, _ = hub
    clients.secretsmanager.delete_secret(SecretId=m.hub.secret, RecoveryWindowInDays=7)
    with pytest.raises(AwsError, match="restore-secret --secret-id FLIP_API"):
        observe_hub(m, clients)


def test_missing_ecs_service_and_missing_cluster(
    hub: tuple[Manifest, SeedResult], clients: Clients
) -> None:
    m, _ = hub
    clients.ecs.update_service(cluster="flip-cluster", service="fl-api-net-1", desiredCount=0)
    clients.ecs.delete_service(cluster="flip-cluster", service="fl-api-net-1", force=True)
    o = observe_hub(m, clients)
    assert not o.services["fl_api"].exists and o.services["fl_api"].tag is None
    assert o.services["flip_api"].exists and o.services["fl_server"].exists

    other = make_manifest(3, ecs={"cluster": "no-such-cluster"})
    o = observe_hub(other, clients)
    assert [svc.exists for svc in o.services.values()] == [False, False, False]


def test_image_tag_follows_the_services_task_definition(
    hub: tuple[Manifest, SeedResult], clients: Clients
) -> None:
    m, _ = hub
    arn = clients.ecs.register_task_definition(
        family="fl-server-net-1",
        containerDefinitions=[
            {"name": "sidecar", "image": "ghcr.io/x/sidecar:v9.9.9", "essential": False,
             "memory": 128},
            {"name": "fl-server-net-1", "image": "ghcr.io/londonaicentre/fl-server:v2.4.0-rc1",
             "memory": 512},
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    clients.ecs.update_service(cluster="flip-cluster", service="fl-server-net-1",
                               taskDefinition=arn)
    svc = observe_hub(m, clients).services["fl_server"]
    assert (svc.task_definition_arn, svc.tag) == (arn, "v2.4.0-rc1")


def test_database_protection_off_and_generation_untagged(
    hub: tuple[Manifest, SeedResult], clients: Clients
) -> None:
    m, seed = hub
    clients.rds.modify_db_instance(DBInstanceIdentifier="flip-database",
                                   DeletionProtection=False, ApplyImmediately=True)
    clients.rds.remove_tags_from_resource(ResourceName=seed.db_arn,
                                          TagKeys=["flipgitops:generation"])
    db = observe_hub(m, clients).database
    assert db.deletion_protection is False
    assert db.generation is None


def test_ingress_rule_no_trust_has_is_visible(
    hub: tuple[Manifest, SeedResult], clients: Clients
) -> None:
    m, seed = hub
    clients.ec2.authorize_security_group_ingress(
        GroupId=seed.group_id,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 8002, "ToPort": 8002,
             "IpRanges": [{"CidrIp": "198.51.100.77/32"}]},
            # another port: not part of the FL allowlist
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
             "IpRanges": [{"CidrIp": "198.51.100.78/32"}]},
        ],
    )
    rules = {r.cidr: r for r in observe_hub(m, clients).allowlist.rules}
    assert rules["198.51.100.77/32"].managed_trust is None
    assert rules["198.51.100.77/32"].description is None
    assert "198.51.100.78/32" not in rules
    assert len(rules) == 4


def test_account_mismatch_is_visible(moto: MotoServer, clients: Clients) -> None:
    m = make_manifest(1, account_id="999999999999")
    seed_hub(m, clients)
    o = observe_hub(m, clients)
    assert o.account_id == MOTO_ACCOUNT_ID != m.aws.account_id


@pytest.mark.parametrize(("aws", "ours"), [("OPTIONAL", "optional"), ("OFF", "off")])
def test_cognito_mfa_is_lower_cased(
    hub: tuple[Manifest, SeedResult], clients: Clients, aws: str, ours: str
) -> None:
    m, seed = hub
    clients.cognito.set_user_pool_mfa_config(
        UserPoolId=seed.user_pool_id,
        SoftwareTokenMfaConfiguration={"Enabled": aws != "OFF"},
        MfaConfiguration=aws,  # type: ignore[arg-type]
    )
    assert observe_hub(m, clients).cognito.mfa == ours


def test_registry_stored_as_json_strings_is_understood(
    moto: MotoServer, clients: Clients
) -> None:
    """FLIP's E2 Terraform stored TRUST_NAMES / hashes as JSON-encoded strings."""
    m = make_manifest(0)
    seed_hub(m, clients)
    clients.secretsmanager.put_secret_value(
        SecretId="FLIP_API",
        SecretString=json.dumps({
            "trust_names": json.dumps(["Trust_1", "Trust_2"]),
            "trust_api_key_hashes": json.dumps({"Trust_1": "a" * 64, "Trust_2": "b" * 64}),
            "aes_key": "not-a-real-key-but-secret",
        }),
    )
    s = observe_hub(m, clients).secret
    assert s.trust_names == ("Trust_1", "Trust_2")
    assert s.trust_api_key_hashes == {"Trust_1": "a" * 64, "Trust_2": "b" * 64}
    assert s.aes_key_sha256 == sha("not-a-real-key-but-secret")


def test_secret_that_is_not_json_is_an_error_that_does_not_quote_it(
    hub: tuple[Manifest, SeedResult], clients: Clients
) -> None:
    m, _ = hub
    clients.secretsmanager.put_secret_value(SecretId="FLIP_API",
                                            SecretString="s3cr3t-value-not-json")
    with pytest.raises(AwsError) as info:
        observe_hub(m, clients)
    assert "FLIP_API" in str(info.value) and "s3cr3t" not in str(info.value)


def test_call_count_does_not_grow_with_trusts(moto: MotoServer, clients: Clients) -> None:
    counts = []
    for n in (5, 500):
        moto.reset()
        m = make_manifest(n)
        # moto (like AWS's default quota) allows 60 rules per group: 500 trusts get 60 rules.
        seed = seed_hub(m, new_clients(), rule_limit=60, escrow=False)
        counter = CallCounter()
        o = observe_hub(m, new_clients(counter))
        assert len(o.secret.trust_names) == n
        assert len(o.allowlist.rules) == seed.rules_written == min(n, 60)
        counts.append(counter.by_operation())
    assert counts[0] == counts[1]
    assert sum(counts[0].values()) <= 12


def test_call_counter_attached_to_a_session_sees_clients_made_later(moto: MotoServer) -> None:
    import boto3

    session = boto3.Session(region_name=REGION)
    counter = CallCounter().attach(session.events)
    Clients(session).sts.get_caller_identity()
    assert counter.calls == [("sts", "GetCallerIdentity")]


def test_engine_observe_without_hosts(hub: tuple[Manifest, SeedResult], clients: Clients) -> None:
    m, _ = hub
    state = observe(m, hosts=False, clients=clients)
    assert state.environment == "dev" and state.hosts == {}
    assert state.hub.secret.trust_names == ("Trust_1", "Trust_2", "Trust_3")
    assert state.observed_at and re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$",
                                          state.observed_at)


def test_no_credentials_is_a_clear_error(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(AwsError, match="no AWS credentials found"):
        observe_hub(make_manifest(1), Clients(region=REGION))


def test_unreachable_endpoint_names_region_and_endpoint(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    with pytest.raises(TransientError, match=r"aws\.region in the manifest, AWS_ENDPOINT_URL"):
        observe_hub(make_manifest(1), Clients(region=REGION, max_attempts=1))


@pytest.fixture
def hangup_endpoint() -> Iterator[str]:
    """An endpoint that accepts every connection and closes it without answering: what a
    dropped connection (load balancer reset, proxy timeout) looks like to botocore."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    stop.set()
    thread.join(timeout=5)
    server.close()


def test_dropped_connection_is_transient(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch, hangup_endpoint: str
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", hangup_endpoint)
    with pytest.raises(TransientError, match=r"dropped or timed out .*ConnectionClosedError"):
        observe_hub(make_manifest(1), Clients(region=REGION, max_attempts=1))


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (EndpointConnectionError(endpoint_url="http://x"), "could not reach the AWS endpoint"),
        (ConnectTimeoutError(endpoint_url="http://x"), "could not reach the AWS endpoint"),
        (ConnectionClosedError(endpoint_url="http://x"), "dropped or timed out"),
        (ReadTimeoutError(endpoint_url="http://x"), "dropped or timed out"),
    ],
)
def test_network_failures_are_transient(exc: Exception, expected: str) -> None:
    err = translate(exc, doing="reading x")
    assert isinstance(err, TransientError), type(err)
    assert expected in str(err) and "while reading x" in str(err) and "rerun" in str(err)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDeniedException", "lack the IAM permission"),
        ("UnauthorizedOperation", "lack the IAM permission"),
        ("ExpiredToken", "invalid or expired"),
        ("UnrecognizedClientException", "invalid or expired"),
        ("ValidationException", "AWS error while reading x: ValidationException"),
    ],
)
def test_error_translation(code: str, expected: str) -> None:
    leaked = "A" * 40  # a token-shaped value echoed by an API error is never passed on
    exc = ClientError({"Error": {"Code": code, "Message": f"bad {leaked}"}}, "Op")
    err = translate(exc, doing="reading x")
    assert expected in str(err) and leaked not in str(err)


def test_image_tag_helpers() -> None:
    assert image_tag("registry:5000/org/flip-api:v1.2.3") == "v1.2.3"
    assert image_tag("registry:5000/org/flip-api") is None
    assert image_tag("ghcr.io/org/flip-api:v1@sha256:abc") == "v1"
    assert with_tag("registry:5000/org/flip-api:v1", "v2") == "registry:5000/org/flip-api:v2"
    assert with_tag("flip-api", "v2") == "flip-api:v2"
