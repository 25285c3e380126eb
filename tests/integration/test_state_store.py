"""The S3 state store on a real moto server: lock contention, stale locks, journals, records."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from awsworld import make_manifest, new_clients

from flipgitops.adapters import state_store
from flipgitops.adapters.aws_session import Clients
from flipgitops.adapters.state_store import Journal, StateStore
from flipgitops.errors import AwsError, LockHeld
from flipgitops.model.manifest import Manifest
from flipgitops.model.plan import Action
from flipgitops.sandbox.moto_server import MotoServer
from flipgitops.sandbox.seed import create_bucket

BUCKET = "flip-gitops-state-dev"
HOLDER = {"who": "alice@laptop pid 42", "commit": "0123abc"}


@pytest.fixture
def store(moto: MotoServer, clients: Clients) -> StateStore:
    create_bucket(clients, BUCKET, "eu-west-2")
    return StateStore(clients, BUCKET, "flipgitops")


def test_lock_is_exclusive_and_names_the_holder(store: StateStore, clients: Clients) -> None:
    run_id = store.acquire_lock("dev", HOLDER)
    body = json.loads(clients.s3.get_object(Bucket=BUCKET,
                                            Key="flipgitops/locks/dev.json")["Body"].read())
    assert body["run_id"] == body["lock_id"] == run_id
    assert body["holder"] == HOLDER and body["commit"] == "0123abc"
    assert body["started_at"] and body["ttl_seconds"] > 0

    with pytest.raises(LockHeld) as info:
        store.acquire_lock("dev", {"who": "bob@ci"})
    message = str(info.value)
    assert "locked by alice@laptop pid 42 (run " in message and run_id in message
    assert body["started_at"] in message and "commit 0123abc" in message
    assert f"flipgitops unlock --env dev --lock-id {run_id}" in message
    assert "STALE" not in message
    assert info.value.exit_code == 4

    other = store.acquire_lock("stag", {"who": "carol"})  # other environments are independent
    assert other != run_id

    store.release_lock("dev", run_id)
    assert store.read_lock("dev") is None
    assert store.acquire_lock("dev", {"who": "bob@ci"})


def test_concurrent_acquires_exactly_one_wins(store: StateStore) -> None:
    results: list[str] = []
    barrier = threading.Barrier(6)

    def contend(i: int) -> None:
        mine = StateStore(new_clients(), BUCKET, "flipgitops")
        barrier.wait()
        try:
            mine.acquire_lock("prod", {"who": f"runner-{i}"})
            results.append("won")
        except LockHeld:
            results.append("held")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["held"] * 5 + ["won"]


def test_stale_lock_is_reported_never_stolen(store: StateStore, clients: Clients) -> None:
    old = (datetime.now(UTC) - timedelta(hours=5)).isoformat(timespec="seconds")
    clients.s3.put_object(
        Bucket=BUCKET, Key="flipgitops/locks/dev.json",
        Body=json.dumps({"lock_id": "run-old", "run_id": "run-old", "holder": {"who": "ci"},
                         "started_at": old, "ttl_seconds": 3600}).encode(),
    )
    with pytest.raises(LockHeld, match="STALE") as info:
        store.acquire_lock("dev", HOLDER)
    assert "flipgitops unlock --env dev --lock-id run-old" in str(info.value)
    assert store.read_lock("dev")["lock_id"] == "run-old"  # type: ignore[index]

    assert store.force_unlock("dev", "not-the-id") is False
    assert store.read_lock("dev") is not None
    assert store.force_unlock("dev", "run-old") is True
    assert store.force_unlock("dev", "run-old") is False
    assert store.acquire_lock("dev", HOLDER)


def test_release_leaves_someone_elses_lock_alone(store: StateStore) -> None:
    run_id = store.acquire_lock("dev", HOLDER)
    store.release_lock("dev", "another-run")
    assert store.read_lock("dev")["lock_id"] == run_id  # type: ignore[index]


def test_unlock_never_removes_a_lock_taken_after_it_looked(
        store: StateStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `unlock`s of one stale lock: the first removes it, a new apply locks, and the second
    (which read the old lock just before) must not remove the new one (If-Match on the ETag)."""
    stale = store.acquire_lock("dev", HOLDER)
    read = StateStore._read_lock_version

    def read_then_race(self: StateStore, key: str) -> tuple[dict[str, object] | None, str]:
        seen = read(self, key)
        monkeypatch.setattr(StateStore, "_read_lock_version", read)  # race once
        assert store.force_unlock("dev", stale), "the first unlock removes the stale lock"
        store.acquire_lock("dev", {"who": "bob@ci"}, run_id="new-run")
        return seen

    monkeypatch.setattr(StateStore, "_read_lock_version", read_then_race)
    assert store.force_unlock("dev", stale) is False
    assert store.read_lock("dev")["lock_id"] == "new-run"  # type: ignore[index]


def action(i: int) -> Action:
    return Action(id=f"host.deliver:Trust_{i}", kind="host.deliver", target=f"Trust_{i}")


def test_journal_has_one_line_per_event(store: StateStore) -> None:
    journal = store.journal("dev", "run-1")
    journal.event("run.start", commit="abc")
    journal.start(action(1))
    journal.finish(action(1), changed=True, message="delivered")
    journal.start(action(2))
    leaked = "k" * 43  # token-shaped: an error must never carry it into the journal
    journal.failure(action(2), RuntimeError(f"boom {leaked}"))
    journal.close()

    lines = store.read_journal("dev", "run-1")
    assert [(x["event"], x.get("action")) for x in lines] == [
        ("run.start", None),
        ("action.start", "host.deliver:Trust_1"),
        ("action.finish", "host.deliver:Trust_1"),
        ("action.start", "host.deliver:Trust_2"),
        ("action.failure", "host.deliver:Trust_2"),
    ]
    assert lines[2]["changed"] is True and lines[2]["kind"] == "host.deliver"
    assert lines[4]["error_type"] == "RuntimeError" and "boom" in lines[4]["error"]
    assert all(x["run_id"] == "run-1" and x["at"] for x in lines)
    raw = store.get_text("flipgitops/runs/dev/run-1.jsonl") or ""
    assert leaked not in raw and raw.count("\n") == 5


def test_applied_record(store: StateStore) -> None:
    assert store.read_applied("dev") is None
    store.write_applied("dev", "0123abc", "sha256:feed")
    record = store.read_applied("dev")
    assert record is not None
    assert (record["commit"], record["fingerprint"], record["environment"]) == (
        "0123abc", "sha256:feed", "dev")
    assert record["applied_at"]


def test_manifest_level_helpers_use_the_manifests_bucket(
    moto: MotoServer, clients: Clients
) -> None:
    m: Manifest = make_manifest(1)
    create_bucket(clients, m.state.bucket, m.aws.region)
    run_id = state_store.acquire_lock(m, "alice@laptop", clients=clients)
    with pytest.raises(LockHeld, match="locked by alice@laptop"):
        state_store.acquire_lock(m, "bob", clients=clients)
    journal = Journal(m, run_id, clients=clients)
    journal.start(action(1))
    state_store.write_applied(m, None, "sha256:1", clients=clients)
    assert state_store.read_applied(m, clients=clients)["fingerprint"] == "sha256:1"  # type: ignore[index]
    state_store.release_lock(m, run_id, clients=clients)
    assert state_store.force_unlock(m, run_id, clients=clients) is False
    keys = [o["Key"] for o in clients.s3.list_objects_v2(Bucket=m.state.bucket)["Contents"]]
    assert sorted(keys) == ["flipgitops/applied/dev.json", f"flipgitops/runs/dev/{run_id}.jsonl"]


def test_missing_bucket_is_a_clear_error(moto: MotoServer, clients: Clients) -> None:
    with pytest.raises(AwsError, match=re.escape("s3://nope-bucket/flipgitops/locks/dev.json")):
        StateStore(clients, "nope-bucket").acquire_lock("dev", HOLDER)


@pytest.mark.parametrize(
    "body",
    [b'{"lock_id": "trunc', b"", b"\xff\xfe not utf-8", b"[1, 2]", b'{"holder": {"who": "x"}}'],
    ids=["truncated", "empty", "binary", "not-an-object", "no-lock-id"],
)
def test_unreadable_lock_still_blocks_and_unlocks_by_its_etag_id(
    store: StateStore, clients: Clients, body: bytes
) -> None:
    key = "flipgitops/locks/dev.json"
    clients.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    etag = str(clients.s3.head_object(Bucket=BUCKET, Key=key)["ETag"]).strip('"')
    lock_id = f"unreadable-{etag}"

    with pytest.raises(LockHeld) as info:
        store.acquire_lock("dev", HOLDER)
    message = str(info.value)
    assert f"lock object at s3://{BUCKET}/{key} is unreadable" in message, message
    assert f"flipgitops unlock --env dev --lock-id {lock_id}" in message, message
    assert info.value.exit_code == 4
    assert clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    assert store.read_lock("dev")["lock_id"] == lock_id  # type: ignore[index]

    store.release_lock("dev", "some-run")  # a run never releases what is not its lock
    assert store.force_unlock("dev", "unreadable-0") is False
    assert clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == body
    assert store.force_unlock("dev", lock_id) is True
    assert store.read_lock("dev") is None
    assert store.acquire_lock("dev", HOLDER)


def test_lock_with_only_a_run_id_is_still_named(store: StateStore, clients: Clients) -> None:
    clients.s3.put_object(Bucket=BUCKET, Key="flipgitops/locks/dev.json",
                          Body=json.dumps({"run_id": "run-7", "holder": {"who": "ci"}}).encode())
    with pytest.raises(LockHeld, match="--lock-id run-7"):
        store.acquire_lock("dev", HOLDER)
    assert store.force_unlock("dev", "run-7") is True


def test_invalid_applied_record_is_a_clear_error(store: StateStore, clients: Clients) -> None:
    key = "flipgitops/applied/dev.json"
    clients.s3.put_object(Bucket=BUCKET, Key=key, Body=b"{not json")
    with pytest.raises(AwsError, match=re.escape(f"s3://{BUCKET}/{key} is not valid JSON")):
        store.read_applied("dev")


def test_journal_records_actions_held_back_by_a_failure(store: StateStore) -> None:
    journal = store.journal("dev", "run-2")
    journal.failure(action(1), "provision failed")
    journal.skipped(action(2), "depends on failed host.deliver:Trust_1")
    lines = store.read_journal("dev", "run-2")
    assert [(x["event"], x["action"]) for x in lines] == [
        ("action.failure", "host.deliver:Trust_1"),
        ("action.not_run", "host.deliver:Trust_2"),
    ]
    assert lines[1]["reason"] == "depends on failed host.deliver:Trust_1"
