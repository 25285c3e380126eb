"""Planner properties over generated (manifest, observed) pairs (hypothesis).

Worlds are built as "a live manifest, observed in sync, then perturbed", so they look like
real drift (old tags, missing trusts, moved IPs, stopped stacks, rotations in flight,
unmanaged trusts) rather than random noise.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flipgitops.core.planner import plan
from flipgitops.model.manifest import Manifest, Trust
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import ActionKind, Plan, PlanOptions
from tests.builders import (
    fresh_host,
    key_hash,
    manifest,
    not_onboarded,
    observed_matching,
    registered_as,
    simulate_apply,
    trust,
    unreachable,
    with_database,
    with_host,
    with_rule_ip,
    with_stack_stopped,
    with_unmanaged_trust,
)

TAGS = st.sampled_from(["v2.3.0", "v2.4.0", "sha-0a1b2c3"])
PERTURB = ("none", "none", "fresh", "stopped", "not_onboarded", "ip_moved", "key_mismatch",
           "in_flight", "unreachable")
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


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
    wanted = draw(trusts())
    desired = manifest(
        wanted, environment=environment, hub_tag=draw(TAGS), fl_tag=draw(TAGS),
        allowlist=allowlist, db_generation=draw(st.integers(1, 2)),
        deletion_protection=draw(st.booleans()),
        final_snapshot=draw(st.booleans()), lockstep=draw(st.booleans()),
        max_trust_removals=draw(st.integers(0, 3)),
    )
    # The live world: the same trusts, some in another state or generation, older tags.
    live_trusts = [
        t.model_copy(update={
            "state": draw(st.sampled_from(["active", "paused", "decommissioned", t.state])),
            "credentials_generation": draw(st.integers(1, t.credentials_generation)),
        })
        for t in wanted
    ]
    live = manifest(live_trusts, environment=environment, hub_tag=draw(TAGS),
                    fl_tag=draw(TAGS), allowlist=allowlist)
    o = observed_matching(live)
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
            o = not_onboarded(o, t.name, ip=t.public_ip)
        elif what == "ip_moved":
            o = with_rule_ip(o, t.name, "198.51.100.200")
        elif what == "key_mismatch" and has_host:
            o = with_host(o, t.name, trust_api_key_sha256=key_hash(t.name, 99))
        elif what == "in_flight":
            gen = t.credentials_generation
            o = registered_as(o, t.name, gen + 1, previous_generation=gen)
        elif what == "unreachable" and has_host:
            o = unreachable(o, t.name)
    if draw(st.booleans()):
        o = with_unmanaged_trust(o, "Old_1", "198.51.100.5")
    if draw(st.booleans()):
        o = with_database(o, deletion_protection=False)
    return desired, o


def options() -> st.SearchStrategy[PlanOptions]:
    return st.builds(
        PlanOptions,
        prune=st.booleans(),
        fl_quiesced=st.booleans(),
        allow=st.frozensets(st.sampled_from(["FG001", "FG003", "FG004", "FG007"])),
    )


def _manifests() -> st.SearchStrategy[Manifest]:
    return worlds().map(lambda w: w[0])


@SETTINGS
@given(_manifests())
def test_in_sync_world_plans_nothing(m: Manifest) -> None:
    p = plan(m, observed_matching(m))
    assert p.is_empty and p.changes == () and p.waves == ()


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


@SETTINGS
@given(worlds(), options())
def test_order_respects_every_dependency(world: tuple[Manifest, ObservedState],
                                         opts: PlanOptions) -> None:
    _assert_ordered(plan(*world, opts))


@SETTINGS
@given(worlds(env="prod"), options())
def test_no_prod_plan_deletes_or_unprotects_the_database(
    world: tuple[Manifest, ObservedState], opts: PlanOptions
) -> None:
    m, o = world
    p = plan(m, o, opts)
    assert all(a.kind in ActionKind.ALL for a in p.actions)
    assert not any("delete" in a.kind for a in p.actions)
    destructive = [a for a in p.actions if a.destructive]
    if destructive:
        assert [a.kind for a in destructive] == [ActionKind.DATABASE_RESET_SCHEMA]
        fg003 = [v for v in p.violations if v.guard == "FG003"]
        assert fg003 and (fg003[0].allowed == ("FG003" in opts.allow))
    fg002 = [v for v in p.violations if v.guard == "FG002"]
    if not m.hub.database.deletion_protection:
        assert any(v.target == "hub.database.deletion_protection" for v in fg002)
        assert p.blocked
    assert all(not v.allowed and not v.overridable for v in fg002)


@SETTINGS
@given(worlds(), options())
def test_same_inputs_same_bytes(world: tuple[Manifest, ObservedState],
                                opts: PlanOptions) -> None:
    first = plan(*world, opts).model_dump_json()
    assert plan(*world, opts).model_dump_json() == first
    assert Plan.model_validate_json(first).model_dump_json() == first


def _converge(m: Manifest, o: ObservedState, opts: PlanOptions, cut: Any) -> None:
    first = plan(m, o, opts)
    # Crash after `cut` actions, re-observe (simulated), plan again and apply the rest.
    crashed = simulate_apply(m, o, first.actions[: cut(len(first.actions))])
    second = plan(m, crashed, opts)
    _assert_ordered(second)
    final = simulate_apply(m, crashed, second.actions)
    third = plan(m, final, opts)
    assert third.is_empty, [a.id for a in third.actions]
    # Every reachable active host ends with the key the hub expects.
    for t in m.trusts:
        if t.state == "active" and t.name in final.hosts and t.kind != "tre" \
                and final.hosts[t.name].reachable and final.hub.secret.exists:
            assert final.hosts[t.name].trust_api_key_sha256 == \
                final.hub.secret.trust_api_key_hashes[t.name]
    rules = [r.cidr for r in final.hub.allowlist.rules]
    assert len(rules) == len(set(rules)), "duplicate ingress rule"


@SETTINGS
@given(worlds(reachable=True), options(), st.floats(0, 1))
def test_apply_then_replan_is_empty_even_after_a_crash(
    world: tuple[Manifest, ObservedState], opts: PlanOptions, fraction: float
) -> None:
    _converge(*world, opts, lambda n: int(n * fraction))
