"""The trust registry as FLIP implements it, end to end (issue 14's "must show").

One world per registry: moto as AWS, the stand-in FLIP hub and trust side, a local trust
host and a TRE, and the real CLI as a subprocess. Each test onboards both trusts, rotates the
host's trust and decommissions it, and judges every step the way an operator would: boto3
against moto, the stand-in hub's tables (`HubState`), files and the container CLI on the
host (`tests/operator_reads.py`) — never flipgitops' own observe. Then it hunts every minted
value through everything the runs left behind: output, journals, logs, plan files, /tmp,
~/.ansible and the argument lists seen while applies ran.

The two registries (FLIP files, `londonaicentre/FLIP`):
- database: `register_trust` / `delete_trust` as one-off flip-api tasks
  (`deploy/providers/AWS/scripts/register-trusts.sh@03bb6813`, `delete-trust.sh@05600a0d`,
  `flip_api/scripts/register_trust.py@00e1b6b0`, `delete_trust.py@3c9a08e0`); FLIP_API and
  flip-api's deployment are never touched; a rotation is delete + register (FG009);
- secret (older hubs): `TRUST_NAMES` in a new flip-api task-definition revision and
  `trust_api_key_hashes` in FLIP_API (E2 `main.tf`/`locals.tf@01328ab0`), loaded only when
  flip-api restarts.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from flipgitops.sandbox.environment import Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.moto_server import MotoServer
from tests.operator_reads import (
    AUTHENTICATED,
    DELETE_STARTED_BY,
    EPHEMERAL_PREFIX,
    FAULT_EXIT,
    REGISTER_STARTED_BY,
    Aws,
    Key,
    Minted,
    Transcript,
    auth_status,
    delete_command,
    host_key,
    hub_trust_names,
    kit_file,
    leftover_runner_dirs,
    registrations,
    running,
    tmp_files,
    trust_api_logs,
)

# Each test is a whole lifecycle (~2-4 min on 2 cores): the long lane, `pytest -m long`.
pytestmark = [pytest.mark.slow, pytest.mark.long]

ENV = ("--env", "dev")
HOST, TRE = "Trust_1", "Trust_2"
HOST_IP, TRE_IP = "203.0.113.11/32", "203.0.113.12/32"
NAMES = (HOST, TRE)


def trusts(*, generation: int = 1, state: str = "active") -> list[TrustSpec]:
    return [TrustSpec(HOST, "GSTT", "203.0.113.11", region="London", generation=generation,
                      state=state),
            TrustSpec(TRE, "KCH", "203.0.113.12", kind="tre")]


def set_manifest(box: Sandbox, registry: str, why: str, **kw: object) -> None:
    box.write_manifest(box.manifest_doc(trusts(**kw), registry=registry),  # type: ignore[arg-type]
                       commit=why)


def guard_fires(tr: Transcript, box: Sandbox, guard: str) -> None:
    """``guard`` blocks the plan in every format, with exit 3."""
    for fmt in ("text", "markdown", "json"):
        r = tr.cli(box, "plan", *ENV, "--format", fmt, sample=False)
        assert r.code == 3, f"{guard} in {fmt}: exit {r.code}\n{r.text}"
        if fmt == "json":
            doc = json.loads(r.out)
            assert doc["summary"]["blocked"] is True
            assert any(v["guard"] == guard and not v["allowed"] for v in doc["violations"]), \
                doc["violations"]
        else:
            assert guard in r.out, f"{guard} not shown in {fmt}:\n{r.out}"
        if fmt == "markdown":
            assert "|" in r.out or "#" in r.out, r.out  # rendered for a PR comment


def apply(tr: Transcript, box: Sandbox, *extra: str, verbose: bool = False,
          env: dict[str, str] | None = None) -> str:
    args = ("-vv",) if verbose else ()
    r = tr.cli(box, *args, "apply", *ENV, "--yes", *extra, env=env)
    assert r.code == 0 and "converged" in r.out, f"apply exit {r.code}\n{r.text}"
    return r.out


def in_sync(tr: Transcript, box: Sandbox) -> None:
    r = tr.cli(box, "plan", *ENV, sample=False)
    assert r.code == 0, f"plan after apply: exit {r.code}\n{r.text}"


def escrowed_key(aws: Aws, name: str) -> Key:
    key = aws.escrow_key(name)
    assert key is not None, f"no escrowed kit for {name}"
    return key


def host_digest(box: Sandbox) -> str:
    return host_key(box, HOST, "GSTT").digest


def authenticated(box: Sandbox, name: str = HOST, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if AUTHENTICATED.format(name=name) in trust_api_logs(box, name):
            return True
        time.sleep(0.2)
    return False


def no_secret_anywhere(tr: Transcript, aws: Aws, box: Sandbox, minted: Minted,
                       started: float, plan_files: list[Path]) -> None:
    minted.collect(aws, NAMES)
    assert len(minted.values) >= 6, "the hunt needs the values it hunts"
    texts: dict[str, str | bytes] = dict(tr.texts())
    texts.update(aws.journals())
    texts.update(aws.log_texts())
    texts["ledger"] = json.dumps(aws.ledger())
    texts.update({str(p): p.read_bytes() for p in plan_files})
    texts["argv of every process seen during applies"] = b"\n".join(sorted(tr.argv))
    home_ansible = Path(os.path.expanduser("~/.ansible"))
    kit = kit_file(box, HOST, "GSTT")
    texts.update(dict(tmp_files(started, skip=[kit])))
    if home_ansible.is_dir():
        texts.update({p: b for p, b in tmp_files(started, roots=[home_ansible])})
    assert tr.argv and any(b"flipgitops" in a for a in tr.argv), "argv sampling saw nothing"
    assert len(aws.journals()) >= 3
    hits = minted.found_in(texts)
    assert not hits, "secret values leaked: " + "; ".join(hits)
    assert leftover_runner_dirs(tr.pids) == []
    # The one place a key may rest on a host: its kit file, 0600.
    assert kit.stat().st_mode & 0o777 == 0o600


# --- database registry ------------------------------------------------------------------------


def test_database_registry_lifecycle(tmp_path: Path, moto: MotoServer) -> None:
    started = time.time()
    tr, minted = Transcript(), Minted()
    plan_files = [tmp_path / "onboard.plan.json", tmp_path / "rotate.plan.json"]
    with sandbox(tmp_path / "world", trusts=trusts(), registry="database", moto=moto) as box:
        aws = Aws(box)
        secret_before, deployments_before = aws.secret_string(), aws.deployments()
        baseline = aws.ingress_cidrs()

        # FG011: a manifest that says `secret` against this database hub.
        set_manifest(box, "secret", "claim the secret registry")
        guard_fires(tr, box, "FG011")
        set_manifest(box, "database", "the database registry")

        # 1. onboarding: register_trust per trust, no FLIP_API write, no redeploy.
        r = tr.cli(box, "plan", *ENV, "--out", str(plan_files[0]), sample=False)
        assert r.code == 2, r.text
        apply(tr, box, verbose=True)
        minted.collect(aws, NAMES)
        in_sync(tr, box)
        assert aws.secret_string() == secret_before
        assert aws.deployments() == deployments_before
        assert aws.parameters(EPHEMERAL_PREFIX) == []
        assert hub_trust_names(box) == sorted(NAMES)
        for name in NAMES:
            row = box.hub.state.trust(name)
            assert row is not None and row.api_key_hash == escrowed_key(aws, name).digest
            assert registrations(box, name) == 1
        assert len(aws.tasks(REGISTER_STARTED_BY)) == 2
        assert host_digest(box) == escrowed_key(aws, HOST).digest
        assert authenticated(box), trust_api_logs(box, HOST)[-2000:]
        assert aws.trust_cidrs(baseline) == [HOST_IP, TRE_IP]
        assert set(aws.ledger()["trusts"]) == set(NAMES)

        # 4. FG009: a rotation on the database registry deletes the trust's hub records.
        old_key = escrowed_key(aws, HOST)
        set_manifest(box, "database", "rotate Trust_1", generation=2)
        guard_fires(tr, box, "FG009")
        r = tr.cli(box, "plan", *ENV, "--allow", "FG009", "--out", str(plan_files[1]),
                   sample=False)
        assert r.code == 2, r.text
        events_before = len(box.hub.state.events)
        apply(tr, box, "--allow", "FG009")
        minted.collect(aws, NAMES)
        new_key = escrowed_key(aws, HOST)
        ours = [e for e in box.hub.state.events[events_before:]
                if e[0] in ("register", "delete")]
        assert ours == [("delete", HOST), ("register", HOST)], ours
        assert new_key.digest != old_key.digest and host_digest(box) == new_key.digest
        row = box.hub.state.trust(HOST)
        assert row is not None and row.api_key_hash == new_key.digest
        assert auth_status(box, old_key) == 401
        assert auth_status(box, new_key) == 200
        assert authenticated(box), trust_api_logs(box, HOST)[-2000:]
        assert registrations(box, TRE) == 1  # the TRE was not touched
        in_sync(tr, box)

        # 2. decommission: delete_trust, the rule, the stack, the ledger entry, the escrow.
        set_manifest(box, "database", "decommission Trust_1", generation=2,
                     state="decommissioned")
        apply(tr, box)
        in_sync(tr, box)
        deletes = [aws.command(t) for t in aws.tasks(DELETE_STARTED_BY)]
        assert deletes == [delete_command(HOST)] * 2, deletes  # the rotation's, this one
        assert hub_trust_names(box) == [TRE]
        assert auth_status(box, new_key) == 401
        assert aws.trust_cidrs(baseline) == [TRE_IP]
        assert running(box, HOST) == []
        assert set(aws.ledger()["trusts"]) == {TRE}
        assert aws.escrowed(HOST) == {"kit": False, "local": False}
        assert aws.escrowed(TRE)["kit"]

        # Across the whole lifecycle: FLIP_API untouched, flip-api never redeployed.
        assert aws.secret_string() == secret_before
        assert aws.deployments() == deployments_before
        assert aws.parameters(EPHEMERAL_PREFIX) == []

        # 6. no key or kit value anywhere.
        no_secret_anywhere(tr, aws, box, minted, started, plan_files)
    print(f"\ndatabase lifecycle: {time.time() - started:.0f} s, CLI {tr.seconds:.0f} s")


# --- secret registry ---------------------------------------------------------------------------


def position_of(plan_file: Path, action_id: str) -> int:
    """How many actions an apply finishes up to and including ``action_id``, which must be
    alone in its wave (engine/apply.py runs the waves in order)."""
    plan = json.loads(plan_file.read_text())
    done = 0
    for wave in plan["waves"]:
        if action_id in wave:
            assert wave == [action_id], wave
            return done + 1
        done += len(wave)
    raise AssertionError(f"{action_id} not planned: {plan['waves']}")


def test_secret_registry_lifecycle(tmp_path: Path, moto: MotoServer) -> None:
    started = time.time()
    tr, minted = Transcript(), Minted()
    plan_files = [tmp_path / "onboard.plan.json"]
    with sandbox(tmp_path / "world", trusts=trusts(), registry="secret", moto=moto) as box:
        aws = Aws(box)
        deployments_before, revisions_before = aws.deployments(), aws.revisions()
        secret_keys = set(aws.secret())
        baseline = aws.ingress_cidrs()

        # FG011 the other way round: a manifest saying `database` against an older hub.
        set_manifest(box, "database", "claim the database registry")
        guard_fires(tr, box, "FG011")
        set_manifest(box, "secret", "the secret registry")

        # 3. onboarding, stopped right after the registry write: not yet loaded.
        r = tr.cli(box, "plan", *ENV, "--out", str(plan_files[0]), sample=False)
        assert r.code == 2, r.text
        stop_after = position_of(plan_files[0], "registry.secret_write")
        r = tr.cli(box, "apply", *ENV, "--yes",
                   env={"FLIPGITOPS_FAULT_EXIT_AFTER": str(stop_after)})
        assert r.code == FAULT_EXIT, r.text
        minted.collect(aws, NAMES)
        keys = {n: escrowed_key(aws, n) for n in NAMES}
        revisions = aws.revisions()
        assert len(revisions) == len(revisions_before) + 1
        assert aws.trust_names(revisions[-1]) == list(NAMES)
        assert aws.trust_hashes() == {n: k.digest for n, k in keys.items()}
        assert aws.deployments() == deployments_before  # not redeployed yet
        loaded = box.hub.state.loaded
        assert loaded is not None and HOST not in loaded.trust_names
        assert auth_status(box, keys[HOST]) == 401
        assert auth_status(box, keys[TRE]) == 401
        lock = aws.lock()
        assert lock is not None  # a killed run cannot release it
        r = tr.cli(box, "apply", *ENV, "--yes", sample=False)
        unlock = f"flipgitops unlock --env dev --lock-id {lock['lock_id']}"
        assert r.code == 4 and unlock in r.text, r.text
        r = tr.cli(box, "unlock", *ENV, "--lock-id", str(lock["lock_id"]), sample=False)
        assert r.code == 0, r.text

        apply(tr, box, verbose=True)
        in_sync(tr, box)
        after = aws.deployments()
        assert after != deployments_before
        assert aws.service()["taskDefinition"] == revisions[-1]
        assert {n: escrowed_key(aws, n).digest for n in NAMES} == {  # nothing minted twice
            n: k.digest for n, k in keys.items()}
        assert aws.trust_names() == list(NAMES)
        assert aws.trust_hashes() == {n: k.digest for n, k in keys.items()}
        assert auth_status(box, keys[HOST]) == 200 and auth_status(box, keys[TRE]) == 200
        assert host_digest(box) == keys[HOST].digest
        assert authenticated(box), trust_api_logs(box, HOST)[-2000:]
        assert hub_trust_names(box) == sorted(NAMES)
        assert aws.trust_cidrs(baseline) == [HOST_IP, TRE_IP]
        assert aws.parameters(EPHEMERAL_PREFIX) == []
        assert aws.tasks(REGISTER_STARTED_BY) == []  # FLIP's E2 image has no register_trust
        assert set(aws.secret()) == secret_keys  # flipgitops' bookkeeping is in its ledger

        # Rotation: no FG009 here; new hashes, a redeploy, the old key refused.
        set_manifest(box, "secret", "rotate Trust_1", generation=2)
        before_rotation = aws.deployments()
        out = apply(tr, box)
        assert "FG009" not in out
        minted.collect(aws, NAMES)
        new_key = escrowed_key(aws, HOST)
        assert new_key.digest != keys[HOST].digest and host_digest(box) == new_key.digest
        assert aws.trust_hashes() == {HOST: new_key.digest, TRE: keys[TRE].digest}
        assert aws.deployments() != before_rotation
        assert auth_status(box, keys[HOST]) == 401
        assert auth_status(box, new_key) == 200
        assert authenticated(box), trust_api_logs(box, HOST)[-2000:]
        in_sync(tr, box)

        # Decommission: out of TRUST_NAMES and the hashes, redeployed, stack and rule gone.
        set_manifest(box, "secret", "decommission Trust_1", generation=2,
                     state="decommissioned")
        before_decommission = aws.deployments()
        apply(tr, box)
        in_sync(tr, box)
        assert aws.trust_names() == [TRE]
        assert aws.trust_hashes() == {TRE: keys[TRE].digest}
        assert aws.deployments() != before_decommission
        assert auth_status(box, new_key) == 401
        assert auth_status(box, keys[TRE]) == 200
        assert aws.trust_cidrs(baseline) == [TRE_IP]
        assert running(box, HOST) == []
        assert set(aws.ledger()["trusts"]) == {TRE}
        assert aws.escrowed(HOST) == {"kit": False, "local": False}

        no_secret_anywhere(tr, aws, box, minted, started, plan_files)
    print(f"\nsecret lifecycle: {time.time() - started:.0f} s, CLI {tr.seconds:.0f} s")
