"""Issue 19, "wrong results": a manifest change that only reaches trust hosts through their
kit file (the hub's domain, the image registry) is planned (the kit file rewritten, the
stack restarted on it) and shown by drift, and the kit file written carries the new value;
the real planner, drift and kit-file renderer run on a hand-built world (tests/builders.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from flipgitops.core import kitfile
from flipgitops.core.drift import drift_report
from flipgitops.core.planner import plan
from flipgitops.model.manifest import Manifest
from tests.builders import manifest, observed_matching, simulate_apply
from tests.unit.hosts.hostworld import make_aes, make_kit, make_local


def _changed(m: Manifest, **hub: Any) -> Manifest:
    images = hub.pop("images", None)
    new_hub = m.hub.model_copy(update=hub)
    if images:
        new_hub = new_hub.model_copy(update={"images": m.hub.images.model_copy(update=images)})
    return m.model_copy(update={"hub": new_hub})


@pytest.mark.parametrize(("change", "key", "value"), [
    ({"domain": "hub2.flip.example.org"}, "CENTRAL_HUB_API_URL",
     "https://hub2.flip.example.org/api"),
    ({"images": {"registry": "registry.example.org/flip"}}, "DOCKER_REGISTRY",
     "registry.example.org/flip/"),
])
def test_a_hub_value_in_the_kit_file_is_planned_applied_and_drift(
        change: dict[str, Any], key: str, value: str) -> None:
    before = manifest(trusts=2)
    live = observed_matching(before)  # every host's kit file holds the old value
    after = _changed(before, **change)
    p = plan(after, live)
    kinds = {a.id for a in p.actions}
    assert {"host.write_kit_file:Trust_1", "host.write_kit_file:Trust_2"} <= kinds, kinds
    assert {"host.start_stack:Trust_1", "host.start_stack:Trust_2"} <= kinds, kinds
    described = next(a for a in p.actions if a.id == "host.write_kit_file:Trust_1").describe()
    assert key in described, described
    findings = [f.message for f in drift_report(after, live).findings]
    assert any(f"{key} is " in f and f"wants {value}" in f for f in findings), findings

    # what the kit-file step writes (the host adapter writes these bytes as they are:
    # tests/security/test_injection.py, tests/integration/hosts/test_secrets.py)
    trust = after.trusts[0]
    text = kitfile.render(after, trust, kit=make_kit(trust.name).kit, local=make_local(),
                          aes_key=make_aes())
    assert f"\n{key}={value}\n" in text
    once = simulate_apply(after, live, p.actions)
    assert plan(after, once).in_sync and drift_report(after, once).in_sync
