"""observe(): one snapshot of live state, for the `observe` command and tests.

Every command that compares desired with live starts from `Wiring.observe()`; this is the
same call for callers that hold only a manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flipgitops.engine.wiring import Wiring
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState

if TYPE_CHECKING:
    from flipgitops.adapters.aws_session import Clients


def observe(manifest: Manifest, *, manifest_path: Path | None = None, hosts: bool = True,
            clients: Clients | None = None) -> ObservedState:
    path = manifest_path if manifest_path is not None else Path.cwd() / "manifest.yaml"
    return Wiring.for_manifest(manifest, path, clients).observe(hosts=hosts)
