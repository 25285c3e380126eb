"""Issue 19, signals and interruption, on a real apply (the sandbox: moto, the stand-in FLIP,
a local trust host, `python -m flipgitops apply` as a subprocess).

Each signal is sent to the apply process at a different point of one onboarding:
- SIGTERM while the process starts, before any lock: no lock, no journal;
- SIGTERM at the confirmation prompt (a terminal as stdin): the apply ends at once, 143,
  nothing ran and the lock is gone;
- SIGTERM while the lock is held and the hosts' facts are being gathered (an Ansible run:
  ansible-runner's handlers must not swallow it): 143, the journal's ``run.end`` says
  interrupted and every planned action has an ``action.not_run`` line;
- SIGTERM while a hub action waits for its ECS task: that action finishes, the rest is
  journaled as not run, 143;
- SIGINT while an Ansible host step runs: the run is cancelled, 130;
and after each the lock object is gone; a plain rerun then converges and drift is in sync.

The second test deletes the state bucket while an apply runs (journal writes fail): the run
stops at the next action boundary, says what completed and what did not run, exits 1 with
a message naming the bucket, and no traceback.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flipgitops.sandbox.environment import Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.moto_server import MotoServer
from tests.reliability.live import Live, StateBucket, events

pytestmark = pytest.mark.slow

TRUSTS = (TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London"),)
APPLY = ("apply", "--env", "dev", "--yes")


@pytest.fixture(scope="module")
def box(_moto_session: MotoServer, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[Sandbox]:
    _moto_session.reset()
    with sandbox(tmp_path_factory.mktemp("signals"), trusts=TRUSTS,
                 moto=_moto_session) as world:
        yield world


def _interrupted(state: StateBucket, before: list[str], code: int, live: Live,
                 expected: int) -> list[dict[str, object]]:
    """The checks every interrupted apply passes; returns its journal."""
    assert code == expected, live.text
    assert "Traceback" not in live.text
    assert state.lock() is None, "the lock is still held"
    new = [r for r in state.runs() if r not in before]
    assert len(new) == 1, (new, live.text)
    journal = state.journal(new[0])
    end = journal[-1]
    assert end["event"] == "run.end" and end["interrupted"] is True, journal
    assert end["exit_code"] == expected
    assert "interrupted:" in live.err and "rerun apply to finish" in live.err
    return journal


def test_each_signal_at_each_point_stops_cleanly_and_a_rerun_converges(box: Sandbox) -> None:
    state = StateBucket(box)
    timings: dict[str, float] = {}

    # 0. before the lock: while the process starts (Python's default action, or ours)
    early = Live(box, *APPLY)
    time.sleep(0.3)
    early.send(signal.SIGTERM)
    assert early.finish(60) in (-signal.SIGTERM, 143), early.text
    assert "Traceback" not in early.text
    assert state.lock() is None and state.runs() == []

    # 1. at the prompt: nothing started
    t0 = time.monotonic()
    live = Live(box, "apply", "--env", "dev", tty=True)
    live.wait_for(r"Apply \d+ action\(s\) to dev\? \[y/N\]")
    live.send(signal.SIGTERM)
    assert live.finish(60) == 143, live.text
    assert "SIGTERM: apply cancelled at the prompt; nothing was changed" in live.err
    assert "Traceback" not in live.text
    assert state.lock() is None and state.runs() == []
    timings["prompt"] = time.monotonic() - t0

    # 2. lock held, facts being gathered (an Ansible run)
    t0 = time.monotonic()
    before = state.runs()
    live = Live(box, *APPLY)
    live.wait_for(r"gathering facts from 1 trust host")
    assert state.lock() is not None
    time.sleep(1.0)  # the facts run is in flight
    live.send(signal.SIGTERM)
    journal = _interrupted(state, before, live.finish(120), live, 143)
    planned = events(journal, "run.start")[0]["actions"]
    assert planned and len(events(journal, "action.not_run")) == planned
    assert events(journal, "action.start") == []
    timings["facts"] = time.monotonic() - t0

    # 3. during a hub action (register_trust's ECS task): it finishes, nothing else starts
    t0 = time.monotonic()
    before = state.runs()
    live = Live(box, *APPLY)
    live.wait_for(r"waiting for register_trust Trust_1")
    live.send(signal.SIGTERM)
    journal = _interrupted(state, before, live.finish(180), live, 143)
    assert [e["action"] for e in events(journal, "action.finish")] == [
        "registry.register:Trust_1"]
    not_run = [e["action"] for e in events(journal, "action.not_run")]
    assert "allowlist.update" in not_run and "host.verify:Trust_1" in not_run
    assert all(e["reason"] == "the run was interrupted" for e in events(journal,
                                                                         "action.not_run"))
    timings["hub action"] = time.monotonic() - t0

    # 4. SIGINT while an Ansible host step runs
    t0 = time.monotonic()
    before = state.runs()
    live = Live(box, *APPLY)
    live.wait_for(r"host\.provision: 1 host\(s\)")
    time.sleep(0.5)
    live.send(signal.SIGINT)
    journal = _interrupted(state, before, live.finish(180), live, 130)
    started = [e["action"] for e in events(journal, "action.start")]
    assert "host.provision:Trust_1" in started
    ended = {e["action"] for e in events(journal, "action.finish")
             + events(journal, "action.failure")}
    assert "host.provision:Trust_1" in ended  # journaled, cancelled or finished
    # The host steps are one chain (one Ansible run): the interrupt cancels it, and what the
    # host did not report is journaled as not run; a chain already past its last step when
    # the cancel lands has finished them. Either way each is journaled exactly once.
    not_run = {e["action"] for e in events(journal, "action.not_run")}
    rest = {"host.start_stack:Trust_1", "host.verify:Trust_1"}
    assert rest <= not_run | ended and not (not_run & ended), journal
    timings["ansible step"] = time.monotonic() - t0

    # 5. a plain rerun finishes the work
    t0 = time.monotonic()
    rerun = box.cli(*APPLY)
    assert rerun.code == 0 and ("converged:" in rerun.out or "no changes" in rerun.out), \
        rerun.text
    assert state.lock() is None
    drift = box.cli("drift", "--env", "dev")
    assert drift.code == 0, drift.text
    timings["rerun + drift"] = time.monotonic() - t0
    print("wall times (s):", {k: round(v, 1) for k, v in timings.items()})


def test_the_state_bucket_deleted_mid_apply_is_reported_without_a_traceback(
        box: Sandbox) -> None:
    """Runs on the converged world the test above leaves (a change that needs host work);
    converges it first when it runs alone (or on another worker, with a fresh world)."""
    ready = box.cli(*APPLY)
    assert ready.code == 0, ready.text
    state = StateBucket(box)
    doc = box.manifest_doc(TRUSTS)
    doc["trusts"][0]["settings"]["POLL_INTERVAL_SECONDS"] = "2"
    box.write_manifest(doc, commit="poll every 2 s")
    saved = state.objects()

    live = Live(box, *APPLY)
    live.wait_for(r"host\.write_kit_file: 1 host\(s\)")
    state.delete()
    code = live.finish(180)
    err = live.err
    assert code == 1, live.text
    assert "Traceback" not in live.text
    # write_kit_file, start_stack and verify are one host run (one boundary): it finishes,
    # then the unwritable journal stops the run instead of letting it claim convergence.
    assert "Completed: host.write_kit_file:Trust_1" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: stopped: the run's journal could not be written"), err
    assert f"s3://{state.bucket}" in last and "rerun apply" in last
    assert "could not release lock" not in err  # the lock went with the bucket

    # the next run says what is missing before it touches anything
    again = box.cli(*APPLY)
    assert again.code == 1 and "Traceback" not in again.text
    assert f"s3://{state.bucket}" in again.err and "state bucket" in again.err

    state.restore(saved, skip=("/locks/",))
    final = box.cli(*APPLY)  # the chain finished the host work before the journal failed
    assert final.code == 0 and ("converged:" in final.out or "no changes" in final.out), \
        final.text
    kit = Path(box.flip_root("Trust_1")) / "trust" / ".env.GSTT.development"
    assert "POLL_INTERVAL_SECONDS=2\n" in kit.read_text()
