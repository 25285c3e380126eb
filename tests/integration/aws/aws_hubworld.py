"""Manifests, clients and executor contexts for the hub adapter tests (moto + stand-in FLIP).

A module with its own name, not a conftest, so tests import it unambiguously.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3

import flipgitops.engine.hub_executors  # noqa: F401  (registers the hub kinds)
from flipgitops.adapters.aws_session import CallCounter, Clients
from flipgitops.adapters.endpoints import Endpoints, parse_endpoints
from flipgitops.adapters.escrow import SsmEscrow
from flipgitops.adapters.hub import AwsHub
from flipgitops.adapters.state_store import S3State
from flipgitops.adapters.waiting import Waits
from flipgitops.engine.executors import EXECUTORS, ExecContext, Outcome
from flipgitops.engine.ports import Ports
from flipgitops.engine.ports_hub import dry_run_escrow, dry_run_hub
from flipgitops.engine.ports_state import dry_run_state
from flipgitops.model.actions import Action, ActionKind
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedHub, ObservedState
from flipgitops.sandbox.flip.seed import SeedResult
from flipgitops.sandbox.flip.world import StandinHub
from flipgitops.sandbox.moto_server import MOTO_ACCOUNT_ID

REGION = "eu-west-2"


class Standin:
    """The started stand-in hub (`flipgitops.sandbox.flip`) and what it seeded."""

    def __init__(self, hub: StandinHub) -> None:
        self.hub = hub
        self.seed: SeedResult | None = None

    @property
    def endpoints(self) -> Endpoints:
        return parse_endpoints(self.hub.endpoints_json)

    @property
    def seeded(self) -> SeedResult:
        assert self.seed is not None
        return self.seed

FAST = Waits(task_timeout=20, stable_timeout=8, snapshot_timeout=20, interval=0.1)


def trust_ip(i: int) -> str:
    block = ("203.0.113", "198.51.100", "192.0.2")[i // 250]
    return f"{block}.{i % 250 + 1}"


def make_manifest(n_trusts: int = 2, *, environment: str = "dev", slots: bool = True,
                  trusts: list[dict[str, Any]] | None = None, **hub: Any) -> Manifest:
    """Trust_1..Trust_N (kind tre: hub side only), any hub field overridable."""
    if trusts is None:
        trusts = [{"name": f"Trust_{i}", "code": f"T{i:02d}", "kind": "tre",
                   "public_ip": trust_ip(i - 1),
                   **({"fl_kit_slot": f"Trust_{i}"} if slots else {})}
                  for i in range(1, n_trusts + 1)]
    doc: dict[str, Any] = {
        "domain": f"{environment}.flip.example.org",
        "images": {"hub_tag": "v2.3.0", "fl_tag": "v2.3.0"},
        "fl_kits": {"bucket": f"flip-kits-{environment}", "date": "2025-06-01"},
    }
    doc.update(hub)
    return Manifest.model_validate({
        "version": 1, "environment": environment,
        "aws": {"account_id": MOTO_ACCOUNT_ID, "region": REGION},
        "state": {"bucket": f"flip-gitops-state-{environment}", "prefix": "flipgitops"},
        "flip": {"checkout": "../FLIP", "ref": "v2.3.0"},
        "hub": doc, "trusts": trusts,
    })


_SESSION: list[boto3.Session] = []


def new_clients(counter: CallCounter | None = None) -> Clients:
    """Fresh clients on one shared session (loading the EC2 model takes a second)."""
    if not _SESSION:
        _SESSION.append(boto3.Session(region_name=REGION))
    return Clients(_SESSION[0], counter=counter)


def ports(manifest: Manifest, clients: Clients, endpoints: Endpoints | None = None,
          *, dry_run: bool = False, waits: Waits = FAST, hub: AwsHub | None = None) -> Ports:
    hub = hub or AwsHub(manifest, clients, endpoints=endpoints or Endpoints(), waits=waits)
    escrow = SsmEscrow(clients, manifest.environment)
    state = S3State.for_manifest(manifest, clients)
    if dry_run:
        return Ports(hub=dry_run_hub(hub), escrow=dry_run_escrow(escrow),
                     state=dry_run_state(state), hosts=None, kits=None,  # type: ignore[arg-type]
                     release=None, terraform=None)  # type: ignore[arg-type]
    return Ports(hub=hub, escrow=escrow, state=state, hosts=None, kits=None,  # type: ignore[arg-type]
                 release=None)  # type: ignore[arg-type]


def context(manifest: Manifest, p: Ports, *, dry_run: bool = False,
            lines: list[str] | None = None, observed: ObservedHub | None = None,
            **kw: Any) -> ExecContext:
    sink = lines if lines is not None else []
    state = ObservedState(environment=manifest.environment,
                          hub=observed or _blank_hub(manifest))
    return ExecContext(manifest=manifest, manifest_dir=Path("."), observed=state, ports=p,
                       dry_run=dry_run, report=sink.append, **kw)


def _blank_hub(manifest: Manifest) -> ObservedHub:
    from flipgitops.model.observed import (
        ObservedAllowlist,
        ObservedCognito,
        ObservedDatabase,
        ObservedRegistryEra,
        ObservedSecret,
    )

    return ObservedHub(
        account_id=None, region=None,
        allowlist=ObservedAllowlist(exists=False, group_name="?"),
        secret=ObservedSecret(exists=False, name=manifest.hub.secret), services={},
        database=ObservedDatabase(exists=False, identifier="?"),
        cognito=ObservedCognito(exists=False, name="?"),
        registry=ObservedRegistryEra(era=manifest.hub.trust_registry, evidence="test"))


def run(ctx: ExecContext, kind: ActionKind, target: str, params: dict[str, Any]) -> Outcome:
    """One action through its registered executor, as the apply engine calls it (the host
    executors live elsewhere, so the registry is read directly, not via executor_for)."""
    action = Action.model_validate({"id": f"{kind}:{target}", "kind": kind, "target": target,
                                    "params": params})
    return EXECUTORS[kind].run(ctx, [action])[action.id]
