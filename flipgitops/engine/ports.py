"""The ports: what the engine needs from the world, as Protocols the adapters implement.

The engine and its executors only ever talk to these, so tests can wire real adapters against
a moto server and the stand-in FLIP, and `--dry-run` can wire wrappers that read but never
write (see ``dry_run()`` in each ports module). Each area keeps its Protocols in its own
module: `ports_hub.py` (AWS hub + escrow + hub HTTP + image registry), `ports_state.py`
(flipgitops' own state: lock, journal, ledger, records), `ports_hosts.py` (trust hosts, the
FLIP release and the FL kits read on the controller).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from flipgitops.engine.ports_hosts import HostPort, KitSourcePort, ReleasePort
    from flipgitops.engine.ports_hub import EscrowPort, HubPort, TerraformPort
    from flipgitops.engine.ports_state import StatePort


@dataclass
class Ports:
    hub: HubPort
    escrow: EscrowPort
    state: StatePort
    hosts: HostPort
    kits: KitSourcePort
    release: ReleasePort
    terraform: TerraformPort | None = None
