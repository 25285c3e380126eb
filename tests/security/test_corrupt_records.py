"""Issue 19: a corrupt hub secret or ledger is an error that changes nothing.

FLIP_API is read from a real secret on the moto server by the real observation
(`adapters/hub_secret.observe_secret`), with an empty or null `aes_key`, trust key hashes of
the wrong type, or no secret at all; the ledger is a real S3 object that is not a ledger.
The real planner then plans an onboarding for such a world: FG013 blocks it (never
overridable, `--allow` does not help), drift names the problem, and the real apply engine
runs no action at all (exit 3). The escrow's own records (`"trust_api_key": null`, ...) are
refused by name in tests/integration/aws/test_escrow.py.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from flipgitops.adapters.aws_session import Clients
from flipgitops.adapters.hub_secret import observe_secret
from flipgitops.adapters.state_store import StateStore
from flipgitops.core.drift import drift_report
from flipgitops.core.planner import plan
from flipgitops.engine.apply import EXIT_BLOCKED, execute
from flipgitops.engine.executors import load_executors
from flipgitops.engine.planning import exit_code
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import PlanOptions
from flipgitops.sandbox.moto_server import MotoServer
from tests.builders import AES_HASH, manifest, not_onboarded, observed_matching
from tests.reliability.engineworld import ListJournal, World

REGION: Any = "eu-west-2"
GOOD_AES = "QUVTLWtleS1vZi0zMi1ieXRlcy1mb3ItdGVzdHMhIQ=="


@pytest.fixture(autouse=True)
def _executors() -> None:
    load_executors()


def _clients(moto: MotoServer) -> Clients:
    return Clients(boto3.Session(region_name=REGION))


def _onboarding_world(observed_hub_secret: Any = None, ledger: Any = None) -> World:
    m = manifest(trusts=2)
    o = not_onboarded(observed_matching(m), m, "Trust_2")
    if observed_hub_secret is not None:
        o = o.model_copy(update={"hub": o.hub.model_copy(update={"secret": observed_hub_secret})})
    if ledger is not None:
        o = o.model_copy(update={"ledger": ledger})
    return World(m, o)


def _assert_blocked_and_nothing_runs(world: World, target: str, says: str) -> None:
    p = plan(world.m, world.observed, PlanOptions(allow=frozenset({"FG013"})))
    assert p.actions, "the onboarding is still shown to the reviewer"
    fg013 = [v for v in p.violations if v.guard == "FG013"]
    assert [v.target for v in fg013] == [target] and says in fg013[0].message, p.violations
    assert not fg013[0].overridable and not fg013[0].allowed  # --allow FG013 changes nothing
    assert exit_code(p) == EXIT_BLOCKED
    report = drift_report(world.m, world.observed)
    assert any(says in f.message and f.severity == "critical" for f in report.findings)
    journal = ListJournal()
    result = execute(world.make_run(journal))
    assert result.exit_code == EXIT_BLOCKED and "FG013" in result.message
    assert world.host_runs == [] and result.completed == [] and journal.lines == []
    assert set(result.not_run) == {a.id for a in p.actions}


@pytest.mark.parametrize(("doc", "says"), [
    ({"aes_key": "", "internal_service_key": "k", "internal_service_key_hash": "h"},
     "aes_key is empty"),
    ({"aes_key": None, "internal_service_key": "k"}, "aes_key is a NoneType, not a string"),
    ({"internal_service_key": "k"}, "aes_key is missing"),
    ({"aes_key": GOOD_AES, "trust_api_key_hashes": ["Trust_1"]},
     "trust_api_key_hashes is a JSON list"),
    ({"aes_key": GOOD_AES, "trust_api_key_hashes": "{not json"}, "string that is not JSON"),
    ({"aes_key": GOOD_AES, "trust_api_key_hashes": {"Trust_1": None}},
     "non-string or empty hashes for Trust_1"),
    ({"aes_key": 42}, "aes_key is a int, not a string"),
    ("[1, 2]", "is not a JSON object"),
])
def test_a_corrupt_hub_secret_blocks_every_action(moto: MotoServer, doc: Any,
                                                   says: str) -> None:
    clients = _clients(moto)
    text = doc if isinstance(doc, str) else json.dumps(doc)
    clients.secretsmanager.create_secret(Name="FLIP_API", SecretString=text)
    seen, _ = observe_secret(clients, "FLIP_API")
    assert seen.exists and seen.malformed, seen
    assert GOOD_AES not in repr(seen)
    _assert_blocked_and_nothing_runs(_onboarding_world(seen), "hub.secret", says)


def test_no_hub_secret_at_all_blocks_every_action(moto: MotoServer) -> None:
    seen, _ = observe_secret(_clients(moto), "FLIP_API")
    assert not seen.exists
    _assert_blocked_and_nothing_runs(_onboarding_world(seen), "hub.secret",
                                     "does not exist")


def test_a_sound_secret_is_not_blocked(moto: MotoServer) -> None:
    clients = _clients(moto)
    clients.secretsmanager.create_secret(Name="FLIP_API", SecretString=json.dumps(
        {"aes_key": GOOD_AES, "internal_service_key": "k", "internal_service_key_hash": "h"}))
    seen, _ = observe_secret(clients, "FLIP_API")
    assert seen.malformed == () and seen.aes_key_sha256 not in (None, AES_HASH)
    world = _onboarding_world(seen)
    assert not [v for v in plan(world.m, world.observed).violations if v.guard == "FG013"]


@pytest.mark.parametrize(("body", "says"), [
    (b"{not json", "is not a JSON object"),
    (json.dumps({"format": 1, "environment": "dev", "trusts": {"Trust_1": {
        "credentials_generation": "one"}}}).encode(), "is not a flipgitops ledger"),
    (json.dumps({"format": 99, "environment": "dev", "trusts": {}}).encode(),
     "ledger format 99"),
])
def test_an_unreadable_ledger_blocks_every_action(moto: MotoServer, body: bytes,
                                                  says: str) -> None:
    clients = _clients(moto)
    bucket = "flip-gitops-state-dev"
    clients.s3.create_bucket(Bucket=bucket,
                             CreateBucketConfiguration={"LocationConstraint": REGION})
    clients.s3.put_object(Bucket=bucket, Key="flipgitops/ledger/dev.json", Body=body)
    ledger = StateStore(clients, bucket).read_ledger("dev")
    assert ledger.exists and not ledger.readable
    _assert_blocked_and_nothing_runs(_onboarding_world(ledger=ledger), "state.ledger", says)


def test_findings_alone_are_drift_not_a_block() -> None:
    """With nothing to do, a corrupt secret is drift (exit 2 everywhere), not a guard."""
    m = manifest(trusts=1)
    o: ObservedState = observed_matching(m)
    o = o.model_copy(update={"hub": o.hub.model_copy(update={
        "secret": o.hub.secret.model_copy(update={"malformed": ("aes_key is empty",)})})})
    p = plan(m, o)
    assert p.is_empty and not p.violations and not p.in_sync
    assert exit_code(p) == 2
