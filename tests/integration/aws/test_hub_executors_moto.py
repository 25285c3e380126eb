"""Hub executors whose procedure touches only AWS (no FLIP task): the allowlist, RDS, the
internal service key, and the dry-run ports — against a real moto server."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from aws_hubworld import REGION, context, make_manifest, ports, run
from pydantic import SecretStr

from flipgitops.adapters.aws_session import CallCounter, Clients
from flipgitops.engine import ports_hub, ports_state
from flipgitops.engine.ports_hub import DryRunWrite
from flipgitops.model.actions import ActionKind
from flipgitops.model.kit import sha256_hex

PORT = 8002
NLB = "flip-fl-server-nlb"


def _group(c: Clients, name: str = f"{NLB}-2025120100", tag: str | None = NLB) -> str:
    vpc = c.ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
    spec: Any = ([{"ResourceType": "security-group", "Tags": [{"Key": "Name", "Value": tag}]}]
                 if tag else [])
    return c.ec2.create_security_group(GroupName=name, Description="nlb", VpcId=vpc,
                                       TagSpecifications=spec)["GroupId"]


def _rules(c: Clients, group: str) -> dict[str, str | None]:
    perms = c.ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    return {r["CidrIp"]: r.get("Description") for p in perms["IpPermissions"]
            for r in p.get("IpRanges", [])}


def _authorize(c: Clients, group: str, cidr: str, description: str, port: int = PORT) -> None:
    c.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": port, "ToPort": port,
        "IpRanges": [{"CidrIp": cidr, "Description": description}]}])


# --- allowlist.update ----------------------------------------------------------------------


def test_allowlist_adds_then_revokes_and_leaves_terraforms_rules(clients: Clients) -> None:
    group = _group(clients)
    _authorize(clients, group, "198.51.100.9/32", "flipgitops:Old")
    _authorize(clients, group, "192.0.2.7/32",
               "FL Server/Admin NLB from on-prem Trust (192.0.2.7)")
    m = make_manifest()
    counter = CallCounter()
    from aws_hubworld import new_clients

    ctx = context(m, ports(m, new_clients(counter)))
    out = run(ctx, ActionKind.ALLOWLIST_UPDATE, "allowlist", {
        "add": [{"trust": "Trust_1", "cidr": "203.0.113.1"}],
        "revoke": [{"trust": "Old", "cidr": "198.51.100.9"},
                   {"trust": "Stranger", "cidr": "192.0.2.7"}]})
    assert out.ok and out.changed, out.message
    assert _rules(clients, group) == {
        "203.0.113.1/32": "flipgitops:Trust_1",
        "192.0.2.7/32": "FL Server/Admin NLB from on-prem Trust (192.0.2.7)"}
    writes = [op for _, op in counter.calls if op.startswith(("Authorize", "Revoke"))]
    assert writes == ["AuthorizeSecurityGroupIngress", "RevokeSecurityGroupIngress"]
    again = run(ctx, ActionKind.ALLOWLIST_UPDATE, "allowlist", {
        "add": [{"trust": "Trust_1", "cidr": "203.0.113.1"}]})
    assert again.ok and not again.changed


def test_allowlist_refuses_before_any_rule_when_the_quota_would_be_exceeded(
        clients: Clients) -> None:
    group = _group(clients)
    for i in range(58):  # AWS's (and moto's) quota is 60 inbound rules
        _authorize(clients, group, f"10.1.{i}.0/24", "other", port=443)
    before = _rules(clients, group)
    m = make_manifest()
    out = run(context(m, ports(m, clients)), ActionKind.ALLOWLIST_UPDATE, "allowlist", {
        "add": [{"trust": f"Trust_{i}", "cidr": f"203.0.113.{i}"} for i in range(1, 4)]})
    assert not out.ok and "would hold 61 inbound rules" in out.message
    assert "quota of 60" in out.message and "no rule was written" in out.message
    assert _rules(clients, group) == before


def test_allowlist_on_an_ambiguous_group_names_both(clients: Clients) -> None:
    a = _group(clients)
    b = _group(clients, name=NLB, tag=None)
    m = make_manifest()
    with pytest.raises(Exception) as err:
        run(context(m, ports(m, clients)), ActionKind.ALLOWLIST_UPDATE, "allowlist",
            {"add": [{"trust": "Trust_1", "cidr": "203.0.113.1"}]})
    assert a in str(err.value) and b in str(err.value)
    assert _rules(clients, a) == {} and _rules(clients, b) == {}


# --- the database --------------------------------------------------------------------------


def _db(c: Clients, protected: bool = True) -> None:
    c.rds.create_db_instance(DBInstanceIdentifier="flip-database", Engine="postgres",
                             DBInstanceClass="db.t3.micro", AllocatedStorage=20,
                             MasterUsername="postgres", MasterUserPassword="sandbox-pw-123",
                             DeletionProtection=protected)


def test_snapshot_named_by_generation_and_reused(clients: Clients) -> None:
    _db(clients)
    m = make_manifest()
    ctx = context(m, ports(m, clients))
    out = run(ctx, ActionKind.DATABASE_SNAPSHOT, "database", {"generation": 2})
    assert out.ok and out.changed, out.message
    snaps = clients.rds.describe_db_snapshots(DBInstanceIdentifier="flip-database",
                                              SnapshotType="manual")["DBSnapshots"]
    assert len(snaps) == 1 and snaps[0]["DBSnapshotIdentifier"].startswith(
        "flipgitops-dev-gen2-")
    again = run(ctx, ActionKind.DATABASE_SNAPSHOT, "database", {"generation": 2})
    assert again.ok and not again.changed


def test_snapshot_refused_when_the_instance_is_not_available(clients: Clients) -> None:
    _db(clients)
    clients.rds.stop_db_instance(DBInstanceIdentifier="flip-database")
    m = make_manifest()
    out = run(context(m, ports(m, clients)), ActionKind.DATABASE_SNAPSHOT, "database",
              {"generation": 2})
    assert not out.ok and "'stopped'" in out.message
    assert clients.rds.describe_db_snapshots(SnapshotType="manual")["DBSnapshots"] == []


def test_restore_protection_only_turns_it_on(clients: Clients) -> None:
    _db(clients, protected=False)
    m = make_manifest()
    out = run(context(m, ports(m, clients)), ActionKind.DATABASE_RESTORE_PROTECTION,
              "database", {})
    assert out.ok and out.changed
    db = clients.rds.describe_db_instances(DBInstanceIdentifier="flip-database")
    assert db["DBInstances"][0]["DeletionProtection"] is True


# --- hub.rotate_internal_key ---------------------------------------------------------------


def test_rotate_internal_key_escrows_first_and_writes_both_keys(clients: Clients) -> None:
    clients.s3.create_bucket(Bucket="flip-gitops-state-dev",
                             CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]
    clients.secretsmanager.create_secret(Name="FLIP_API", SecretString=json.dumps(
        {"aes_key": "QUVT", "internal_service_key": "old", "internal_service_key_hash": "x"}))
    m = make_manifest()
    p = ports(m, clients)
    lines: list[str] = []
    out = run(context(m, p, lines=lines), ActionKind.HUB_ROTATE_INTERNAL_KEY, "hub",
              {"generation": 2})
    assert out.ok and out.changed
    assert "TF_VAR_INTERNAL_SERVICE_KEY" in out.message and "reverts" in out.message
    held = p.escrow.read_internal_key()
    assert held is not None and held[0] == 2
    key = held[1].get_secret_value()
    doc = json.loads(clients.secretsmanager.get_secret_value(SecretId="FLIP_API")
                     ["SecretString"])
    assert doc["internal_service_key"] == key
    assert doc["internal_service_key_hash"] == sha256_hex(key) and doc["aes_key"] == "QUVT"
    assert p.state.read_ledger().internal_service_key_generation == 2
    assert key not in out.message and all(key not in line for line in lines)
    again = run(context(m, p), ActionKind.HUB_ROTATE_INTERNAL_KEY, "hub", {"generation": 2})
    assert again.ok and not again.changed


# --- dry run ---------------------------------------------------------------------------------


def _writers(protocol: type) -> list[str]:
    return [n for n, f in inspect.getmembers(protocol, inspect.isfunction)
            if not n.startswith("_")]


@pytest.mark.parametrize(("wrap", "inner", "writer_protocol"), [
    (ports_hub.dry_run_hub, "hub", ports_hub.HubWriter),
    (ports_hub.dry_run_escrow, "escrow", ports_hub.EscrowWriter),
    (ports_state.dry_run_state, "state", ports_state.StateWriter),
])
def test_every_dry_run_writer_raises(clients: Clients, wrap: Any, inner: str,
                                     writer_protocol: type) -> None:
    real = getattr(ports(make_manifest(), clients), inner)
    wrapped = wrap(real)
    names = _writers(writer_protocol)
    assert len(names) >= 5
    for name in names:
        method = getattr(wrapped, name)
        params = inspect.signature(method).parameters.values()
        args = [None for p in params if p.kind is p.POSITIONAL_OR_KEYWORD]
        kwargs = {p.name: None for p in params
                  if p.kind is p.KEYWORD_ONLY and p.default is p.empty}
        with pytest.raises(DryRunWrite):
            method(*args, **kwargs)


def test_dry_run_terraform_apply_raises() -> None:
    wrapped = ports_hub.dry_run_terraform(object())  # type: ignore[arg-type]
    with pytest.raises(DryRunWrite):
        wrapped.apply(None, lambda plan: [])  # type: ignore[arg-type]


def test_dry_run_executors_say_would_and_change_nothing(clients: Clients) -> None:
    group = _group(clients)
    _db(clients, protected=False)
    clients.secretsmanager.create_secret(Name="FLIP_API", SecretString=json.dumps(
        {"aes_key": "QUVT", "internal_service_key": "k", "internal_service_key_hash": "h"}))
    m = make_manifest()
    counter = CallCounter()
    from aws_hubworld import new_clients

    ctx = context(m, ports(m, new_clients(counter), dry_run=True), dry_run=True)
    outcomes = [
        run(ctx, ActionKind.ALLOWLIST_UPDATE, "allowlist",
            {"add": [{"trust": "Trust_1", "cidr": "203.0.113.1"}]}),
        run(ctx, ActionKind.DATABASE_RESTORE_PROTECTION, "database", {}),
        run(ctx, ActionKind.DATABASE_SNAPSHOT, "database", {"generation": 2}),
        run(ctx, ActionKind.HUB_ROTATE_INTERNAL_KEY, "hub", {"generation": 2}),
        run(ctx, ActionKind.CREDENTIALS_MINT, "Trust_1", {
            "credentials_generation": 1, "database_generation": 1, "fl_kit_slot": "Trust_1"}),
    ]
    assert all(o.ok and o.changed and o.message.startswith("would") for o in outcomes), \
        [o.message for o in outcomes]
    reads = ("Describe", "Get", "List")
    assert [op for _, op in counter.calls if not op.startswith(reads)] == []
    assert _rules(clients, group) == {}
    assert SecretStr  # the escrow stayed empty:
    assert clients.ssm.describe_parameters()["Parameters"] == []


# --- ledger.migrate ------------------------------------------------------------------------

V1_KEY = "v1-escrowed-api-key-value-0123456789abcdefgh"


def test_migrate_moves_old_bookkeeping_into_the_ledger_losing_nothing(clients: Clients
                                                                      ) -> None:
    clients.s3.create_bucket(Bucket="flip-gitops-state-dev",
                             CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]
    legacy = {"trust_names": ["Trust_1", "Trust_2"],
              "flipgitops_credentials_generations": {"Trust_1": 2, "Trust_2": 1},
              "flipgitops_database_generations": '{"Trust_1": 3}',
              "flipgitops_redeploy_pending": True,
              "trust_api_key_hashes_previous": {"Trust_1": "0" * 64}}
    kept = {"aes_key": "QUVT", "internal_service_key": "k", "internal_service_key_hash": "h",
            "trust_api_key_hashes": json.dumps({"Trust_1": sha256_hex(V1_KEY),
                                                "Trust_2": "2" * 64})}
    clients.secretsmanager.create_secret(Name="FLIP_API",
                                         SecretString=json.dumps({**kept, **legacy}))
    clients.ssm.put_parameter(Name="/flipgitops/dev/trusts/Trust_1/api-key",
                              Type="SecureString", Value=json.dumps(
                                  {"generation": 2, "database_generation": 3,
                                   "api_key": V1_KEY}))
    m = make_manifest(2, trust_registry="secret")
    p = ports(m, clients)
    keys = sorted(legacy)
    dry = run(context(m, ports(m, clients, dry_run=True), dry_run=True),
              ActionKind.LEDGER_MIGRATE, "ledger", {"legacy_keys": keys})
    assert dry.ok and dry.message.startswith("would")
    out = run(context(m, p), ActionKind.LEDGER_MIGRATE, "ledger", {"legacy_keys": keys})
    assert out.ok and out.changed, out.message
    ledger = p.state.read_ledger()
    assert ledger.redeploy_pending
    one, two = ledger.trusts["Trust_1"], ledger.trusts["Trust_2"]
    assert (one.credentials_generation, one.database_generation) == (2, 3)
    assert one.api_key_sha256 == sha256_hex(V1_KEY) and one.held and one.source == "migrated"
    assert two.api_key_sha256 == "2" * 64 and not two.held  # no key escrowed for it anywhere
    kit = p.escrow.read_kit("Trust_1")  # v1's key kept, now in FLIP's kit shape
    assert kit is not None and kit.kit.api_key_sha256 == sha256_hex(V1_KEY)
    doc = json.loads(clients.secretsmanager.get_secret_value(SecretId="FLIP_API")
                     ["SecretString"])
    assert doc == kept
    again = run(context(m, p), ActionKind.LEDGER_MIGRATE, "ledger", {"legacy_keys": keys})
    assert again.ok and not again.changed
    assert V1_KEY not in out.message


# --- the AES key for trusts ------------------------------------------------------------------


@pytest.mark.parametrize("doc", [{"aes_key": ""}, {"aes_key": None}, {"other": "x"}])
def test_aes_key_that_is_missing_empty_or_mistyped_is_an_error(clients: Clients,
                                                               doc: dict[str, Any]) -> None:
    clients.secretsmanager.create_secret(Name="FLIP_API", SecretString=json.dumps(doc))
    m = make_manifest()
    with pytest.raises(Exception, match="refusing to deliver it to any trust"):
        ports(m, clients).hub.read_aes_key()


def test_aes_key_is_read_when_sound(clients: Clients) -> None:
    clients.secretsmanager.create_secret(Name="FLIP_API", SecretString='{"aes_key": "QUVT"}')
    assert ports(make_manifest(), clients).hub.read_aes_key().get_secret_value() == "QUVT"


def test_tls_failure_names_the_endpoint(moto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    https = moto.url.replace("http://", "https://")
    monkeypatch.setenv("AWS_ENDPOINT_URL", https)
    from aws_hubworld import new_clients

    from flipgitops.adapters.aws_session import must

    c = new_clients()
    with pytest.raises(Exception, match="TLS failed talking to") as err:
        must(lambda: c.sts.get_caller_identity(), doing="identifying the account")
    assert https.split("//")[1] in str(err.value)
