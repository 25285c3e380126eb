"""Upgrades, FL kits, the database, the internal key, the allowlist quota, and drift worlds
where plan and drift must agree (pure planner tests)."""

from __future__ import annotations

import json
from pathlib import Path

from flipgitops.core.drift import drift_report
from flipgitops.core.planner import plan
from flipgitops.model.actions import (
    ActionKind,
    DeliverFlKitParams,
    DeployImagesParams,
)
from flipgitops.model.plan import Plan, PlanOptions
from tests.builders import (
    add_rule,
    manifest,
    not_onboarded,
    observed_matching,
    rule_for,
    trust,
    unreachable,
    with_allowlist,
    with_container,
    with_database,
    with_host,
    with_hub_tags,
    with_kit_value,
    with_secret,
)
from tests.unit.core.test_registry_flows import before, deps_closure, ids

K = ActionKind
TFPLANS = Path(__file__).resolve().parents[2] / "fixtures" / "tfplans"


def both(m, o) -> tuple[Plan, list[str]]:  # type: ignore[no-untyped-def]
    p = plan(m, o)
    d = drift_report(m, o)
    return p, [f.message for f in d.findings]


# --- upgrades ----------------------------------------------------------------------------


def test_lockstep_upgrade_moves_the_hub_then_every_active_trust() -> None:
    m0 = manifest(2)
    m = manifest(2, hub_tag="v2.4.0", fl_tag="v2.4.0", flip_ref="v2.4.0")
    p = plan(m, observed_matching(m0))
    deploy = p.action("hub.deploy_images").typed(DeployImagesParams)
    assert {r: c.tag for r, c in deploy.images.items()} == {
        "flip_api": "v2.4.0", "fl_api": "v2.4.0", "fl_server": "v2.4.0"}
    for name in ("Trust_1", "Trust_2"):
        assert "hub.deploy_images" in deps_closure(p, f"host.start_stack:{name}")
        assert f"host.deploy_release:{name}" in ids(p)
        assert f"host.write_kit_file:{name}" in ids(p)
    fg007 = {v.target for v in p.violations if v.guard == "FG007"}
    assert fg007 == {"hub.deploy_images:fl_api", "hub.deploy_images:fl_server"}
    assert not plan(m, observed_matching(m0), PlanOptions(fl_quiesced=True)).blocked


def test_fg001_blocks_the_hub_tag_moving_without_the_fl_tag() -> None:
    m = manifest(1, hub_tag="v2.4.0")
    p = plan(m, observed_matching(manifest(1)))
    assert any(v.guard == "FG001" and v.target == "hub.images" for v in p.violations)


def test_an_unreachable_active_trust_blocks_an_fl_upgrade_and_paused_ones_are_left_behind(
) -> None:
    m0 = manifest([trust("Trust_1"), trust("Trust_2"), trust("Trust_3", state="paused")])
    m = manifest([trust("Trust_1"), trust("Trust_2"), trust("Trust_3", state="paused")],
                 hub_tag="v2.4.0", fl_tag="v2.4.0")
    o = unreachable(observed_matching(m0), "Trust_2")
    p = plan(m, o, PlanOptions(fl_quiesced=True))
    assert any(v.guard == "FG001" and v.target == "Trust_2" for v in p.violations)
    assert p.left_behind == ("Trust_3",)


# --- FL kits -------------------------------------------------------------------------------


def test_a_kit_date_change_redelivers_to_every_active_trust() -> None:
    m0 = manifest(2)
    m = manifest(2, kit_date="2025-09-01")
    o = observed_matching(m0)
    o = o.model_copy(update={"hub": o.hub.model_copy(update={
        "kits": observed_matching(m).hub.kits})})
    p = plan(m, o)
    for name in ("Trust_1", "Trust_2"):
        kit = p.action(f"host.deliver_fl_kit:{name}").typed(DeliverFlKitParams)
        assert kit.date == "2025-09-01" and kit.source_fingerprint
        assert before(p, f"host.deliver_fl_kit:{name}", f"host.start_stack:{name}")
    assert not any(v.guard == "FG010" for v in p.violations)


def test_the_fl_kit_is_delivered_before_the_kit_file_names_its_date() -> None:
    """A kit the controller refuses (another slot's fed_client.json) fails the delivery
    before its host is touched; the kit file, which names the kit date, must wait for it,
    so a refused kit leaves the host as it was."""
    m0 = manifest(2)
    m = manifest(2, kit_date="2025-09-01")
    o = observed_matching(m0)
    o = o.model_copy(update={"hub": o.hub.model_copy(update={
        "kits": observed_matching(m).hub.kits})})
    p = plan(m, o)
    for name in ("Trust_1", "Trust_2"):
        assert f"host.deliver_fl_kit:{name}" in p.action(f"host.write_kit_file:{name}").depends_on
        assert before(p, f"host.write_kit_file:{name}", f"host.start_stack:{name}")
    # Onboarding keeps the same order.
    fresh = plan(m, not_onboarded(observed_matching(m), m, "Trust_2"))
    assert before(fresh, "host.deliver_fl_kit:Trust_2", "host.write_kit_file:Trust_2")


def test_a_tre_is_told_to_take_its_new_kit_when_the_kit_set_moves() -> None:
    trusts = [trust("Trust_1"), trust("Trust_2", kind="tre")]
    m0 = manifest(trusts)
    m = manifest(trusts, kit_date="2025-09-01")
    o = observed_matching(m0)
    o = o.model_copy(update={"hub": o.hub.model_copy(update={
        "kits": observed_matching(m).hub.kits})})
    notes = plan(m, o).notes
    assert any("Trust_2 is a TRE: the FL kit set changes to 2025-09-01" in n
               and "flipgitops kit --env" in n and "--trust Trust_2" in n for n in notes), notes
    assert not [n for n in plan(m0, observed_matching(m0)).notes if "Trust_2" in n]


def test_fg010_blocks_a_kit_change_that_would_leave_an_unreachable_trust_behind() -> None:
    m0 = manifest(2)
    m = manifest(2, kit_date="2025-09-01")
    o = observed_matching(m0)
    o = o.model_copy(update={"hub": o.hub.model_copy(update={
        "kits": observed_matching(m).hub.kits})})
    p = plan(m, unreachable(o, "Trust_2"))
    fg010 = [v for v in p.violations if v.guard == "FG010"]
    assert [v.target for v in fg010] == ["Trust_2"] and p.blocked


def test_a_hand_edited_kit_file_on_the_host_is_drift_and_redelivered() -> None:
    m = manifest(1)
    o = observed_matching(m)
    kit = o.hosts["Trust_1"].fl_kit.model_copy(update={"content_sha256": "0" * 64})
    o = with_host(o, "Trust_1", fl_kit=kit)
    p, findings = both(m, o)
    assert "host.deliver_fl_kit:Trust_1" in ids(p)
    assert any("edited on the host" in f for f in findings)


def test_a_missing_kit_in_the_bucket_is_reported_not_delivered() -> None:
    m = manifest(1)
    o = observed_matching(m)
    kits = o.hub.kits.model_copy(update={"slices": {}})  # type: ignore[union-attr]
    o = o.model_copy(update={"hub": o.hub.model_copy(update={"kits": kits})})
    p = plan(m, o)
    assert not p.actions and any("no FL participant kit" in a for a in p.advisories)


# --- the four worlds where drift said "in sync" while plan had work (issue 12) ------------


def test_a_stale_docker_tag_in_the_kit_file() -> None:
    m = manifest(1)
    p, findings = both(m, with_kit_value(observed_matching(m), "Trust_1", "DOCKER_TAG",
                                         "v2.2.0"))
    assert "host.write_kit_file:Trust_1" in ids(p)
    assert any("DOCKER_TAG is v2.2.0" in f for f in findings)


def test_a_host_still_on_the_previous_key() -> None:
    m = manifest(1)
    o = observed_matching(m)
    kf = o.hosts["Trust_1"].kit_file
    o = with_host(o, "Trust_1", kit_file=kf.model_copy(update={"secret_sha256": {
        **kf.secret_sha256, "TRUST_API_KEY": "f" * 64}}))
    p, findings = both(m, o)
    assert "host.write_kit_file:Trust_1" in ids(p)
    assert any("TRUST_API_KEY" in f for f in findings)


def test_an_fl_client_named_fl_client_net_1_on_an_old_tag() -> None:
    m = manifest(1)
    p, findings = both(m, with_container(observed_matching(m), "Trust_1", "fl-client-net-1",
                                         tag="v2.2.0"))
    assert "host.start_stack:Trust_1" in ids(p)
    assert any("fl-client-net-1 is v2.2.0" in f for f in findings)


def test_a_host_pointing_at_another_hub() -> None:
    m = manifest(1)
    p, findings = both(m, with_kit_value(observed_matching(m), "Trust_1",
                                         "CENTRAL_HUB_API_URL", "https://other.example/api"))
    assert "host.write_kit_file:Trust_1" in ids(p)
    assert any("CENTRAL_HUB_API_URL is https://other.example/api" in f for f in findings)


def test_a_kit_file_with_mode_0644_is_rewritten() -> None:
    m = manifest(1)
    o = observed_matching(m)
    o = with_host(o, "Trust_1", kit_file=o.hosts["Trust_1"].kit_file.model_copy(
        update={"mode": "0644"}))
    p, findings = both(m, o)
    assert "host.write_kit_file:Trust_1" in ids(p)
    assert any("mode is 0644" in f for f in findings)


def test_a_host_egressing_from_another_ip_is_drift_with_the_fix() -> None:
    m = manifest(1)
    o = with_host(observed_matching(m), "Trust_1", egress_ip="198.51.100.7")
    report = drift_report(m, o)
    [f] = [f for f in report.findings if f.fact == "host.egress_ip"]
    assert f.message == "Trust_1 now egresses from 198.51.100.7; public_ip says 203.0.113.11"
    assert "set public_ip: 198.51.100.7" in f.fix
    assert not plan(m, o).in_sync


# --- fingerprint ---------------------------------------------------------------------------


def test_volatile_facts_do_not_change_the_fingerprint() -> None:
    m = manifest(2)
    o = not_onboarded(observed_matching(m), m, "Trust_2")
    reviewed = plan(m, o).fingerprint
    assert plan(m, with_database(o, status="backing-up")).fingerprint == reviewed
    assert plan(m, with_secret(o, version_id="v2", last_changed="2026-12-02")).fingerprint == \
        reviewed
    moved = o.hub.services["flip_api"].model_copy(update={
        "task_definition_arn": "arn:aws:ecs:eu-west-2:1:task-definition/flip-api:9", "revision": 9})
    o2 = o.model_copy(update={"hub": o.hub.model_copy(update={
        "services": {**o.hub.services, "flip_api": moved}})})
    assert plan(m, o2).fingerprint == reviewed
    # ... while a decision input does
    assert plan(m, with_hub_tags(o, hub_tag="v9.9.9")).fingerprint != reviewed


# --- the database, the internal key, bookkeeping ----------------------------------------------


def test_database_recreation_snapshots_resets_redeploys_and_reregisters_everyone() -> None:
    m0 = manifest(2)
    m = manifest(2, db_generation=2)
    p = plan(m, observed_matching(m0))
    assert before(p, "database.snapshot", "database.reset_schema")
    assert before(p, "database.reset_schema", "hub.redeploy:flip_api")
    for name in ("Trust_1", "Trust_2"):
        assert "hub.redeploy:flip_api" in p.action(f"registry.register:{name}").depends_on
        assert f"host.write_kit_file:{name}" in ids(p)
    assert not any(a.kind == K.REGISTRY_DELETE for a in p.actions)  # the table is gone
    assert any(v.guard == "FG003" for v in p.violations)


def test_a_stopped_database_is_said_before_a_recreation() -> None:
    m = manifest(1, db_generation=2)
    p = plan(m, with_database(observed_matching(manifest(1)), status="stopped"))
    assert any("is stopped" in n for n in p.notes)


def test_prod_database_protection_found_off_is_turned_back_on() -> None:
    m = manifest(1, environment="prod")
    p = plan(m, with_database(observed_matching(m), deletion_protection=False))
    assert ids(p) == ["database.restore_protection"] and not p.blocked


def test_an_inconsistent_internal_key_is_rotated_and_fl_server_redeployed() -> None:
    m = manifest(1)
    p, findings = both(m, with_secret(observed_matching(m), internal_key_hash="0" * 64))
    assert before(p, "hub.rotate_internal_key", "hub.redeploy:fl_server")
    assert before(p, "hub.rotate_internal_key", "hub.redeploy:flip_api")
    assert any(v.guard == "FG007" and v.target == "hub.redeploy:fl_server" for v in p.violations)
    assert any("internal_service_key_hash" in f for f in findings)


def test_old_flipgitops_keys_in_flip_api_are_migrated_out_first() -> None:
    m = manifest(2)
    o = with_secret(observed_matching(m), legacy_keys=("flipgitops_redeploy_pending",))
    o = not_onboarded(o, m, "Trust_2")
    p = plan(m, o)
    assert "ledger.migrate" in p.action("registry.register:Trust_2").depends_on


# --- the allowlist -------------------------------------------------------------------------


def test_an_ip_change_adds_the_new_rule_and_revokes_the_old_in_one_action() -> None:
    m0 = manifest([trust("Trust_1", ip="203.0.113.50")])
    m = manifest([trust("Trust_1", ip="203.0.113.60")])
    p = plan(m, observed_matching(m0))
    a = p.action("allowlist.update").params
    assert [r.cidr for r in a.add] == ["203.0.113.60/32"]  # type: ignore[attr-defined]
    assert [r.cidr for r in a.revoke] == ["203.0.113.50/32"]  # type: ignore[attr-defined]


def test_flips_own_nat_rule_is_neither_a_trust_nor_unmanaged() -> None:
    m = manifest(1)
    p = plan(m, observed_matching(m))
    assert p.in_sync and not any("198.51.100.250" in u for u in p.unmanaged)


def test_terraform_written_rules_are_never_revoked_in_aws_api_mode() -> None:
    m = manifest(1)
    o = add_rule(observed_matching(m), rule_for(
        m, "x", "198.51.100.9", "FL Server/Admin NLB from on-prem Trust (198.51.100.9)"))
    p = plan(m, o, PlanOptions(prune=True))
    assert "ingress:198.51.100.9/32" in p.unmanaged and not p.actions


def test_fg012_blocks_an_allowlist_that_would_exceed_the_group_quota() -> None:
    names = [trust(f"Trust_{i}") for i in range(1, 62)]
    m = manifest(names)
    o = not_onboarded(observed_matching(m), m, "Trust_61")
    o = with_allowlist(o, other_rules=0)
    p = plan(m, o)
    fg012 = [v for v in p.violations if v.guard == "FG012"]
    assert fg012 and "62 inbound rules" in fg012[0].message and not fg012[0].overridable
    fits = plan(manifest(names[:59]), observed_matching(manifest(names[:59])))
    assert not any(v.guard == "FG012" for v in fits.violations)


def test_two_security_groups_matching_is_an_error_naming_both() -> None:
    m = manifest(2)
    o = with_allowlist(not_onboarded(observed_matching(m), m, "Trust_2"),
                       ambiguous=("sg-1 (flip-fl-server-nlb-a)", "sg-2 (flip-fl-server-nlb-b)"))
    p = plan(m, o)
    fg012 = [v for v in p.violations if v.guard == "FG012"]
    assert fg012 and "sg-1" in fg012[0].message and "sg-2" in fg012[0].message
    assert "allowlist.update" not in ids(p)


# --- terraform mode ------------------------------------------------------------------------


def _tf(name: str) -> dict[str, object]:
    return json.loads((TFPLANS / name).read_text())  # type: ignore[no-any-return]


def test_terraform_plan_guards_show_at_plan_time() -> None:
    m = manifest(1, environment="prod", allowlist="terraform")
    o = not_onboarded(observed_matching(m), m, "Trust_1")
    blocked = plan(m, o, PlanOptions(terraform_plan=_tf("db_replace.json")))
    guards = {v.guard for v in blocked.violations}
    assert {"FG002", "FG008"} <= guards and blocked.blocked
    clean = plan(m, o, PlanOptions(terraform_plan=_tf("allowlist_only.json")))
    assert not {"FG002", "FG008"} & {v.guard for v in clean.violations}
