"""Concurrent applies on one environment: exactly one runs, every other exits 4 naming it.

To make the overlap certain rather than a matter of timing, every contender carries the
crash hook (``FLIPGITOPS_FAULT_EXIT_AFTER=1``): the winner dies after its first action and
never releases the lock, so a loser that starts late still finds it held. Then the stale lock
is cleared and one normal apply converges with no duplicate ingress rule.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from applyworld import World

from flipgitops.engine.apply import FAULT_ENV, FAULT_EXIT_CODE
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow

CONTENDERS = 4


def start_apply(w: World, extra: dict[str, str]) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLIPGITOPS_FAULT")}
    env.update(extra, NO_COLOR="1")
    return subprocess.Popen(
        [sys.executable, "-m", "flipgitops", "apply", "--yes", "--env", str(w.path)],
        cwd=w.repo, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )


def test_many_concurrent_applies_exactly_one_runs(moto: MotoServer, tmp_path: Path) -> None:
    w = World(tmp_path, trusts=("Trust_1", "Trust_2"), tre=True)
    w.seed_hub(trusts=False)
    procs = [start_apply(w, {FAULT_ENV: "1"}) for _ in range(CONTENDERS)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=300)
        results.append((p.pid, p.returncode, out + err))
    codes = sorted(code for _, code, _ in results)
    assert codes == [4] * (CONTENDERS - 1) + [FAULT_EXIT_CODE], results
    winner = next(pid for pid, code, _ in results if code == FAULT_EXIT_CODE)
    lock = w.lock()
    assert lock is not None and lock["holder"]["pid"] == winner
    for pid, code, text in results:
        if code == 4:
            assert f"pid={winner}" in text, f"loser {pid} does not name the holder:\n{text}"
            assert re.search(rf"--lock-id {re.escape(lock['lock_id'])}\b", text)
    events = w.journal_events()
    assert {e["run_id"] for e in events} == {lock["lock_id"]}, "only the winner may journal"
    assert [e["event"] for e in events] == ["run.start", "action.start", "action.finish"], \
        "the winner crashed after its first action: no run.end"

    assert w.cli("unlock", "--lock-id", lock["lock_id"]).code == 0
    assert w.apply().code == 0
    assert w.plan().code == 0
    cidrs = [cidr for cidr, _ in w.rules()]
    assert cidrs == ["203.0.113.11/32", "203.0.113.12/32"]


def test_a_finished_apply_releases_the_lock_for_the_next(moto: MotoServer,
                                                         tmp_path: Path) -> None:
    w = World(tmp_path, trusts=("Trust_1",), tre=True)
    w.seed_hub(trusts=False)
    first = start_apply(w, {})
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, out + err
    assert w.lock() is None
    second = w.apply()
    assert second.code == 0 and "no changes" in second.out, second.text
    assert w.lock() is None
