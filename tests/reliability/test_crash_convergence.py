"""Killing apply at every action boundary and rerunning converges (DESIGN §9).

The crash is real: ``FLIPGITOPS_FAULT_EXIT_AFTER=N`` makes the CLI process ``os._exit(75)``
right after the N-th action finishes (journal written, lock NOT released), like a CI runner
killed mid-apply. The rerun then meets the crashed run's lock and exits 4; the test clears it
with ``flipgitops unlock --lock-id <id>`` (the id read from that exit-4 message), which is the
stale-lock path an operator follows. We chose that over an automatic takeover: a lock whose
holder might still be running must never be stolen silently.

After the rerun: `plan` is empty, every trust CIDR has exactly one ingress rule, and the
escrowed key, the hub hash and (for trusts with hosts) the host's key all agree, so no key
was lost between escrow and hub write.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from applyworld import Run, World

from flipgitops.engine.apply import FAULT_ENV, FAULT_EXIT_CODE
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow

LOCK_ID = re.compile(r"--lock-id (\S+)")


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def crash_after(w: World, n: int) -> Run:
    return w.apply(extra_env={FAULT_ENV: str(n)})


def clear_crashed_lock(w: World) -> str:
    """The rerun meets the stale lock (exit 4, naming it); unlock it the documented way."""
    held = w.apply()
    assert held.code == 4, f"a crashed run must leave its lock:\n{held.text}"
    found = LOCK_ID.search(held.err)
    assert found, f"the exit-4 message must carry the lock id:\n{held.err}"
    lock_id = found.group(1)
    lock = w.lock()
    assert lock is not None and lock["lock_id"] == lock_id
    unlocked = w.cli("unlock", "--lock-id", lock_id)
    assert unlocked.code == 0, unlocked.text
    return lock_id


def assert_converged_safely(w: World, trusts: list[str], *, hosts: bool) -> None:
    assert w.plan().code == 0, "not converged after the rerun"
    cidrs = [cidr for cidr, _ in w.rules()]
    assert sorted(cidrs) == sorted(set(cidrs)), f"duplicate ingress rules: {cidrs}"
    assert sorted(cidrs) == sorted(f"{w.trust(t)['public_ip']}/32" for t in trusts)
    secret = w.secret()
    assert sorted(secret["trust_names"]) == sorted(trusts)
    # Set with every registry write, cleared only after flip-api was redeployed: a crash
    # between the two must have been repaired by the rerun's redeploy.
    assert "flipgitops_redeploy_pending" not in secret, "flip-api was never redeployed"
    for t in trusts:
        hub = secret["trust_api_key_hashes"][t]
        escrow = w.escrowed(t)
        assert escrow is not None and sha(escrow[1]) == hub, f"{t}: escrowed key lost"
        if hosts:
            host_key = w.host_env(t).get("TRUST_API_KEY", "")
            assert sha(host_key) == hub, f"{t}: host key does not match the hub hash"
    assert w.lock() is None


def onboarding_actions(w: World) -> list[str]:
    run = w.plan("--format", "json")
    assert run.code == 2, run.text
    return [a["id"] for a in json.loads(run.out)["actions"]]


def test_crash_at_every_boundary_of_a_hub_onboarding_then_rerun_converges(
    moto: MotoServer, tmp_path: Path
) -> None:
    """Fresh world per N: crash after action N of the onboarding plan, rerun, check."""
    trusts = ["Trust_1", "Trust_2"]
    probe = World(tmp_path / "probe", trusts=tuple(trusts), tre=True)
    probe.seed_hub(trusts=False)
    k = len(onboarding_actions(probe))
    assert k >= 5  # escrow x2, hub secret, redeploy, allowlist
    for n in range(1, k + 1):
        moto.reset()
        w = World(tmp_path / f"crash{n}", trusts=tuple(trusts), tre=True)
        w.seed_hub(trusts=False)
        crashed = crash_after(w, n)
        assert crashed.code == FAULT_EXIT_CODE, f"N={n}: {crashed.text}"
        finished = [e for e in w.journal_events() if e["event"] == "action.finish"]
        assert len(finished) == n, f"N={n}: the journal must show {n} finished action(s)"
        # (N == k: every action finished before the crash; the rerun only records it.)
        clear_crashed_lock(w)
        rerun = w.apply()
        assert rerun.code == 0, f"N={n}: {rerun.text}"
        assert_converged_safely(w, trusts, hosts=False)


def test_repeated_crashes_with_trust_hosts_converge(moto: MotoServer, tmp_path: Path) -> None:
    """One world crashed again and again, run i dying after i actions of its fresh plan, so
    the crash points walk through the whole onboarding, including inside the parallel host
    groups (one Ansible run finishes several actions). Escrow is invisible to observe and is
    replanned (as a no-op) until the hub knows the key, hence the growing N."""
    trusts = ["Trust_1", "Trust_2"]
    w = World(tmp_path, trusts=tuple(trusts))
    w.seed_hub(trusts=False)
    k = len(onboarding_actions(w))
    crashes = 0
    for n in range(1, k + 2):
        run = crash_after(w, n)
        if run.code == 0:
            break
        assert run.code == FAULT_EXIT_CODE, run.text
        crashes += 1
        if crashes == 1:
            clear_crashed_lock(w)
        else:
            lock = w.lock()
            assert lock is not None, "a crashed run leaves its lock"
            assert w.cli("unlock", "--lock-id", str(lock["lock_id"])).code == 0
    else:
        pytest.fail(f"still not converged after {k + 1} crashed runs")
    assert crashes >= 3, f"only {crashes} crashes for a {k}-action onboarding"
    assert w.apply().code == 0
    assert_converged_safely(w, trusts, hosts=True)
    runs = {e["run_id"] for e in w.journal_events()}
    assert len(runs) >= crashes
