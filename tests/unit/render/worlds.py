"""Real plans to render: (manifest, observed) worlds built with tests/builders.py and
planned by the real planner, one per flow a reviewer meets (docs/architecture.md §5)."""

from __future__ import annotations

from collections.abc import Callable

from flipgitops.core.drift import DriftReport, drift_report
from flipgitops.core.manifest_change import manifest_change
from flipgitops.core.planner import plan
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Change, Plan, PlanOptions
from tests.builders import (
    manifest,
    not_onboarded,
    observed_matching,
    trust,
    unreachable,
    with_account,
    with_host,
    with_registry_era,
    with_unmanaged_trust,
)

World = tuple[Manifest, ObservedState, Manifest]  # desired, observed, the base manifest


def onboarding(registry: str) -> World:
    m = manifest(2, registry=registry)
    return m, not_onboarded(observed_matching(m), m, "Trust_2"), manifest(1, registry=registry)


def rotation_database() -> World:
    live = manifest(2)
    m = manifest([trust("Trust_1", generation=2), trust("Trust_2")])
    return m, observed_matching(live), live


def rotation_wrong_account() -> World:
    """FG006 (never overridable) and FG009 (overridable) in one plan."""
    m, o, live = rotation_database()
    return m, with_account(o, "999999999999"), live


def wrong_registry() -> World:
    """FG011: the planner plans nothing for trusts on a hub whose registry is another."""
    m, o, live = rotation_database()
    return m, with_registry_era(o, "secret", "FLIP_API has trust_api_key_hashes"), live


def upgrade() -> World:
    trusts = [trust("Trust_1"), trust("Trust_2"), trust("Trust_3", state="paused")]
    live = manifest(trusts)
    return manifest(trusts, hub_tag="v2.4.0", fl_tag="v2.4.0"), observed_matching(live), live


def kit_date_change() -> World:
    live = manifest(2)
    m = manifest(2, kit_date="2025-09-01")
    o = observed_matching(live)
    kits = observed_matching(m).hub.kits
    o = o.model_copy(update={"hub": o.hub.model_copy(update={"kits": kits})})
    return m, o, live


def decommission() -> World:
    live = manifest(2)
    return (manifest([trust("Trust_1"), trust("Trust_2", state="decommissioned")]),
            observed_matching(live), live)


def report() -> World:
    """Nothing changes in the manifest, but live state has an unmanaged trust, an
    unreachable host and an egress IP that is not the manifest's (an advisory)."""
    m = manifest(3)
    o = observed_matching(m)
    o = unreachable(o, "Trust_3", "ssh: connect to host trust3 port 22: timed out")
    o = with_unmanaged_trust(o, m, "Old_1", "198.51.100.5")
    o = with_host(o, "Trust_2", egress_ip="198.51.100.77")
    return m, o, m


WORLDS: dict[str, Callable[[], World]] = {
    "onboarding-database": lambda: onboarding("database"),
    "onboarding-secret": lambda: onboarding("secret"),
    "rotation-database": rotation_database,
    "rotation-wrong-account": rotation_wrong_account,
    "wrong-registry": wrong_registry,
    "upgrade": upgrade,
    "kit-date": kit_date_change,
    "decommission": decommission,
    "report": report,
}


def planned(name: str, options: PlanOptions | None = None
            ) -> tuple[Plan, tuple[Change, ...], DriftReport, ObservedState]:
    m, o, base = WORLDS[name]()
    return plan(m, o, options), manifest_change(base, m), drift_report(m, o), o
