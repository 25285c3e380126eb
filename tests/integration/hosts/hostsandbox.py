"""A sandbox for host steps: the stand-in FLIP hub on moto, a FLIP checkout, local trust
hosts whose container CLI is the stand-in's, and small in-memory versions of flipgitops'
own hub/escrow/state ports (not of FLIP: FLIP's side is the stand-in).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from pydantic import SecretStr

from flipgitops.adapters import kit_listing
from flipgitops.adapters.hosts import AnsibleHosts
from flipgitops.adapters.kit_source import S3KitSource
from flipgitops.adapters.release import GitRelease
from flipgitops.engine.executors import ExecContext, Outcome, executor_for
from flipgitops.engine.ports import Ports
from flipgitops.model.actions import (
    Action,
    ActionKind,
    DeliverFlKitParams,
    DeployReleaseParams,
    Params,
    ProvisionParams,
    StartStackParams,
    VerifyParams,
    WriteKitFileParams,
)
from flipgitops.model.kit import EscrowedKit, LocalCredentials, TrustKit
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import (
    ObservedAllowlist,
    ObservedCognito,
    ObservedDatabase,
    ObservedHub,
    ObservedLedger,
    ObservedRegistryEra,
    ObservedSecret,
    ObservedState,
)
from flipgitops.sandbox.flip import trust_api
from flipgitops.sandbox.flip.checkout import FlipCheckout, make_flip_checkout
from flipgitops.sandbox.flip.cli_server import CliServer
from flipgitops.sandbox.flip.seed import SeedResult, seed_hub
from flipgitops.sandbox.flip.world import StandinHub, write_world
from flipgitops.sandbox.moto_server import MotoServer
from tests.unit.hosts.hostworld import BUCKET, DOMAIN, FL_HOST, KIT_DATE, make_manifest, trust_entry

STANDIN_DOCKER = str(Path(sys.executable).parent / "flip-standin-docker")
REGION = "eu-west-2"


# --- in-memory ports of our own ---------------------------------------------------------------


class MemEscrow:
    def __init__(self) -> None:
        self.kits: dict[str, EscrowedKit] = {}
        self.local: dict[str, LocalCredentials] = {}
        self.writes: list[str] = []

    def read_kit(self, trust: str) -> EscrowedKit | None:
        return self.kits.get(trust)

    def read_local(self, trust: str) -> LocalCredentials | None:
        return self.local.get(trust)

    def write_local(self, trust: str, creds: LocalCredentials) -> None:
        self.writes.append(trust)
        self.local[trust] = creds


class MemHub:
    def __init__(self, aes: str) -> None:
        self._aes = aes

    def read_aes_key(self) -> SecretStr:
        return SecretStr(self._aes)


class MemState:
    def __init__(self, ledger: ObservedLedger | None = None) -> None:
        self.ledger = ledger or ObservedLedger()

    def read_ledger(self) -> ObservedLedger:
        return self.ledger

    def update_ledger(self, fn: Callable[[ObservedLedger], ObservedLedger]) -> ObservedLedger:
        self.ledger = fn(self.ledger)
        return self.ledger


def empty_observed(environment: str) -> ObservedState:
    hub = ObservedHub(
        account_id=None, region=REGION,
        allowlist=ObservedAllowlist(exists=False, group_name="flip-fl-server-nlb"),
        secret=ObservedSecret(exists=False, name="FLIP_API"), services={},
        database=ObservedDatabase(exists=False, identifier="flip-database"),
        cognito=ObservedCognito(exists=False, name="flip-user-pool"),
        registry=ObservedRegistryEra(era="database", evidence="tests"))
    return ObservedState(environment=environment, hub=hub)


# --- the world ----------------------------------------------------------------------------------


@dataclass
class HostWorld:
    root: Path
    manifest: Manifest
    checkout: FlipCheckout
    hub: StandinHub
    seed: SeedResult
    hosts: AnsibleHosts
    escrow: MemEscrow
    state: MemState
    kits: S3KitSource = field(default_factory=S3KitSource)
    release: GitRelease = field(default_factory=GitRelease)

    def flip_root(self, trust: str = "Trust_1") -> Path:
        return self.root / "hosts" / trust / "flip"

    def daemon_dir(self, trust: str = "Trust_1") -> Path:
        return self.root / "hosts" / trust / "docker"

    def docker(self, trust: str = "Trust_1") -> list[str]:
        return [STANDIN_DOCKER, "--daemon-dir", str(self.daemon_dir(trust)),
                "--world", str(self.root / "world.json")]

    def ctx(self, *, dry_run: bool = False, hub: Any = None) -> ExecContext:
        ports = Ports(hub=hub or MemHub(self.seed.aes_key), escrow=self.escrow,  # type: ignore[arg-type]
                      state=self.state, hosts=self.hosts, kits=self.kits,  # type: ignore[arg-type]
                      release=self.release)
        return ExecContext(manifest=self.manifest, manifest_dir=self.root,
                           observed=empty_observed(self.manifest.environment), ports=ports,
                           dry_run=dry_run)

    def secrets(self) -> list[str]:
        """Every secret value this world holds for its trusts (for leak searches)."""
        out = [self.seed.aes_key, self.seed.internal_service_key, *self.seed.trust_keys.values()]
        for kit in self.escrow.kits.values():
            for key in (kit.kit.trust_api_key, kit.kit.trust_internal_service_key):
                if key is not None:
                    out.append(key.get_secret_value())
        for creds in self.escrow.local.values():
            out += [v.get_secret_value() for v in creds.values.values()]
        return sorted({s for s in out if s})


def build_world(root: Path, moto: MotoServer, *, trusts: tuple[str, ...] = ("Trust_1",),
                registered: tuple[str, ...] = ("Trust_1",), backend: str = "nvflare",
                ) -> Iterator[HostWorld]:
    checkout = make_flip_checkout(root / "FLIP")
    with StandinHub(moto.url, REGION, domain=DOMAIN, fl_host=FL_HOST, fl_port=8002) as hub, \
            CliServer() as cli:
        write_world(root / "world.json", {f"https://{DOMAIN}": hub.hub_url})
        entries = []
        for name in trusts:  # the hosts' docker: the thin client of the stand-in's server
            daemon = root / "hosts" / name / "docker"
            docker = " ".join([*cli.client_command(), "--daemon-dir", str(daemon),
                               "--world", str(root / "world.json")])
            entries.append(trust_entry(name, f"C{name[-1]}X",
                                       flip_root=str(root / "hosts" / name / "flip"),
                                       docker=docker))
        manifest = make_manifest(entries, backend=backend, checkout="FLIP")
        seed = seed_hub(manifest, hub, existing=list(registered), slot_count=4)
        escrow = MemEscrow()
        for name, kit in seed.trust_kits.items():
            escrow.kits[name] = EscrowedKit(kit=TrustKit.model_validate(kit),
                                            credentials_generation=1)
        hosts = AnsibleHosts(endpoints=hub.endpoints)
        world = HostWorld(root=root, manifest=manifest, checkout=checkout, hub=hub, seed=seed,
                          hosts=hosts, escrow=escrow, state=MemState(),
                          kits=S3KitSource(client=lambda: boto3.client(
                              "s3", endpoint_url=moto.url, region_name=REGION)))
        try:
            yield world
        finally:
            for name in trusts:
                trust_api.stop_all(root / "hosts" / name / "docker")



# --- steps ---------------------------------------------------------------------------------


def act(kind: ActionKind, target: str, params: Params) -> Action:
    return Action(id=f"{kind}:{target}", kind=kind, target=target, params=params)


def run_action(world: HostWorld, action: Action, **ctx: object) -> Outcome:
    return executor_for(action.kind).run(world.ctx(**ctx), [action])[action.id]  # type: ignore[arg-type]


def kit_fingerprint(world: HostWorld, slot: str = "Trust_1") -> str:
    """The slot's fingerprint as the plan has it (the bucket listing, kit_listing.py)."""
    s3 = boto3.client("s3", endpoint_url=world.hub.moto_url, region_name=REGION)
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=kit_listing.listing_prefix(
        "nvflare", KIT_DATE))["Contents"]
    found, _ = kit_listing.slices("nvflare", KIT_DATE, objects, [slot])
    fingerprint = found[slot].fingerprint
    assert fingerprint is not None
    return fingerprint


def onboard(world: HostWorld, trust: str = "Trust_1") -> dict[str, Outcome]:
    tag = world.manifest.flip.ref
    commit = world.checkout.tags[tag]
    steps = [
        act(ActionKind.HOST_PROVISION, trust, ProvisionParams(flip_root="x", slot_number=1)),
        act(ActionKind.HOST_DEPLOY_RELEASE, trust, DeployReleaseParams(ref=tag,
                                                                       commit=commit)),
        act(ActionKind.HOST_WRITE_KIT_FILE, trust,
            WriteKitFileParams(credentials_generation=1)),
        act(ActionKind.HOST_DELIVER_FL_KIT, trust, DeliverFlKitParams(
            date=KIT_DATE, slot="Trust_1", slot_number=1, backend="nvflare",
            source_fingerprint=kit_fingerprint(world))),
        act(ActionKind.HOST_START_STACK, trust, StartStackParams(
            project="trust1", hub_tag="v2.3.0", fl_tag="v2.3.0")),
        act(ActionKind.HOST_VERIFY, trust, VerifyParams(expect_trust=trust)),
    ]
    out = {}
    for action in steps:
        out[str(action.kind)] = outcome = run_action(world, action)
        assert outcome.ok, f"{action.kind}: {outcome.message}"
    return out


def bare_world(root: Path, *, flip_root: Path | None = None, **manifest: Any) -> HostWorld:
    """A world without a hub: one local host on the stand-in CLI, a kit escrowed in memory
    (for steps that never talk to the hub: provision, the kit file, facts)."""
    from tests.unit.hosts.hostworld import make_aes, make_kit

    daemon = root / "hosts" / "Trust_1" / "docker"
    docker = f"{STANDIN_DOCKER} --daemon-dir {daemon}"
    entry = trust_entry("Trust_1", "C1X", flip_root=str(flip_root or root / "hosts/Trust_1/flip"),
                        docker=docker)
    m = make_manifest([entry], checkout="FLIP", **manifest)
    escrow = MemEscrow()
    escrow.kits["Trust_1"] = make_kit("Trust_1", 1)
    aes = make_aes().get_secret_value()
    seed = SeedResult(era="database", region=REGION, vpc_id="", private_subnet_ids=[],
                      nat_ip="", security_groups={}, nlb_group_name="", cluster="",
                      services={}, task_definition_arns={}, secret_arn="", user_pool_id="",
                      db_arn="", slot_names=[], kit_dates=[], kit_bucket=BUCKET, images={},
                      aes_key=aes)
    return HostWorld(root=root, manifest=m, checkout=None, hub=None, seed=seed,  # type: ignore[arg-type]
                     hosts=AnsibleHosts(endpoints={"egress_probe": "http://127.0.0.1:9/x"}),
                     escrow=escrow, state=MemState())
