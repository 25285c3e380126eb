"""Renderers: every format for plans, observations and drift; colour only when asked; no
full hash ever; markdown under GitHub's limit; the JSON plan round-trips for ``apply --plan``.

Plans are built directly from Action objects so these tests do not depend on the planner.
"""

from __future__ import annotations

import json
import re

import pytest

from flipgitops.core.drift import DriftReport
from flipgitops.core.render import (
    MAX_CHARS,
    PlanFileError,
    load_manifest_change,
    load_plan_json,
    render_drift,
    render_observed,
    render_plan,
)
from flipgitops.core.render.markdown import node_id
from flipgitops.model.observed import (
    IngressRule,
    ObservedAllowlist,
    ObservedCognito,
    ObservedDatabase,
    ObservedHost,
    ObservedHub,
    ObservedSecret,
    ObservedService,
    ObservedState,
)
from flipgitops.model.plan import Action, ActionKind, Change, Finding, Plan, Violation

ANSI = re.compile(r"\x1b\[")
FULL_HASH = "0123456789abcdef" * 4
FORMATS = ("text", "markdown", "json")
FP = "sha256:" + "f" * 64


def onboarding_plan(n: int, *, violations: tuple[Violation, ...] = ()) -> Plan:
    """What the planner produces for onboarding ``n`` trusts (DESIGN §5 rule 1)."""
    names = [f"Trust_{i:03d}" for i in range(1, n + 1)]
    escrow = [Action(id=f"credentials.escrow:{t}", kind=ActionKind.CREDENTIALS_ESCROW, target=t,
                     description=f"mint and escrow the API key of {t}") for t in names]
    secret = Action(id="hub_secret.update:hub", kind=ActionKind.HUB_SECRET_UPDATE, target="hub",
                    params={"register": names}, depends_on=tuple(a.id for a in escrow))
    redeploy = Action(id="hub.redeploy:flip_api", kind=ActionKind.HUB_REDEPLOY,
                      target="flip_api", depends_on=(secret.id,))
    allow = Action(id="allowlist.update:hub", kind=ActionKind.ALLOWLIST_UPDATE, target="hub",
                   params={"add": [{"trust": t, "cidr": f"203.0.113.{i % 250}/32"}
                                   for i, t in enumerate(names)]},
                   depends_on=(redeploy.id,))
    per_host = []
    for t in names:
        prev = allow.id
        for kind in (ActionKind.HOST_PROVISION, ActionKind.HOST_DELIVER,
                     ActionKind.HOST_START_STACK, ActionKind.HOST_VERIFY_POLLING):
            a = Action(id=f"{kind}:{t}", kind=kind, target=t, depends_on=(prev,))
            per_host.append(a)
            prev = a.id
    actions = (*escrow, secret, redeploy, allow, *per_host)
    waves = [tuple(a.id for a in escrow), (secret.id,), (redeploy.id,), (allow.id,)]
    for kind in (ActionKind.HOST_PROVISION, ActionKind.HOST_DELIVER,
                 ActionKind.HOST_START_STACK, ActionKind.HOST_VERIFY_POLLING):
        waves.append(tuple(f"{kind}:{t}" for t in names))
    ordered = tuple(sorted(actions, key=lambda a: next(i for i, w in enumerate(waves)
                                                       if a.id in w)))
    changes = tuple(Change(op="add", path=f"trusts.{t}", after={"name": t}) for t in names)
    return Plan(environment="prod", fingerprint=FP, changes=changes, actions=ordered,
                waves=tuple(waves), violations=violations)


def ip_change_plan() -> Plan:
    add = Action(id="allowlist.update:hub", kind=ActionKind.ALLOWLIST_UPDATE, target="hub",
                 params={"add": [{"trust": "Trust_2", "cidr": "198.51.100.7/32"}],
                         "revoke": [{"trust": "Trust_2", "cidr": "203.0.113.12/32"}]},
                 description="replace Trust_2 ingress 203.0.113.12/32 → 198.51.100.7/32")
    return Plan(environment="dev", fingerprint=FP,
                changes=(Change(op="change", path="trusts.Trust_2.public_ip",
                                before="203.0.113.12", after="198.51.100.7"),),
                actions=(add,), waves=((add.id,),),
                unmanaged=("ingress:198.51.100.99/32",), left_behind=("Trust_3",),
                unknown=("Trust_4",))


FG001 = Violation(guard="FG001", target="hub.images",
                  message="hub_tag moves to v2.4.0 but fl_tag stays v2.3.0",
                  how_to_proceed="move hub_tag and fl_tag together in one change")


def blocked_plan() -> Plan:
    deploy = Action(id="hub.deploy_image:flip_api", kind=ActionKind.HUB_DEPLOY_IMAGE,
                    target="flip_api", params={"tag": "v2.4.0"})
    return Plan(environment="prod", fingerprint=FP,
                changes=(Change(op="change", path="hub.images.hub_tag", before="v2.3.0",
                                after="v2.4.0"),),
                actions=(deploy,), waves=((deploy.id,),), violations=(FG001,))


def observed_state() -> ObservedState:
    hub = ObservedHub(
        account_id="123456789012", region="eu-west-2",
        allowlist=ObservedAllowlist(exists=True, group_name="flip-fl-server-nlb", rules=(
            IngressRule(cidr="203.0.113.11/32", from_port=8002, to_port=8002,
                        description="flipgitops:Trust_1"),)),
        secret=ObservedSecret(exists=True, name="FLIP_API", trust_names=("Trust_1",),
                              trust_api_key_hashes={"Trust_1": FULL_HASH},
                              previous_key_hashes={"Trust_1": FULL_HASH[::-1]},
                              aes_key_sha256=FULL_HASH,
                              other_keys={"internal_service_key_hash": "sha256:" + FULL_HASH}),
        services={"flip_api": ObservedService(role="flip_api", name="flip-api", exists=True,
                                              tag="v2.3.0")},
        database=ObservedDatabase(exists=True, identifier="flip-database",
                                  deletion_protection=True, generation=1),
        cognito=ObservedCognito(exists=True, name="flip-user-pool", mfa="required"),
    )
    hosts = {"Trust_1": ObservedHost(trust="Trust_1", reachable=True, kit_present=True,
                                     trust_api_key_sha256=FULL_HASH,
                                     aes_key_sha256=FULL_HASH),
             "Trust_2": ObservedHost(trust="Trust_2", reachable=False, reason="ssh timeout")}
    return ObservedState(environment="dev", hub=hub, hosts=hosts,
                         observed_at="2026-01-01T00:00:00Z")


def drift() -> DriftReport:
    return DriftReport(environment="prod", findings=(
        Finding(group="changed", severity="critical", target="database:flip-database",
                message="deletion protection is OFF in prod"),
        Finding(group="unmanaged", severity="high", target="ingress:198.51.100.99/32",
                message="ingress rule belongs to no trust"),
        Finding(group="unknown", severity="medium", target="host:Trust_2",
                message="host unreachable"),
    ))


# --- plan ----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_no_ansi_without_colour(fmt: str) -> None:
    for out in (render_plan(blocked_plan(), fmt), render_plan(ip_change_plan(), fmt),
                render_observed(observed_state(), fmt), render_drift(drift(), fmt)):
        assert not ANSI.search(out)


def test_text_colour_only_when_asked() -> None:
    plain = render_plan(ip_change_plan(), "text")
    coloured = render_plan(ip_change_plan(), "text", color=True)
    assert ANSI.search(coloured)
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == plain
    assert ANSI.search(render_drift(drift(), "text", color=True))


def test_text_plan_is_terraform_like() -> None:
    out = render_plan(ip_change_plan(), "text")
    assert "~ trusts.Trust_2.public_ip: 203.0.113.12 → 198.51.100.7" in out
    assert "Wave 1:" in out
    assert "~ allowlist.update:hub" in out  # add + revoke = a change
    for section in ("Unmanaged", "Left behind", "Unknown"):
        assert section in out
    assert out.splitlines()[-1] == (
        "Plan: 1 action in 1 wave (0 to add, 1 to change, 0 to remove); guards: none")


def test_text_guards_come_first() -> None:
    out = render_plan(blocked_plan(), "text")
    assert "! FG001 hub.images" in out
    assert "how to proceed: move hub_tag and fl_tag together" in out
    assert out.index("FG001") < out.index("Wave 1")
    assert out.endswith("guards: 1 blocking (FG001)")


@pytest.mark.parametrize("fmt", FORMATS)
def test_fg001_named_in_every_format(fmt: str) -> None:
    out = render_plan(blocked_plan(), fmt)
    assert "FG001" in out
    assert "move hub_tag and fl_tag together" in out


def test_markdown_plan_sections() -> None:
    out = render_plan(blocked_plan(), "markdown")
    assert out.startswith("## flipgitops plan: `prod`")
    assert "| Guards | 1 blocking (FG001) |" in out
    assert "| ID | Target | Message | How to proceed |" in out
    assert out.index("Guard violations") < out.index("#### Wave 1")
    assert "```mermaid\nflowchart TD" in out


def test_markdown_per_trust_details_and_graph() -> None:
    out = render_plan(onboarding_plan(3), "markdown")
    assert out.count("<details>") == 3
    # its own 5 actions plus the hub-wide secret and allowlist updates that name it
    assert "<summary>Trust_001: 1 change, 7 actions</summary>" in out
    assert "n_hub_secret_update_hub --> n_hub_redeploy_flip_api" in out
    mermaid = out.split("```mermaid", 1)[1].split("```", 1)[0]
    for line in mermaid.strip().splitlines()[1:]:
        ident = line.strip().split("[", 1)[0].split(" --> ")
        assert all(re.fullmatch(r"n_[A-Za-z0-9_]+", i.strip()) for i in ident), line


def test_mermaid_ids_unique_after_sanitising() -> None:
    taken: dict[str, str] = {}
    a, b = node_id("x:a.b", taken), node_id("x.a:b", taken)
    assert a != b
    assert node_id("x:a.b", taken) == a


def test_markdown_300_trusts_is_truncated_under_limit() -> None:
    plan = onboarding_plan(300, violations=(FG001,))
    out = render_plan(plan, "markdown", artifact_name="plan-prod.json")
    assert len(out) < MAX_CHARS
    m = re.search(r"Truncated: (\d+) actions not shown; see the JSON artifact plan-prod\.json",
                  out)
    assert m, out[-500:]
    hidden = int(m.group(1))
    shown = len(re.findall(r"^- `[+~-]` `", out, flags=re.M))
    assert hidden > 0
    assert shown + hidden == len(plan.actions)
    assert "FG001" in out
    assert out.index("FG001") < out.index("### Actions")
    assert "Plan: 1503 actions" in out


def test_markdown_small_plan_is_not_truncated() -> None:
    assert "Truncated" not in render_plan(onboarding_plan(3), "markdown")


def test_markdown_drops_details_before_actions() -> None:
    plan = onboarding_plan(60)
    full = render_plan(plan, "markdown")
    assert len(full) > 20_000
    from flipgitops.core.render.markdown import render_plan_markdown

    out = render_plan_markdown(plan, limit=len(full) - 1)
    assert "<details>" not in out
    assert "Truncated: 0 actions not shown; see the JSON artifact plan.json" in out


def test_manifest_change_shown_above_plan() -> None:
    change = (Change(op="change", path="trusts.Trust_2.public_ip", before="203.0.113.12",
                     after="198.51.100.7"),)
    for fmt in ("text", "markdown"):
        out = render_plan(ip_change_plan(), fmt, manifest_change=change)
        assert "Manifest change" in out
        assert out.index("Manifest change") < out.index("Wave 1")
    data = json.loads(render_plan(ip_change_plan(), "json", manifest_change=change))
    assert data["manifest_change"] == [c.model_dump(mode="json") for c in change]


# --- json ----------------------------------------------------------------------------------


@pytest.mark.parametrize("plan", [blocked_plan(), ip_change_plan(), onboarding_plan(5)])
def test_json_round_trip(plan: Plan) -> None:
    text = render_plan(plan, "json", manifest_change=(Change(op="add", path="environment",
                                                             after="prod"),))
    assert json.loads(text)["format_version"] == "1"
    back = load_plan_json(text)
    assert back == plan
    assert back.blocked == plan.blocked
    assert load_manifest_change(text) == (Change(op="add", path="environment", after="prod"),)


def test_json_stable_bytes_and_sorted_keys() -> None:
    a = render_plan(onboarding_plan(4), "json")
    b = render_plan(onboarding_plan(4), "json")
    assert a == b
    data = json.loads(a)
    assert list(data) == sorted(data)
    assert json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n" == a


def test_load_plan_json_rejects_other_versions_and_garbage() -> None:
    data = json.loads(render_plan(ip_change_plan(), "json"))
    data["format_version"] = "2"
    with pytest.raises(PlanFileError, match="format_version"):
        load_plan_json(json.dumps(data))
    with pytest.raises(PlanFileError, match="not JSON"):
        load_plan_json("{nope")
    with pytest.raises(PlanFileError, match="not a valid plan"):
        load_plan_json('{"format_version": "1", "environment": "x"}')


# --- observed ------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_observed_masks_every_hash(fmt: str) -> None:
    out = render_observed(observed_state(), fmt)
    assert FULL_HASH not in out
    assert FULL_HASH[::-1] not in out
    assert not re.search(r"[0-9a-f]{13,}", out.replace("123456789012", ""))
    assert "sha256:0123456789ab" in out


def test_observed_json_is_the_state_with_short_hashes() -> None:
    data = json.loads(render_observed(observed_state(), "json"))
    assert data["format_version"] == "1"
    assert data["hub"]["secret"]["trust_api_key_hashes"] == {"Trust_1": "sha256:0123456789ab"}
    assert data["hosts"]["Trust_1"]["trust_api_key_sha256"] == "sha256:0123456789ab"
    assert data["hosts"]["Trust_2"]["reachable"] is False


def test_observed_text_shows_unreachable_host() -> None:
    assert "Trust_2: UNREACHABLE (ssh timeout)" in render_observed(observed_state(), "text")


# --- drift ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_drift_names_group_and_severity(fmt: str) -> None:
    out = render_drift(drift(), fmt)
    for f in drift().findings:
        assert f.target in out
        assert f.severity in out
    if fmt == "json":
        data = json.loads(out)
        assert data["in_sync"] is False
        assert data["counts"]["critical"] == 1
        assert [f["group"] for f in data["findings"]] == ["changed", "unmanaged", "unknown"]
    else:
        for group in ("Changed", "Unmanaged", "Unknown"):
            assert group in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_drift_in_sync(fmt: str) -> None:
    out = render_drift(DriftReport(environment="dev"), fmt)
    assert ("in sync" in out.lower()) or json.loads(out)["in_sync"] is True


def test_unknown_format_is_an_error() -> None:
    from flipgitops.errors import FlipGitopsError

    with pytest.raises(FlipGitopsError, match="unknown output format"):
        render_plan(ip_change_plan(), "yaml")


def test_markdown_300_trust_onboarding_from_the_real_planner() -> None:
    """The same limit holds for what the planner really produces, not just a hand-made plan."""
    builders = pytest.importorskip("tests.builders", reason="tests/builders.py not written yet")
    planner = pytest.importorskip("flipgitops.core.planner", reason="planner not written yet")
    m = builders.manifest(300, environment="prod")
    o = builders.observed_matching(m)
    for t in m.trusts:
        o = builders.not_onboarded(o, t.name)
    plan = planner.plan(m, o)
    assert len(plan.actions) > 300
    out = render_plan(plan, "markdown", artifact_name="plan-prod.json")
    assert len(out) < MAX_CHARS
    assert re.search(r"Truncated: \d+ actions not shown; see the JSON artifact plan-prod\.json",
                     out)
    assert load_plan_json(render_plan(plan, "json")) == plan
