"""The observed state (v2) and drift reports in every format: every part of the observation
is shown, never a secret (hashes only, shortened), never ``None``; drift shows each finding's
fix."""

from __future__ import annotations

import json
import re

import pytest

from flipgitops.core.drift import DriftReport
from flipgitops.core.render import render_drift, render_observed
from flipgitops.model.observed import (
    AdminTrust,
    IngressRule,
    ObservedAdminApi,
    ObservedState,
    ObservedTrustApi,
)
from tests.builders import add_rule, manifest, with_host, with_secret
from tests.unit.render.worlds import planned

HEX64 = re.compile(r"[0-9a-fA-F]{64}")
FORMATS = ("text", "markdown", "json")


def _observed() -> ObservedState:
    """The report world's observation, with admin-API rows, a Terraform rule, a rejected
    trust-api and the secret era's key hashes, so every section has something to show."""
    _, _, _, o = planned("report")
    tf_rule = "FL Server/Admin NLB from on-prem Trust (198.51.100.9)"
    o = add_rule(o, IngressRule(cidr="198.51.100.9/32", from_port=8002, to_port=8002,
                                description=tf_rule))
    o = o.model_copy(update={"hub": o.hub.model_copy(update={"admin": ObservedAdminApi(
        queried=True, ok=True, trusts=(AdminTrust(name="Trust_1", code="T001", region="London"),
                                       AdminTrust(name="Old_1", disabled=True)))})})
    o = with_secret(o, trust_api_key_hashes={"Trust_1": "a" * 64})
    return with_host(o, "Trust_1", trust_api=ObservedTrustApi(
        unauthorized=True, last_error="Unexpected status 401 polling for tasks"))


@pytest.mark.parametrize("fmt", FORMATS)
def test_observed_never_shows_a_full_hash(fmt: str) -> None:
    o = _observed()
    dumped = o.model_dump_json()
    full = set(HEX64.findall(dumped))
    assert len(full) > 20, "the observation must carry hashes for this test to mean anything"
    out = render_observed(o, fmt)
    assert not HEX64.search(out)
    for value in list(full)[:50]:
        assert f"sha256:{value[:12].lower()}" in out or value[:12] not in out


def test_observed_text_shows_every_v2_part_and_never_none() -> None:
    o = _observed()
    out = render_observed(o, "text")
    assert "None" not in out and "\x1b" not in out
    for needle in ("trust registry    database (builders)",  # the registry era and why
                   "Written by", "flipgitops (Trust_1)", "not flipgitops'",
                   "FL participant kits:", "flipdev-aicentre",
                   "flipgitops' ledger (its own record, not the hub's):",
                   "Hub admin API (GET /api/admin/trusts):", "London",
                   "FLIP release on the controller:",
                   "Host Trust_1:", "rejected by the hub: Unexpected status 401 polling for tasks",
                   "Host Trust_2:", "198.51.100.77",  # egress
                   "Host Trust_3:", "ssh: connect to host trust3 port 22: timed out",
                   "sha256:aaaaaaaaaaaa"):
        assert needle in out, needle
    assert "not measured" in out  # reachability of the hub/FL server was not measured


def test_observed_markdown_is_tables_and_collapsed_hosts() -> None:
    out = render_observed(_observed(), "markdown")
    assert "### NLB allowlist" in out and "| CIDR | Ports | Written by | Description |" in out
    assert out.count("<details><summary>Host: ") == 3
    assert out.count("<details>") == out.count("</details>")


def test_observed_json_is_the_state_with_short_hashes() -> None:
    o = _observed()
    data = json.loads(render_observed(o, "json"))
    assert data["format_version"] == "1"
    assert data["hub"]["secret"]["trust_api_key_hashes"] == {"Trust_1": "sha256:aaaaaaaaaaaa"}
    assert data["hosts"]["Trust_3"]["reachable"] is False
    assert data["hub"]["admin"]["trusts"][1]["name"] == "Old_1"


@pytest.mark.parametrize("fmt", FORMATS)
def test_drift_shows_groups_severities_and_fixes(fmt: str) -> None:
    _, _, report, _ = planned("report")
    assert {f.group for f in report.findings} >= {"unmanaged", "unknown", "changed"}
    out = render_drift(report, fmt)
    for f in report.findings:
        if fmt == "json":
            continue
        fix = f.fix if fmt == "text" else f.fix.replace("_", "\\_")
        assert fix in out, f.fix
    if fmt == "json":
        data = json.loads(out)
        assert data["in_sync"] is False and data["groups"]["unknown"] == 1
        assert [f["fix"] for f in data["findings"]] == [f.fix for f in report.findings]
    elif fmt == "text":
        assert "fix: restore SSH access" in out and "None" not in out
        assert out.index("Changed:") < out.index("Unmanaged") < out.index("Unknown")
    else:
        assert "| Severity | Target | Finding | Fix |" in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_drift_in_sync(fmt: str) -> None:
    out = render_drift(DriftReport(environment="dev"), fmt)
    assert ("in sync" in out.lower()) or json.loads(out)["in_sync"] is True


def test_drift_markdown_stays_under_the_limit() -> None:
    from flipgitops.core.drift import drift_report
    from tests.builders import observed_matching, unreachable

    m = manifest(400)
    o = observed_matching(m)
    for t in m.trusts:
        o = unreachable(o, t.name, "ssh: timed out " + "x" * 200)
    out = render_drift(drift_report(m, o), "markdown")
    assert len(out) <= 60_000 and "Truncated" in out
    assert out.rstrip().endswith("_Drift: 400 findings._")


def test_an_observation_of_nothing_reads_without_none() -> None:
    """Everything absent (a hub not deployed yet, an unreadable ledger): every field that
    can be None is, and the report still says "(none)" or "not found", never ``None``."""
    from flipgitops.model.observed import (
        ObservedAllowlist,
        ObservedCognito,
        ObservedDatabase,
        ObservedHost,
        ObservedHub,
        ObservedLedger,
        ObservedRegistryEra,
        ObservedSecret,
        ObservedService,
    )

    hub = ObservedHub(
        account_id=None, region=None,
        allowlist=ObservedAllowlist(exists=False, group_name="flip-fl-server-nlb"),
        secret=ObservedSecret(exists=False, name="FLIP_API"),
        services={"flip_api": ObservedService(role="flip_api", name="flip-api", exists=False)},
        database=ObservedDatabase(exists=False, identifier="flip-database"),
        cognito=ObservedCognito(exists=False, name="flip-user-pool"),
        registry=ObservedRegistryEra(era="database", evidence="no TRUST_NAMES"))
    o = ObservedState(environment="dev", hub=hub,
                      ledger=ObservedLedger(readable=False, error="AccessDenied"),
                      hosts={"Trust_1": ObservedHost(trust="Trust_1", reachable=True)})
    for fmt in ("text", "markdown"):
        out = render_observed(o, fmt)
        assert "None" not in out, fmt
        assert "AccessDenied" in out and "(not found)" in out
