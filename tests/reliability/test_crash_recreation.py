"""A database recreation killed right after the schema reset (DESIGN §5.6, §9).

At that point the database already carries the new generation tag, so the rerun plans no
snapshot and no reset; it must still give every trust a new key (the keys of the old
database must not survive it) and redeploy flip-api. The crash is real: the CLI process
exits right after the N-th action (``FLIPGITOPS_FAULT_EXIT_AFTER``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from applyworld import World
from test_crash_convergence import clear_crashed_lock

from flipgitops.engine.apply import FAULT_ENV, FAULT_EXIT_CODE
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow

TRUSTS = ("Trust_1", "Trust_2")


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def test_crash_after_schema_reset_rerun_re_registers_every_trust_with_new_keys(
    moto: MotoServer, tmp_path: Path
) -> None:
    w = World(tmp_path, trusts=TRUSTS, tre=True)
    w.seed_hub(trusts=True)
    assert w.plan().code == 0, "the seeded hub must start in sync"
    old = dict(w.secret()["trust_api_key_hashes"])
    w.doc["hub"]["database"]["generation"] = 2
    w.save("recreate the database")
    planned = w.plan("--allow", "FG003", "--format", "json")
    ids = [a["id"] for a in json.loads(planned.out)["actions"]]
    n = ids.index("database.reset_schema") + 1
    assert ids.index("hub_secret.update") >= n, ids

    crashed = w.apply("--allow", "FG003", extra_env={FAULT_ENV: str(n)})
    assert crashed.code == FAULT_EXIT_CODE, crashed.text
    tags = w.clients.rds.list_tags_for_resource(ResourceName=w.database()["DBInstanceArn"])
    assert {"Key": "flipgitops:generation", "Value": "2"} in tags["TagList"]
    assert w.secret()["trust_api_key_hashes"] == old, "the crash came before re-registration"

    clear_crashed_lock(w)
    replan = w.plan("--format", "json")
    assert replan.code == 2, replan.text
    again = [a["id"] for a in json.loads(replan.out)["actions"]]
    assert "database.reset_schema" not in again and "database.snapshot" not in again
    assert {f"credentials.escrow:{t}" for t in TRUSTS} <= set(again)
    assert "hub.redeploy" in again

    rerun = w.apply()
    assert rerun.code == 0, rerun.text
    assert w.plan().code == 0, "not converged after the rerun"
    secret = w.secret()
    for t in TRUSTS:
        escrow = w.escrowed(t)
        assert escrow is not None
        assert secret["trust_api_key_hashes"][t] != old[t], f"{t} kept its old key"
        assert secret["trust_api_key_hashes"][t] == sha(escrow[1])
        assert secret["flipgitops_database_generations"][t] == 2
    assert "flipgitops_redeploy_pending" not in secret
    assert len(w.snapshots()) == 1
