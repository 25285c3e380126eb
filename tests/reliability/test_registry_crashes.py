"""Crash safety of the trust registry: a kill at action boundaries of an onboarding, a
rotation and a decommission, on both registries, converges on rerun.

`FLIPGITOPS_FAULT_EXIT_AFTER=N` (engine/apply.py) makes apply exit 75 right after its N-th
action, journal written and lock held, as a killed CI runner would. After each kill the test
clears the lock the way the operator is told to (`flipgitops unlock`) and checks, the way an
operator would (`tests/operator_reads.py`):

- the rerun planned exactly what was still missing (its journal's action count), and the
  flow ran in FLIP's order, each action once;
- no trust registered twice (the stand-in's trust table and its register events, or
  TRUST_NAMES and the hashes), no duplicate ingress rule;
- no kit lost: every key the hub accepts (or will accept after its next restart) can still
  be delivered — it is the escrowed key, or, mid-rotation on the secret registry, the one
  the trust's host already holds.

Once the flow's kills are done an apply without the hook converges, and every active
trust's host key, escrowed key and hub hash agree.

Which boundaries: for the rotation and the decommission the ones between hub steps, where a
half-done registry change lives (the host steps after them are the onboarding's); for the
onboarding (the longest flow, hub and host steps) every hub boundary and two host ones in
the full suite, and every boundary of it in the long lane (`pytest -m long`, nightly): the
host steps are one Ansible run, so a kill after any of them leaves the same half-done
registry, and only the journal differs. Each kill
costs one observation (~10 s here), so the three flows of one registry are chained in one
world (each flow starts where the last converged) and the kills roll forward: the run after
a kill is itself killed at the next chosen boundary, and the last one runs without the hook.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from flipgitops.sandbox.environment import Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.moto_server import MotoServer
from tests.operator_reads import (
    FAULT_EXIT,
    Aws,
    Minted,
    Transcript,
    host_key,
    hub_trust_names,
    kit_file,
    registrations,
    running,
)

pytestmark = pytest.mark.slow  # a few minutes per registry on 2 shared cores

ENV = ("--env", "dev")
HOST, TRE = "Trust_1", "Trust_2"
IPS = {HOST: "203.0.113.11/32", TRE: "203.0.113.12/32"}


def trusts(*, generation: int = 1, state: str = "active") -> list[TrustSpec]:
    return [TrustSpec(HOST, "GSTT", "203.0.113.11", region="London", generation=generation,
                      state=state),
            TrustSpec(TRE, "KCH", "203.0.113.12", kind="tre")]


def _host(*steps: str) -> list[str]:
    return [f"host.{s}:{HOST}" for s in steps]


ONBOARD_HOST = _host("provision", "deploy_release", "deliver_fl_kit", "write_kit_file",
                     "start_stack", "verify")
REKEY_HOST = _host("deliver_fl_kit", "write_kit_file", "start_stack", "verify")
SAMPLED_HOST = _host("provision", "write_kit_file")  # the full suite's host boundaries


@dataclass(frozen=True)
class Flow:
    name: str
    manifest: dict[str, object]  # trusts() keywords
    order: tuple[str, ...]  # the actions, in the order an apply runs them
    kill_after: tuple[str, ...] | None  # None: every boundary (the long lane), else `sample`
    allow: tuple[str, ...] = ()
    sample: tuple[str, ...] = ()  # the full suite's boundaries when kill_after is None
    active: tuple[str, ...] = (HOST, TRE)


FLOWS = {
    "database": (
        Flow("onboarding", {}, (f"registry.register:{HOST}", f"registry.register:{TRE}",
                                "allowlist.update", *ONBOARD_HOST), None,
             sample=(f"registry.register:{HOST}", f"registry.register:{TRE}",
                     "allowlist.update", *SAMPLED_HOST)),
        Flow("rotation", {"generation": 2},
             (f"registry.delete:{HOST}", f"registry.register:{HOST}", *REKEY_HOST),
             (f"registry.delete:{HOST}", f"registry.register:{HOST}",
              f"host.write_kit_file:{HOST}"), allow=("--allow", "FG009")),
        Flow("decommission", {"generation": 2, "state": "decommissioned"},
             (f"host.stop_stack:{HOST}", "allowlist.update", f"registry.delete:{HOST}"),
             (f"host.stop_stack:{HOST}", "allowlist.update"), active=(TRE,)),
    ),
    "secret": (
        Flow("onboarding", {}, (f"credentials.mint:{HOST}", f"credentials.mint:{TRE}",
                                "registry.secret_write", "hub.redeploy:flip_api",
                                "allowlist.update", *ONBOARD_HOST), None,
             sample=(f"credentials.mint:{HOST}", f"credentials.mint:{TRE}",
                     "registry.secret_write", "hub.redeploy:flip_api", "allowlist.update",
                     *SAMPLED_HOST)),
        Flow("rotation", {"generation": 2},
             (f"credentials.mint:{HOST}", "registry.secret_write", "hub.redeploy:flip_api",
              *REKEY_HOST),
             (f"credentials.mint:{HOST}", "registry.secret_write", "hub.redeploy:flip_api")),
        Flow("decommission", {"generation": 2, "state": "decommissioned"},
             (f"host.stop_stack:{HOST}", "allowlist.update", "registry.secret_write",
              "hub.redeploy:flip_api"),
             (f"host.stop_stack:{HOST}", "registry.secret_write"), active=(TRE,)),
    ),
}


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys {sorted(keys)}"
    return dict(pairs)


@dataclass
class Crashes:
    box: Sandbox
    registry: str
    tr: Transcript = field(default_factory=Transcript)
    minted: Minted = field(default_factory=Minted)
    registered: dict[str, int] = field(default_factory=lambda: {HOST: 0, TRE: 0})
    kills: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.aws = Aws(self.box)
        self.baseline = self.aws.ingress_cidrs()  # FLIP's own rule (the NAT's /32)

    # -- one flow ------------------------------------------------------------------------

    def run(self, flow: Flow, *, every: bool) -> None:
        started = time.monotonic()
        self.box.write_manifest(self.box.manifest_doc(trusts(**flow.manifest),  # type: ignore[arg-type]
                                                      registry=self.registry),
                                commit=flow.name)
        chosen = flow.kill_after if flow.kill_after is not None else (
            None if every else flow.sample)
        kill_at = (list(range(1, len(flow.order) + 1)) if chosen is None
                   else [flow.order.index(a) + 1 for a in chosen])
        done: list[str] = []
        for position in kill_at:
            step = position - len(done)
            if step < 1:  # that boundary was passed inside one group of an earlier kill
                continue
            where = f"{self.registry} {flow.name}, killed after {flow.order[position - 1]}"
            journal = self._apply(flow, where, {"FLIPGITOPS_FAULT_EXIT_AFTER": str(step)},
                                  FAULT_EXIT, may_be_done=True)
            if journal is None:  # an earlier kill's group had already finished the rest
                done[:] = list(flow.order)
                break
            self._check_journal(journal, flow, done, where, step)
            self.kills += 1
            self._invariants(where)
            lock = self.aws.lock()
            assert lock is not None, f"{where}: the killed run left no lock"
            r = self.tr.cli(self.box, "unlock", *ENV, "--lock-id", str(lock["lock_id"]),
                            sample=False)
            assert r.code == 0, f"{where}: unlock: {r.text}"
        where = f"{self.registry} {flow.name}, rerun without the hook"
        journal = self._apply(flow, where, {}, 0)
        assert journal is not None
        self._check_journal(journal, flow, done, where, None)
        # What the killed runs journaled and the rerun ran are the flow's actions; whether
        # anything is missing is the world's to say (a group may finish unjournaled work).
        assert set(done) <= set(flow.order), f"{where}: ran {done}"
        self._invariants(where)
        self._converged(flow, where)
        self.seconds[flow.name] = round(time.monotonic() - started, 1)

    def _apply(self, flow: Flow, where: str, env: dict[str, str], code: int,
               may_be_done: bool = False) -> list[dict[str, object]] | None:
        """The run's journal; None when ``may_be_done`` and there was nothing left to do."""
        before = set(self.aws.journals())
        r = self.tr.cli(self.box, "apply", *ENV, "--yes", *flow.allow, env=env, sample=False)
        if may_be_done and r.code == 0 and "no changes" in r.out:
            return None
        assert r.code == code, f"{where}: apply exit {r.code}, expected {code}\n{r.text}"
        self.minted.collect(self.aws, (HOST, TRE))
        new = sorted(set(self.aws.journals()) - before)
        if not new:  # nothing to do: no journal is started
            assert code == 0 and "no changes" in r.out, f"{where}: {r.text}"
            return []
        assert len(new) == 1, new
        return [json.loads(line) for line in self.aws.journals()[new[0]].splitlines() if line]

    @staticmethod
    def _check_journal(events: list[dict[str, object]], flow: Flow, done: list[str],
                       where: str, step: int | None) -> None:
        """The rerun planned only what was missing, and ran it in the flow's order."""
        if not events:  # nothing was left to do: the world says whether that is true
            done[:] = list(flow.order)
            return
        start = next(e for e in events if e["event"] == "run.start")
        assert int(start["actions"]) >= 1, f"{where}: {start}"  # type: ignore[call-overload]
        failed = [e for e in events if e["event"] in ("action.failure", "action.not_run")]
        assert not failed, f"{where}: {failed}"
        finished = [str(e["action"]) for e in events if e["event"] == "action.finish"]
        if step is not None:
            assert len(finished) == step, f"{where}: finished {finished}"
        # Planned again, as a no-op, only what the planner cannot see was done: keys minted
        # and escrowed, not yet in the hub secret (the escrow is read at apply time only).
        replayed = [a for a in finished if a in done]
        assert all(a.startswith("credentials.mint:") for a in replayed), \
            f"{where}: ran again {replayed}"
        fresh = [a for a in finished if a not in done]
        # Only the flow's actions run, each once. (Their order is the planner's, proven by
        # its own tests; a killed run's last group may also have finished more than it
        # journaled: a wave's register_trust tasks run at once and consecutive host waves
        # are one Ansible run, so what is left is judged by the world, `_converged`.)
        assert set(fresh) <= set(flow.order) and len(set(fresh)) == len(fresh), \
            f"{where}: ran {fresh}, the flow is {flow.order}"
        done += fresh

    # -- what must hold at every boundary ----------------------------------------------

    def _recoverable(self, name: str) -> set[str]:
        """The hashes of the keys that can still reach ``name``: escrowed, or on its host."""
        out = set()
        escrowed = self.aws.escrow_digest(name)
        if escrowed is not None:
            out.add(escrowed)
        if name == HOST and kit_file(self.box, HOST, "GSTT").is_file():
            out.add(host_key(self.box, HOST, "GSTT").digest)
        return out

    def _invariants(self, where: str) -> None:
        aws, state = self.aws, self.box.hub.state
        cidrs = aws.trust_cidrs(self.baseline)
        assert len(cidrs) == len(set(cidrs)), f"{where}: duplicate ingress rules {cidrs}"
        names = [t.name for t in state.trusts()]
        assert len(names) == len(set(names)), f"{where}: trust table {names}"
        if self.registry == "database":
            for name in (HOST, TRE):
                assert registrations(self.box, name) <= self.registered[name] + 1, \
                    f"{where}: {name} registered twice"
            for row in state.trusts():
                assert row.api_key_hash == aws.escrow_digest(row.name), \
                    f"{where}: {row.name}'s hub key is not escrowed"
            return
        revision = aws.revisions()[-1]
        listed = aws.trust_names(revision) or []
        assert len(listed) == len(set(listed)), f"{where}: TRUST_NAMES {listed}"
        raw = aws.secret().get("trust_api_key_hashes")
        stored = json.loads(raw, object_pairs_hook=_no_duplicate_keys) \
            if isinstance(raw, str) else dict(raw or {})
        loaded = state.loaded
        served = dict(loaded.trust_api_key_hashes or {}) if loaded else {}
        for source, hashes in (("FLIP_API", stored), ("the running flip-api", served)):
            for name, digest in hashes.items():
                assert digest in self._recoverable(str(name)), \
                    f"{where}: {source} accepts a key for {name} nobody holds"

    def _converged(self, flow: Flow, where: str) -> None:
        aws, state = self.aws, self.box.hub.state
        gone = sorted({HOST, TRE} - set(flow.active))
        for name in flow.active:
            want = aws.escrow_digest(name)
            assert want is not None, f"{where}: {name}'s kit was lost"
            if self.registry == "database":
                row = state.trust(name)
                assert row is not None and row.api_key_hash == want, f"{where}: {name}"
            else:
                assert aws.trust_hashes().get(name) == want, f"{where}: {name} in FLIP_API"
                loaded = state.loaded
                assert loaded is not None and (loaded.trust_api_key_hashes or {}).get(
                    name) == want, f"{where}: flip-api has not loaded {name}'s key"
            if name == HOST:
                assert host_key(self.box, HOST, "GSTT").digest == want
                assert "trust-api" in running(self.box, HOST)
        if self.registry == "database":
            if flow.name == "onboarding":
                self.registered = {HOST: 1, TRE: 1}
            elif flow.name == "rotation":
                self.registered[HOST] += 1
            for name in (HOST, TRE):
                assert registrations(self.box, name) == self.registered[name], \
                    f"{where}: {name} registered {registrations(self.box, name)} times"
        else:
            assert aws.trust_names() == sorted(flow.active), f"{where}: TRUST_NAMES"
            assert sorted(aws.trust_hashes()) == sorted(flow.active)
        if self.registry == "database":
            assert hub_trust_names(self.box) == sorted(flow.active)
        else:
            # E2's seed (db/seed/trusts.py) only inserts the rows TRUST_NAMES names: a
            # decommissioned trust's row stays; its key hash is gone (asserted above), so
            # it cannot authenticate.
            assert set(flow.active) <= set(hub_trust_names(self.box))
        assert aws.trust_cidrs(self.baseline) == sorted(IPS[n] for n in flow.active)
        assert sorted(aws.ledger()["trusts"]) == sorted(flow.active)
        for name in gone:
            assert aws.escrowed(name) == {"kit": False, "local": False}, where
            assert running(self.box, name) == []


@pytest.mark.parametrize(("registry", "every"), [
    pytest.param("database", False, id="database"),
    pytest.param("secret", False, id="secret"),
    pytest.param("database", True, marks=pytest.mark.long, id="database-every"),
    pytest.param("secret", True, marks=pytest.mark.long, id="secret-every"),
])
def test_kills_at_action_boundaries_converge(registry: str, every: bool, tmp_path: Path,
                                             moto: MotoServer) -> None:
    started = time.monotonic()
    with sandbox(tmp_path / "world", trusts=trusts(), registry=registry, moto=moto) as box:
        crashes = Crashes(box, registry)
        for flow in FLOWS[registry]:
            crashes.run(flow, every=every)
        r = crashes.tr.cli(box, "plan", *ENV, sample=False)
        assert r.code == 0, r.text
        hits = crashes.minted.found_in({**crashes.tr.texts(), **crashes.aws.journals()})
        assert not hits, "secret values leaked: " + "; ".join(hits)
    print(f"\n{registry}: {crashes.kills} kills, flows {crashes.seconds}, "
          f"{time.monotonic() - started:.0f} s in all")
