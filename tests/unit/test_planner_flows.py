"""core/planner + core/ordering: every DESIGN §5 flow, as exact action ids, waves and edges."""

from __future__ import annotations

import pytest

from flipgitops.core.diff import attribute_rules, terraform_owner_record
from flipgitops.core.fingerprint import fingerprint
from flipgitops.core.ordering import DependencyCycleError, UnknownDependencyError, waves
from flipgitops.core.planner import plan
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import IngressRule, ObservedState
from flipgitops.model.plan import Action, Plan, PlanOptions
from tests.builders import (
    add_rule,
    fresh_host,
    manifest,
    not_onboarded,
    observed_matching,
    registered_as,
    rule_for,
    trust,
    unreachable,
    with_allowlist,
    with_database,
    with_host,
    with_host_tags,
    with_hub_tags,
    with_rule_ip,
    with_secret,
    with_service,
    with_stack_stopped,
    with_unmanaged_trust,
    without_host,
)

HOST_STEPS = ("host.provision", "host.deliver", "host.start_stack", "host.verify_polling")


def ids(p: Plan) -> list[str]:
    return [a.id for a in p.actions]


def deps(p: Plan, action_id: str) -> tuple[str, ...]:
    return p.action(action_id).depends_on


def per_host(step: str, *names: str) -> tuple[str, ...]:
    return tuple(f"{step}:{n}" for n in names)


def assert_ordered(p: Plan) -> None:
    seen: set[str] = set()
    for a in p.actions:
        assert set(a.depends_on) <= seen, f"{a.id} runs before {set(a.depends_on) - seen}"
        seen.add(a.id)
    assert [i for w in p.waves for i in w] == ids(p)


# --- in sync / level-based -----------------------------------------------------------------


def test_in_sync_plans_nothing() -> None:
    m = manifest(3)
    p = plan(m, observed_matching(m))
    assert p.is_empty and p.waves == () and p.changes == () and p.violations == ()
    assert not p.blocked
    assert p.fingerprint == fingerprint(m, observed_matching(m), {"prune": False})


# --- 1. adding trusts ----------------------------------------------------------------------


def test_add_one_trust_full_chain() -> None:
    m = manifest(2)
    p = plan(m, not_onboarded(observed_matching(m), "Trust_2"))
    assert p.waves == (
        ("credentials.escrow:Trust_2",),
        ("hub_secret.update",),
        ("hub.redeploy",),
        ("allowlist.update",),
        *((f"{step}:Trust_2",) for step in HOST_STEPS),
    )
    assert p.action("hub_secret.update").params == {
        "register": ["Trust_2"], "deregister": [], "drop_previous": []}
    assert p.action("allowlist.update").params == {
        "add": [{"trust": "Trust_2", "cidr": "203.0.113.12/32"}], "revoke": []}
    assert deps(p, "host.provision:Trust_2") == ("allowlist.update", "hub.redeploy")
    assert deps(p, "host.deliver:Trust_2") == ("host.provision:Trust_2",)
    assert p.action("host.deliver:Trust_2").params["generation"] == 1
    assert_ordered(p)


def test_onboarding_many_trusts_batches_the_hub_side() -> None:
    m = manifest(5)
    o = observed_matching(manifest(2))
    for name in ("Trust_3", "Trust_4", "Trust_5"):
        o = with_host(o, name, fresh_host(name))
    p = plan(m, o)
    new = ("Trust_3", "Trust_4", "Trust_5")
    assert p.waves == (
        per_host("credentials.escrow", *new),
        ("hub_secret.update",),
        ("hub.redeploy",),
        ("allowlist.update",),
        *(per_host(step, *new) for step in HOST_STEPS),
    )
    kinds = [a.kind for a in p.actions]
    assert kinds.count("hub_secret.update") == 1
    assert kinds.count("hub.redeploy") == 1
    assert kinds.count("allowlist.update") == 1
    assert p.action("hub_secret.update").params["register"] == list(new)
    assert [r["trust"] for r in p.action("allowlist.update").params["add"]] == list(new)


def test_rerun_after_crash_between_secret_and_rule_plans_only_the_rest() -> None:
    m = manifest(2)
    o = not_onboarded(observed_matching(m), "Trust_2")
    o = registered_as(o, "Trust_2")  # secret written (and hub redeployed) before the crash
    p = plan(m, o)
    assert p.waves == (("allowlist.update",), *((f"{s}:Trust_2",) for s in HOST_STEPS))
    assert deps(p, "host.provision:Trust_2") == ("allowlist.update",)


def test_rerun_after_delivery_only_starts_and_verifies() -> None:
    m = manifest(2)
    o = with_stack_stopped(observed_matching(m), "Trust_2")
    p = plan(m, o)
    assert p.waves == (("host.start_stack:Trust_2",), ("host.verify_polling:Trust_2",))


def test_missing_kit_gets_redelivered_only() -> None:
    m = manifest(1)
    p = plan(m, with_host(observed_matching(m), "Trust_1", kit_present=False))
    assert ids(p) == ["host.deliver:Trust_1"]


def test_env_file_mode_drift_is_redelivered() -> None:
    m = manifest(1)
    p = plan(m, with_host(observed_matching(m), "Trust_1", env_file_mode="0644"))
    assert ids(p) == ["host.deliver:Trust_1"]


def test_polling_failure_is_verified_again() -> None:
    m = manifest(1)
    p = plan(m, with_host(observed_matching(m), "Trust_1", polling_ok=False))
    assert ids(p) == ["host.verify_polling:Trust_1"]


# --- 2. IP change --------------------------------------------------------------------------


def test_ip_change_replaces_the_rule_only() -> None:
    m = manifest(3)
    p = plan(m, with_rule_ip(observed_matching(m), "Trust_2", "203.0.113.99"))
    assert ids(p) == ["allowlist.update"]
    assert p.action("allowlist.update").params == {
        "add": [{"trust": "Trust_2", "cidr": "203.0.113.12/32"}],
        "revoke": [{"trust": "Trust_2", "cidr": "203.0.113.99/32"}],
    }
    assert p.action("allowlist.update").depends_on == ()


def test_hand_written_rule_for_the_trust_ip_is_adopted() -> None:
    m = manifest(1)
    o = with_allowlist(observed_matching(m), rules=(
        rule_for(m, "x", "203.0.113.11", description=None),))
    assert plan(m, o).is_empty


# --- 3. decommission / unmanaged -----------------------------------------------------------


def test_decommission_chain() -> None:
    live = manifest(2)
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned")])
    p = plan(m, observed_matching(live))
    assert p.waves == (("host.stop_stack:Trust_2",), ("allowlist.update",),
                       ("hub_secret.update",), ("hub.redeploy",))
    assert p.action("allowlist.update").params == {
        "add": [], "revoke": [{"trust": "Trust_2", "cidr": "203.0.113.12/32"}]}
    assert p.action("hub_secret.update").params["deregister"] == ["Trust_2"]
    assert not p.blocked


def test_decommission_with_unreachable_host_still_revokes_access() -> None:
    live = manifest(2)
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned")])
    p = plan(m, unreachable(observed_matching(live), "Trust_2"))
    assert p.waves == (("allowlist.update",), ("hub_secret.update",), ("hub.redeploy",))
    assert p.unknown == ("Trust_2",)


def test_decommission_with_stack_already_stopped_skips_the_stop() -> None:
    live = manifest(2)
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned")])
    p = plan(m, with_stack_stopped(observed_matching(live), "Trust_2"))
    assert p.waves == (("allowlist.update",), ("hub_secret.update",), ("hub.redeploy",))


def test_unmanaged_is_listed_and_left_alone_without_prune() -> None:
    m = manifest(1)
    o = with_unmanaged_trust(observed_matching(m), "Old", "198.51.100.5")
    o = add_rule(o, rule_for(m, "x", "198.51.100.77", description="by hand"))
    p = plan(m, o)
    assert p.is_empty
    assert p.unmanaged == ("Old", "ingress:198.51.100.77/32")


def test_prune_removes_unmanaged_trusts() -> None:
    m = manifest(1)
    o = with_unmanaged_trust(observed_matching(m), "Old", "198.51.100.5")
    p = plan(m, o, PlanOptions(prune=True))
    assert p.waves == (("allowlist.update",), ("hub_secret.update",), ("hub.redeploy",))
    assert p.action("allowlist.update").params["revoke"] == [
        {"trust": "Old", "cidr": "198.51.100.5/32"}]
    assert p.action("hub_secret.update").params["deregister"] == ["Old"]
    assert p.unmanaged == ("Old",)
    assert p.fingerprint != plan(m, o).fingerprint


def test_add_and_decommission_in_one_plan_split_the_allowlist() -> None:
    live = manifest(2)
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned"), trust("Trust_3")])
    o = with_host(observed_matching(live), "Trust_3", fresh_host("Trust_3"))
    p = plan(m, o)
    assert p.waves == (
        ("credentials.escrow:Trust_3", "host.stop_stack:Trust_2"),
        ("allowlist.revoke",),
        ("hub_secret.update",),
        ("hub.redeploy",),
        ("allowlist.update",),
        *((f"{s}:Trust_3",) for s in HOST_STEPS),
    )
    assert p.action("allowlist.revoke").kind == "allowlist.update"
    assert p.action("allowlist.revoke").params["revoke"] == [
        {"trust": "Trust_2", "cidr": "203.0.113.12/32"}]
    assert p.action("allowlist.update").params["revoke"] == []
    assert p.action("hub_secret.update").params == {
        "register": ["Trust_3"], "deregister": ["Trust_2"], "drop_previous": []}


# --- 4. lockstep image upgrade -------------------------------------------------------------


def test_lockstep_upgrade() -> None:
    live = manifest([trust("Trust_1"), trust("Trust_2", state="paused"), trust("Trust_3")])
    m = manifest(list(live.trusts), hub_tag="v2.4.0", fl_tag="v2.4.0")
    p = plan(m, observed_matching(live), PlanOptions(fl_quiesced=True))
    hub = ("hub.deploy_image:fl_api", "hub.deploy_image:fl_server",
           "hub.deploy_image:flip_api")
    assert p.waves == (
        (*per_host("host.deliver", "Trust_1", "Trust_3"), *hub),
        per_host("host.start_stack", "Trust_1", "Trust_3"),
        per_host("host.verify_polling", "Trust_1", "Trust_3"),
    )
    assert set(hub) <= set(deps(p, "host.start_stack:Trust_1"))
    assert p.action("hub.deploy_image:fl_server").params == {"tag": "v2.4.0", "from": "v2.3.0"}
    assert p.action("host.start_stack:Trust_3").params == {
        "docker_tag": "v2.4.0", "docker_fl_tag": "v2.4.0"}
    assert p.left_behind == ("Trust_2",)
    assert not p.blocked  # FG007 allowed by --fl-quiesced; tags move together
    assert {v.guard for v in p.violations} == {"FG007"}


def test_rerun_mid_upgrade_only_finishes_the_trusts() -> None:
    live = manifest(2)
    m = manifest(2, hub_tag="v2.4.0", fl_tag="v2.4.0")
    o = with_hub_tags(observed_matching(live), hub_tag="v2.4.0", fl_tag="v2.4.0")
    o = with_host_tags(o, "Trust_1", hub_tag="v2.4.0", fl_tag="v2.4.0")
    p = plan(m, o)
    assert p.waves == (("host.deliver:Trust_2",), ("host.start_stack:Trust_2",),
                       ("host.verify_polling:Trust_2",))


def test_missing_hub_service_is_a_note_not_an_action() -> None:
    m = manifest(1, hub_tag="v2.4.0")
    o = with_host_tags(observed_matching(manifest(1)), "Trust_1", hub_tag="v2.4.0")
    o = with_service(o, "flip_api", exists=False, tag=None)
    p = plan(m, o)
    assert p.is_empty
    assert any("flip-api (flip_api) not found" in n for n in p.notes)


# --- 5. credential rotation ----------------------------------------------------------------


def test_rotation_chain() -> None:
    live = manifest(2)
    m = manifest([trust("Trust_1", generation=2), trust("Trust_2")])
    p = plan(m, observed_matching(live))
    assert p.waves == (
        ("credentials.escrow:Trust_1",),
        ("hub_secret.update",),
        ("hub.redeploy",),
        ("host.deliver:Trust_1",),
        ("host.restart_trust_api:Trust_1",),
        ("host.verify_polling:Trust_1",),
        ("hub_secret.finalize",),
        ("hub.redeploy:finalize",),
    )
    assert p.action("credentials.escrow:Trust_1").params == {
        "generation": 2, "database_generation": 1,
    }
    assert p.action("hub_secret.update").params["register"] == ["Trust_1"]
    finalize = p.action("hub_secret.finalize")
    assert finalize.kind == "hub_secret.update"
    assert finalize.params == {"register": [], "deregister": [], "drop_previous": ["Trust_1"]}
    assert p.action("hub.redeploy:finalize").kind == "hub.redeploy"


def test_rotation_rerun_after_crash_redelivers_and_finalizes() -> None:
    m = manifest([trust("Trust_1", generation=2)])
    o = registered_as(observed_matching(manifest(1)), "Trust_1", 2, previous_generation=1)
    p = plan(m, o)
    # The host still has the old key; the hub may not have reloaded the secret yet.
    assert p.waves == (("hub.redeploy",), ("host.deliver:Trust_1",),
                       ("host.restart_trust_api:Trust_1",), ("host.verify_polling:Trust_1",),
                       ("hub_secret.finalize",), ("hub.redeploy:finalize",))


def test_rotation_rerun_after_delivery_restarts_then_finalizes() -> None:
    m = manifest([trust("Trust_1", generation=2)])
    o = registered_as(observed_matching(m), "Trust_1", 2, previous_generation=1)
    p = plan(m, o)
    assert p.waves == (("hub.redeploy",), ("host.restart_trust_api:Trust_1",),
                       ("host.verify_polling:Trust_1",), ("hub_secret.finalize",),
                       ("hub.redeploy:finalize",))


def test_host_key_mismatch_same_generation_is_redelivered() -> None:
    m = manifest(1)
    p = plan(m, with_host(observed_matching(m), "Trust_1", trust_api_key_sha256="0" * 64))
    assert p.waves == (("host.deliver:Trust_1",), ("host.restart_trust_api:Trust_1",),
                       ("host.verify_polling:Trust_1",))


def test_registered_without_generation_is_adopted_by_rotation() -> None:
    m = manifest(1)
    o = with_secret(observed_matching(m), credentials_generations={})
    p = plan(m, o)
    assert "credentials.escrow:Trust_1" in ids(p)
    assert "hub_secret.finalize" in ids(p)


def test_generation_below_live_is_a_note() -> None:
    m = manifest(1)
    o = registered_as(observed_matching(m), "Trust_1", 3)
    o = with_host(o, "Trust_1", trust_api_key_sha256=o.hub.secret.trust_api_key_hashes["Trust_1"])
    p = plan(m, o)
    assert p.is_empty
    assert any("credentials_generation 1 is below the hub's 3" in n for n in p.notes)


# --- 6. database recreation ----------------------------------------------------------------


def test_database_recreation() -> None:
    live = manifest([trust("Trust_1"), trust("Trust_2", kind="tre")])
    m = manifest(list(live.trusts), db_generation=2)
    p = plan(m, observed_matching(live))
    assert p.waves == (
        ("credentials.escrow:Trust_1", "credentials.escrow:Trust_2", "database.snapshot"),
        ("database.reset_schema",),
        ("hub_secret.update",),
        ("hub.redeploy",),
        ("host.deliver:Trust_1",),
        ("host.restart_trust_api:Trust_1",),
        ("host.verify_polling:Trust_1",),
        ("hub_secret.finalize",),
        ("hub.redeploy:finalize",),
    )
    assert [a.id for a in p.actions if a.destructive] == ["database.reset_schema"]
    assert p.action("database.snapshot").params == {"generation": 2}
    assert [v.guard for v in p.violations] == ["FG003"]
    assert p.blocked
    allowed = plan(m, observed_matching(live), PlanOptions(allow=frozenset({"FG003"})))
    assert not allowed.blocked and allowed.actions == p.actions


# --- 7. protection drift -------------------------------------------------------------------


def test_protection_drift_is_restored_always() -> None:
    m = manifest(1, environment="prod")
    p = plan(m, with_database(observed_matching(m), deletion_protection=False))
    assert ids(p) == ["database.restore_protection"]
    assert not any(a.destructive for a in p.actions)
    assert p.violations == ()


# --- hosts: unknown / tre / paused ---------------------------------------------------------


def test_unreachable_host_gets_no_actions_and_is_unknown() -> None:
    m = manifest(2)
    o = with_host_tags(observed_matching(m), "Trust_1", fl_tag="v2.2.0")
    p = plan(m, unreachable(o, "Trust_2"))
    assert all(not a.id.endswith("Trust_2") for a in p.actions)
    assert p.unknown == ("Trust_2",)
    assert plan(m, without_host(observed_matching(m), "Trust_2")).unknown == ("Trust_2",)


def test_unreachable_new_trust_gets_hub_side_only() -> None:
    m = manifest(2)
    p = plan(m, not_onboarded(observed_matching(m), "Trust_2", host_reachable=False))
    assert ids(p) == ["credentials.escrow:Trust_2", "hub_secret.update", "hub.redeploy",
                      "allowlist.update"]
    assert p.unknown == ("Trust_2",)


def test_tre_trust_is_hub_side_only() -> None:
    m = manifest([trust("Trust_1"), trust("Trust_2", kind="tre")])
    p = plan(m, not_onboarded(observed_matching(m), "Trust_2"))
    assert ids(p) == ["credentials.escrow:Trust_2", "hub_secret.update", "hub.redeploy",
                      "allowlist.update"]


def test_tre_rotation_leaves_a_note() -> None:
    live = manifest([trust("Trust_1", kind="tre")])
    m = manifest([trust("Trust_1", kind="tre", generation=2)])
    p = plan(m, observed_matching(live))
    assert ids(p) == ["credentials.escrow:Trust_1", "hub_secret.update", "hub.redeploy"]
    assert any("Trust_1 (tre)" in n for n in p.notes)


def test_paused_trust_stays_registered_without_host_changes() -> None:
    m = manifest([trust("Trust_1", state="paused")])
    o = with_stack_stopped(observed_matching(m), "Trust_1")
    o = with_host(o, "Trust_1", kit_present=False)
    assert plan(m, o).is_empty
    p = plan(m, not_onboarded(o, "Trust_1"))
    assert ids(p) == ["credentials.escrow:Trust_1", "hub_secret.update", "hub.redeploy",
                      "allowlist.update"]


# --- missing hub resources -----------------------------------------------------------------


def test_missing_hub_resources_are_notes_never_creations() -> None:
    m = manifest(2)
    o = not_onboarded(observed_matching(m), "Trust_2")
    o = with_secret(o, exists=False)
    o = with_allowlist(o, exists=False, rules=())
    o = with_database(o, exists=False)
    p = plan(m, o)
    assert p.is_empty
    text = " ".join(p.notes)
    assert "hub secret FLIP_API not found" in text
    assert "security group flip-fl-server-nlb not found" in text
    assert "database flip-database not found" in text


def test_database_settings_owned_by_terraform_are_notes() -> None:
    m = manifest(1)
    o = with_database(observed_matching(m), instance_class="db.t3.large")
    p = plan(m, o)
    assert p.is_empty
    assert any("instance_class is db.t3.large" in n for n in p.notes)


# --- terraform allowlist mode --------------------------------------------------------------


def test_terraform_allowlist_mode() -> None:
    m = manifest(2, allowlist="terraform")
    p = plan(m, not_onboarded(observed_matching(m), "Trust_2", ip="203.0.113.12"))
    assert p.waves[:4] == (("credentials.escrow:Trust_2",), ("hub_secret.update",),
                           ("hub.redeploy",), ("terraform.apply",))
    assert p.action("terraform.apply").params == {
        "local_trust_public_ips": ["203.0.113.11", "203.0.113.12"],
        "docker_image_tag": "v2.3.0",
        "flip_fl_image_tag": "v2.3.0",
        "environment": "dev",
    }
    assert "allowlist.update" not in ids(p)
    assert plan(m, observed_matching(m)).is_empty


def test_terraform_mode_keeps_unmanaged_trust_rules_unless_pruned() -> None:
    m = manifest(2, allowlist="terraform")
    extra = rule_for(m, "x", "198.51.100.5",
                     description="FL Server/Admin NLB from on-prem Trust (198.51.100.5)")
    o = not_onboarded(add_rule(observed_matching(m), extra), "Trust_2", ip="203.0.113.12")
    p = plan(m, o)
    assert p.action("terraform.apply").params["local_trust_public_ips"] == [
        "198.51.100.5", "203.0.113.11", "203.0.113.12"]
    pruned = plan(m, o, PlanOptions(prune=True))
    assert pruned.action("terraform.apply").params["local_trust_public_ips"] == [
        "203.0.113.11", "203.0.113.12"]


def _tf_rule(m: Manifest, ip: str) -> IngressRule:
    return rule_for(m, "x", ip, description=f"FL Server/Admin NLB from on-prem Trust ({ip})")


def test_terraform_mode_moves_a_trust_by_its_recorded_rule() -> None:
    """Terraform's rules name only an IP: the allowlist record says the old one was Trust_2's,
    so a manifest IP change replaces the rule instead of leaving the old IP open."""
    live = manifest(2, allowlist="terraform")
    m = manifest([trust("Trust_1"), trust("Trust_2", ip="203.0.113.99")], allowlist="terraform")
    o = observed_matching(live)
    assert o.hub.allowlist.recorded_owners["203.0.113.12/32"] == "Trust_2"
    p = plan(m, o)
    assert ids(p) == ["terraform.apply"]
    assert p.action("terraform.apply").params["local_trust_public_ips"] == [
        "203.0.113.11", "203.0.113.99"]
    # Without a record (an allowlist adopted before any converged apply) nobody can say whose
    # the old rule is: it stays, and --prune removes it.
    unrecorded = with_allowlist(o, recorded_owners={})
    assert plan(m, unrecorded).action("terraform.apply").params["local_trust_public_ips"] == [
        "203.0.113.11", "203.0.113.12", "203.0.113.99"]
    assert plan(m, unrecorded, PlanOptions(prune=True)).action(
        "terraform.apply").params["local_trust_public_ips"] == ["203.0.113.11", "203.0.113.99"]


def test_terraform_mode_a_stale_record_never_outranks_the_manifest() -> None:
    m = manifest(2, allowlist="terraform")
    stale = with_allowlist(observed_matching(m), recorded_owners={
        "203.0.113.11/32": "Trust_2", "203.0.113.12/32": "Trust_1"})
    assert plan(m, stale).is_empty
    assert attribute_rules(m, stale).cidrs("Trust_1") == ("203.0.113.11/32",)


def test_terraform_mode_recorded_rules_of_removed_trusts_are_unmanaged() -> None:
    """A trust deleted from the manifest (not decommissioned): its recorded rule is reported
    as unmanaged and kept, as in aws-api mode, until --prune."""
    m = manifest(2, allowlist="terraform")
    o = observed_matching(m)
    o = add_rule(o, _tf_rule(m, "198.51.100.7"))
    o = with_allowlist(o, recorded_owners={**o.hub.allowlist.recorded_owners,
                                           "198.51.100.7/32": "Trust_9"})
    p = plan(m, o)
    assert p.is_empty and "Trust_9" in p.unmanaged
    pruned = plan(m, o, PlanOptions(prune=True))
    assert pruned.action("terraform.apply").params["local_trust_public_ips"] == [
        "203.0.113.11", "203.0.113.12"]


def test_terraform_mode_upgrade_brings_terraforms_image_tags_along() -> None:
    """After the ECS deploys, Terraform renders the new tags too, so its next allowlist run
    does not roll FL; same IP list, nothing else for it to do."""
    live = manifest(2, allowlist="terraform")
    m = manifest(2, allowlist="terraform", hub_tag="v2.4.0", fl_tag="v2.4.0")
    p = plan(m, observed_matching(live), PlanOptions(fl_quiesced=True))
    tf = p.action("terraform.apply")
    assert set(deps(p, "terraform.apply")) == {
        "hub.deploy_image:flip_api", "hub.deploy_image:fl_api", "hub.deploy_image:fl_server"}
    assert tf.params == {"local_trust_public_ips": ["203.0.113.11", "203.0.113.12"],
                         "docker_image_tag": "v2.4.0", "flip_fl_image_tag": "v2.4.0",
                         "environment": "dev"}
    assert "image tags v2.4.0/v2.4.0" in tf.description
    assert_ordered(p)
    assert "terraform.apply" not in ids(plan(m, observed_matching(m)))


def test_terraform_owner_record_follows_the_manifest() -> None:
    m = manifest([trust("Trust_1"), trust("Trust_2", ip="203.0.113.99"),
                  trust("Trust_3", state="decommissioned")], allowlist="terraform")
    previous = {"203.0.113.11/32": "Trust_1", "203.0.113.12/32": "Trust_2",
                "203.0.113.13/32": "Trust_3", "198.51.100.7/32": "Trust_9"}
    assert terraform_owner_record(m, previous) == {
        "198.51.100.7/32": "Trust_9", "203.0.113.11/32": "Trust_1",
        "203.0.113.99/32": "Trust_2"}


# --- blocked plans, determinism ------------------------------------------------------------


def test_blocked_plan_still_lists_its_actions() -> None:
    m = manifest(2, fl_tag="v2.4.0")
    p = plan(m, observed_matching(manifest(2)))
    assert p.blocked
    assert {"hub.deploy_image:fl_api", "hub.deploy_image:fl_server"} <= set(ids(p))


def _busy_world() -> tuple[Manifest, ObservedState]:
    live = manifest(4)
    m = manifest([trust("Trust_1", generation=2), trust("Trust_2", state="decommissioned"),
                  trust("Trust_3"), trust("Trust_4"), trust("Trust_5")],
                 hub_tag="v2.4.0", fl_tag="v2.4.0")
    o = with_rule_ip(observed_matching(live), "Trust_3", "198.51.100.3")
    o = with_host(o, "Trust_5", fresh_host("Trust_5"))
    return m, o


def test_same_inputs_same_bytes_and_json_round_trip() -> None:
    m, o = _busy_world()
    first = plan(m, o).model_dump_json()
    assert first == plan(m, o).model_dump_json()
    back = Plan.model_validate_json(first)
    assert back.model_dump_json() == first
    assert_ordered(back)


# --- ordering ------------------------------------------------------------------------------


def _a(id_: str, *deps_: str) -> Action:
    return Action(id=id_, kind="host.deliver", target="t", depends_on=deps_)


def test_waves_sort_ids_inside_a_wave() -> None:
    acts = [_a("c"), _a("b"), _a("a", "c"), _a("d", "a", "b")]
    assert waves(acts) == (("b", "c"), ("a",), ("d",))


def test_cycle_is_named() -> None:
    with pytest.raises(DependencyCycleError) as err:
        waves([_a("x", "z"), _a("y", "x"), _a("z", "y"), _a("free")])
    assert set(err.value.cycle) == {"x", "y", "z"}
    assert "->" in str(err.value)
    assert isinstance(err.value, ValueError)


def test_unknown_dependency_and_duplicates_are_errors() -> None:
    with pytest.raises(UnknownDependencyError, match="missing"):
        waves([_a("x", "missing")])
    with pytest.raises(ValueError, match="duplicate"):
        waves([_a("x"), _a("x")])


def test_plan_json_never_holds_key_hashes() -> None:
    m, o = _busy_world()
    o = with_host(o, "Trust_4", trust_api_key_sha256="f" * 64)
    o = registered_as(o, "Trust_3", 1, previous_generation=7)
    text = plan(m, o, PlanOptions(prune=True)).model_dump_json()
    hashes = [*o.hub.secret.trust_api_key_hashes.values(),
              *o.hub.secret.previous_key_hashes.values(), o.hub.secret.aes_key_sha256 or "",
              *(h.trust_api_key_sha256 or "" for h in o.hosts.values())]
    assert all(h[:12] not in text for h in hashes if h)


def test_terraform_mode_add_and_decommission_split_the_apply() -> None:
    live = manifest(2, allowlist="terraform")
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned"), trust("Trust_3")],
                 allowlist="terraform")
    o = with_host(observed_matching(live), "Trust_3", fresh_host("Trust_3"))
    p = plan(m, o)
    assert p.waves[:5] == (
        ("credentials.escrow:Trust_3", "host.stop_stack:Trust_2"),
        ("terraform.apply:revoke",),
        ("hub_secret.update",),
        ("hub.redeploy",),
        ("terraform.apply",),
    )
    assert p.action("terraform.apply:revoke").params["local_trust_public_ips"] == [
        "203.0.113.11"]
    assert p.action("terraform.apply").params["local_trust_public_ips"] == [
        "203.0.113.11", "203.0.113.13"]
