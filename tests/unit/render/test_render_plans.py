"""Plans rendered as text and markdown, over real plans from the planner (tests/unit/render/
worlds.py): what a reviewer must see is there, in the order that matters, in both formats.
"""

from __future__ import annotations

import html
import re

import pytest

from flipgitops.core.planner import plan
from flipgitops.core.render import MAX_CHARS, render_plan
from flipgitops.core.render.markdown import mermaid, render_plan_markdown
from flipgitops.model.actions import KINDS, Action, ActionKind
from flipgitops.model.plan import Plan, PlanOptions
from tests.builders import manifest, not_onboarded, observed_matching
from tests.unit.render.worlds import WORLDS, planned

OUR_SGR = re.compile(r"\x1b\[[0-9;]*m")
HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _text(name: str, **kw: object) -> str:
    p, change, _, _ = planned(name)
    return render_plan(p, "text", manifest_change=change, **kw)  # type: ignore[arg-type]


def _md(name: str) -> str:
    p, change, _, _ = planned(name)
    return render_plan(p, "markdown", manifest_change=change)


def unescape(markdown: str) -> str:
    """The characters a markdown line renders (backslash escapes and entities resolved)."""
    return html.unescape(re.sub(r"\\([^A-Za-z0-9\s])", r"\1", markdown)).replace("\u200b", "")


def _line_of(doc: str, needle: str) -> int:
    return next(n for n, line in enumerate(doc.splitlines()) if needle in line)


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_text_never_prints_none_ansi_or_a_full_hash(name: str) -> None:
    out = _text(name)
    assert "None" not in out
    assert "\x1b" not in out
    assert not HEX64.search(out), HEX64.search(out)
    coloured = _text(name, color=True)
    assert OUR_SGR.search(coloured), "colour was asked for"
    assert "\x1b" not in OUR_SGR.sub("", coloured), "only our own SGR codes"
    assert OUR_SGR.sub("", coloured) == out


@pytest.mark.parametrize("name", sorted(WORLDS))
@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_every_action_is_shown_with_its_kind_symbol_and_description(name: str, fmt: str) -> None:
    p, change, _, _ = planned(name)
    out = render_plan(p, fmt, manifest_change=change)
    for a in p.actions:
        sym = KINDS[a.kind].symbol
        shown = f"{sym} {a.id}:" if fmt == "text" else f"`{sym}` `{a.id}`:"
        line = next((ln for ln in out.splitlines() if shown in ln), None)
        assert line is not None, (a.id, sym)
        assert a.description in (line if fmt == "text" else unescape(line)), line


def test_onboarding_on_the_database_registry() -> None:
    p, _, _, _ = planned("onboarding-database")
    out = _text("onboarding-database")
    assert "+ registry.register:Trust_2: register_trust Trust_2 (new trust; code T002)" in out
    # dependencies are named, waves are numbered in order
    assert "(after registry.register:Trust_2)" in out
    assert out.index("Wave 1:") < out.index("registry.register:Trust_2") < out.index("Wave 2:")
    assert "Manifest change (base → working tree):\n  + trusts.Trust_2: (absent) →" in out
    # Trust_1's registration is confirmed by its trust-api; Trust_2 has no evidence yet
    assert "Trust_1: confirmed by the hub: trust-api authenticated" in out
    assert len(p.waves) == out.count("\nWave ")


def test_onboarding_on_the_secret_registry() -> None:
    out = _text("onboarding-secret")
    for needle in ("+ credentials.mint:Trust_2:", "~ registry.secret_write:",
                   "~ hub.redeploy:flip_api:", "? host.verify:Trust_2:"):
        assert needle in out, needle
    assert "confirmed by the hub: FLIP_API + TRUST_NAMES" in out
    md = _md("onboarding-secret")
    assert "`+` `credentials.mint:Trust_2`" in md and "```mermaid" in md


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_rotation_on_the_database_registry_shows_fg009_first(fmt: str) -> None:
    p, change, _, _ = planned("rotation-database")
    out = render_plan(p, fmt, manifest_change=change)
    fg009 = _line_of(out, "FG009")
    assert fg009 < _line_of(out, "Plan:" if fmt == "text" else "| Status |")
    assert fg009 < _line_of(out, "Wave 1")
    assert "blocking, overridable" in out.splitlines()[fg009]
    assert "never overridable" not in out
    assert "--allow FG009" in out  # how to proceed
    assert "destructive" in out.splitlines()[_line_of(out, "registry.delete:Trust_1")]


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_never_overridable_guards_come_first_and_say_so(fmt: str) -> None:
    out = render_plan(planned("rotation-wrong-account")[0], fmt)
    fg006, fg009 = _line_of(out, "FG006"), _line_of(out, "FG009")
    assert fg006 < fg009
    assert "never overridable" in out.splitlines()[fg006]
    assert "never" not in out.splitlines()[fg009]
    wrong = render_plan(planned("wrong-registry")[0], fmt)
    assert "FG011" in wrong and "never overridable" in wrong


def test_upgrade_shows_the_hub_deploy_and_who_is_left_behind() -> None:
    out = _text("upgrade")
    assert "~ hub.images.hub_tag: v2.3.0 → v2.4.0" in out
    assert "~ hub.deploy_images:" in out
    assert "Left behind (paused trusts not moved by this upgrade):\n  Trust_3" in out
    assert "FG007" in out and "--fl-quiesced" in out
    md = _md("upgrade")
    assert "### Left behind" in md and "- `Trust_3`" in md


def test_kit_date_change_moves_every_active_trust() -> None:
    out = _text("kit-date")
    assert "~ hub.fl_kits.date: 2025-06-01 → 2025-09-01" in out
    for name in ("Trust_1", "Trust_2"):
        assert f"~ host.deliver_fl_kit:{name}:" in out
        assert f"2025-09-01, slot {name}" in out


def test_decommission_stops_revokes_and_deletes() -> None:
    out = _text("decommission")
    assert "- host.stop_stack:Trust_2:" in out
    assert re.search(r"! registry\.delete:Trust_2: .*\[destructive\]", out)
    assert out.index("host.stop_stack:Trust_2") < out.index("registry.delete:Trust_2")
    assert "~ trusts.Trust_2.state: active → decommissioned" in out


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_report_lists_unmanaged_unknown_and_advisories(fmt: str) -> None:
    out = render_plan(planned("report")[0], fmt)
    for title in ("Advisories", "Unmanaged", "Unknown"):
        assert title in out
    assert "trust:Old_1" in out and "Trust_3" in out
    assert "198.51.100.77" in out
    assert "No actions" in out
    # a ledger-only registration reads differently from a confirmed one
    assert "flipgitops' ledger only" in out and "confirmed by the hub" in out


def test_markdown_sections_in_order() -> None:
    out = _md("rotation-wrong-account")
    order = ["## flipgitops plan", "### ⛔ Guards", "| Status |", "### Manifest change",
             "### Changes (live → manifest)", "### Actions", "#### Wave 1",
             "### Registrations", "### Per-trust details", "### Action graph", "_Plan:"]
    positions = [out.index(s) for s in order]
    assert positions == sorted(positions), list(zip(order, positions, strict=True))
    assert out.count("<details>") == out.count("</details>") > 0


def test_markdown_hides_full_hashes() -> None:
    for name in WORLDS:
        out = _md(name)
        assert not HEX64.search(out), name


def test_mermaid_ids_are_unique_after_sanitising() -> None:
    acts = [Action(id=i, kind=ActionKind.HOST_VERIFY, target="T",
                   params={"expect_trust": "T"}) for i in ("a:b", "a.b", "a_b")]
    graph = mermaid(Plan(environment="dev", fingerprint="sha256:" + "0" * 64, actions=tuple(acts)))
    ids = re.findall(r"^\s+(n_\w+)\[", "\n".join(graph), re.M)
    assert len(ids) == len(set(ids)) == 3


def test_markdown_150_trust_onboarding_is_truncated_under_the_limit() -> None:
    m = manifest(150)
    o = observed_matching(m)
    for t in m.trusts:
        o = not_onboarded(o, m, t.name)
    p = plan(m, o, PlanOptions())
    out = render_plan_markdown(p, artifact_name="flipgitops-plan-dev")
    assert len(out) <= MAX_CHARS
    assert "Truncated to stay under 60,000 characters" in out
    assert "`flipgitops-plan-dev`" in out
    assert "actions" in out.split("Truncated", 1)[1].split("\n", 1)[0]
    assert out.count("<details>") == out.count("</details>")
    assert out.count("```") % 2 == 0
    assert "#### Wave 1" in out and f"_Plan: {len(p.actions)} actions" in out
    assert len(p.actions) > 1000


def test_markdown_drops_details_first_then_the_graph() -> None:
    p, change, _, _ = planned("onboarding-database")
    full = render_plan_markdown(p, manifest_change=change)
    assert "Truncated" not in full
    no_details = render_plan_markdown(p, manifest_change=change, limit=len(full) - 1)
    assert "### Per-trust details" not in no_details and "```mermaid" in no_details
    assert "per-trust details omitted" in no_details
    tiny = render_plan_markdown(p, manifest_change=change, limit=2000)
    assert len(tiny) <= 2000 and "```mermaid" not in tiny and "<details>" not in tiny
    assert "not shown:" in tiny and tiny.count("```") % 2 == 0


def test_empty_manifest_change_is_said_not_hidden() -> None:
    p, _, _, _ = planned("report")
    assert "Manifest change: none" in render_plan(p, "text", manifest_change=())
    assert "unchanged since the base" in render_plan(p, "markdown", manifest_change=())
    assert "Manifest change" not in render_plan(p, "text")


def test_unknown_format_is_an_error() -> None:
    from flipgitops.errors import FlipGitopsError

    with pytest.raises(FlipGitopsError, match="unknown output format 'yaml'"):
        render_plan(planned("report")[0], "yaml")


@pytest.mark.parametrize("fmt", ["text", "markdown"])
def test_notes_are_shown(fmt: str) -> None:
    from tests.builders import trust

    live = manifest(2)
    m = manifest([trust("Trust_1", state="paused", generation=2), trust("Trust_2")])
    p = plan(m, observed_matching(live))
    assert p.notes, "a paused trust's rotation leaves a note"
    out = render_plan(p, fmt)
    assert "Notes" in out
    assert "its host gets its new kit file when it is active again" in out


def test_per_trust_details_group_by_the_names_the_plan_knows() -> None:
    """A live name with dots (from the hub's registry) is grouped whole, not cut at a dot."""
    from flipgitops.core.render._common import per_trust
    from tests.builders import with_unmanaged_trust

    m = manifest(1)
    o = with_unmanaged_trust(observed_matching(m), m, "old.trust.1", "198.51.100.5")
    p = plan(m, o, PlanOptions(prune=True))
    groups = per_trust(p)
    assert "old.trust.1" in groups and "old" not in groups
    changes, actions = groups["old.trust.1"]
    # a live name that is not shaped like a trust name is shown, never handed to delete_trust
    assert changes and not any(a.kind == ActionKind.REGISTRY_DELETE for a in actions)
