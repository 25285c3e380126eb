"""`status` over built worlds: healthy is healthy; each of FLIP's real failure signals fails
and names where; the three renderings say the same thing."""

from __future__ import annotations

import json

from flipgitops.core.status import HealthAnswer, StatusReport, status_report
from flipgitops.model.observed import AdminTrust, ObservedAdminApi, ObservedState
from flipgitops.ui.report import render_status
from tests.builders import (
    _hub,
    manifest,
    observed_matching,
    with_allowlist,
    with_container,
    with_secret,
    with_service,
    without_rules_for,
)

OK = HealthAnswer(url="https://dev.flip.example.org/api/health", status=200,
                  detail="HTTP 200, status 'ok'")
M = manifest(2)


def report(o: ObservedState, health: HealthAnswer = OK) -> StatusReport:
    return status_report(M, o, health)


def failing(r: StatusReport) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in r.rows:
        if row.state == "fail":
            out.setdefault(row.section, []).append(row.check)
    return out


def test_a_world_in_sync_is_healthy_in_every_format() -> None:
    r = report(observed_matching(M))
    assert r.healthy and failing(r) == {}, r.rows
    assert {row.section for row in r.rows} == {"hub", "Trust_1", "Trust_2"}
    text = render_status(r, "text")
    assert text.splitlines()[-1].startswith("healthy (")
    assert json.loads(render_status(r, "json"))["healthy"] is True
    assert "healthy" in render_status(r, "markdown").splitlines()[0]


def test_a_stopped_trust_api_fails_its_stack_and_its_authentication() -> None:
    o = with_container(observed_matching(M), "Trust_2", "trust-api", state="exited")
    r = report(o)
    assert not r.healthy and r.failing == ("Trust_2",)
    assert failing(r) == {"Trust_2": ["stack", "authentication"]}
    stack = next(row for row in r.rows if row.section == "Trust_2" and row.check == "stack")
    assert "not running: trust-api" in stack.detail
    line = render_status(r, "text").splitlines()[-1]
    assert line.startswith("UNHEALTHY: Trust_2 (stack, authentication)")
    data = json.loads(render_status(r, "json"))
    assert data["healthy"] is False and data["failing"] == ["Trust_2"]
    assert data["counts"]["fail"] == 2
    assert "Trust\\_2" in render_status(r, "markdown").splitlines()[0]


def test_the_hubs_own_failures_fail_the_hub() -> None:
    down = report(observed_matching(M), HealthAnswer(url="https://x/api/health", status=None,
                                                    detail="could not reach https://x"))
    assert failing(down) == {"hub": ["API health"]}
    drift = report(with_secret(observed_matching(M), internal_key_hash="0" * 64))
    assert failing(drift) == {"hub": ["secret FLIP_API"]}
    assert "401" in next(r.detail for r in drift.rows if r.check == "secret FLIP_API")
    unstable = report(with_service(observed_matching(M), "fl_server", stable=False))
    assert failing(unstable) == {"hub": ["fl-server-net-1"]}
    # Stable on another version is drift to deploy, not an outage: a warning.
    behind = report(with_service(observed_matching(M), "flip_api", tag="v2.2.0"))
    assert behind.healthy
    assert any(r.state == "warn" and "v2.2.0" in r.detail for r in behind.rows)


def test_a_trust_without_its_rule_cannot_reach_the_fl_server() -> None:
    trust_2 = M.trust("Trust_2")
    assert trust_2 is not None
    r = report(without_rules_for(observed_matching(M), trust_2.public_ip))
    assert failing(r) == {"Trust_2": ["allowlist"]}


def test_a_nearly_full_security_group_warns_a_full_one_fails() -> None:
    near = report(with_allowlist(observed_matching(M), other_rules=52, rule_quota=60))
    sg = next(r for r in near.rows if r.check == "NLB security group")
    assert near.healthy and sg.state == "warn" and "55 of 60" in sg.detail
    full = report(with_allowlist(observed_matching(M), other_rules=58, rule_quota=60))
    assert failing(full) == {"hub": ["NLB security group"]}


def test_the_hubs_heartbeat_record_counts_when_an_admin_token_is_configured() -> None:
    o = observed_matching(M)  # observed_at 2026-12-01T00:00:00+00:00
    admin = ObservedAdminApi(queried=True, ok=True, trusts=(
        AdminTrust(name="Trust_1", last_heartbeat="2026-11-30T23:59:50.000Z"),
        AdminTrust(name="Trust_2", last_heartbeat="2026-11-30T23:58:00.000Z")))
    r = report(_hub(o, admin=admin))
    assert failing(r) == {"Trust_2": ["heartbeat"]}
    detail = next(x.detail for x in r.rows if x.section == "Trust_2" and x.check == "heartbeat")
    assert "120s ago" in detail and "offline" in detail
