"""AWS fails the way AWS fails: throttling, 503s, dropped connections, and outages.

The apply engine runs in-process on `Clients` whose session carries a `FaultInjector`
(tests/reliability/conftest.py): a botocore ``before-send`` handler that answers a seeded
fraction of HTTP attempts with a 503 throttling response or a connection error before they
reach the moto server. Everything else is real: moto over HTTP, ansible-runner against local
trust hosts, the real CLI for the reruns and plans that judge the outcome.

- Retryable noise (30% of attempts fail) must be absorbed by botocore's standard retry mode:
  the apply converges and a fresh plan is empty.
- An outage of the hub secret write (every PutSecretValue fails) must stop the apply with
  exit 1 and an error naming that operation, leave the hub secret whole (the old version,
  registry consistent), and a rerun without faults must converge.
- A write that takes effect but whose response is lost is retried by botocore: the repeat
  must not double its effect (one new secret version, no duplicate ingress rule).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from applyworld import World

from flipgitops.engine.apply import apply
from flipgitops.model.plan import PlanOptions
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow

TRUSTS = ("Trust_1", "Trust_2")


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def assert_registry_whole(secret: dict[str, Any]) -> None:
    """The hub secret is one consistent registry: every name hashed, every hash named."""
    names = secret.get("trust_names")
    hashes = secret.get("trust_api_key_hashes")
    assert isinstance(names, list) and isinstance(hashes, dict), secret.keys()
    assert sorted(names) == sorted(hashes), f"names {names} vs hashes {sorted(hashes)}"
    assert len(set(names)) == len(names), f"duplicate trust names {names}"
    for name, digest in hashes.items():
        assert isinstance(digest, str) and len(digest) == 64, f"{name}: bad hash"
    for key in ("aes_key", "internal_service_key_hash"):
        assert key in secret, f"the registry write lost {key}"


def assert_onboarded(w: World) -> None:
    """Both trusts registered, allowlisted once each, and holding the key the hub expects."""
    secret = w.secret()
    assert_registry_whole(secret)
    assert sorted(secret["trust_names"]) == list(TRUSTS)
    assert w.rules() == [("203.0.113.11/32", "flipgitops:Trust_1"),
                         ("203.0.113.12/32", "flipgitops:Trust_2")]
    for trust in TRUSTS:
        escrow = w.escrowed(trust)
        assert escrow is not None, f"{trust}: no escrowed key"
        host_key = w.host_env(trust).get("TRUST_API_KEY")
        assert host_key, f"{trust}: no trust env file on the host"
        assert sha(host_key) == secret["trust_api_key_hashes"][trust] == sha(escrow[1])


def test_retryable_faults_are_absorbed_and_apply_converges(
    moto: MotoServer, tmp_path: Path, faulty_clients: Any, echo: Any
) -> None:
    w = World(tmp_path, trusts=TRUSTS)
    w.seed_hub(trusts=False)
    injector, clients = faulty_clients(rate=0.3, seed=20261122)

    result = apply(w.manifest(), w.path, PlanOptions(), echo=echo, clients=clients)

    assert result.exit_code == 0, f"{result.message}\n{result.failed}\n{echo.text}"
    assert result.converged and result.remaining == []
    # The noise really happened, of every kind, on the services apply touches.
    sent = sum(injector.sent.values())
    assert sent >= 30, f"apply made only {sent} AWS attempts: was the session used at all?"
    assert injector.total_injected >= 0.15 * sent, (injector.injected, sent)
    assert all(injector.injected[k] > 0 for k in injector.kinds), injector.injected
    services = {op.split(".")[0] for op in injector.injected_ops}
    assert {"s3", "secrets-manager", "ssm"} <= services, injector.injected_ops

    assert_onboarded(w)
    plan = w.plan()
    assert plan.code == 0, f"a fresh plan after the faulty apply is not empty:\n{plan.text}"
    assert w.lock() is None, "the lock must be released despite the faults"


def test_hub_secret_write_outage_fails_cleanly_and_a_rerun_converges(
    moto: MotoServer, tmp_path: Path, faulty_clients: Any, echo: Any
) -> None:
    w = World(tmp_path, trusts=TRUSTS)
    w.seed_hub(trusts=False)
    before_version, before = w.secret_version(), w.secret()
    injector, clients = faulty_clients(always=frozenset({"PutSecretValue"}))

    result = apply(w.manifest(), w.path, PlanOptions(), echo=echo, clients=clients)

    assert result.exit_code == 1, f"{result.message}\n{echo.text}"
    assert not result.converged
    assert injector.injected_ops["secrets-manager.PutSecretValue"] >= 2, (
        "the write was not retried at all: standard retry mode is off"
    )
    assert list(result.failed) == ["hub_secret.update"], result.failed
    error = result.failed["hub_secret.update"]
    assert "writing hub secret FLIP_API" in error, error
    assert "Throttling" in error and "rerun" in error, error
    assert "Fix the cause and rerun" in result.message, result.message
    assert result.not_run, "actions after the failed wave must not run"
    assert not any(a.startswith("host.") for a in result.completed), result.completed

    # Whole: still exactly the old version, and that version is a consistent registry.
    assert w.secret_version() == before_version
    assert w.secret() == before
    assert_registry_whole(w.secret())
    # Keys were escrowed before the hub write: the rerun reuses them, nothing is lost.
    escrowed = {t: w.escrowed(t) for t in TRUSTS}
    assert all(e is not None for e in escrowed.values()), escrowed
    assert w.rules() == [], "the allowlist comes after the registry and must not have run"
    assert w.lock() is None, "a failed run must release its lock"

    rerun = w.apply()
    assert rerun.code == 0, rerun.text
    assert_onboarded(w)
    assert {t: w.escrowed(t) for t in TRUSTS} == escrowed, "the rerun minted new keys"
    assert_registry_whole(w.secret())
    plan = w.plan()
    assert plan.code == 0, f"plan after the rerun is not empty:\n{plan.text}"


def test_fault_injector_really_fails_calls(
    moto: MotoServer, faulty_clients: Any
) -> None:
    """Guard for the two tests above: with retries off, injected faults surface as errors."""
    from botocore.config import Config
    from botocore.exceptions import ClientError, EndpointConnectionError

    injector, clients = faulty_clients(always=frozenset({"ListBuckets"}))
    s3 = clients.session.client("s3", config=Config(retries={"mode": "standard",
                                                             "max_attempts": 1}))
    with pytest.raises(ClientError) as raised:
        s3.list_buckets()
    assert raised.value.response["Error"]["Code"] == "SlowDown"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503

    sm = clients.session.client("secretsmanager", config=Config(retries={"max_attempts": 1}))
    injector.always = frozenset({"ListSecrets"})
    with pytest.raises(ClientError) as raised:
        sm.list_secrets()
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"

    injector.always, injector.always_kind = frozenset({"GetCallerIdentity"}), "endpoint_connection"
    sts = clients.session.client("sts", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(EndpointConnectionError):
        sts.get_caller_identity()

    injector.always, injector.always_kind = frozenset({"DescribeVpcs"}), "throttle_503"
    ec2 = clients.session.client("ec2", config=Config(retries={"max_attempts": 1}))
    with pytest.raises(ClientError) as raised:
        ec2.describe_vpcs()
    assert raised.value.response["Error"]["Code"] == "RequestLimitExceeded"

    injector.always = frozenset({"GetCallerIdentity"})
    with pytest.raises(ClientError) as raised:
        sts.get_caller_identity()
    assert raised.value.response["Error"]["Code"] == "Throttling"

    injector.always = frozenset()
    assert json.dumps(clients.sts.get_caller_identity()["Account"])  # and otherwise it works


WRITES = frozenset({"PutSecretValue", "PutParameter", "AuthorizeSecurityGroupIngress",
                    "UpdateService"})


def test_lost_responses_to_writes_are_retried_without_double_effects(
    moto: MotoServer, tmp_path: Path, faulty_clients: Any, echo: Any
) -> None:
    """Every hub write takes effect but its first response is lost; the retry repeats it.

    Hub-side only trusts (kind tre): what matters is how each AWS write behaves when it is
    repeated. The registry must get exactly the two new secret versions it writes (each
    write is idempotent), no ingress rule may be doubled, and the escrowed keys must be the ones
    whose hashes the hub holds.
    """
    w = World(tmp_path, trusts=TRUSTS, tre=True)
    w.seed_hub(trusts=False)
    versions_before = w.clients.secretsmanager.list_secret_version_ids(SecretId="FLIP_API")
    injector, clients = faulty_clients(lose_first=WRITES)

    result = apply(w.manifest(), w.path, PlanOptions(), echo=echo, clients=clients)

    assert result.exit_code == 0, f"{result.message}\n{result.failed}\n{echo.text}"
    lost = {op.split(".")[1] for op in injector.injected_ops}
    assert lost >= WRITES, f"not every write had its response lost: {injector.injected_ops}"

    versions = w.clients.secretsmanager.list_secret_version_ids(SecretId="FLIP_API")
    # Exactly two writes: the registry change (with the redeploy-pending marker) and the
    # marker's removal after the redeploy. A repeated write would add a third version.
    assert len(versions["Versions"]) == len(versions_before["Versions"]) + 2, (
        "a repeated hub secret write created another secret version"
    )
    assert "flipgitops_redeploy_pending" not in w.secret()
    secret = w.secret()
    assert_registry_whole(secret)
    assert sorted(secret["trust_names"]) == list(TRUSTS)
    for trust in TRUSTS:
        escrow = w.escrowed(trust)
        assert escrow is not None
        assert sha(escrow[1]) == secret["trust_api_key_hashes"][trust], \
            f"{trust}: the escrowed key is not the one the hub accepts"
    assert w.rules() == [("203.0.113.11/32", "flipgitops:Trust_1"),
                         ("203.0.113.12/32", "flipgitops:Trust_2")]
    plan = w.plan()
    assert plan.code == 0, f"plan after the apply is not empty:\n{plan.text}"
