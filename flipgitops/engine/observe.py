"""observe(): one snapshot of live state, the hub from AWS plus facts from trust hosts.

Every command that compares desired with live (plan, apply, drift, observe) starts here, so
the snapshot is the only place AWS reads and host fact gathering are wired together.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import boto3

from flipgitops.adapters.aws import observe_hub
from flipgitops.adapters.aws_session import Clients, as_clients
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedHost, ObservedState


def observe(
    manifest: Manifest,
    *,
    manifest_path: Path | None = None,
    hosts: bool = True,
    session: boto3.Session | None = None,
    clients: Clients | None = None,
) -> ObservedState:
    """Observe the hub and (unless ``hosts`` is False) every trust's host.

    Decommissioned trusts are observed too: stopping their stack is planned only when the
    planner can see it still runs, and a host that is gone just reports itself unreachable.
    Deciding what to do with those facts is the planner's job, not observation's.
    """
    c = clients if clients is not None else as_clients(session, manifest.aws.region)
    hub = observe_hub(manifest, c)
    if manifest.hub.fl_server.allowlist == "terraform" and hub.allowlist.exists:
        from flipgitops.adapters.state_store import read_allowlist_owners

        owners = read_allowlist_owners(manifest, clients=c)
        hub = hub.model_copy(update={
            "allowlist": hub.allowlist.model_copy(update={"recorded_owners": owners})})
    host_facts = gather_host_facts(manifest, manifest_path) if hosts else {}
    return ObservedState(
        environment=manifest.environment,
        hub=hub,
        hosts=host_facts,
        observed_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )


def gather_host_facts(manifest: Manifest, manifest_path: Path | None) -> dict[str, ObservedHost]:
    # Imported here: ansible-runner is heavy and AWS-only commands never need it.
    from flipgitops.adapters.hosts import HostTarget, gather_facts

    targets = [
        HostTarget(trust=t.name, host=t.host, fl_kit_slot=t.fl_kit_slot,
                   region=manifest.aws.region)
        for t in manifest.trusts
        if t.host is not None
    ]
    if not targets:
        return {}
    base_dir = manifest_path.resolve().parent if manifest_path is not None else Path.cwd()
    return gather_facts(targets, base_dir=base_dir)
