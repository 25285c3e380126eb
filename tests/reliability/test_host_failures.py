"""One trust host fails among several: the others still onboard, and a rerun finishes it.

Three local trusts are onboarded through the real CLI (real ansible-runner, the docker
stand-in). Trust_2's host is broken in a way root cannot bypass: a regular *file* sits where
its ``flip_root`` directory must be, so the provision task fails on that host only. The
apply must exit 1 naming Trust_2's failed action, Trust_1 and Trust_3 must end up fully
onboarded (env file delivered, stack running), and once the obstacle is removed a rerun
completes Trust_2 and leaves nothing to plan.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from applyworld import World

from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow

TRUSTS = ("Trust_1", "Trust_2", "Trust_3")
BROKEN = "Trust_2"
HEALTHY = ("Trust_1", "Trust_3")


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def running(w: World, trust: str) -> dict[str, str]:
    """service -> image tag of the containers the stand-in records as running."""
    out: dict[str, str] = {}
    root = w.flip_root(trust)
    if not root.is_dir():
        return out
    for record in sorted(root.rglob(".standin/*.json")):
        for service, c in json.loads(record.read_text()).get("containers", {}).items():
            if str(c.get("state")) == "running":
                out[service] = str(c.get("image", "")).rsplit(":", 1)[-1]
    return out


def assert_onboarded(w: World, trust: str, secret: dict[str, Any]) -> None:
    env = w.host_env(trust)
    assert env.get("TRUST_NAME") == trust, f"{trust}: trust env file missing or wrong"
    assert sha(env["TRUST_API_KEY"]) == secret["trust_api_key_hashes"][trust], \
        f"{trust}: the host key does not match the hub hash"
    assert (w.flip_root(trust) / "trust" / ".env").stat().st_mode & 0o777 == 0o600
    tags = running(w, trust)
    assert tags and set(tags.values()) == {"v2.3.0"}, f"{trust}: stack not running: {tags}"


def break_host(w: World, trust: str) -> Path:
    """A regular file where the trust's flip_root directory must be created."""
    root = w.flip_root(trust)
    root.parent.mkdir(parents=True, exist_ok=True)
    root.write_text("not a directory: provisioning must fail here\n", encoding="utf-8")
    return root


def test_one_failing_host_does_not_stop_the_others_and_a_rerun_completes(
    moto: MotoServer, tmp_path: Path
) -> None:
    w = World(tmp_path, trusts=TRUSTS)
    w.seed_hub(trusts=False)
    obstacle = break_host(w, BROKEN)

    run = w.apply()
    assert run.code == 1, run.text
    failed = [line for line in run.err.splitlines() if line.startswith("Failed: ")]
    assert any(line.startswith(f"Failed: host.provision:{BROKEN}:") for line in failed), \
        run.err
    assert not any(t in line for line in failed for t in HEALTHY), failed
    assert "error:" in run.err and "rerun" in run.err, run.err
    assert obstacle.is_file(), "flipgitops must not delete what it found on a host"
    # Only the broken trust's own chain is held back, and the report says why.
    not_run = [line for line in run.err.splitlines() if line.startswith("Not run: ")]
    assert f"Not run: host.deliver:{BROKEN} (depends on failed host.provision:{BROKEN})" \
        in not_run, run.err
    assert not any(t in line for line in not_run for t in HEALTHY), not_run
    events = w.journal_events()
    held = {e["action"] for e in events if e["event"] == "action.not_run"}
    assert f"host.deliver:{BROKEN}" in held and not any(t in a for a in held for t in HEALTHY)
    assert {e["action"] for e in events if e["event"] == "action.failure"} == \
        {f"host.provision:{BROKEN}"}
    assert w.lock() is None

    # The hub side is shared and done for all three; the healthy hosts are fully onboarded.
    secret = w.secret()
    assert sorted(secret["trust_names"]) == list(TRUSTS)
    for trust in HEALTHY:
        assert_onboarded(w, trust, secret)
    assert running(w, BROKEN) == {} and w.host_env(BROKEN) == {}
    assert w.lock() is None

    plan = w.plan()
    assert plan.code == 2, "the broken trust's host is still to do"
    assert BROKEN in plan.out and not any(f"{t}'s" in plan.out for t in HEALTHY), plan.out

    obstacle.unlink()
    rerun = w.apply()
    assert rerun.code == 0, rerun.text
    secret = w.secret()
    for trust in TRUSTS:
        assert_onboarded(w, trust, secret)
    again = w.plan()
    assert again.code == 0, f"plan after the rerun is not empty:\n{again.text}"
