"""The database registry's procedures against the stand-in FLIP hub: register_trust and
delete_trust as one-off flip-api tasks (register-trusts.sh@03bb6813, delete-trust.sh@05600a0d),
played by the stand-in's worker in moto, judged by what the task wrote."""

from __future__ import annotations

import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from aws_hubworld import Standin, context, make_manifest, new_clients, ports, run

from flipgitops.adapters.aws_session import CallCounter
from flipgitops.adapters.hub import AwsHub
from flipgitops.model.actions import Action, ActionKind
from flipgitops.model.flip import register_command

pytestmark = pytest.mark.slow  # each test seeds a FLIP hub (~8 s on 2 shared cores)


def ephemeral(name: str, c: int = 1, d: int = 1) -> str:
    return f"/flip/trust-kits/ephemeral/flipgitops-dev-{name}-c{c}-d{d}"


def register_params(name: str, code: str, **kw: object) -> dict[str, object]:
    return {"name": name, "code": code, "credentials_generation": 1,
            "database_generation": 1, "ephemeral_parameter": ephemeral(name), **kw}


def poll_status(world: Standin, key: str) -> int:
    """A trust poll at the stand-in flip-api (FLIP's GET /api/tasks/pending)."""
    req = urllib.request.Request(f"{world.hub.api_url}/tasks/pending",
                                 headers={"Authorization": key})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def run_tasks(counter: CallCounter) -> int:
    return sum(1 for _, op in counter.calls if op == "RunTask")


def test_register_escrows_records_authenticates_and_never_registers_twice(
        standin: Callable[..., Standin], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    m = make_manifest(2, slots=False)
    world = standin(m, existing=[])
    counter = CallCounter()
    p = ports(m, new_clients(counter), world.endpoints)
    lines: list[str] = []
    ctx = context(m, p, lines=lines)

    out = run(ctx, ActionKind.REGISTRY_REGISTER, "Trust_1", register_params("Trust_1", "T01"))
    assert out.ok and out.changed, out.message
    assert run_tasks(counter) == 1
    held = p.escrow.read_kit("Trust_1")
    assert held is not None and held.kit.has_credentials and held.kit.trust_id
    assert held.kit.fl_kit_slot == "Trust_1"  # the lowest free slot of the pool
    entry = p.state.read_ledger().trusts["Trust_1"]
    assert entry.api_key_sha256 == held.kit.api_key_sha256
    assert entry.trust_id == held.kit.trust_id and entry.fl_kit_slot == "Trust_1"
    assert p.hub.read_parameter(ephemeral("Trust_1")) is None  # the hand-off is gone
    assert world.hub.state.trust("Trust_1") is not None

    key = held.kit.trust_api_key.get_secret_value() if held.kit.trust_api_key else ""
    assert poll_status(world, key) == 200
    assert poll_status(world, key + "x") == 401

    again = run(ctx, ActionKind.REGISTRY_REGISTER, "Trust_1", register_params("Trust_1", "T01"))
    assert again.ok and not again.changed
    assert run_tasks(counter) == 1  # no second task

    # No minted key in any output, log, progress line or journal.
    journal = p.state.journal("run-1")
    action = Action.model_validate({"id": "r", "kind": ActionKind.REGISTRY_REGISTER,
                                    "target": "Trust_1",
                                    "params": register_params("Trust_1", "T01")})
    journal.finish(action, changed=True, message=out.message)
    raw = new_clients().s3.get_object(Bucket=m.state.bucket,
                                      Key="flipgitops/runs/dev/run-1.jsonl")["Body"].read()
    internal = held.kit.trust_internal_service_key
    for secret in (key, internal.get_secret_value() if internal else "x" * 40):
        for text in (out.message, again.message, *lines, caplog.text, raw.decode()):
            assert secret not in text


def test_register_finishes_what_an_interrupted_run_left(
        standin: Callable[..., Standin]) -> None:
    m = make_manifest(3, slots=False)
    world = standin(m, existing=[])
    hub = AwsHub(m, new_clients(), endpoints=world.endpoints)

    # A run that died after its task: the kit is waiting in the ephemeral parameter.
    task = hub.run_task(register_command("Trust_1", "T01", None, ephemeral("Trust_1")),
                        "register-trusts")
    hub.wait_task(task, "setup", lambda _: None)
    assert hub.read_parameter(ephemeral("Trust_1")) is not None

    # A run that died while its task was still running.
    paused = world.hub.worker.paused()
    paused.__enter__()
    hub.run_task(register_command("Trust_2", "T02", None, ephemeral("Trust_2")),
                 "register-trusts")
    threading.Timer(1.5, lambda: paused.__exit__(None, None, None)).start()

    counter = CallCounter()
    p = ports(m, new_clients(counter), world.endpoints)
    lines: list[str] = []
    ctx = context(m, p, lines=lines)
    for name, code in (("Trust_1", "T01"), ("Trust_2", "T02")):
        out = run(ctx, ActionKind.REGISTRY_REGISTER, name, register_params(name, code))
        assert out.ok and out.changed, out.message
        assert p.escrow.read_kit(name) is not None
    assert run_tasks(counter) == 0  # both finished from what was already there
    assert any("started by an earlier run" in line for line in lines)
    assert [t.name for t in world.hub.state.trusts()] == ["Trust_1", "Trust_2"]


def test_metadata_only_kit_is_reported_and_delete_removes_the_row(
        standin: Callable[..., Standin]) -> None:
    m = make_manifest(2, slots=False)
    world = standin(m, existing=["Trust_2"])  # registered by FLIP's own procedure, key unheld
    p = ports(m, new_clients(), world.endpoints)
    ctx = context(m, p)
    seeded = world.hub.state.trust("Trust_2")
    assert seeded is not None
    hash_before = seeded.api_key_hash

    out = run(ctx, ActionKind.REGISTRY_REGISTER, "Trust_2", register_params("Trust_2", "T02"))
    assert not out.ok
    assert "already has a trust with this name" in out.message
    assert "no key was minted" in out.message and "--allow FG009" in out.message
    assert p.escrow.read_kit("Trust_2") is None and "Trust_2" not in p.state.read_ledger().trusts
    assert p.hub.read_parameter(ephemeral("Trust_2")) is None
    row = world.hub.state.trust("Trust_2")
    assert row is not None and row.api_key_hash == hash_before  # the hub's key is untouched
    assert poll_status(world, world.seeded.trust_keys["Trust_2"]) == 200

    gone = run(ctx, ActionKind.REGISTRY_DELETE, "Trust_2", {"name": "Trust_2"})
    assert gone.ok and gone.changed and "deleted trust Trust_2" in gone.message
    assert world.hub.state.trust("Trust_2") is None
    again = run(ctx, ActionKind.REGISTRY_DELETE, "Trust_2", {"name": "Trust_2"})
    assert again.ok and "not on the hub" in again.message


def test_slot_mismatch_is_reported_and_the_kit_still_escrowed(
        standin: Callable[..., Standin]) -> None:
    m = make_manifest(1, slots=False)
    world = standin(m, existing=[])
    p = ports(m, new_clients(), world.endpoints)
    out = run(context(m, p), ActionKind.REGISTRY_REGISTER, "Trust_1",
              register_params("Trust_1", "T01", expected_slot="Trust_3"))
    assert not out.ok and "assigned FL kit slot 'Trust_1'" in out.message
    assert "'Trust_3'" in out.message
    assert p.escrow.read_kit("Trust_1") is not None  # the key is held, never lost


def test_failed_registration_shows_the_tasks_error_lines(
        standin: Callable[..., Standin]) -> None:
    m = make_manifest(1, slots=False)
    world = standin(m, existing=[], slot_names=[])  # an empty pool: NoFreeKitSlotError
    new_clients().ssm.put_parameter(Name="/flip/fl_kit_slot_names", Type="String",
                                    Value=json.dumps([]), Overwrite=True)
    p = ports(m, new_clients(), world.endpoints)
    out = run(context(m, p), ActionKind.REGISTRY_REGISTER, "Trust_1",
              register_params("Trust_1", "T01"))
    assert not out.ok and "registration FAILED" in out.message
    assert "ERROR" in out.message  # FLIP's own error line, from the task's log stream
    assert p.escrow.read_kit("Trust_1") is None
    assert p.hub.read_parameter(ephemeral("Trust_1")) is None
