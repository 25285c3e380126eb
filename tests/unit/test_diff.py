"""core/diff: identity-keyed Change records from desired vs observed."""

from __future__ import annotations

from flipgitops.core.diff import diff, host_gaps, views
from flipgitops.model.plan import Change
from tests.builders import (
    add_rule,
    manifest,
    not_onboarded,
    observed_matching,
    registered_as,
    rule_for,
    trust,
    unreachable,
    with_database,
    with_host,
    with_host_tags,
    with_hub_tags,
    with_rule_ip,
    with_secret,
    with_service,
    with_unmanaged_trust,
)


def paths(changes: tuple[Change, ...]) -> list[str]:
    return [c.path for c in changes]


def test_in_sync_is_empty() -> None:
    m = manifest(3)
    assert diff(m, observed_matching(m)) == ()


def test_views_have_the_same_shape_when_in_sync() -> None:
    m = manifest([trust("Trust_1"), trust("Trust_2", kind="tre"),
                  trust("Trust_3", state="paused")])
    want, have = views(m, observed_matching(m))
    assert want == have
    assert set(want["trusts"]) == {"Trust_1", "Trust_2", "Trust_3"}
    assert "host" in want["trusts"]["Trust_1"]
    assert "host" not in want["trusts"]["Trust_2"]  # tre: hub-side only
    assert "host" not in want["trusts"]["Trust_3"]  # paused: host left alone


def test_ip_change_is_one_change_keyed_by_trust_name() -> None:
    m = manifest(3)
    o = with_rule_ip(observed_matching(m), "Trust_2", "203.0.113.20")
    m2 = manifest([trust("Trust_1"), trust("Trust_2", ip="203.0.113.21"), trust("Trust_3")])
    o2 = with_rule_ip(observed_matching(m2), "Trust_2", "203.0.113.20")
    assert diff(m2, o2) == (
        Change(op="change", path="trusts.Trust_2.public_ip", before="203.0.113.20",
               after="203.0.113.21"),
    )
    assert paths(diff(m, o)) == ["trusts.Trust_2.public_ip"]


def test_hub_image_and_database_protection() -> None:
    m = manifest(1, hub_tag="v2.4.0")
    o = with_database(with_hub_tags(observed_matching(m), hub_tag="v2.3.0"),
                      deletion_protection=False)
    assert diff(m, o) == (
        Change(op="change", path="hub.database.deletion_protection", before=False, after=True),
        Change(op="change", path="hub.images.flip_api", before="v2.3.0", after="v2.4.0"),
    )


def test_new_trust_is_an_add_and_unmanaged_is_a_remove() -> None:
    m = manifest(2)
    o = with_unmanaged_trust(not_onboarded(observed_matching(m), "Trust_2"), "Old",
                             "198.51.100.5")
    changes = {c.path: c for c in diff(m, o)}
    assert set(changes) == {"trusts.Trust_2", "trusts.Old"}
    assert changes["trusts.Trust_2"].op == "add"
    assert changes["trusts.Trust_2"].after["public_ip"] == "203.0.113.12"
    assert changes["trusts.Old"].op == "remove"
    assert changes["trusts.Old"].before == {
        "public_ip": "198.51.100.5", "registered": True, "credentials_generation": 1,
        "rotation_pending": False,
    }


def test_decommissioned_trust_still_live_is_a_remove() -> None:
    live = manifest(2)
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned")])
    changes = diff(m, observed_matching(live))
    assert [(c.op, c.path) for c in changes] == [("remove", "trusts.Trust_2")]
    assert changes[0].before["host"] == {"stack_running": True}


def test_decommissioned_and_gone_is_in_sync() -> None:
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned")])
    assert diff(m, observed_matching(m)) == ()


def test_rotation_shows_generation() -> None:
    m = manifest([trust("Trust_1", generation=2)])
    o = observed_matching(manifest(1))
    changes = {c.path: c for c in diff(m, o)}
    assert changes["trusts.Trust_1.credentials_generation"].before == 1
    assert changes["trusts.Trust_1.credentials_generation"].after == 2
    # The host still holds the generation-1 key, which the hub's hash matches: no key drift.
    assert "trusts.Trust_1.host.key_matches_hub" not in changes


def test_host_key_mismatch_never_shows_hashes() -> None:
    m = manifest(1)
    o = with_host(observed_matching(m), "Trust_1", trust_api_key_sha256="ab" * 32)
    changes = diff(m, o)
    assert paths(changes) == ["trusts.Trust_1.host.key_matches_hub"]
    assert "abab" not in repr(changes)


def test_rotation_in_flight_is_visible() -> None:
    m = manifest([trust("Trust_1", generation=2)])
    o = registered_as(observed_matching(m), "Trust_1", 2, previous_generation=1)
    assert paths(diff(m, o)) == ["trusts.Trust_1.rotation_pending"]


def test_unreachable_host_compares_reachability_only() -> None:
    m = manifest(2)
    assert diff(m, unreachable(observed_matching(m), "Trust_2")) == (
        Change(op="change", path="trusts.Trust_2.host.reachable", before=False, after=True),
    )
    assert host_gaps(m, unreachable(observed_matching(m), "Trust_2"), m.trusts[1]) is None


def test_host_tags_and_stack() -> None:
    m = manifest(1, fl_tag="v2.4.0")
    o = with_hub_tags(observed_matching(m), fl_tag="v2.4.0")
    o = with_host_tags(o, "Trust_1", fl_tag="v2.3.0")
    assert paths(diff(m, o)) == ["trusts.Trust_1.host.docker_fl_tag",
                                 "trusts.Trust_1.host.fl_client_tag"]
    assert host_gaps(m, o, m.trusts[0]) == frozenset({"docker_fl_tag", "fl_client_tag"})


def test_missing_hub_resources_compare_existence_only() -> None:
    m = manifest(1)
    o = with_database(observed_matching(m), exists=False, deletion_protection=None,
                      generation=None, instance_class=None)
    o = with_service(o, "fl_server", exists=False, tag=None)
    assert diff(m, o) == (
        Change(op="change", path="hub.database.exists", before=False, after=True),
        Change(op="change", path="hub.images.fl_server", before=None, after="v2.3.0"),
    )


def test_missing_secret_unregisters_everything_in_the_view() -> None:
    m = manifest(1)
    o = with_secret(observed_matching(m), exists=False)
    assert paths(diff(m, o)) == ["hub.secret.exists", "trusts.Trust_1.registered"]


def test_rule_adopted_by_cidr_and_orphan_rules_ignored() -> None:
    m = manifest(1)
    o = observed_matching(m)
    hand = rule_for(m, "x", "203.0.113.11", description=None)
    o = with_rule_ip(o, "Trust_1", "203.0.113.11")
    o = add_rule(o.model_copy(update={"hub": o.hub.model_copy(update={
        "allowlist": o.hub.allowlist.model_copy(update={"rules": ()})})}), hand)
    o = add_rule(o, rule_for(m, "x", "198.51.100.77", description="hand-made"))
    # A rule written by hand for the trust's IP counts as its rule; other CIDRs are not trusts.
    assert diff(m, o) == ()


def test_diff_is_sorted_and_deterministic() -> None:
    m = manifest(3, hub_tag="v2.4.0", fl_tag="v2.4.0")
    o = not_onboarded(with_rule_ip(observed_matching(manifest(3)), "Trust_1", "198.51.100.9"),
                      "Trust_3")
    first = diff(m, o)
    assert paths(first) == sorted(paths(first))
    assert first == diff(m, o)
