"""One environment's collaborators: the real adapters behind the engine's ports.

Everything that needs the world for a manifest is built here, once per command: AWS clients
(with `AWS_ENDPOINT_URL` honoured), the endpoint overrides of `FLIPGITOPS_ENDPOINTS`, the hub,
escrow, state, host, release and kit-source ports. A dry run gets the same readers and the
dry-run wrappers of every writer (`engine/ports_*.py`): it cannot change anything anywhere,
because it holds no writer.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedHost, ObservedState

if TYPE_CHECKING:
    from flipgitops.adapters.aws_session import Clients
    from flipgitops.adapters.endpoints import Endpoints
    from flipgitops.adapters.hub import HubSide
    from flipgitops.engine.apply import Interrupt, Journal
    from flipgitops.engine.executors import ExecContext
    from flipgitops.engine.ports import Ports
    from flipgitops.engine.ports_hosts import HostTarget, ReleaseCandidate
    from flipgitops.model.actions import TerraformParams
    from flipgitops.model.plan import Plan, PlanOptions

Status = Callable[[str], None]


def holder() -> dict[str, Any]:
    """Who holds the lock, in terms an operator can act on (the LockHeld message shows it)."""
    who: dict[str, Any] = {"who": f"{getpass.getuser()}@{socket.gethostname()}",
                           "pid": os.getpid()}
    run = os.environ.get("GITHUB_RUN_ID")
    if run:
        who["ci_run"] = f"{os.environ.get('GITHUB_REPOSITORY', '')}#{run}"
    return who


@dataclass
class Wiring:
    manifest: Manifest
    path: Path
    clients: Clients
    endpoints: Endpoints
    _hosts: Any = field(default=None, repr=False)
    # What the last observation saw of the hub and the release (to tell the targets of the
    # next one), and host facts an apply's last host run took, for the next observation.
    _last: tuple[ObservedState, tuple[ReleaseCandidate, ...]] | None = field(
        default=None, repr=False)
    _facts: dict[str, tuple[HostTarget, ObservedHost]] = field(default_factory=dict,
                                                                repr=False)

    @classmethod
    def for_manifest(cls, manifest: Manifest, path: Path,
                     clients: Clients | None = None) -> Wiring:
        from flipgitops.adapters.aws_session import as_clients
        from flipgitops.adapters.endpoints import endpoints_from_env

        return cls(manifest, path,
                   clients if clients is not None else as_clients(None, manifest.aws.region),
                   endpoints_from_env())

    @property
    def base_dir(self) -> Path:
        return self.path.resolve().parent

    @cached_property
    def side(self) -> HubSide:
        from flipgitops.adapters.hub import hub_side

        return hub_side(self.manifest, self.clients, self.base_dir, endpoints=self.endpoints)

    @property
    def hosts(self) -> Any:
        if self._hosts is None:
            from flipgitops.adapters.hosts import AnsibleHosts
            from flipgitops.adapters.secret_refs import SecretRefs

            self._hosts = AnsibleHosts(refs=SecretRefs(region=self.manifest.aws.region,
                                                       clients=self.clients))
        return self._hosts

    # -- observe ------------------------------------------------------------------------------

    def observe(self, *, hosts: bool = True, status: Status = lambda _s: None) -> ObservedState:
        """One snapshot: the hub (a fixed number of AWS calls), flipgitops' ledger, the FLIP
        release on the controller, and every host's facts in one parallel run."""
        from flipgitops.adapters.aws import observe_hub
        from flipgitops.adapters.release import GitRelease

        m = self.manifest
        ledger = self.side.state.read_ledger()
        known = [t.fl_kit_slot for t in ledger.trusts.values() if t.fl_kit_slot]
        hub = observe_hub(m, self.clients, self.endpoints, known_slots=known)
        if m.hub.fl_server.allowlist == "terraform" and hub.allowlist.exists:
            owners = self.side.state.read_allowlist_owners()
            hub = hub.model_copy(update={
                "allowlist": hub.allowlist.model_copy(update={"recorded_owners": owners})})
        release, candidate = GitRelease().observe(self.checkout, m.flip.ref)
        partial = ObservedState(environment=m.environment, hub=hub, ledger=ledger,
                                flip_release=release)
        candidates = (candidate,) if candidate else ()
        self._last = (partial, candidates)
        facts = self.gather_hosts(status, self.host_targets(partial, candidates)) if hosts else {}
        return partial.model_copy(update={
            "hosts": facts, "observed_at": datetime.now(UTC).isoformat(timespec="seconds")})

    @property
    def checkout(self) -> Path:
        return (self.base_dir / self.manifest.flip.checkout).resolve()

    def host_targets(self, observed: ObservedState,
                     candidates: Sequence[ReleaseCandidate] = ()) -> list[HostTarget]:
        """Every hosted trust's target, with what its facts compare against when its host
        holds no record of flipgitops': the releases to recognise by their files, and the
        keys of the trust's slot in the kit bucket (when their ETags are MD5s)."""
        from flipgitops.core.world import World
        from flipgitops.engine.ports_hosts import HostTarget

        world = World(self.manifest, observed)
        kits = observed.hub.kits
        out = []
        for t in self.manifest.trusts:
            if t.host is None or t.kind == "tre":
                continue
            slot, _ = world.slot(t)
            piece = kits.slices.get(slot) if kits is not None and slot else None
            keys = piece.keys if piece is not None and piece.etag_md5 else None
            out.append(replace(HostTarget.of(self.manifest, t, self.base_dir),
                               release_candidates=tuple(candidates), fl_kit_keys=keys))
        return out

    def gather_hosts(self, status: Status,
                     targets: Sequence[HostTarget] | None = None) -> dict[str, ObservedHost]:
        if targets is None:
            targets = self.host_targets(ObservedState(
                environment=self.manifest.environment, hub=_no_hub(self.manifest)))
        taken, self._facts = self._facts, {}
        if not targets:
            return {}
        # Facts the apply's last host run took after its steps, for a host whose target is
        # unchanged since (same slot, kit keys, release candidates), are this host's facts
        # now: nothing ran after that run (`engine/apply.py` voids them otherwise).
        reused = {t.trust: taken[t.trust][1] for t in targets
                  if t.trust in taken and taken[t.trust][0] == t}
        rest = [t for t in targets if t.trust not in reused]
        if reused:
            status(f"facts of {len(reused)} trust host(s) from the apply's host run")
        if not rest:
            return reused
        status(f"gathering facts from {len(rest)} trust host(s)...")
        return {**reused, **self.hosts.gather(rest)}

    def facts_targets(self) -> list[HostTarget]:
        """The targets the next observation will gather, as far as known now: the last
        observation's hub and release with the ledger read again (a slot `register_trust`
        assigned during this apply is in it). A wrong guess costs a gather, never a stale
        fact: the next observation reuses facts only for an equal target."""
        if self._last is None:
            return []
        partial, candidates = self._last
        ledger = self.side.state.read_ledger()
        return self.host_targets(partial.model_copy(update={"ledger": ledger}), candidates)

    def remember_facts(self, facts: Mapping[str, tuple[HostTarget, ObservedHost]]) -> None:
        self._facts = dict(facts)

    # -- terraform -----------------------------------------------------------------------------

    def terraform_plan(self, params: TerraformParams) -> dict[str, Any]:
        tf = self.side.terraform
        if tf is None:
            from flipgitops.errors import FlipGitopsError

            raise FlipGitopsError("hub.fl_server.allowlist is terraform but hub.terraform is "
                                  "not set")
        return tf.plan_readonly(params)

    # -- state ---------------------------------------------------------------------------------

    def acquire_lock(self) -> str:
        return self.side.state.acquire_lock(holder())

    def release_lock(self, run_id: str) -> str | None:
        from flipgitops.errors import FlipGitopsError

        try:
            self.side.state.release_lock(run_id)
        except FlipGitopsError as exc:
            env = self.manifest.environment
            return (f"could not release lock {run_id} of {env}: {exc}; run `flipgitops unlock "
                    f"--env {env} --lock-id {run_id}`")
        return None

    def force_unlock(self, lock_id: str) -> bool:
        return self.side.state.force_unlock(lock_id)

    def journal(self, run_id: str | None) -> Journal | None:
        if run_id is None:
            return None
        journal: Journal = self.side.state.journal(run_id)
        return journal

    def record_converged(self, observed: ObservedState, plan: Plan) -> str | None:
        """The applied record; with a Terraform-owned allowlist also the allowlist record."""
        from flipgitops.adapters.git import head_commit

        commit = head_commit(self.base_dir)
        state = self.side.state
        state.write_applied(commit, plan.fingerprint)
        if self.manifest.hub.fl_server.allowlist == "terraform":
            from flipgitops.core.allowlist import terraform_owner_record

            state.write_allowlist_owners(terraform_owner_record(
                self.manifest, observed.hub.allowlist.recorded_owners))
        return commit

    # -- executing -----------------------------------------------------------------------------

    def ports(self) -> Ports:
        """The real adapters behind every port (writers included)."""
        from flipgitops.adapters.kit_source import S3KitSource
        from flipgitops.adapters.release import GitRelease
        from flipgitops.engine.ports import Ports

        side = self.side
        return Ports(hub=side.hub, escrow=side.escrow, state=side.state, hosts=self.hosts,
                     kits=S3KitSource(self.clients.s3), release=GitRelease(),
                     terraform=side.terraform)

    def context(self, observed: ObservedState, plan: Plan, *, dry_run: bool,
                options: PlanOptions, run_id: str | None, interrupt: Interrupt,
                report: Callable[[str], None]) -> ExecContext:
        from flipgitops.engine.executors import ExecContext

        ports = self.ports()
        if dry_run:
            ports = dry_run_ports(ports)
        return ExecContext(manifest=self.manifest, manifest_dir=self.base_dir,
                           observed=observed, ports=ports, dry_run=dry_run,
                           allow=options.allow, fl_quiesced=options.fl_quiesced,
                           run_id=run_id, report=report, cancel=interrupt.is_set)


def _no_hub(manifest: Manifest) -> Any:
    """An observation of nothing (hosts gathered without a hub observation)."""
    from flipgitops.model.observed import (
        ObservedAllowlist,
        ObservedCognito,
        ObservedDatabase,
        ObservedHub,
        ObservedRegistryEra,
        ObservedSecret,
    )

    h = manifest.hub
    return ObservedHub(
        account_id=None, region=None,
        allowlist=ObservedAllowlist(exists=False, group_name=h.fl_server.security_group),
        secret=ObservedSecret(exists=False, name=h.secret), services={},
        database=ObservedDatabase(exists=False, identifier=h.database.identifier),
        cognito=ObservedCognito(exists=False, name=h.cognito.user_pool),
        registry=ObservedRegistryEra(era=h.trust_registry, evidence="not observed"))


def dry_run_ports(ports: Any) -> Any:
    """Every writer replaced by its dry-run wrapper (reads still go to the real world)."""
    from flipgitops.engine.ports import Ports
    from flipgitops.engine.ports_hosts import dry_run_hosts, dry_run_kits, dry_run_release
    from flipgitops.engine.ports_hub import dry_run_escrow, dry_run_hub, dry_run_terraform
    from flipgitops.engine.ports_state import dry_run_state

    return Ports(hub=dry_run_hub(ports.hub), escrow=dry_run_escrow(ports.escrow),
                 state=dry_run_state(ports.state), hosts=dry_run_hosts(ports.hosts),
                 kits=dry_run_kits(ports.kits), release=dry_run_release(ports.release),
                 terraform=dry_run_terraform(ports.terraform) if ports.terraform else None)
