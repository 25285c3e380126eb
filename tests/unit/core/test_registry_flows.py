"""The trust lifecycle as FLIP implements it, on both registries (pure planner tests)."""

from __future__ import annotations

from flipgitops.core.drift import drift_report
from flipgitops.core.planner import plan
from flipgitops.model.actions import (
    ActionKind,
    DeleteParams,
    RegisterParams,
    SecretWriteParams,
)
from flipgitops.model.observed import AdminTrust, ObservedAdminApi
from flipgitops.model.plan import Plan, PlanOptions
from tests.builders import (
    manifest,
    not_onboarded,
    observed_matching,
    trust,
    unreachable,
    with_ledger,
    with_service,
    with_unmanaged_trust,
)

K = ActionKind


def ids(p: Plan) -> list[str]:
    return [a.id for a in p.actions]


def before(p: Plan, first: str, then: str) -> bool:
    order = ids(p)
    return order.index(first) < order.index(then)


def deps_closure(p: Plan, action_id: str) -> set[str]:
    by_id = {a.id: a for a in p.actions}
    seen: set[str] = set()
    stack = list(by_id[action_id].depends_on)
    while stack:
        d = stack.pop()
        if d not in seen:
            seen.add(d)
            stack.extend(by_id[d].depends_on)
    return seen


# --- database registry (current FLIP) ---------------------------------------------------------


def test_onboarding_registers_with_register_trust_then_opens_the_rule_then_the_host() -> None:
    m = manifest(2)
    p = plan(m, not_onboarded(observed_matching(m), m, "Trust_2"))
    reg = p.action("registry.register:Trust_2")
    params = reg.typed(RegisterParams)
    assert (params.name, params.code, params.reason) == ("Trust_2", "T002", "new trust")
    assert params.ephemeral_parameter == \
        "/flip/trust-kits/ephemeral/flipgitops-dev-Trust_2-c1-d1"
    assert "registry.register:Trust_2" in deps_closure(p, "allowlist.update")
    chain = ["host.provision", "host.deploy_release", "host.write_kit_file",
             "host.start_stack", "host.verify"]
    for step in chain:
        assert "allowlist.update" in deps_closure(p, f"{step}:Trust_2") or step == "host.provision"
    assert {"allowlist.update", "registry.register:Trust_2"} <= deps_closure(
        p, "host.provision:Trust_2")
    assert "host.deliver_fl_kit:Trust_2" in deps_closure(p, "host.start_stack:Trust_2")
    # no flip-api redeploy on the database registry: the hub caches keys 60 s
    assert not any(a.kind == K.HUB_REDEPLOY for a in p.actions)
    assert not any(a.kind in (K.CREDENTIALS_MINT, K.REGISTRY_SECRET_WRITE) for a in p.actions)


def test_a_tre_trust_gets_hub_side_actions_and_a_kit_hand_off_note() -> None:
    m = manifest([trust("Trust_1"), trust("Trust_2", kind="tre")])
    p = plan(m, not_onboarded(observed_matching(m), m, "Trust_2"))
    assert {a.id for a in p.actions} == {"registry.register:Trust_2", "allowlist.update"}
    assert any("flipgitops kit --env dev --trust Trust_2" in n for n in p.notes)


def test_decommission_stops_then_revokes_then_deletes() -> None:
    m0 = manifest(2)
    o = observed_matching(m0)
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned")])
    p = plan(m, o)
    assert p.action("registry.delete:Trust_2").typed(DeleteParams).reason == "decommission"
    assert before(p, "host.stop_stack:Trust_2", "allowlist.update")
    assert before(p, "allowlist.update", "registry.delete:Trust_2")
    assert not p.blocked


def test_rotation_on_the_database_registry_is_delete_plus_register_and_fg009_blocks() -> None:
    m0 = manifest(1)
    o = observed_matching(m0)
    m = manifest([trust("Trust_1", generation=2)])
    p = plan(m, o)
    assert p.action("registry.delete:Trust_1").typed(DeleteParams).reason == "rotation"
    assert "registry.delete:Trust_1" in p.action("registry.register:Trust_1").depends_on
    fg009 = [v for v in p.violations if v.guard == "FG009"]
    assert fg009 and fg009[0].overridable and not fg009[0].allowed and p.blocked
    assert not plan(m, o, PlanOptions(allow=frozenset({"FG009"}))).blocked
    # the host gets the new kit file and restarts
    assert {"host.write_kit_file:Trust_1", "host.start_stack:Trust_1"} <= set(ids(p))


def test_a_trust_the_hub_has_but_flipgitops_holds_no_key_for_is_never_rotated() -> None:
    m = manifest(1)
    o = observed_matching(m)
    entry = o.ledger.trusts["Trust_1"].model_copy(update={"held": False,
                                                          "api_key_sha256": None})
    o = with_ledger(o, "Trust_1", entry)
    p = plan(m, o)
    assert not any(a.kind in (K.REGISTRY_REGISTER, K.REGISTRY_DELETE) for a in p.actions)
    assert any("not held by flipgitops" in a for a in p.advisories)
    assert not p.in_sync
    assert any("not held by flipgitops" in f.message for f in drift_report(m, o).findings)


def test_the_admin_api_confirms_registrations_and_finds_one_the_hub_lost() -> None:
    m = manifest(2)
    o = observed_matching(m)
    admin = ObservedAdminApi(queried=True, ok=True, trusts=(AdminTrust(name="Trust_1"),))
    o = o.model_copy(update={"hub": o.hub.model_copy(update={"admin": admin})})
    p = plan(m, o)
    assert p.action("registry.register:Trust_2").typed(RegisterParams).reason == "hub lost it"
    by = {c.trust: c for c in p.confirmations}
    assert "admin API" in by["Trust_1"].confirmed_by


def test_confirmations_say_which_registrations_only_the_ledger_knows() -> None:
    m = manifest([trust("Trust_1"), trust("Trust_2", kind="tre")])
    p = plan(m, observed_matching(m))
    by = {c.trust: c for c in p.confirmations}
    assert by["Trust_1"].confirmed_by == ("trust-api authenticated",)
    assert by["Trust_2"].ledger_only


def test_unmanaged_trusts_are_listed_and_removed_only_with_prune() -> None:
    m = manifest(1)
    o = with_unmanaged_trust(observed_matching(m), m, "Old_1", "198.51.100.5")
    p = plan(m, o)
    assert "trust:Old_1" in p.unmanaged and not p.actions
    pruned = plan(m, o, PlanOptions(prune=True))
    assert pruned.action("registry.delete:Old_1").typed(DeleteParams).reason == "prune"
    assert before(pruned, "allowlist.update", "registry.delete:Old_1")


def test_an_unreachable_host_is_unknown_never_in_sync() -> None:
    m = manifest(2)
    o = unreachable(observed_matching(m), "Trust_2")
    p = plan(m, o)
    assert p.unknown == ("Trust_2",) and not p.in_sync
    findings = drift_report(m, o).by_group("unknown")
    assert [f.target for f in findings] == ["host:Trust_2"]


# --- secret registry (older hubs) ----------------------------------------------------------


def test_secret_onboarding_mints_writes_names_and_hashes_then_redeploys_flip_api() -> None:
    m = manifest(2, registry="secret")
    p = plan(m, not_onboarded(observed_matching(m), m, "Trust_2"))
    write = p.action("registry.secret_write").typed(SecretWriteParams)
    assert write.registering == ("Trust_2",) and write.names_after == ("Trust_1", "Trust_2")
    assert before(p, "credentials.mint:Trust_2", "registry.secret_write")
    assert before(p, "registry.secret_write", "hub.redeploy:flip_api")
    assert "hub.redeploy:flip_api" in deps_closure(p, "host.start_stack:Trust_2")
    assert "hub.redeploy:flip_api" in deps_closure(p, "allowlist.update")
    assert not any(a.kind == K.REGISTRY_REGISTER for a in p.actions)


def test_secret_rotation_says_the_old_hub_accepts_one_key_per_trust() -> None:
    m0 = manifest(1, registry="secret")
    m = manifest([trust("Trust_1", generation=2)], registry="secret")
    p = plan(m, observed_matching(m0))
    assert "credentials.mint:Trust_1" in ids(p) and not p.blocked  # no FG009 on E2
    assert any("one key per trust" in n for n in p.notes)


def test_secret_registry_change_not_yet_loaded_by_flip_api_is_redeployed() -> None:
    m = manifest(1, registry="secret")
    o = with_service(observed_matching(m), "flip_api", loaded_current=False)
    p = plan(m, o)
    assert ids(p) == ["hub.redeploy:flip_api"]


def test_secret_decommission_deregisters_after_the_rule_is_revoked() -> None:
    m0 = manifest(2, registry="secret")
    m = manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned")], registry="secret")
    p = plan(m, observed_matching(m0))
    write = p.action("registry.secret_write").typed(SecretWriteParams)
    assert write.deregistering == ("Trust_2",) and write.names_after == ("Trust_1",)
    assert before(p, "allowlist.update", "registry.secret_write")
    assert before(p, "host.stop_stack:Trust_2", "registry.secret_write")


def test_secret_with_a_terraform_allowlist_hands_names_to_terraform() -> None:
    m = manifest(2, registry="secret", allowlist="terraform")
    p = plan(m, not_onboarded(observed_matching(m), m, "Trust_2"))
    assert "registry.secret_write" not in ids(p)
    tf = p.action("terraform.apply")
    assert tf.params.trust_names == ("Trust_1", "Trust_2")  # type: ignore[attr-defined]
    assert before(p, "terraform.apply", "hub.redeploy:flip_api")


def test_fg011_blocks_a_manifest_whose_registry_is_not_the_hubs() -> None:
    m = manifest(1)
    o = observed_matching(manifest(1, registry="secret"))
    p = plan(m, o)
    fg011 = [v for v in p.violations if v.guard == "FG011"]
    assert fg011 and not fg011[0].overridable and p.blocked
    assert "secret registry" in fg011[0].message
    assert not plan(m, o, PlanOptions(allow=frozenset({"FG011"}))).violations[0].allowed
    assert not any(a.kind in (K.REGISTRY_REGISTER, K.CREDENTIALS_MINT) for a in p.actions)
