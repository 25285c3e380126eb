"""The JSON plan is the artifact `apply --plan` reads: it round-trips, re-renders to the same
bytes, carries no full hash in its report-only ``changes`` (docs/architecture.md §7: a plan
file holds at most ``sha256:<12 hex>``), and a plan file that is not one we wrote is refused
with one line per problem naming the action, never a traceback."""

from __future__ import annotations

import json
import re

import pytest

from flipgitops.core.planner import plan
from flipgitops.core.render import PlanFileError, load_manifest_change, load_plan_json, render_plan
from flipgitops.model.plan import FORMAT_VERSION, Change, Plan
from tests.builders import manifest, observed_matching, with_host, with_secret
from tests.unit.render.worlds import WORLDS, planned

HEX64 = re.compile(r"[0-9a-f]{64}")


def _short(value: object) -> object:
    if isinstance(value, str) and HEX64.fullmatch(value):
        return f"sha256:{value[:12]}"
    if isinstance(value, dict):
        return {k: _short(v) for k, v in value.items()}
    return value


def _as_written(p: Plan) -> Plan:
    """``p`` with the full hashes its changes quote shortened, as the plan file holds it."""
    changes = tuple(Change(op=c.op, path=c.path, before=_short(c.before), after=_short(c.after))
                    for c in p.changes)
    return p.model_copy(update={"changes": changes})


def test_most_worlds_quote_no_hash_so_their_plans_round_trip_exactly() -> None:
    exact = [n for n in WORLDS if _as_written(planned(n)[0]) == planned(n)[0]]
    assert len(exact) >= len(WORLDS) - 1, exact  # kit-date quotes the kit fingerprints


@pytest.mark.parametrize("name", sorted(WORLDS))
def test_json_round_trips_and_re_renders_byte_identical(name: str) -> None:
    p, change, _, _ = planned(name)
    out = render_plan(p, "json", manifest_change=change)
    data = json.loads(out)
    assert data["format_version"] == FORMAT_VERSION == "1"
    assert list(data) == sorted(data), "stable key order"
    assert data["summary"] == {"blocked": p.blocked, "in_sync": p.in_sync,
                               "actions": len(p.actions), "waves": len(p.waves)}
    report_only = {k: data.pop(k) for k in ("summary", "manifest_change")}
    assert report_only["manifest_change"] == [c.model_dump(mode="json") for c in change]
    written = _as_written(p)
    assert Plan.model_validate_json(json.dumps(data)) == written
    loaded = load_plan_json(out)
    assert loaded == written
    # everything apply relies on is exact
    assert (loaded.fingerprint, loaded.actions, loaded.waves, loaded.violations) == (
        p.fingerprint, p.actions, p.waves, p.violations)
    assert render_plan(loaded, "json", manifest_change=load_manifest_change(out)) == out
    assert load_plan_json(out.encode()) == written, "bytes as read from an artifact file"
    assert not HEX64.search(json.dumps(data["changes"]))


def _hash_change_plan() -> Plan:
    """Secret era: a host's kit file and FLIP_API hold other key hashes than the ledger."""
    m = manifest(2, registry="secret")
    o = observed_matching(m)
    kf = o.hosts["Trust_1"].kit_file
    o = with_host(o, "Trust_1", kit_file=kf.model_copy(
        update={"secret_sha256": {**kf.secret_sha256, "TRUST_API_KEY": "0" * 64}}))
    hashes = dict(o.hub.secret.trust_api_key_hashes or {})
    o = with_secret(o, trust_api_key_hashes={**hashes, "Trust_2": "1" * 64})
    return plan(m, o)


def test_plan_json_shortens_key_hashes_in_changes() -> None:
    p = _hash_change_plan()
    values = [v for c in p.changes for v in (c.before, c.after) if isinstance(v, str)]
    short = [v for v in values if v.startswith("sha256:")]
    assert short, "the world must put key hashes into the plan's changes"
    assert not any(HEX64.fullmatch(v) for v in values)  # core/diff.py shortened them
    out = render_plan(p, "json")
    assert not HEX64.search(out.replace(p.fingerprint, ""))
    loaded = load_plan_json(out)
    assert loaded == p  # exact round trip
    assert render_plan(loaded, "json") == out


# --- plan files we did not write ---------------------------------------------------------------


def _plan_data() -> dict[str, object]:
    p, _, _, _ = planned("onboarding-database")
    data: dict[str, object] = json.loads(render_plan(p, "json"))
    return data


def _refused(data: object) -> str:
    text = data if isinstance(data, str | bytes) else json.dumps(data)
    with pytest.raises(PlanFileError) as info:
        load_plan_json(text)
    message = str(info.value)
    assert "Traceback" not in message and "errors.pydantic.dev" not in message
    assert "fix: regenerate it with `flipgitops plan --out FILE`" in message
    return message


def test_unknown_action_kind_names_the_action() -> None:
    data = _plan_data()
    actions = data["actions"]
    assert isinstance(actions, list)
    actions[0]["kind"] = "hub.deplyo_image"
    message = _refused(data)
    assert ("action #1 (id 'registry.register:Trust_2', kind 'hub.deplyo_image'): unknown "
            "action kind 'hub.deplyo_image'") in message
    assert "hub.deploy_images" in message, "lists the kinds it knows"
    assert len(message.splitlines()) == 3


def test_missing_and_mistyped_params_name_the_action_and_the_param() -> None:
    data = _plan_data()
    actions = data["actions"]
    assert isinstance(actions, list)
    del actions[0]["params"]["code"]
    actions[0]["params"]["credentials_generation"] = "2"  # strict: a string is not a number
    actions[2]["params"]["shell"] = "rm -rf /"
    message = _refused(data)
    lines = message.splitlines()
    assert lines[0] == "plan file is not a valid flipgitops plan (3 problems):"
    name = "action #1 (id 'registry.register:Trust_2', kind 'registry.register')"
    assert f"  {name}: params.code: missing (required)" in lines
    assert any(ln.startswith(f"  {name}: params.credentials_generation: ") and "'2'" in ln
               for ln in lines), lines
    assert ("  action #3 (id 'host.provision:Trust_2', kind 'host.provision'): params.shell: "
            "unexpected key (not part of this model)") in lines


def test_other_shapes_are_refused_one_line_each() -> None:
    data = _plan_data()
    actions = data["actions"]
    assert isinstance(actions, list)
    actions[1]["depends_on"] = "registry.register:Trust_2"  # a string, not a list
    message = _refused(data)
    assert "action #2 (id 'allowlist.update', kind 'allowlist.update'): depends_on:" in message

    data = _plan_data()
    actions = data["actions"]
    assert isinstance(actions, list)
    actions[1]["depends_on"] = ["host.nowhere:Trust_9"]
    assert "depends on 'host.nowhere:Trust_9', which the plan does not hold" in _refused(data)

    data = _plan_data()
    del data["fingerprint"]
    assert "fingerprint: missing (required)" in _refused(data)


@pytest.mark.parametrize(("text", "expected"), [
    ("{not json", "not JSON: Expecting property name enclosed in double quotes at line 1"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "the file is binary"),
    (b"\xff\xfe{}", "not UTF-8 text (byte 0xff at offset 0)"),
    ('{"format_version": "1", "environment": "\\ud800"}', "lone surrogate"),
    ('{"format_version": "1", "environment": "dev\ud800"}', "lone surrogate at offset"),
    ('{"format_version": "2"}', "format_version is '2'; this flipgitops reads '1'"),
    ('{"environment": "dev"}', "format_version is missing"),
    ('{"format_version": "1", "format_version": "1"}', "key 'format_version' appears twice"),
    ("[1, 2]", "the JSON is a list, not an object"),
    ("[" * 100_000, "nested too deeply"),
])
def test_unreadable_plan_files_are_refused(text: str | bytes, expected: str) -> None:
    assert expected in _refused(text)


def test_values_from_the_file_are_printable_in_the_message() -> None:
    data = _plan_data()
    actions = data["actions"]
    assert isinstance(actions, list)
    actions[0]["kind"] = "hub.x\x1b[2J\nFAKE LINE"
    message = _refused(data)
    assert "\x1b" not in message and "\nFAKE LINE" not in message
