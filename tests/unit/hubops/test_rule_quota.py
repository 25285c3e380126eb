"""FG012 counts what AWS counts: every IPv4 inbound rule of the group at the plan's fullest
point (the allowlist adds a trust's new rule before revoking its old one), never IPv6 rules,
and the quota Service Quotas gives before the manifest's."""

from __future__ import annotations

from flipgitops.core.planner import plan
from flipgitops.model.observed import IngressRule, ObservedState
from tests.builders import (
    add_rule,
    manifest,
    not_onboarded,
    observed_matching,
    trust,
    with_allowlist,
    with_rule_ip,
)


def fg012(o: ObservedState, n: int, **kw: object) -> list[str]:
    m = manifest([trust(f"Trust_{i}") for i in range(1, n + 1)], **kw)  # type: ignore[arg-type]
    return [v.message for v in plan(m, o).violations if v.guard == "FG012"]


def onboarding_last(n: int, other_rules: int, quota: int | None = None) -> ObservedState:
    """``n`` trusts, the last one not onboarded yet; the group also holds FLIP's NAT rule."""
    m = manifest([trust(f"Trust_{i}") for i in range(1, n + 1)])
    o = not_onboarded(observed_matching(m), m, f"Trust_{n}")
    return with_allowlist(o, other_rules=other_rules, rule_quota=quota)


def test_sixty_one_rules_in_a_sixty_rule_group_are_blocked_sixty_are_not() -> None:
    # 20 trusts + FLIP's NAT rule = 21 FL-port rules; the group's other inbound rules decide.
    blocked = fg012(onboarding_last(20, other_rules=40, quota=60), 20)
    assert len(blocked) == 1 and "61 inbound rules" in blocked[0]
    assert "40 of them not trusts' FL-port rules" in blocked[0] and "may hold 60" in blocked[0]
    assert fg012(onboarding_last(20, other_rules=39, quota=60), 20) == []


def test_the_quota_service_quotas_gives_wins_over_the_manifests() -> None:
    # Service Quotas says 100: 61 rules fit even though the manifest says 60.
    assert fg012(onboarding_last(20, other_rules=40, quota=100), 20, rule_quota=60) == []
    # Service Quotas could not be read: the manifest's rule_quota is the bound.
    msgs = fg012(onboarding_last(20, other_rules=40, quota=None), 20, rule_quota=60)
    assert msgs and "may hold 60" in msgs[0]


def test_an_ip_change_on_a_full_group_is_blocked_because_the_add_comes_first() -> None:
    m = manifest([trust(f"Trust_{i}") for i in range(1, 11)])
    # 10 trusts + NAT = 11 FL-port rules; 49 others: exactly 60 now.
    full = with_allowlist(observed_matching(m), other_rules=49, rule_quota=60)
    assert [v for v in plan(m, full).violations if v.guard == "FG012"] == []
    moved = with_rule_ip(full, m, "Trust_3", "198.51.100.77")  # live rule on the old IP
    msgs = [v.message for v in plan(m, moved).violations if v.guard == "FG012"]
    assert msgs and "61 inbound rules" in msgs[0]


def test_ipv6_rules_on_the_fl_port_do_not_count_against_the_ipv4_quota() -> None:
    o = onboarding_last(20, other_rules=39, quota=60)
    m = manifest([trust(f"Trust_{i}") for i in range(1, 21)])
    v6 = IngressRule(cidr="2001:db8::/64", from_port=8002, to_port=8002,
                     description="an IPv6 peer")
    assert fg012(add_rule(o, v6), 20) == []
    wide = IngressRule(cidr="198.51.100.0/24", from_port=0, to_port=65535,
                       description="a wide IPv4 rule covering the FL port")
    assert fg012(add_rule(o, wide), 20), "an IPv4 rule covering the port is a rule too"
    assert m.hub.fl_server.rule_quota == 60
