"""core/guards: each of FG001..FG008 firing, not firing, and being allowed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from flipgitops.core.guards import check
from flipgitops.core.planner import plan
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Action, Plan, PlanOptions, Violation
from tests.builders import (
    manifest,
    observed_matching,
    trust,
    unreachable,
    unregistered,
    with_account,
    with_host_tags,
    with_hub_tags,
    with_service,
    with_stack_stopped,
    with_unmanaged_trust,
)

TFPLANS = Path(__file__).resolve().parent.parent / "fixtures" / "tfplans"


def tfplan(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((TFPLANS / name).read_text())
    return data


def fired(p: Plan, guard: str) -> list[Violation]:
    return [v for v in p.violations if v.guard == guard]


def only(p: Plan) -> set[str]:
    return {v.guard for v in p.violations}


def upgrade(hub: str = "v2.4.0", fl: str = "v2.4.0", **kw: Any) -> tuple[Manifest, ObservedState]:
    live = manifest(2, **kw)
    return manifest(2, hub_tag=hub, fl_tag=fl, **kw), observed_matching(live)


QUIET = PlanOptions(fl_quiesced=True)


# --- FG001 ---------------------------------------------------------------------------------


def test_fg001_tags_moving_together_is_fine() -> None:
    m, o = upgrade()
    assert fired(plan(m, o, QUIET), "FG001") == []


def test_fg001_fl_tag_alone() -> None:
    m, o = upgrade(hub="v2.3.0")
    [v] = fired(plan(m, o, QUIET), "FG001")
    assert v.target == "hub.images"
    assert "fl_tag changes but hub_tag does not" in v.message
    assert "--allow FG001" in v.how_to_proceed


def test_fg001_one_drifted_fl_service_is_drift_not_an_upgrade() -> None:
    # fl-server hotfixed by hand: restoring it alone must not read as "fl_tag moves"...
    live = manifest(2)
    drifted = with_service(observed_matching(live), "fl_server", tag="v2.3.0-hotfix1")
    assert fired(plan(live, drifted, QUIET), "FG001") == []
    # ...and a hub_tag-only bump on that hub is still a lockstep violation.
    bumped = manifest(2, hub_tag="v2.4.0")
    [v] = fired(plan(bumped, drifted, QUIET), "FG001")
    assert "hub_tag changes but fl_tag does not" in v.message


def test_fg001_hub_tag_alone_and_lockstep_off() -> None:
    m, o = upgrade(fl="v2.3.0")
    assert [v.target for v in fired(plan(m, o), "FG001")] == ["hub.images"]
    m, o = upgrade(fl="v2.3.0", lockstep=False)
    assert fired(plan(m, o), "FG001") == []


def test_fg001_unreachable_active_trust_during_fl_upgrade() -> None:
    m, o = upgrade()
    p = plan(m, unreachable(o, "Trust_2"), QUIET)
    [v] = fired(p, "FG001")
    assert v.target == "Trust_2" and "old FL wire contract" in v.message
    assert p.blocked
    assert not plan(m, unreachable(o, "Trust_2"),
                    PlanOptions(fl_quiesced=True, allow=frozenset({"FG001"}))).blocked


def test_fg001_unreachable_trust_without_fl_upgrade_is_fine() -> None:
    m = manifest(2)
    assert fired(plan(m, unreachable(observed_matching(m), "Trust_2")), "FG001") == []


def test_fg001_paused_trust_is_left_behind_not_blocking() -> None:
    live = manifest([trust("Trust_1"), trust("Trust_2", state="paused")])
    m = manifest(list(live.trusts), hub_tag="v2.4.0", fl_tag="v2.4.0")
    p = plan(m, unreachable(observed_matching(live), "Trust_2"), QUIET)
    assert fired(p, "FG001") == [] and p.left_behind == ("Trust_2",)


def test_fg001_trust_fl_client_staying_behind_after_the_apply() -> None:
    m = manifest(2)
    o = with_host_tags(observed_matching(m), "Trust_2", fl_tag="v2.2.0")
    actions = tuple(a for a in plan(m, o).actions if a.target != "Trust_2")
    [v] = [v for v in check(m, o, actions, PlanOptions()) if v.guard == "FG001"]
    assert v.target == "Trust_2" and "would stay on v2.2.0" in v.message
    assert fired(plan(m, o), "FG001") == []  # the planner does restart it


# --- FG002 ---------------------------------------------------------------------------------


def test_fg002_prod_protection_off_is_never_overridable() -> None:
    m = manifest(1, environment="prod", deletion_protection=False, final_snapshot=False)
    p = plan(m, observed_matching(manifest(1, environment="prod")),
             PlanOptions(allow=frozenset({"FG002"})))
    vs = fired(p, "FG002")
    assert [v.target for v in vs] == ["hub.database.deletion_protection",
                                      "hub.database.final_snapshot"]
    assert all(not v.overridable and not v.allowed for v in vs)
    assert p.blocked


def test_fg002_not_in_dev() -> None:
    m = manifest(1, deletion_protection=False, final_snapshot=False)
    assert fired(plan(m, observed_matching(m)), "FG002") == []


def test_fg002_destructive_database_action_in_prod() -> None:
    m = manifest(1, environment="prod")
    o = observed_matching(m)
    bad = Action(id="database.delete", kind="database.delete", target="flip-database",
                 destructive=True)
    [v] = [v for v in check(m, o, (bad,), PlanOptions()) if v.guard == "FG002"]
    assert v.target == "database.delete" and not v.overridable


@pytest.mark.parametrize("fixture", ["db_replace.json", "db_delete.json", "db_unprotect.json",
                                     "db_skip_final_snapshot.json"])
def test_fg002_terraform_plan_touching_prod_database(fixture: str) -> None:
    m = manifest(1, environment="prod")
    p = plan(m, observed_matching(m), PlanOptions(terraform_plan=tfplan(fixture)))
    [v] = fired(p, "FG002")
    assert v.target == "module.flip_db.module.db_instance.aws_db_instance.this[0]"
    assert p.blocked


def test_fg002_terraform_plan_in_dev_is_fg008_only() -> None:
    m = manifest(1)
    p = plan(m, observed_matching(m), PlanOptions(terraform_plan=tfplan("db_replace.json")))
    assert only(p) == {"FG008"}


# --- FG003 ---------------------------------------------------------------------------------


def test_fg003_database_recreation() -> None:
    live = manifest(1, environment="prod")
    m = manifest(1, environment="prod", db_generation=2)
    p = plan(m, observed_matching(live))
    [v] = fired(p, "FG003")
    assert v.target == "flip-database" and "--allow FG003" in v.how_to_proceed
    assert "flipgitops-prod-gen2-" in v.message
    assert only(p) == {"FG003"}  # recreation with a snapshot is not FG002
    assert not plan(m, observed_matching(live), PlanOptions(allow=frozenset({"FG003"}))).blocked
    assert fired(plan(live, observed_matching(live)), "FG003") == []


# --- FG004 ---------------------------------------------------------------------------------


def test_fg004_too_many_removals() -> None:
    live = manifest(4)
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned"),
                  trust("Trust_3", state="decommissioned"), trust("Trust_4")])
    p = plan(m, observed_matching(live))
    [v] = fired(p, "FG004")
    assert "2 trusts removed" in v.message and "Trust_2, Trust_3" in v.message
    assert "split the change into 2 applies" in v.how_to_proceed


def test_fg004_within_limit_and_prune_counts() -> None:
    live = manifest(2)
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned")])
    assert fired(plan(m, observed_matching(live)), "FG004") == []
    o = with_unmanaged_trust(observed_matching(live), "Old", "198.51.100.5")
    assert fired(plan(m, o), "FG004") == []  # unmanaged without --prune: not removed
    [v] = fired(plan(m, o, PlanOptions(prune=True)), "FG004")
    assert "Old, Trust_2" in v.message


def test_fg004_counts_terraform_removals() -> None:
    live = manifest(3, allowlist="terraform")
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned"),
                  trust("Trust_3", state="decommissioned")], allowlist="terraform")
    o = observed_matching(live)
    for name in ("Trust_2", "Trust_3"):  # only their NLB rules are left
        o = unregistered(with_stack_stopped(o, name), name)
    p = plan(m, o)
    assert [a.id for a in p.actions] == ["terraform.apply"]
    [v] = fired(p, "FG004")
    assert "Trust_2, Trust_3" in v.message


# --- FG005 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["latest", "stag", "prod", "main", "dev", "2.3.0", "v2.3",
                                 "sha-abc", "sha-ABCDEF0", "v2.3.0-latest!"])
def test_fg005_floating_tags(tag: str) -> None:
    m = manifest(1, hub_tag=tag, fl_tag=tag)
    targets = [v.target for v in fired(plan(m, observed_matching(m)), "FG005")]
    assert targets == ["hub.images.fl_tag", "hub.images.hub_tag"]


@pytest.mark.parametrize("tag", ["v2.3.0", "v10.0.12-rc.1", "sha-0a1b2c3"])
def test_fg005_immutable_tags_pass(tag: str) -> None:
    m = manifest(1, environment="prod", hub_tag=tag, fl_tag=tag)
    assert fired(plan(m, observed_matching(m)), "FG005") == []


def test_fg005_only_where_required() -> None:
    m = manifest(1, hub_tag="latest", fl_tag="latest", immutable_tags=False)
    assert fired(plan(m, observed_matching(m)), "FG005") == []
    prod = manifest(1, environment="prod", hub_tag="latest", fl_tag="v2.3.0",
                    immutable_tags=False)
    assert [v.target for v in fired(plan(prod, observed_matching(prod)), "FG005")] == [
        "hub.images.hub_tag"]


# --- FG006 ---------------------------------------------------------------------------------


def test_fg006_wrong_account_or_region() -> None:
    m = manifest(1)
    p = plan(m, with_account(observed_matching(m), account_id="999999999999",
                             region="us-east-1"))
    vs = fired(p, "FG006")
    assert [v.target for v in vs] == ["aws.account_id", "aws.region"]
    assert "999999999999" in vs[0].message and "AWS_PROFILE" in vs[0].how_to_proceed
    assert p.blocked
    assert fired(plan(m, observed_matching(m)), "FG006") == []


def test_fg006_unknown_account_blocks() -> None:
    m = manifest(1)
    o = observed_matching(m)
    o = o.model_copy(update={"hub": o.hub.model_copy(update={"account_id": None})})
    assert [v.target for v in fired(plan(m, o), "FG006")] == ["aws.account_id"]


# --- FG007 ---------------------------------------------------------------------------------


def test_fg007_fl_services_need_quiescing() -> None:
    m, o = upgrade()
    p = plan(m, o)
    assert [v.target for v in fired(p, "FG007")] == ["hub.deploy_image:fl_api",
                                                     "hub.deploy_image:fl_server"]
    assert "--fl-quiesced" in fired(p, "FG007")[0].how_to_proceed
    assert p.blocked
    quiet = plan(m, o, QUIET)
    assert all(v.allowed for v in fired(quiet, "FG007")) and not quiet.blocked
    assert not plan(m, o, PlanOptions(allow=frozenset({"FG007"}))).blocked


def test_fg007_hub_api_only_is_fine() -> None:
    m = manifest(1, hub_tag="v2.4.0", lockstep=False)
    o = observed_matching(manifest(1))
    assert fired(plan(m, o), "FG007") == []


def test_fg007_hub_redeploy_is_not_an_fl_replacement() -> None:
    m = manifest(1)
    o = with_hub_tags(observed_matching(m), hub_tag="v2.3.0")
    assert fired(plan(m, o), "FG007") == []


# --- FG008 ---------------------------------------------------------------------------------


def test_fg008_protected_types() -> None:
    m = manifest(1)
    p = plan(m, observed_matching(m), PlanOptions(terraform_plan=tfplan("protected_replace.json")))
    assert [v.target for v in fired(p, "FG008")] == [
        "aws_kms_key.flip", "aws_s3_bucket.uploads", "aws_secretsmanager_secret.flip_api"]
    assert p.blocked
    allowed = plan(m, observed_matching(m), PlanOptions(
        terraform_plan=tfplan("protected_replace.json"), allow=frozenset({"FG008"})))
    assert not allowed.blocked


@pytest.mark.parametrize("fixture", ["allowlist_only.json", "no_changes.json"])
def test_fg008_harmless_plans(fixture: str) -> None:
    m = manifest(1, environment="prod")
    p = plan(m, observed_matching(m), PlanOptions(terraform_plan=tfplan(fixture)))
    assert p.violations == ()


def test_fg008_unreadable_plan_fails_closed() -> None:
    m = manifest(1)
    p = plan(m, observed_matching(m), PlanOptions(terraform_plan={"resource_changes": []}))
    [v] = fired(p, "FG008")
    assert v.target == "terraform plan" and p.blocked


# --- general -------------------------------------------------------------------------------


def test_violations_are_sorted_and_allowed_flags_follow_options() -> None:
    m = manifest(1, environment="prod", hub_tag="latest", deletion_protection=False)
    o = with_account(observed_matching(manifest(1, environment="prod")),
                     account_id="999999999999")
    opts = PlanOptions(allow=frozenset({"FG001", "FG002", "FG005", "FG006"}))
    vs = plan(m, o, opts).violations
    assert [v.guard for v in vs] == sorted(v.guard for v in vs)
    assert {v.guard: v.allowed for v in vs} == {
        "FG001": True, "FG002": False, "FG005": True, "FG006": True}
