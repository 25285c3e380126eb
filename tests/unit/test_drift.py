"""Drift findings: one test per kind of difference, each checking group, severity and target.

Built from hand-made manifests and observations (no AWS), starting from an observation
that matches the manifest exactly, which must report in sync.
"""

from __future__ import annotations

from typing import Any

import pytest

from flipgitops.core.drift import DriftReport, drift_report
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import (
    IngressRule,
    ObservedAllowlist,
    ObservedCognito,
    ObservedContainer,
    ObservedDatabase,
    ObservedHost,
    ObservedHub,
    ObservedSecret,
    ObservedService,
    ObservedState,
)

HASH = "ab" * 32
OTHER_HASH = "cd" * 32


def make_manifest(env: str = "dev", trusts: int = 2, **images: str) -> Manifest:
    data: dict[str, Any] = {
        "version": 1,
        "environment": env,
        "aws": {"account_id": "123456789012", "region": "eu-west-2"},
        "state": {"bucket": f"flip-gitops-state-{env}"},
        "hub": {"domain": "app.example.org",
                "images": {"hub_tag": "v2.3.0", "fl_tag": "v2.3.0", **images}},
        "trusts": [
            {"name": f"Trust_{i}", "kind": "on-prem", "public_ip": f"203.0.113.{10 + i}",
             "fl_kit_slot": f"Trust_{i}",
             "host": {"connection": "local", "flip_root": f"/tmp/flip{i}"}}
            for i in range(1, trusts + 1)
        ],
    }
    return Manifest.model_validate(data)


def matching(m: Manifest) -> ObservedState:
    live = [t for t in m.trusts if t.state != "decommissioned"]
    port = m.hub.fl_server.port
    svc_names = m.hub.ecs.services
    tags = {"flip_api": m.hub.images.hub_tag, "fl_api": m.hub.images.fl_tag,
            "fl_server": m.hub.images.fl_tag}
    hub = ObservedHub(
        account_id=m.aws.account_id,
        region=m.aws.region,
        allowlist=ObservedAllowlist(
            exists=True, group_name=m.hub.fl_server.security_group, group_id="sg-1",
            rules=tuple(IngressRule(cidr=f"{t.public_ip}/32", from_port=port, to_port=port,
                                    description=f"flipgitops:{t.name}") for t in live)),
        secret=ObservedSecret(exists=True, name=m.hub.secret,
                              trust_names=tuple(t.name for t in live),
                              trust_api_key_hashes={t.name: HASH for t in live},
                              aes_key_sha256=OTHER_HASH),
        services={role: ObservedService(role=role, name=getattr(svc_names, role), exists=True,
                                        tag=tag, image=f"ghcr.io/x/{role}:{tag}")
                  for role, tag in tags.items()},
        database=ObservedDatabase(
            exists=True, identifier=m.hub.database.identifier, status="available",
            deletion_protection=m.hub.database.deletion_protection,
            instance_class=m.hub.database.instance_class,
            engine_version=m.hub.database.engine_version,
            backup_retention_days=m.hub.database.backup_retention_days,
            generation=m.hub.database.generation),
        cognito=ObservedCognito(exists=True, name=m.hub.cognito.user_pool, user_pool_id="p1",
                                mfa=m.hub.cognito.mfa),
    )
    hosts = {
        t.name: ObservedHost(
            trust=t.name, reachable=True, flip_root_present=True, docker_present=True,
            kit_present=True, env_file_present=True, env_file_mode="0600",
            trust_api_key_sha256=HASH, aes_key_sha256=OTHER_HASH, trust_name=t.name,
            docker_tag=m.hub.images.hub_tag, docker_fl_tag=m.hub.images.fl_tag,
            containers=(
                ObservedContainer(service="trust-api", image="x", tag=m.hub.images.hub_tag,
                                  state="running"),
                ObservedContainer(service="fl-client", image="x", tag=m.hub.images.fl_tag,
                                  state="running"),
            ),
            polling_ok=True)
        for t in live if t.host is not None and t.kind != "tre"
    }
    return ObservedState(environment=m.environment, hub=hub, hosts=hosts)


def with_hub(o: ObservedState, **update: Any) -> ObservedState:
    return o.model_copy(update={"hub": o.hub.model_copy(update=update)})


def with_host(o: ObservedState, name: str, **update: Any) -> ObservedState:
    hosts = dict(o.hosts)
    hosts[name] = hosts[name].model_copy(update=update)
    return o.model_copy(update={"hosts": hosts})


def only(report: DriftReport) -> tuple[str, str, str]:
    assert len(report.findings) == 1, report.findings
    f = report.findings[0]
    return f.group, f.severity, f.target


def test_matching_observation_is_in_sync() -> None:
    m = make_manifest()
    report = drift_report(m, matching(m))
    assert report.in_sync
    assert report.findings == ()


def test_prod_database_protection_off_is_critical() -> None:
    m = make_manifest("prod")
    o = matching(m)
    o = with_hub(o, database=o.hub.database.model_copy(update={"deletion_protection": False}))
    assert only(drift_report(m, o)) == ("changed", "critical", "database:flip-database")


def test_non_prod_protection_off_is_medium() -> None:
    m = make_manifest("dev")
    o = matching(m)
    o = with_hub(o, database=o.hub.database.model_copy(update={"deletion_protection": False}))
    assert only(drift_report(m, o)) == ("changed", "medium", "database:flip-database")


@pytest.mark.parametrize("field", ["account_id", "region"])
def test_account_or_region_mismatch_is_critical(field: str) -> None:
    m = make_manifest()
    o = with_hub(matching(m), **{field: "999999999999" if field == "account_id" else "us-east-1"})
    assert only(drift_report(m, o)) == ("changed", "critical", f"aws.{field}")


def test_hub_image_tag_differs_is_high() -> None:
    m = make_manifest()
    o = matching(m)
    services = dict(o.hub.services)
    services["flip_api"] = services["flip_api"].model_copy(update={"tag": "v2.2.0"})
    report = drift_report(m, with_hub(o, services=services))
    assert only(report) == ("changed", "high", "service:flip-api")
    assert "v2.2.0" in report.findings[0].message


def test_extra_ingress_rule_is_unmanaged_high() -> None:
    m = make_manifest()
    o = matching(m)
    rogue = IngressRule(cidr="198.51.100.99/32", from_port=8002, to_port=8002,
                        description="opened by hand")
    al = o.hub.allowlist.model_copy(update={"rules": (*o.hub.allowlist.rules, rogue)})
    assert only(drift_report(m, with_hub(o, allowlist=al))) == (
        "unmanaged", "high", "ingress:198.51.100.99/32")


def test_rule_on_another_port_is_not_the_allowlist() -> None:
    m = make_manifest()
    o = matching(m)
    https = IngressRule(cidr="0.0.0.0/0", from_port=443, to_port=443)
    al = o.hub.allowlist.model_copy(update={"rules": (*o.hub.allowlist.rules, https)})
    assert drift_report(m, with_hub(o, allowlist=al)).in_sync


def test_trust_ip_differs_is_changed_high() -> None:
    m = make_manifest()
    o = matching(m)
    rules = tuple(r.model_copy(update={"cidr": "198.51.100.7/32"})
                  if r.managed_trust == "Trust_1" else r for r in o.hub.allowlist.rules)
    al = o.hub.allowlist.model_copy(update={"rules": rules})
    report = drift_report(m, with_hub(o, allowlist=al))
    assert only(report) == ("changed", "high", "trust:Trust_1")
    assert "198.51.100.7/32" in report.findings[0].message


def test_trust_without_rule_is_missing() -> None:
    m = make_manifest()
    o = matching(m)
    rules = tuple(r for r in o.hub.allowlist.rules if r.managed_trust != "Trust_2")
    al = o.hub.allowlist.model_copy(update={"rules": rules})
    assert only(drift_report(m, with_hub(o, allowlist=al))) == ("missing", "high", "trust:Trust_2")


def test_trust_in_secret_not_in_manifest_is_unmanaged_high() -> None:
    m = make_manifest()
    o = matching(m)
    sec = o.hub.secret.model_copy(update={
        "trust_names": (*o.hub.secret.trust_names, "Trust_9"),
        "trust_api_key_hashes": {**o.hub.secret.trust_api_key_hashes, "Trust_9": HASH}})
    assert only(drift_report(m, with_hub(o, secret=sec))) == ("unmanaged", "high", "trust:Trust_9")


def test_trust_missing_from_secret_is_missing_high() -> None:
    m = make_manifest()
    o = matching(m)
    sec = o.hub.secret.model_copy(update={
        "trust_names": ("Trust_1",), "trust_api_key_hashes": {"Trust_1": HASH}})
    assert only(drift_report(m, with_hub(o, secret=sec))) == ("missing", "high", "trust:Trust_2")


def test_unreachable_host_is_unknown_never_in_sync() -> None:
    m = make_manifest()
    o = with_host(matching(m), "Trust_1", reachable=False, reason="ssh timeout")
    report = drift_report(m, o)
    assert only(report) == ("unknown", "medium", "host:Trust_1")
    assert not report.in_sync
    assert "ssh timeout" in report.findings[0].message


def test_host_facts_not_gathered_is_unknown() -> None:
    m = make_manifest()
    o = matching(m)
    o = o.model_copy(update={"hosts": {k: v for k, v in o.hosts.items() if k != "Trust_2"}})
    assert only(drift_report(m, o)) == ("unknown", "medium", "host:Trust_2")


def test_tre_trust_needs_no_host_facts() -> None:
    m = make_manifest(trusts=0)
    tre = {"name": "Tre_1", "kind": "tre", "public_ip": "198.51.100.20", "fl_kit_slot": "Tre_1"}
    m = Manifest.model_validate({**m.model_dump(), "trusts": [tre]})
    assert drift_report(m, matching(m)).in_sync


def test_host_key_differs_from_hub_hash_is_high() -> None:
    m = make_manifest()
    o = with_host(matching(m), "Trust_2", trust_api_key_sha256=OTHER_HASH)
    report = drift_report(m, o)
    assert only(report) == ("changed", "high", "host:Trust_2")
    assert OTHER_HASH not in report.findings[0].message
    assert HASH not in report.findings[0].message


def test_previous_hash_during_rotation_is_accepted() -> None:
    m = make_manifest()
    o = matching(m)
    o = with_hub(o, secret=o.hub.secret.model_copy(
        update={"previous_key_hashes": {"Trust_2": OTHER_HASH}}))
    o = with_host(o, "Trust_2", trust_api_key_sha256=OTHER_HASH)
    assert drift_report(m, o).in_sync


@pytest.mark.parametrize("fact", ["kit_present", "flip_root_present", "docker_present"])
def test_missing_host_layout_is_medium(fact: str) -> None:
    m = make_manifest()
    o = with_host(matching(m), "Trust_1", **{fact: False})
    assert only(drift_report(m, o)) == ("missing", "medium", "host:Trust_1")


def test_stack_not_running_is_missing_medium() -> None:
    m = make_manifest()
    o = with_host(matching(m), "Trust_1", containers=())
    assert only(drift_report(m, o)) == ("missing", "medium", "host:Trust_1")


def test_fl_client_on_other_tag_is_high() -> None:
    m = make_manifest()
    o = with_host(matching(m), "Trust_1", containers=(
        ObservedContainer(service="trust-api", image="x", tag="v2.3.0", state="running"),
        ObservedContainer(service="fl-client", image="x", tag="v2.2.0", state="running")))
    assert only(drift_report(m, o)) == ("changed", "high", "host:Trust_1")


def test_env_file_mode_too_open_is_high() -> None:
    m = make_manifest()
    o = with_host(matching(m), "Trust_1", env_file_mode="0644")
    assert only(drift_report(m, o)) == ("changed", "high", "host:Trust_1")


@pytest.mark.parametrize(
    ("field", "value", "severity"),
    [("instance_class", "db.t3.large", "low"), ("backup_retention_days", 1, "low"),
     ("engine_version", "16.3", "medium")],
)
def test_database_settings_are_low_or_medium(field: str, value: object, severity: str) -> None:
    m = make_manifest()
    o = matching(m)
    o = with_hub(o, database=o.hub.database.model_copy(update={field: value}))
    assert only(drift_report(m, o)) == ("changed", severity, "database:flip-database")


def test_cognito_mfa_differs_is_medium() -> None:
    m = make_manifest()
    o = matching(m)
    o = with_hub(o, cognito=o.hub.cognito.model_copy(update={"mfa": "optional"}))
    assert only(drift_report(m, o)) == ("changed", "medium", "cognito:flip-user-pool")


def test_missing_service_and_database() -> None:
    m = make_manifest()
    o = matching(m)
    services = dict(o.hub.services)
    services["fl_server"] = services["fl_server"].model_copy(update={"exists": False})
    o = with_hub(o, services=services,
                 database=ObservedDatabase(exists=False, identifier="flip-database"))
    got = {(f.group, f.severity, f.target) for f in drift_report(m, o).findings}
    assert got == {("missing", "high", "service:fl-server-net-1"),
                   ("missing", "high", "database:flip-database")}


def test_findings_are_ordered_by_group_then_severity() -> None:
    m = make_manifest("prod")
    o = matching(m)
    o = with_hub(o, database=o.hub.database.model_copy(update={"deletion_protection": False,
                                                               "instance_class": "db.x"}))
    o = with_host(o, "Trust_1", reachable=False)
    groups = [(f.group, f.severity) for f in drift_report(m, o).findings]
    assert groups == [("changed", "critical"), ("changed", "low"), ("unknown", "medium")]


def test_stale_rule_left_after_ip_change_is_unmanaged() -> None:
    m = make_manifest()
    o = matching(m)
    stale = IngressRule(cidr="198.51.100.7/32", from_port=8002, to_port=8002,
                        description="flipgitops:Trust_1")
    al = o.hub.allowlist.model_copy(update={"rules": (*o.hub.allowlist.rules, stale)})
    report = drift_report(m, with_hub(o, allowlist=al))
    assert only(report) == ("unmanaged", "high", "ingress:198.51.100.7/32")
    assert "labelled for Trust_1" in report.findings[0].message


def test_all_traffic_rule_opens_the_fl_port() -> None:
    m = make_manifest()
    o = matching(m)
    wide = IngressRule(cidr="0.0.0.0/0", from_port=-1, to_port=-1, protocol="-1")
    al = o.hub.allowlist.model_copy(update={"rules": (*o.hub.allowlist.rules, wide)})
    assert only(drift_report(m, with_hub(o, allowlist=al))) == ("unmanaged", "high",
                                                                "ingress:0.0.0.0/0")


def test_decommissioned_trust_still_registered_is_unmanaged() -> None:
    m = make_manifest()
    o = matching(m)
    trusts = [t.model_copy(update={"state": "decommissioned"}) if t.name == "Trust_2" else t
              for t in m.trusts]
    m2 = m.model_copy(update={"trusts": trusts})
    got = {(f.group, f.severity, f.target) for f in drift_report(m2, o).findings}
    assert got == {("unmanaged", "high", "trust:Trust_2"),
                   ("unmanaged", "high", "ingress:203.0.113.12/32"),
                   ("unmanaged", "medium", "host:Trust_2")}


def test_terraform_rule_of_a_moved_trust_is_its_ip_change() -> None:
    """Terraform names rules by IP only; the allowlist record says the old rule was
    Trust_2's, so drift reports Trust_2's IP change rather than a stranger's rule."""
    from tests.builders import manifest, observed_matching, trust

    live = manifest(2, allowlist="terraform")
    m = manifest([trust("Trust_1"), trust("Trust_2", ip="198.51.100.9")], allowlist="terraform")
    o = observed_matching(live)
    report = drift_report(m, o)
    assert [(f.group, f.target) for f in report.by_group("changed")] == [("changed",
                                                                           "trust:Trust_2")]
    assert "203.0.113.12/32" in report.by_group("changed")[0].message
    assert not report.by_group("unmanaged")
    unrecorded = o.model_copy(update={"hub": o.hub.model_copy(update={
        "allowlist": o.hub.allowlist.model_copy(update={"recorded_owners": {}})})})
    groups = {(f.group, f.target) for f in drift_report(m, unrecorded).findings}
    assert {("missing", "trust:Trust_2"), ("unmanaged", "ingress:203.0.113.12/32")} <= groups
