"""apply's safety rails, end to end through the real CLI: the run lock, guards that must stop
it before it touches anything, reviewed plans that went stale, dry runs, and secrets that
must never leave the places they belong (SSM escrow, the hub secret, the 0600 trust env file).

Hub-side-only (kind tre) trusts are used where hosts add nothing to the point, so most of
these run in seconds; the tests about hosts use one local host.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from applyworld import Run, World

from flipgitops.adapters import state_store
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow


def untouched(w: World) -> tuple[object, ...]:
    """What a refused apply must leave exactly as it was."""
    return (w.secret_version(), w.rules(), w.task_definitions(), w.snapshots(),
            w.database()["DeletionProtection"], w.escrowed("Trust_1"))


def run_ids(w: World) -> list[str]:
    return sorted(k for k in w.state_objects() if "/runs/" in k)


# --- confirmation and the lock --------------------------------------------------------------


def test_without_yes_and_without_a_terminal_apply_refuses(moto: MotoServer,
                                                          tmp_path: Path) -> None:
    w = World(tmp_path, trusts=("Trust_1",), tre=True)
    w.seed_hub()
    before = untouched(w)
    run = w.cli("apply")
    assert run.code == 1
    assert "--yes" in run.err
    assert untouched(w) == before


def test_lock_held_exits_4_naming_the_holder_and_unlock_clears_it(
    moto: MotoServer, tmp_path: Path
) -> None:
    w = World(tmp_path, trusts=("Trust_1",), tre=True)
    w.seed_hub(trusts=False)
    lock_id = state_store.acquire_lock(w.manifest(), {"who": "ci-runner-7", "pid": 4242})
    before = untouched(w)

    run = w.apply()
    assert run.code == 4, run.text
    assert "ci-runner-7" in run.err and lock_id in run.err
    assert f"--lock-id {lock_id}" in run.err, "the message must say how to clear the lock"
    assert untouched(w) == before and run_ids(w) == []

    wrong = w.cli("unlock", "--lock-id", "not-the-lock")
    assert wrong.code == 1
    assert w.lock() is not None
    assert w.cli("unlock", "--lock-id", lock_id).code == 0
    assert w.lock() is None

    run = w.apply()
    assert run.code == 0, run.text
    assert w.rules() == [("203.0.113.11/32", "flipgitops:Trust_1")]


def test_two_concurrent_applies_exactly_one_runs(moto: MotoServer, tmp_path: Path) -> None:
    # A local host makes the winning run last long enough (Ansible) that both overlap.
    w = World(tmp_path, trusts=("Trust_1",))
    w.seed_hub(trusts=False)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FLIPGITOPS_FAULT")}
    cmd = [sys.executable, "-m", "flipgitops", "apply", "--yes", "--env", str(w.path)]
    procs = [subprocess.Popen(cmd, cwd=w.repo, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    runs = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        runs.append((p.pid, Run(p.returncode, out, err)))
    codes = sorted(r.code for _, r in runs)
    assert codes == [0, 4], [r.text for _, r in runs]
    (winner_pid, winner), (_, loser) = sorted(runs, key=lambda pr: pr[1].code)
    assert "is locked by" in loser.err
    assert f"pid={winner_pid}" in loser.err, "the loser must name the run holding the lock"
    assert "converged" in winner.out
    assert len(run_ids(w)) == 1, "only the winner may journal"
    assert w.rules() == [("203.0.113.11/32", "flipgitops:Trust_1")]
    assert w.lock() is None


# --- the production database ----------------------------------------------------------------


def prod_world(tmp_path: Path) -> World:
    w = World(tmp_path, env="prod", trusts=("Trust_1",), tre=True)
    w.seed_hub(trusts=True)
    assert w.plan().code == 0, "the seeded prod hub must start in sync"
    return w


def test_prod_database_recreation_without_allow_is_blocked_and_touches_nothing(
    moto: MotoServer, tmp_path: Path
) -> None:
    w = prod_world(tmp_path)
    w.doc["hub"]["database"]["generation"] = 2
    w.save("recreate the database")
    before = untouched(w)
    run = w.apply()
    assert run.code == 3, run.text
    assert "FG003" in run.text
    assert untouched(w) == before
    assert w.snapshots() == []
    assert run_ids(w) == [], "a blocked apply journals nothing"
    assert w.lock() is None


def test_prod_database_recreation_with_allow_snapshots_first(
    moto: MotoServer, tmp_path: Path
) -> None:
    w = World(tmp_path, env="prod", trusts=("Trust_1", "Trust_2"), tre=True)
    w.seed_hub(trusts=True)
    assert w.plan().code == 0, "the seeded prod hub must start in sync"
    old_hashes = dict(w.secret()["trust_api_key_hashes"])
    w.doc["hub"]["database"]["generation"] = 2
    w.save("recreate the database")
    run = w.apply("--allow", "FG003")
    assert run.code == 0, run.text
    snaps = w.snapshots()
    assert len(snaps) == 1, snaps
    assert snaps[0]["DBSnapshotIdentifier"].startswith("flipgitops-prod-gen2-")
    assert snaps[0]["Status"] == "available"
    events = [(e["event"], e.get("action")) for e in w.journal_events()]
    snap_done = events.index(("action.finish", "database.snapshot"))
    reset_start = events.index(("action.start", "database.reset_schema"))
    assert snap_done < reset_start, "the schema was reset before the snapshot was available"
    tags = w.clients.rds.list_tags_for_resource(ResourceName=w.database()["DBInstanceArn"])
    assert {"Key": "flipgitops:generation", "Value": "2"} in tags["TagList"]
    assert w.database()["DeletionProtection"] is True
    assert ("action.finish", "hub_secret.update") in events, "trusts must be re-registered"
    secret = w.secret()
    assert secret["trust_names"] == ["Trust_1", "Trust_2"]
    # DESIGN §5.6: every trust gets a NEW key, escrowed before the hub learns its hash.
    for name in ("Trust_1", "Trust_2"):
        escrow = w.escrowed(name)
        assert escrow is not None
        new_hash = secret["trust_api_key_hashes"][name]
        assert new_hash != old_hashes[name], f"{name} kept its pre-recreation key"
        assert new_hash == hashlib.sha256(escrow[1].encode()).hexdigest()
        assert secret["flipgitops_database_generations"][name] == 2
    assert "flipgitops_redeploy_pending" not in secret
    assert w.plan("--allow", "FG003").code == 0


def test_prod_manifest_turning_protection_off_is_refused(
    moto: MotoServer, tmp_path: Path
) -> None:
    w = prod_world(tmp_path)
    w.doc["hub"]["database"]["deletion_protection"] = False
    w.save("unprotect the database")
    validate = subprocess.run([sys.executable, "-m", "flipgitops", "validate", str(w.path)],
                              cwd=w.repo, capture_output=True, text=True)
    assert validate.returncode == 1
    assert "deletion_protection" in validate.stdout + validate.stderr
    assert w.plan().code in (1, 3)
    before = untouched(w)
    run = w.apply()
    assert run.code in (1, 3), run.text
    assert untouched(w) == before
    assert w.database()["DeletionProtection"] is True
    assert run_ids(w) == []


def test_protection_turned_off_live_is_restored(moto: MotoServer, tmp_path: Path) -> None:
    w = prod_world(tmp_path)
    w.clients.rds.modify_db_instance(DBInstanceIdentifier="flip-database",
                                     DeletionProtection=False, ApplyImmediately=True)
    assert w.plan().code == 2
    run = w.apply()
    assert run.code == 0, run.text
    assert w.database()["DeletionProtection"] is True
    assert w.plan().code == 0


# --- reviewed plans, dry runs, secrets --------------------------------------------------------


def test_stale_reviewed_plan_is_refused(moto: MotoServer, tmp_path: Path) -> None:
    w = World(tmp_path, trusts=("Trust_1", "Trust_2"), tre=True)
    w.seed_hub(trusts=False)
    reviewed = tmp_path / "reviewed.json"
    assert w.plan("--out", str(reviewed)).code == 2
    # The world moves after review: someone allowlists Trust_1 by hand.
    group_id = w.group()["GroupId"]
    w.clients.ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[{
        "IpProtocol": "tcp", "FromPort": 8002, "ToPort": 8002,
        "IpRanges": [{"CidrIp": "203.0.113.11/32", "Description": "by hand"}]}])
    before = untouched(w)
    run = w.apply("--plan", str(reviewed))
    assert run.code == 1, run.text
    assert "stale" in run.err and "plan again" in run.err
    assert untouched(w) == before and run_ids(w) == []
    assert w.lock() is None

    fresh = tmp_path / "fresh.json"
    assert w.plan("--out", str(fresh)).code == 2
    run = w.apply("--plan", str(fresh))
    assert run.code == 0, run.text


def _files_under(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]


def test_dry_run_changes_nothing_and_no_key_leaks(moto: MotoServer, tmp_path: Path) -> None:
    started = time.time()
    w = World(tmp_path, trusts=("Trust_1",))
    seed = w.seed_hub(trusts=False)
    before = untouched(w)
    host_files = _files_under(tmp_path / "hosts") if (tmp_path / "hosts").exists() else []

    dry = w.apply("--dry-run")
    assert dry.code == 0, dry.text
    assert "would" in dry.out
    assert untouched(w) == before
    now = _files_under(tmp_path / "hosts") if (tmp_path / "hosts").exists() else []
    assert now == host_files, "a dry run wrote on the trust host"
    assert run_ids(w) == [] and w.lock() is None

    plan_file = tmp_path / "plan.json"
    runs = [dry, w.plan("--out", str(plan_file))]
    runs.append(w.apply("--plan", str(plan_file)))
    assert runs[-1].code == 0, runs[-1].text
    runs.append(w.plan("--format", "json"))
    assert runs[-1].code == 0

    escrow = w.escrowed("Trust_1")
    assert escrow is not None
    secrets = {"trust api key": escrow[1], "aes key": seed.aes_key,
               "internal service key": seed.internal_service_key}
    env_file = w.flip_root("Trust_1") / "trust" / ".env"
    assert escrow[1] in env_file.read_text(), "the host must hold the key"
    places = {f"output of run {i}": r.text for i, r in enumerate(runs)}
    places.update({f"s3 object {k}": v for k, v in w.state_objects().items()})
    places["plan file"] = plan_file.read_text()
    for path in _files_under(tmp_path):
        if path != env_file:
            places[str(path)] = path.read_text(errors="replace")
    for tmp in Path(tempfile.gettempdir()).glob("flipgitops-*"):
        if tmp.stat().st_mtime >= started:
            places[f"left in tmp: {tmp}"] = "".join(
                p.read_text(errors="replace") for p in _files_under(tmp)) if tmp.is_dir() \
                else tmp.read_text(errors="replace")
    for what, value in secrets.items():
        for where, text in places.items():
            assert value not in text, f"the {what} leaked into {where}"
    assert json.loads(runs[-1].out)["format_version"] == "1"
    assert re.search(r"sha256:[0-9a-f]{12}\b", runs[2].out), "hashes are shown short"
