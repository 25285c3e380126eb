"""Planner properties over generated (manifest, observed) pairs (hypothesis).

Worlds are built as "a live manifest, observed in sync, then perturbed", so they look like
real drift (old tags, missing trusts, moved IPs, stopped stacks, stale kit files, rotations,
unmanaged trusts) rather than random noise. The example count comes from the hypothesis
profile (tests/conftest.py: `dev` locally, `ci` with 2,000 examples in CI).
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flipgitops.core.drift import drift_report
from flipgitops.core.facts import FACTS_BY_ID
from flipgitops.core.planner import plan
from flipgitops.model.actions import KINDS, ActionKind
from flipgitops.model.manifest import Manifest, Trust
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Plan, PlanOptions
from tests.builders import (
    fresh_host,
    manifest,
    not_onboarded,
    observed_matching,
    simulate_apply,
    trust,
    unreachable,
    with_container,
    with_database,
    with_host,
    with_kit_value,
    with_rule_ip,
    with_stack_stopped,
    with_unmanaged_trust,
)

TAGS = st.sampled_from(["v2.3.0", "v2.4.0", "sha-0a1b2c3"])
PERTURB = ("none", "none", "fresh", "stopped", "not_onboarded", "ip_moved", "stale_kit_value",
           "old_fl_client", "mode", "unreachable")


@st.composite
def trusts(draw: st.DrawFn) -> list[Trust]:
    n = draw(st.integers(0, 4))
    return [
        trust(f"Trust_{i}", kind=draw(st.sampled_from(["on-prem", "aws", "tre"])),
              state=draw(st.sampled_from(["active", "active", "paused", "decommissioned"])),
              generation=draw(st.integers(1, 3)))
        for i in range(1, n + 1)
    ]


@st.composite
def worlds(draw: st.DrawFn, env: str | None = None,
           reachable: bool = False) -> tuple[Manifest, ObservedState]:
    environment = env or draw(st.sampled_from(["dev", "stag", "prod"]))
    allowlist = draw(st.sampled_from(["aws-api", "terraform"]))
    registry = draw(st.sampled_from(["database", "secret"]))
    wanted = draw(trusts())
    protect = True if environment == "prod" else draw(st.booleans())
    desired = manifest(
        wanted, environment=environment, hub_tag=draw(TAGS), fl_tag=draw(TAGS),
        allowlist=allowlist, registry=registry, db_generation=draw(st.integers(1, 2)),
        deletion_protection=protect, final_snapshot=protect, lockstep=draw(st.booleans()),
        max_trust_removals=draw(st.integers(0, 3)),
        kit_date=draw(st.sampled_from(["2025-06-01", "2025-09-01"])),
        flip_ref=draw(st.sampled_from(["v2.3.0", "v2.4.0"])),
    )
    live_trusts = [
        t.model_copy(update={
            "state": draw(st.sampled_from(["active", "paused", "decommissioned", t.state])),
            "credentials_generation": draw(st.integers(1, t.credentials_generation)),
        })
        for t in wanted
    ]
    live = manifest(live_trusts, environment=environment, hub_tag=draw(TAGS), fl_tag=draw(TAGS),
                    allowlist=allowlist, registry=registry,
                    kit_date=draw(st.sampled_from(["2025-06-01", "2025-09-01"])),
                    flip_ref=draw(st.sampled_from(["v2.3.0", "v2.4.0"])),
                    deletion_protection=protect, final_snapshot=protect)
    o = observed_matching(live)
    # The controller resolves the desired FLIP ref, and the desired kit set exists in the
    # bucket (a missing kit is its own advisory).
    target = observed_matching(desired)
    o = o.model_copy(update={"hub": o.hub.model_copy(update={"kits": target.hub.kits}),
                             "flip_release": target.flip_release})
    for t in live_trusts:
        what = draw(st.sampled_from(PERTURB[:-1] if reachable else PERTURB))
        if t.state == "decommissioned" or what == "none":
            continue
        has_host = t.name in o.hosts
        if what == "fresh" and has_host:
            o = with_host(o, t.name, fresh_host(t.name))
        elif what == "stopped" and has_host:
            o = with_stack_stopped(o, t.name)
        elif what == "not_onboarded":
            o = not_onboarded(o, live, t.name)
        elif what == "ip_moved":
            o = with_rule_ip(o, live, t.name, "198.51.100.200")
        elif what == "stale_kit_value" and has_host:
            o = with_kit_value(o, t.name, "DOCKER_TAG", "v0.0.1")
        elif what == "old_fl_client" and has_host:
            o = with_container(o, t.name, "fl-client-net-1", tag="v0.0.1")
        elif what == "mode" and has_host:
            o = with_host(o, t.name, kit_file=o.hosts[t.name].kit_file.model_copy(
                update={"mode": "0644"}))
        elif what == "unreachable" and has_host:
            o = unreachable(o, t.name)
    if draw(st.booleans()):
        o = with_unmanaged_trust(o, live, "Old_1", "198.51.100.5")
    if draw(st.booleans()) and environment != "prod":
        o = with_database(o, deletion_protection=False)
    return desired, o


def options() -> st.SearchStrategy[PlanOptions]:
    return st.builds(
        PlanOptions, prune=st.booleans(), fl_quiesced=st.booleans(),
        allow=st.frozensets(st.sampled_from(["FG001", "FG003", "FG004", "FG007", "FG009",
                                             "FG010"])),
    )


@given(worlds().map(lambda w: w[0]))
def test_in_sync_world_plans_nothing(m: Manifest) -> None:
    p = plan(m, observed_matching(m))
    assert p.is_empty and p.changes == () and p.waves == () and p.in_sync, (
        [a.id for a in p.actions], p.advisories, p.violations)


def _assert_ordered(p: Plan) -> None:
    done: set[str] = set()
    for a in p.actions:
        assert set(a.depends_on) <= done, a.id
        done.add(a.id)
    position = {i: n for n, wave in enumerate(p.waves) for i in wave}
    for a in p.actions:
        assert all(position[d] < position[a.id] for d in a.depends_on), a.id
    assert [i for w in p.waves for i in w] == [a.id for a in p.actions]
    assert len({a.id for a in p.actions}) == len(p.actions)


@given(worlds(), options())
def test_order_respects_every_dependency(world: tuple[Manifest, ObservedState],
                                         opts: PlanOptions) -> None:
    _assert_ordered(plan(*world, opts))


@given(worlds(), st.booleans())
def test_drift_is_in_sync_exactly_when_the_plan_is(world: tuple[Manifest, ObservedState],
                                                   prune: bool) -> None:
    m, o = world
    p = plan(m, o, PlanOptions(prune=prune))
    report = drift_report(m, o)
    assert report.in_sync == p.in_sync, (
        [f.message for f in report.findings], [a.id for a in p.actions], p.advisories,
        p.unmanaged, p.unknown, [v.message for v in p.violations])
    # a finding flipgitops can repair always comes with work in the plan (fact table ⇔
    # planner): a fact whose repair the planner forgot would be drift apply never fixes
    repairable = [f for f in report.findings if FACTS_BY_ID[f.fact].repair is not None
                  and (f.group != "unmanaged" or prune)]
    if repairable and o.hub.registry.era == m.hub.trust_registry:
        assert p.actions, [f.message for f in repairable]


@given(worlds(env="prod"), options())
def test_no_prod_plan_deletes_or_unprotects_the_database(
    world: tuple[Manifest, ObservedState], opts: PlanOptions
) -> None:
    m, o = world
    p = plan(m, o, opts)
    for a in p.actions:
        assert a.kind in KINDS
        if a.destructive:
            assert a.kind in (ActionKind.DATABASE_RESET_SCHEMA, ActionKind.REGISTRY_DELETE), a.id
    if any(a.kind == ActionKind.DATABASE_RESET_SCHEMA for a in p.actions):
        fg003 = [v for v in p.violations if v.guard == "FG003"]
        assert fg003 and fg003[0].allowed == ("FG003" in opts.allow)
    fg002 = [v for v in p.violations if v.guard == "FG002"]
    assert all(not v.allowed and not v.overridable for v in fg002)


@given(worlds(), options())
def test_same_inputs_same_bytes(world: tuple[Manifest, ObservedState],
                                opts: PlanOptions) -> None:
    first = plan(*world, opts).model_dump_json()
    assert plan(*world, opts).model_dump_json() == first
    assert Plan.model_validate_json(first).model_dump_json() == first


def _converge(m: Manifest, o: ObservedState, opts: PlanOptions, fraction: float) -> None:
    first = plan(m, o, opts)
    cut = int(len(first.actions) * fraction)
    crashed = simulate_apply(m, o, first.actions[:cut])
    second = plan(m, crashed, opts)
    _assert_ordered(second)
    final = simulate_apply(m, crashed, second.actions)
    third = plan(m, final, opts)
    assert third.is_empty, [a.id for a in third.actions]
    # Every reachable active host ends with the key flipgitops holds for it.
    for t in m.trusts:
        host = final.hosts.get(t.name)
        entry = final.ledger.trusts.get(t.name)
        if t.state == "active" and host is not None and host.reachable and entry is not None \
                and host.kit_file.present:
            assert host.kit_file.secret_sha256["TRUST_API_KEY"] == entry.api_key_sha256
    rules = [r.cidr for r in final.hub.allowlist.rules]
    assert len(rules) == len(set(rules)), "duplicate ingress rule"


@given(worlds(reachable=True), options(), st.floats(0, 1))
def test_apply_then_replan_is_empty_even_after_a_crash(
    world: tuple[Manifest, ObservedState], opts: PlanOptions, fraction: float
) -> None:
    _converge(*world, opts, fraction)
