"""Crash safety the planner must see on a rerun: a hub secret write flip-api was never
redeployed for, and a database recreated (schema reset) before its trusts got new keys.

Each test runs a plan's prefix through the pure world model (`simulate_apply`), "crashes",
re-plans from what is then live, and finishes: the rerun must plan the missing steps and
converge.
"""

from __future__ import annotations

from flipgitops.core.diff import diff
from flipgitops.core.drift import drift_report
from flipgitops.core.planner import plan
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Plan, PlanOptions
from tests.builders import (
    key_hash,
    manifest,
    not_onboarded,
    observed_matching,
    simulate_apply,
    trust,
    with_secret,
)

ALLOW_FG003 = PlanOptions(allow=frozenset({"FG003"}))


def ids(p: Plan) -> list[str]:
    return [a.id for a in p.actions]


def run_until(m: Manifest, o: ObservedState, p: Plan, last: str) -> ObservedState:
    """Apply ``p`` up to and including action ``last``, then "die"."""
    done = []
    for a in p.actions:
        done.append(a)
        if a.id == last:
            return simulate_apply(m, o, done)
    raise AssertionError(f"{last} is not in the plan: {ids(p)}")


def converge(m: Manifest, o: ObservedState, options: PlanOptions | None = None) -> ObservedState:
    for _ in range(3):
        p = plan(m, o, options)
        if not p.actions:
            return o
        o = simulate_apply(m, o, p.actions)
    raise AssertionError(f"no convergence: still {ids(plan(m, o, options))}")


# --- gap 1: hub secret written, flip-api not redeployed -----------------------------------


def test_crash_after_hub_secret_update_replans_the_redeploy() -> None:
    m = manifest(2)
    o = not_onboarded(observed_matching(m), "Trust_2")
    first = plan(m, o)
    assert "hub.redeploy" in ids(first)
    crashed = run_until(m, o, first, "hub_secret.update")
    assert crashed.hub.secret.redeploy_pending  # written with the registry change
    rerun = plan(m, crashed)
    # The registry is already right, so without the marker nothing would reload flip-api.
    assert "hub_secret.update" not in ids(rerun)
    assert "hub.redeploy" in ids(rerun)
    assert "did not redeploy" in rerun.action("hub.redeploy").description
    assert any("did not redeploy flip-api" in n for n in rerun.notes)
    # The new trust's host waits for the redeploy, as in the first plan.
    assert "hub.redeploy" in rerun.action("host.provision:Trust_2").depends_on
    assert "hub.redeploy" in rerun.action("allowlist.update").depends_on
    done = converge(m, crashed)
    assert not done.hub.secret.redeploy_pending


def test_marker_alone_plans_exactly_a_redeploy_and_is_reported() -> None:
    m = manifest(2)
    o = with_secret(observed_matching(m), redeploy_pending=True)
    p = plan(m, o)
    assert ids(p) == ["hub.redeploy"]
    assert [(c.path, c.before, c.after) for c in p.changes] == [
        ("hub.secret.redeploy_pending", True, False)
    ]
    findings = drift_report(m, o).findings
    assert [(f.group, f.severity, f.target) for f in findings] == [
        ("changed", "high", f"secret:{m.hub.secret}")
    ]
    assert "may not have loaded the current hub secret" in findings[0].message
    assert plan(m, simulate_apply(m, o, p.actions)).actions == ()


def test_crash_after_finalize_replans_the_redeploy() -> None:
    live = manifest(2)
    m = manifest([trust("Trust_1", generation=2), trust("Trust_2")])
    o = observed_matching(live)
    first = plan(m, o)
    crashed = run_until(m, o, first, "hub_secret.finalize")
    assert crashed.hub.secret.redeploy_pending and not crashed.hub.secret.previous_key_hashes
    rerun = plan(m, crashed)
    assert ids(rerun) == ["hub.redeploy"]
    done = simulate_apply(m, crashed, rerun.actions)
    assert not done.hub.secret.redeploy_pending and plan(m, done).actions == ()


def test_finalize_redeploy_clears_the_marker() -> None:
    live = manifest(2)
    m = manifest([trust("Trust_1", generation=2), trust("Trust_2")])
    o = observed_matching(live)
    p = plan(m, o)
    assert ids(p)[-1] == "hub.redeploy:finalize"
    done = simulate_apply(m, o, p.actions)
    assert not done.hub.secret.redeploy_pending and plan(m, done).actions == ()


# --- gap 2: database recreated, trusts not yet re-registered ------------------------------


def recreation() -> tuple[Manifest, ObservedState]:
    live = manifest([trust("Trust_1"), trust("Trust_2", state="paused"),
                     trust("Trust_3", kind="tre")])
    return manifest(list(live.trusts), db_generation=2), observed_matching(live)


def test_recreation_mints_keys_for_the_new_database_generation() -> None:
    m, o = recreation()
    p = plan(m, o, ALLOW_FG003)
    for name in ("Trust_1", "Trust_2", "Trust_3"):
        assert p.action(f"credentials.escrow:{name}").params == {
            "generation": 1, "database_generation": 2,
        }
    assert p.action("hub_secret.update").params["register"] == ["Trust_1", "Trust_2", "Trust_3"]
    done = converge(m, o, ALLOW_FG003)
    secret = done.hub.secret
    for name in ("Trust_1", "Trust_2", "Trust_3"):
        assert secret.trust_api_key_hashes[name] == key_hash(name, 1, 2)
        assert secret.trust_api_key_hashes[name] != o.hub.secret.trust_api_key_hashes[name]
        assert secret.database_generations[name] == 2
    assert done.hosts["Trust_1"].trust_api_key_sha256 == key_hash("Trust_1", 1, 2)


def test_crash_after_reset_schema_still_re_registers_every_trust() -> None:
    m, o = recreation()
    first = plan(m, o, ALLOW_FG003)
    crashed = run_until(m, o, first, "database.reset_schema")
    assert crashed.hub.database.generation == 2
    rerun = plan(m, crashed)  # no FG003 needed: the recreation itself is done
    assert "database.reset_schema" not in ids(rerun) and not rerun.blocked
    assert {a.id for a in rerun.actions if a.kind == "credentials.escrow"} == {
        "credentials.escrow:Trust_1", "credentials.escrow:Trust_2", "credentials.escrow:Trust_3"
    }
    assert rerun.action("credentials.escrow:Trust_1").params["database_generation"] == 2
    assert "hub.redeploy" in ids(rerun)
    assert any("before it was recreated" in n for n in rerun.notes)
    paths = {c.path for c in rerun.changes}
    assert "trusts.Trust_1.database_generation" in paths
    assert {f.target for f in drift_report(m, crashed).findings if f.severity == "high"} >= {
        "trust:Trust_1", "trust:Trust_2", "trust:Trust_3"
    }
    done = converge(m, crashed)
    for name in ("Trust_1", "Trust_2", "Trust_3"):
        assert done.hub.secret.trust_api_key_hashes[name] == key_hash(name, 1, 2)
    assert not done.hub.secret.redeploy_pending


def test_hub_in_sync_at_a_later_database_generation_plans_nothing() -> None:
    m = manifest(2, db_generation=2)
    o = observed_matching(m)
    assert plan(m, o).actions == () and diff(m, o) == ()
    assert drift_report(m, o).in_sync


def test_registration_without_a_recorded_database_generation_counts_as_generation_1() -> None:
    m = manifest(1, db_generation=2)
    o = with_secret(observed_matching(m), database_generations={})
    assert ids(plan(m, o))[:2] == ["credentials.escrow:Trust_1", "hub_secret.update"]
    at_1 = manifest(1)
    assert plan(at_1, with_secret(observed_matching(at_1), database_generations={})).actions == ()
