"""The two crash-safety records against a real moto server: the hub secret's redeploy marker
(set with every registry write, cleared only after flip-api was redeployed) and the database
generation each trust's key was minted for (escrow and hub secret)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from awsworld import make_manifest

from flipgitops.adapters.aws import REDEPLOY_PENDING, observe_hub, observe_secret
from flipgitops.adapters.aws_actions import AwsActions, escrow_parameter
from flipgitops.adapters.aws_session import Clients
from flipgitops.engine.executors import ApplyContext, credentials_escrow, executor_for
from flipgitops.errors import AwsError
from flipgitops.model.manifest import Manifest
from flipgitops.model.plan import Action, ActionKind
from flipgitops.sandbox.seed import SeedResult, seed_hub
from tests.awshelpers import secret, sha, versions

Hub = tuple[Manifest, SeedResult]


def context(actions: AwsActions, manifest: Manifest | None = None) -> ApplyContext:
    return ApplyContext(manifest=manifest or actions.manifest, manifest_dir=Path("."),
                        aws=actions, echo=lambda *a, **k: None)


def run(ctx: ApplyContext, action: Action) -> bool:
    outcome = executor_for(action.kind).run(ctx, [action])[action.id]
    assert outcome.ok, outcome.message
    return outcome.changed


# --- redeploy marker ---------------------------------------------------------------------


def test_seeded_hub_has_no_marker(hub: Hub, clients: Clients) -> None:
    assert REDEPLOY_PENDING not in secret(clients)
    assert observe_secret(clients, "FLIP_API").redeploy_pending is False


def test_registry_write_sets_the_marker_in_the_same_version(
    actions: AwsActions, clients: Clients
) -> None:
    before = versions(clients)
    assert actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], []) is True
    assert versions(clients) == before + 1, "hash and marker must be one put_secret_value"
    data = secret(clients)
    assert data[REDEPLOY_PENDING] is True and data["trust_api_key_hashes"]["Trust_0"] == "f" * 64
    assert observe_secret(clients, "FLIP_API").redeploy_pending is True
    # A no-op update writes nothing (and so cannot re-set a cleared marker).
    assert actions.clear_redeploy_pending() is True
    assert actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], []) is False
    assert REDEPLOY_PENDING not in secret(clients)


def test_marker_can_be_left_out(actions: AwsActions, clients: Clients) -> None:
    assert actions.update_hub_secret({"Trust_0": ("f" * 64, 1)}, [], [],
                                     mark_redeploy_pending=False) is True
    assert REDEPLOY_PENDING not in secret(clients)


def test_clear_removes_only_the_marker_and_is_a_no_op_when_unset(
    actions: AwsActions, clients: Clients
) -> None:
    assert actions.clear_redeploy_pending() is False  # not set: nothing written
    actions.update_hub_secret({}, ["Trust_3"], [])
    with_marker = secret(clients)
    before = versions(clients)
    assert actions.clear_redeploy_pending() is True
    assert versions(clients) == before + 1
    assert secret(clients) == {k: v for k, v in with_marker.items() if k != REDEPLOY_PENDING}
    assert actions.clear_redeploy_pending() is False
    assert versions(clients) == before + 1


def test_clear_tolerates_a_missing_secret(actions: AwsActions, clients: Clients) -> None:
    clients.secretsmanager.delete_secret(SecretId="FLIP_API", ForceDeleteWithoutRecovery=True)
    assert actions.clear_redeploy_pending() is False


def test_executors_set_then_clear_the_marker(actions: AwsActions, clients: Clients) -> None:
    ctx = context(actions)
    for kind, id_ in ((ActionKind.HUB_SECRET_UPDATE, "hub_secret.update"),
                      (ActionKind.HUB_SECRET_UPDATE, "hub_secret.finalize")):
        update = Action(id=id_, kind=kind, target="FLIP_API",
                        params={"register": [], "deregister": ["Trust_3"] if
                                id_ == "hub_secret.update" else ["Trust_2"],
                                "drop_previous": []})
        assert run(ctx, update) is True
        assert observe_secret(clients, "FLIP_API").redeploy_pending is True
        redeploy_id = "hub.redeploy" if id_ == "hub_secret.update" else "hub.redeploy:finalize"
        run(ctx, Action(id=redeploy_id, kind=ActionKind.HUB_REDEPLOY, target="flip_api"))
        assert observe_secret(clients, "FLIP_API").redeploy_pending is False


def test_failed_redeploy_keeps_the_marker(actions: AwsActions, clients: Clients) -> None:
    actions.update_hub_secret({}, ["Trust_3"], [])
    clients.ecs.delete_service(cluster="flip-cluster", service="flip-api", force=True)
    redeploy = Action(id="hub.redeploy", kind=ActionKind.HUB_REDEPLOY, target="flip_api")
    with pytest.raises(AwsError, match="flip-api not found"):
        executor_for(redeploy.kind).run(context(actions), [redeploy])
    assert secret(clients)[REDEPLOY_PENDING] is True


def test_dry_run_redeploy_leaves_the_marker(actions: AwsActions, clients: Clients) -> None:
    actions.update_hub_secret({}, ["Trust_3"], [])
    ctx = context(actions)
    ctx.dry_run = True
    run(ctx, Action(id="hub.redeploy", kind=ActionKind.HUB_REDEPLOY, target="flip_api"))
    assert secret(clients)[REDEPLOY_PENDING] is True


# --- database generation of keys -----------------------------------------------------------


def test_escrow_mints_a_new_key_for_a_new_database_generation(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    _, seed = hub
    old = seed.trust_keys["Trust_1"]
    record = actions.escrow_record("Trust_1")
    assert record is not None and (record.generation, record.database_generation) == (1, 1)
    assert old not in repr(record)
    assert actions.ensure_escrowed_key("Trust_1", 1) == old  # legacy JSON reads as db gen 1
    new = actions.ensure_escrowed_key("Trust_1", 1, database_generation=2)
    assert new != old
    assert actions.ensure_escrowed_key("Trust_1", 1, database_generation=2) == new
    value = json.loads(clients.ssm.get_parameter(
        Name=escrow_parameter("dev", "Trust_1"), WithDecryption=True)["Parameter"]["Value"])
    assert value == {"generation": 1, "database_generation": 2, "api_key": new}
    assert actions.escrowed_key("Trust_1") == (1, new)


def test_hub_secret_records_the_database_generation(
    actions: AwsActions, clients: Clients
) -> None:
    actions.update_hub_secret({"Trust_1": ("a" * 64, 1)}, [], [],
                              database_generations={"Trust_1": 2})
    data = secret(clients)
    assert data["flipgitops_database_generations"] == {"Trust_1": 2}
    assert data["flipgitops_credentials_generations"]["Trust_1"] == 1  # int form kept
    s = observe_secret(clients, "FLIP_API")
    assert s.database_generations == {"Trust_1": 2}
    assert s.database_generation("Trust_2") == 1  # absent: generation 1
    actions.update_hub_secret({}, ["Trust_1"], [])
    assert secret(clients)["flipgitops_database_generations"] == {}


def test_escrow_and_registration_executors_carry_the_database_generation(
    hub: Hub, actions: AwsActions, clients: Clients
) -> None:
    m = make_manifest(3, database={"generation": 2})
    ctx = context(AwsActions(m, clients), m)
    escrow = Action(id="credentials.escrow:Trust_2", kind=ActionKind.CREDENTIALS_ESCROW,
                    target="Trust_2", params={"generation": 1, "database_generation": 2})
    assert credentials_escrow(ctx, escrow).ok
    record = actions.escrow_record("Trust_2")
    assert record is not None and record.database_generation == 2
    assert record.api_key != hub[1].trust_keys["Trust_2"]
    run(ctx, Action(id="hub_secret.update", kind=ActionKind.HUB_SECRET_UPDATE,
                    target="FLIP_API",
                    params={"register": ["Trust_2"], "deregister": [], "drop_previous": []}))
    data = secret(clients)
    assert data["trust_api_key_hashes"]["Trust_2"] == sha(record.api_key)
    assert data["flipgitops_database_generations"]["Trust_2"] == 2


def test_registration_refuses_a_key_from_an_older_database(
    actions: AwsActions, clients: Clients
) -> None:
    m = make_manifest(3, database={"generation": 2})
    ctx = context(AwsActions(m, clients), m)
    update = Action(id="hub_secret.update", kind=ActionKind.HUB_SECRET_UPDATE,
                    target="FLIP_API",
                    params={"register": ["Trust_1"], "deregister": [], "drop_previous": []})
    outcome = executor_for(update.kind).run(ctx, [update])[update.id]
    assert not outcome.ok and "database generation 1" in outcome.message
    assert REDEPLOY_PENDING not in secret(clients)


def test_seeded_hub_at_database_generation_2_records_it(clients: Clients) -> None:
    m = make_manifest(2, database={"generation": 2})
    seed = seed_hub(m, clients)
    hub = observe_hub(m, clients)
    assert hub.secret.database_generations == {"Trust_1": 2, "Trust_2": 2}
    assert hub.database.generation == 2
    record = AwsActions(m, clients).escrow_record("Trust_1")
    assert record is not None and record.database_generation == 2
    assert record.api_key == seed.trust_keys["Trust_1"]


def test_observe_parses_both_encodings_and_never_masks_the_records(
    hub: Hub, clients: Clients
) -> None:
    data = secret(clients)
    data[REDEPLOY_PENDING] = "true"
    data["flipgitops_database_generations"] = json.dumps({"Trust_1": 3, "Trust_2": "2"})
    clients.secretsmanager.put_secret_value(SecretId="FLIP_API", SecretString=json.dumps(data))
    s = observe_secret(clients, "FLIP_API")
    assert s.redeploy_pending is True
    assert s.database_generations == {"Trust_1": 3, "Trust_2": 2}
    assert REDEPLOY_PENDING not in s.other_keys
    assert "flipgitops_database_generations" not in s.other_keys
