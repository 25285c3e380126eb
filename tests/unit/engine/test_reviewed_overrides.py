"""A reviewed plan binds its overrides: `apply --plan` may not let through a guard the
reviewer saw blocking (the fingerprint leaves overrides out on purpose)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flipgitops.core.planner import plan
from flipgitops.engine.apply import check_reviewed
from flipgitops.errors import PlanMismatch
from flipgitops.model.plan import PlanOptions
from tests.builders import manifest, observed_matching

FILE = Path("plan-dev.json")


def _upgrade(options: PlanOptions):  # type: ignore[no-untyped-def]
    """An FL upgrade: FG007 fires on the fl-server roll unless quiesced."""
    m0 = manifest(1)
    m = manifest(1, hub_tag="v2.4.0", fl_tag="v2.4.0", flip_ref="v2.4.0")
    return plan(m, observed_matching(m0), options)


def test_an_override_the_review_did_not_show_is_refused() -> None:
    reviewed = _upgrade(PlanOptions())
    assert reviewed.blocked and any(v.guard == "FG007" for v in reviewed.violations)
    fresh = _upgrade(PlanOptions(fl_quiesced=True))
    assert fresh.fingerprint == reviewed.fingerprint and not fresh.blocked
    with pytest.raises(PlanMismatch, match=r"not reviewed with the override.*FG007 on "):
        check_reviewed(reviewed, fresh, FILE)


def test_the_reviewed_overrides_apply_and_fewer_are_left_to_the_guards() -> None:
    reviewed = _upgrade(PlanOptions(fl_quiesced=True))
    check_reviewed(reviewed, _upgrade(PlanOptions(fl_quiesced=True)), FILE)
    check_reviewed(reviewed, _upgrade(PlanOptions(allow=frozenset({"FG007"}))), FILE)
    fewer = _upgrade(PlanOptions())
    check_reviewed(reviewed, fewer, FILE)  # not a mismatch: the guards refuse it
    assert fewer.blocked
