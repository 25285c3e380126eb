"""Plan fingerprints: what `apply --plan` compares to refuse a stale reviewed plan."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState


def canonical_json(data: Any) -> str:
    """Stable JSON: sorted keys, no whitespace variance, so equal data hashes equal."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)


def fingerprint(desired: Manifest, observed: ObservedState, options: Any = None) -> str:
    """sha256 over desired + observed (+ options), ignoring the observation timestamp.

    Two plans with the same fingerprint were computed from the same world and the same
    manifest, so applying the fresh one is applying what was reviewed.
    """
    payload = {
        "desired": desired.model_dump(mode="json"),
        "observed": observed.model_dump(mode="json", exclude={"observed_at"}),
        "options": options,
    }
    return "sha256:" + hashlib.sha256(canonical_json(payload).encode()).hexdigest()
