"""Hub procedures against the stand-in FLIP hub: the secret era's registry and redeploy, image
deploys with rollback (deploy-centralhub / rollback-centralhub), and the schema reset."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from aws_hubworld import FAST, Standin, context, make_manifest, new_clients, ports, run
from pydantic import SecretStr

from flipgitops.adapters.aws import observe_hub
from flipgitops.adapters.aws_session import CallCounter
from flipgitops.adapters.hub import AwsHub
from flipgitops.adapters.image_registry import ImageCheck, split_image
from flipgitops.adapters.waiting import Waits
from flipgitops.model.actions import ActionKind
from flipgitops.model.kit import LocalCredentials

pytestmark = pytest.mark.slow  # each test seeds a FLIP hub (~8 s on 2 shared cores)


def poll_status(world: Standin, key: str) -> int:
    req = urllib.request.Request(f"{world.hub.api_url}/tasks/pending",
                                 headers={"Authorization": key})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


# --- the secret era (E2) -------------------------------------------------------------------


def test_secret_era_names_in_a_revision_hash_in_the_secret_live_after_redeploy(
        standin: Callable[..., Standin]) -> None:
    m = make_manifest(2, trust_registry="secret")
    world = standin(m, existing=["Trust_1"])
    c = new_clients()
    p = ports(m, c, world.endpoints)
    lines: list[str] = []
    ctx = context(m, p, lines=lines)
    old_td = c.ecs.describe_services(cluster="flip-cluster", services=["flip-api"])[
        "services"][0]["taskDefinition"]

    minted = run(ctx, ActionKind.CREDENTIALS_MINT, "Trust_2", {
        "credentials_generation": 1, "database_generation": 1, "fl_kit_slot": "Trust_2"})
    assert minted.ok and minted.changed
    held = p.escrow.read_kit("Trust_2")
    assert held is not None and held.kit.trust_id == "" and held.kit.fl_kit_slot_number == 2
    key = held.kit.trust_api_key.get_secret_value() if held.kit.trust_api_key else ""

    out = run(ctx, ActionKind.REGISTRY_SECRET_WRITE, "registry", {
        "registering": ["Trust_2"], "names_after": ["Trust_1", "Trust_2"]})
    assert out.ok and out.changed, out.message
    assert "new flip-api revision" in out.message
    latest = "arn:aws:ecs:eu-west-2:123456789012:task-definition/flip-api:2"
    assert latest != old_td
    env = {e["name"]: e["value"] for e in c.ecs.describe_task_definition(
        taskDefinition=latest)["taskDefinition"]["containerDefinitions"][0]["environment"]}
    assert json.loads(env["TRUST_NAMES"]) == ["Trust_1", "Trust_2"]
    raw = json.loads(c.secretsmanager.get_secret_value(SecretId="FLIP_API")["SecretString"])
    assert isinstance(raw["trust_api_key_hashes"], str)  # Terraform's JSON string, kept
    hashes = json.loads(raw["trust_api_key_hashes"])
    assert hashes["Trust_2"] == held.kit.api_key_sha256 and set(hashes) == {"Trust_1",
                                                                            "Trust_2"}
    assert p.state.read_ledger().redeploy_pending
    assert p.state.read_ledger().trusts["Trust_2"].registry == "secret"

    world.hub.worker.settle()
    assert poll_status(world, key) == 401  # E2 loaded its registry at the last deploy
    seen = observe_hub(m, new_clients(), world.endpoints)
    assert seen.registry.era == "secret" and seen.services["flip_api"].loaded_current is False
    # Stopped here (before the redeploy), the registry is written: observed as written, and
    # writing it again registers no further revision.
    assert seen.services["flip_api"].trust_names == ("Trust_1", "Trust_2")
    rewrite = run(ctx, ActionKind.REGISTRY_SECRET_WRITE, "registry", {
        "registering": ["Trust_2"], "names_after": ["Trust_1", "Trust_2"]})
    assert rewrite.ok and not rewrite.changed, rewrite.message
    assert c.ecs.list_task_definitions(familyPrefix="flip-api")["taskDefinitionArns"][-1] \
        == latest

    # moto gives the secret's CreatedDate to the second, and observe then only trusts a
    # deployment from the next second on (real AWS gives milliseconds): the redeploy, run
    # at once, waits that second out itself, or the apply's re-plan would redeploy again.
    redeployed = run(ctx, ActionKind.HUB_REDEPLOY, "flip_api",
                     {"role": "flip_api", "reason": "registry changed"})
    assert redeployed.ok, redeployed.message
    assert poll_status(world, key) == 200
    assert poll_status(world, world.seeded.trust_keys["Trust_1"]) == 200
    assert not p.state.read_ledger().redeploy_pending
    assert observe_hub(m, new_clients(), world.endpoints).services[
        "flip_api"].loaded_current is True
    for text in (minted.message, out.message, redeployed.message, *lines):
        assert key not in text

    again = run(ctx, ActionKind.REGISTRY_SECRET_WRITE, "registry", {
        "registering": ["Trust_2"], "names_after": ["Trust_1", "Trust_2"]})
    assert again.ok and not again.changed

    # A rotation's write and redeploy back to back, as an apply runs them: the deployment
    # must still be observably after the write, or the apply's re-plan redeploys again.
    rotated = run(ctx, ActionKind.CREDENTIALS_MINT, "Trust_2", {
        "credentials_generation": 2, "database_generation": 1, "fl_kit_slot": "Trust_2"})
    assert rotated.ok and rotated.changed
    wrote = run(ctx, ActionKind.REGISTRY_SECRET_WRITE, "registry", {
        "registering": ["Trust_2"], "names_after": ["Trust_1", "Trust_2"]})
    assert wrote.ok and wrote.changed, wrote.message
    assert run(ctx, ActionKind.HUB_REDEPLOY, "flip_api",
               {"role": "flip_api", "reason": "registry changed"}).ok
    assert observe_hub(m, new_clients(), world.endpoints).services[
        "flip_api"].loaded_current is True

    # Deregistered (decommissioned): nothing of the trust stays escrowed.
    p.escrow.write_local("Trust_2", LocalCredentials(values={"ORTHANC_PASSWORD": SecretStr(
        "orthanc-password-for-the-test")}))
    gone = run(ctx, ActionKind.REGISTRY_SECRET_WRITE, "registry", {
        "deregistering": ["Trust_2"], "names_after": ["Trust_1"]})
    assert gone.ok and gone.changed, gone.message
    assert p.escrow.read_kit("Trust_2") is None
    assert p.escrow.read_local("Trust_2") is None
    assert "Trust_2" not in p.state.read_ledger().trusts


# --- deploy-centralhub ---------------------------------------------------------------------


def _state(world: Standin) -> dict[str, str]:
    c = new_clients()
    services = c.ecs.describe_services(cluster="flip-cluster", services=list(
        world.seeded.services.values()))["services"]
    return {s["serviceName"]: s["taskDefinition"] for s in services}


def _publish(world: Standin, tag: str) -> None:
    for image in world.seeded.images.values():
        _, repo, _ = split_image(image)
        world.hub.registry.add(repo, tag)


DEPLOY = {"images": {"flip_api": {"tag": "v2.4.0"}, "fl_api": {"tag": "v2.4.0"},
                     "fl_server": {"tag": "v2.4.0"}}}


def test_deploying_a_tag_the_registry_lacks_changes_nothing(
        standin: Callable[..., Standin]) -> None:
    m = make_manifest(1)
    world = standin(m, existing=[], kit_dates=[])
    before = _state(world)
    counter = CallCounter()
    out = run(context(m, ports(m, new_clients(counter), world.endpoints)),
              ActionKind.HUB_DEPLOY_IMAGES, "hub", DEPLOY)
    assert not out.ok and "flip-api:v2.4.0 not found in ghcr.io" in out.message
    assert "no service was changed" in out.message
    assert _state(world) == before
    assert not [op for _, op in counter.calls
                if op in ("RegisterTaskDefinition", "UpdateService")]


def test_deploy_moves_every_service_and_waits_until_stable(
        standin: Callable[..., Standin]) -> None:
    m = make_manifest(1)
    world = standin(m, existing=[], kit_dates=[])
    _publish(world, "v2.4.0")
    before = _state(world)
    lines: list[str] = []
    out = run(context(m, ports(m, new_clients(), world.endpoints), lines=lines),
              ActionKind.HUB_DEPLOY_IMAGES, "hub", DEPLOY)
    assert out.ok and out.changed, out.message
    after = _state(world)
    assert all(after[s] != before[s] for s in before)
    seen = observe_hub(m, new_clients(), world.endpoints)
    assert {s.tag for s in seen.services.values()} == {"v2.4.0"}
    assert all(s.stable for s in seen.services.values())
    assert world.hub.state.loaded is not None and world.hub.state.loaded.image_tag == "v2.4.0"
    assert any("verified in ghcr.io" in line for line in lines)


class _VanishingImages(AwsHub):
    """The registry loses the images right after phase 1 checked them (a retention policy
    between check and pull): ECS cannot pull, so the deployment never stabilises."""

    def __init__(self, world: Standin, *args: object, **kw: object) -> None:
        super().__init__(*args, **kw)  # type: ignore[arg-type]
        self.world = world

    def check_image(self, image: str) -> ImageCheck:
        found = super().check_image(image)
        _, repo, tag = split_image(image)
        self.world.hub.registry.remove(repo, tag or "")
        return found


def test_a_deploy_that_never_stabilises_rolls_back_and_names_the_services(
        standin: Callable[..., Standin]) -> None:
    m = make_manifest(1)
    world = standin(m, existing=[], kit_dates=[])
    _publish(world, "v2.4.0")
    before = _state(world)
    waits = Waits(task_timeout=20, stable_timeout=5, interval=0.1)
    hub = _VanishingImages(world, m, new_clients(), endpoints=world.endpoints, waits=waits)
    out = run(context(m, ports(m, new_clients(), hub=hub)), ActionKind.HUB_DEPLOY_IMAGES,
              "hub", DEPLOY)
    assert not out.ok and out.changed
    assert "did not stabilise" in out.message
    assert "moved flip-api, fl-api-net-1, fl-server-net-1" in out.message
    assert "rolled back flip-api to flip-api:1" in out.message
    assert "NOT rolled back" not in out.message
    assert _state(world) == before
    failed = new_clients().ecs.describe_task_definition(taskDefinition="flip-api:2")
    assert failed["taskDefinition"]["status"] == "INACTIVE"  # deregistered, as FLIP does
    assert FAST.stable_timeout > waits.stable_timeout


# --- the schema reset ------------------------------------------------------------------------


def test_schema_reset_by_evidence_then_tagged(standin: Callable[..., Standin]) -> None:
    m = make_manifest(1)
    world = standin(m, existing="all", kit_dates=[])
    c = new_clients()
    p = ports(m, c, world.endpoints)
    out = run(context(m, p), ActionKind.DATABASE_RESET_SCHEMA, "database", {"generation": 2})
    assert out.ok and out.changed, out.message
    assert p.hub.database().generation == 2
    # the stand-in played both statements: an empty schema until flip-api boots again
    assert world.hub.state.schema_exists and not world.hub.state.tables_exist
    again = run(context(m, p), ActionKind.DATABASE_RESET_SCHEMA, "database", {"generation": 2})
    assert again.ok and not again.changed


def test_schema_reset_without_evidence_fails_whatever_the_exit_code(
        standin: Callable[..., Standin]) -> None:
    m = make_manifest(1)
    world = standin(m, existing="all", kit_dates=[])
    c = new_clients()
    c.logs.delete_log_group(logGroupName="/ecs/flip-api")  # the task cannot even start
    p = ports(m, c, world.endpoints)
    out = run(context(m, p), ActionKind.DATABASE_RESET_SCHEMA, "database", {"generation": 2})
    assert not out.ok and "left no evidence" in out.message
    assert "are not trusted" in out.message
    assert p.hub.database().generation is None  # not re-tagged
    assert world.hub.state.trust("Trust_1") is not None  # nothing was dropped
