"""A lock left behind by a run that died: reported as stale, never silently taken over.

The lock object is written with plain boto3 in the format ``adapters/state_store.py``
writes (``locks/<env>.json``: lock_id, run_id, holder, started_at, ttl_seconds), as a CI
runner that was killed mid-apply would leave it: its holder process is gone and it is older
than its TTL. apply must exit 4 naming the holder and the run, say the lock is stale and give
the exact ``flipgitops unlock`` command, and leave the object byte-for-byte as it was.
``unlock`` with a wrong id changes nothing (exit 1); with the right id it clears the lock
(exit 0) and the next apply runs.

Trusts here are hub-side only (kind tre): the lock is about the run, not about hosts.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from applyworld import World

from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow

LOCK_ID = "20261121T221500Z-deadbeef"
HOLDER = {"who": "runner@ci-gone-7", "pid": 999_999,
          "ci_run": "londonaicentre/flip-gitops#4242"}


def lock_key(w: World) -> tuple[str, str]:
    return f"flip-gitops-state-{w.env}", f"flipgitops/locks/{w.env}.json"


def write_lock(w: World, *, age: timedelta, ttl: int = 3600,
               lock_id: str = LOCK_ID) -> dict[str, Any]:
    bucket, key = lock_key(w)
    body = {
        "lock_id": lock_id,
        "run_id": lock_id,
        "environment": w.env,
        "holder": HOLDER,
        "commit": None,
        "started_at": (datetime.now(UTC) - age).isoformat(timespec="seconds"),
        "ttl_seconds": ttl,
    }
    w.clients.s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(body).encode(),
                            ContentType="application/json")
    return body


def lock_object(w: World) -> tuple[bytes, str] | None:
    """(body, ETag) of the lock object, or None when there is none."""
    bucket, key = lock_key(w)
    try:
        got = w.clients.s3.get_object(Bucket=bucket, Key=key)
    except w.clients.s3.exceptions.NoSuchKey:
        return None
    return got["Body"].read(), str(got["ETag"])


def world_state(w: World) -> tuple[object, ...]:
    runs = sorted(k for k in w.state_objects() if "/runs/" in k)
    return w.secret_version(), w.rules(), runs


@pytest.fixture
def world(moto: MotoServer, tmp_path: Path) -> World:
    w = World(tmp_path, trusts=("Trust_1",), tre=True)
    w.seed_hub(trusts=False)
    return w


def test_stale_lock_is_reported_not_stolen_and_unlock_needs_its_id(world: World) -> None:
    w = world
    write_lock(w, age=timedelta(hours=3), ttl=3600)
    lock_before = lock_object(w)
    state_before = world_state(w)

    run = w.apply()
    assert run.code == 4, run.text
    message = run.err
    assert "runner@ci-gone-7" in message and "pid=999999" in message, message
    assert "londonaicentre/flip-gitops#4242" in message, message
    assert LOCK_ID in message, message
    assert "stale" in message.lower(), message
    assert f"flipgitops unlock --env {w.env} --lock-id {LOCK_ID}" in message, message
    assert lock_object(w) == lock_before, "apply silently took over or rewrote a stale lock"
    assert world_state(w) == state_before, "a locked-out apply changed something"

    wrong = w.cli("unlock", "--lock-id", "20261121T221500Z-00000000")
    assert wrong.code == 1, wrong.text
    assert lock_object(w) == lock_before, "unlock with a wrong id touched the lock"

    right = w.cli("unlock", "--lock-id", LOCK_ID)
    assert right.code == 0, right.text
    assert lock_object(w) is None

    run = w.apply()
    assert run.code == 0, run.text
    assert w.rules() == [("203.0.113.11/32", "flipgitops:Trust_1")]
    assert lock_object(w) is None, "the new run must release its own lock"


def test_live_lock_is_not_called_stale(world: World) -> None:
    """The stale wording is earned by age: a lock within its TTL says to wait instead."""
    w = world
    write_lock(w, age=timedelta(minutes=5), ttl=7200)
    before = lock_object(w)
    run = w.apply()
    assert run.code == 4, run.text
    assert "stale" not in run.err.lower(), run.err
    assert LOCK_ID in run.err and "wait" in run.err, run.err
    assert lock_object(w) == before


def test_unreadable_lock_object_still_blocks_and_is_left_alone(world: World) -> None:
    """Whatever is at the lock key (a hand edit, a truncated write) means "locked"."""
    w = world
    bucket, key = lock_key(w)
    w.clients.s3.put_object(Bucket=bucket, Key=key, Body=b'{"lock_id": "trunc')
    before = lock_object(w)
    state_before = world_state(w)
    run = w.apply()
    assert run.code == 4, run.text
    assert "Traceback" not in run.text, run.text
    assert lock_object(w) == before
    assert world_state(w) == state_before
    assert f"s3://{bucket}/{key}" in run.err and "unreadable" in run.err, run.err
    assert before is not None
    lock_id = "unreadable-" + before[1].strip('"')
    assert f"flipgitops unlock --env {w.env} --lock-id {lock_id}" in run.err, run.err

    wrong = w.cli("unlock", "--lock-id", "unreadable-0000")
    assert wrong.code == 1, wrong.text
    assert lock_object(w) == before, "unlock with a wrong id touched the lock"
    right = w.cli("unlock", "--lock-id", lock_id)
    assert right.code == 0, right.text
    assert lock_object(w) is None
    run = w.apply()
    assert run.code == 0, run.text
    assert lock_object(w) is None
