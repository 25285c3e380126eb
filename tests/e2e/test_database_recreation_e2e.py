"""Database recreation (`hub.database.generation` bump, FG003) through the real CLI against
the stand-in hub: a reset whose evidence is missing fails although the task's exit code is 0
(and drops nothing, after the snapshot); then the hub guide's procedure in order — snapshot,
`DROP SCHEMA public CASCADE; CREATE SCHEMA public;`, flip-api redeployed, every trust
registered anew and its kit redelivered — after which `plan` is empty."""

from __future__ import annotations

import json
import time
from pathlib import Path

import boto3
import pytest

from flipgitops.sandbox.environment import REGION, Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow
WAITS = {"FLIPGITOPS_WAITS": json.dumps({"stable_timeout": 20, "task_timeout": 60,
                                         "snapshot_timeout": 60, "interval": 0.5})}
TRUSTS = [TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London"),
          TrustSpec("Trust_2", "KCH", "203.0.113.12", kind="tre")]


def kit_value(box: Sandbox, key: str) -> str:
    path = box.flip_root("Trust_1") / "trust" / ".env.GSTT.development"
    for line in path.read_text().splitlines():
        if line.startswith(f"{key}="):
            return line.split("=", 1)[1]
    raise AssertionError(f"{key} not in {path}")


def test_database_recreation_by_evidence_then_every_trust_again(tmp_path: Path,
                                                                moto: MotoServer) -> None:
    started = time.monotonic()
    rds = boto3.client("rds", region_name=REGION, endpoint_url=moto.url)
    with sandbox(tmp_path, trusts=TRUSTS, moto=moto) as box:
        state = box.hub.state
        assert box.cli("apply", "--env", "dev", "--yes", extra_env=WAITS).code == 0
        ids = {n: state.trust(n).id for n in ("Trust_1", "Trust_2")}  # type: ignore[union-attr]
        old_key = kit_value(box, "TRUST_API_KEY")

        doc = box.manifest_doc(TRUSTS)
        doc["hub"]["database"]["generation"] = 2
        box.write_manifest(doc, commit="recreate the hub database")
        r = box.cli("plan", "--env", "dev", extra_env=WAITS)
        assert r.code == 3 and "FG003" in r.out, r.text
        assert "database.snapshot" in r.out and "database.reset_schema" in r.out

        # The database turns the script away: no evidence line, exit code 0 as Fargate says.
        state.refuse_connections('FATAL: PAM authentication failed for user "flip"')
        r = box.cli("apply", "--env", "dev", "--yes", "--allow", "FG003", extra_env=WAITS)
        assert r.code == 1, r.text
        assert "left no evidence" in r.err and "flip-api=0" in r.err and "not trusted" in r.err
        assert "OperationalError" in r.err  # the task's own log, shown
        assert ("schema_drop",) not in state.events
        assert state.trust("Trust_1") is not None  # nothing was lost
        tags = rds.list_tags_for_resource(ResourceName=box.seed.db_arn)  # type: ignore[union-attr]
        assert "flipgitops:generation" not in {t["Key"] for t in tags["TagList"]}
        snaps = [s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(
            DBInstanceIdentifier="flip-database", SnapshotType="manual")["DBSnapshots"]]
        assert len(snaps) == 1 and snaps[0].startswith("flipgitops-dev-gen2-")

        # The database accepts it again: the whole procedure, in the guide's order.
        state.refuse_connections(None)
        mark = len(state.events)
        r = box.cli("apply", "--env", "dev", "--yes", "--allow", "FG003", extra_env=WAITS)
        assert r.code == 0, r.text
        out = r.text
        order = [out.index(s) for s in ("database.snapshot ... ok", "database.reset_schema ... ok",
                                        "hub.redeploy:flip_api ... ok",
                                        "registry.register:Trust_1 ... ok",
                                        "host.write_kit_file:Trust_1 ... ok",
                                        "host.verify:Trust_1 ... ok")]
        assert order == sorted(order), out
        assert f"snapshot {snaps[0]} " in out  # the first attempt's snapshot, reused
        events = state.events[mark:]
        kinds = [e[0] for e in events]
        drop = kinds.index("schema_drop")
        assert kinds.index("schema_create") > drop
        assert kinds.index("boot") > drop
        registered = [e[1] for e in events[drop:] if e[0] == "register"]
        assert sorted(registered) == ["Trust_1", "Trust_2"]
        for name in ("Trust_1", "Trust_2"):
            row = state.trust(name)
            assert row is not None and row.id != ids[name]
        assert kit_value(box, "TRUST_API_KEY") != old_key
        assert kit_value(box, "EXPECTED_TRUST_ID") == state.trust("Trust_1").id  # type: ignore[union-attr]
        assert old_key not in out and kit_value(box, "TRUST_API_KEY") not in out

        r = box.cli("plan", "--env", "dev", extra_env=WAITS)
        assert r.code == 0, r.text
        r = box.cli("status", "--env", "dev", extra_env=WAITS)
        assert r.code == 0 and "generation 2" in r.out, r.text
    print(f"\nwall: database recreation e2e {time.monotonic() - started:.0f}s")
