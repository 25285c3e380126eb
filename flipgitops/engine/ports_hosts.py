"""Ports to trust hosts, FLIP's release on the controller and the FL kits in S3.

`HostPort` reaches every host of a call in ONE Ansible run (parallel forks): `gather` for
facts, `run` for a host kind's step. What a step needs arrives as a typed input
(`ProvisionInput`, `ReleaseInput`, …); secret parts (`KitFileInput.content`, the FL kit's
files) travel only in memory, through the run's channel, never into inventory, variables or
files on the controller. `ReleasePort` reads `flip.checkout` with git (tracked files only);
`KitSourcePort` reads one slot's FL kit slice from the bucket (hosts have no AWS
credentials).

The dry-run wrappers (`dry_run_hosts`, …) forward reads (facts, git, S3 reads) and never
contact a host for a write: `run` answers "would …" for every task without starting
Ansible, so `apply --dry-run` leaves every host and file as it was (Ansible's check mode
would still connect and run modules, which is not enough).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from pydantic import SecretStr

from flipgitops.model.actions import ActionKind
from flipgitops.model.flip import FlBackend, kit_file_name
from flipgitops.model.manifest import Host, Manifest, Trust
from flipgitops.model.observed import ObservedFlipRelease, ObservedHost

Cancel = Callable[[], bool]


@dataclass(frozen=True)
class ReleaseCandidate:
    """A FLIP release a host's `trust/` may hold: its tracked paths and their tree digest.

    Facts compare the host's files at those paths with the digest, so a host set up by
    FLIP's own procedures (a checkout or copy of FLIP, no deploy record of flipgitops') is
    known to run that release exactly when its tracked files are git's."""

    ref: str
    commit: str
    tree_sha256: str
    paths: tuple[str, ...] = field(repr=False)


@dataclass(frozen=True)
class HostTarget:
    """One trust's host as the manifest declares it, with what every step needs to know."""

    trust: str
    host: Host
    code: str
    kit_file: str  # `.env.<CODE>.<env token>`
    backend: FlBackend
    ec2: bool  # kind aws: FLIP's up-trust-ec2 (no GPU overlay, NUM_AVAILABLE_GPUS=0)
    hub_endpoint: str  # `<domain>:443`
    fl_endpoint: str  # `<fl hostname>:<port>`
    base_dir: Path = Path(".")  # the manifest's directory (anchors relative local paths)
    region: str | None = None  # where ssm:/secretsmanager: references are read
    # Facts only: the releases to recognise by their files when there is no deploy record
    # (the first that matches wins), and the slot's keys in the kit bucket (relative to the
    # date prefix) when its ETags are MD5s, to recompute the listing's fingerprint.
    release_candidates: tuple[ReleaseCandidate, ...] = ()
    fl_kit_keys: tuple[str, ...] | None = None

    @classmethod
    def of(cls, manifest: Manifest, trust: Trust, base_dir: Path = Path(".")) -> HostTarget:
        if trust.host is None:
            raise ValueError(f"trust {trust.name} has no host (kind {trust.kind})")
        hub = manifest.hub
        return cls(
            trust=trust.name, host=trust.host, code=trust.code,
            kit_file=kit_file_name(trust.code, manifest.environment),
            backend=hub.fl_backend, ec2=trust.kind == "aws",
            hub_endpoint=f"{hub.domain}:443",
            fl_endpoint=f"{hub.fl_hostname}:{hub.fl_server.port}",
            base_dir=base_dir, region=manifest.aws.region,
        )


# --- what the controller hands to a host step -----------------------------------------------


@dataclass(frozen=True)
class ReleaseFile:
    """One tracked file of FLIP's `trust/` (``path`` relative to `trust/`)."""

    path: str
    kind: str  # "644", "755" or "link" (flipgitops_host/tree.py)
    data: bytes = field(repr=False)


@dataclass(frozen=True)
class ReleaseTree:
    ref: str
    commit: str
    tree_sha256: str
    files: tuple[ReleaseFile, ...] = field(repr=False)


@dataclass(frozen=True)
class KitFile:
    """One file of an FL kit slice (``path`` relative to `<FL_KIT_DIR>/net-1`)."""

    path: str
    mode: int
    data: bytes = field(repr=False)  # may be a private key: never shown

    def __repr__(self) -> str:
        return f"KitFile({self.path!r}, {self.mode:04o}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class FlKitSlice:
    """One slot's FL participant kit as read from the bucket, checked the way FLIP checks."""

    backend: FlBackend
    date: str
    slot: str
    slot_number: int
    source: str  # s3://bucket/prefix, for messages
    fingerprint: str  # over (key, ETag, size), as the bucket observation computes it
    files: tuple[KitFile, ...] = field(repr=False)
    dirs: tuple[str, ...] = ()  # directories to (re)create empty (nvflare local/, transfer/)


@dataclass(frozen=True)
class ProvisionInput:
    profile: Mapping[str, str]  # the kit file's host-local profile (core/kitfile.host_profile)
    slot_number: int | None = None


@dataclass(frozen=True)
class ReleaseInput:
    tree: ReleaseTree


@dataclass(frozen=True)
class KitFileInput:
    content: SecretStr  # core/kitfile.render's output


@dataclass(frozen=True)
class FlKitInput:
    kit: FlKitSlice
    fl_kit_dir: str  # the kit file's FL_KIT_DIR


@dataclass(frozen=True)
class StackInput:
    project: str | None = None  # stop only: the project to stop when the kit file is gone


@dataclass(frozen=True)
class VerifyInput:
    expect_trust: str
    timeout_seconds: float = 120.0


StepInput = (ProvisionInput | ReleaseInput | KitFileInput | FlKitInput | StackInput
             | VerifyInput)


@dataclass(frozen=True)
class HostTask:
    """One host's share of a host action."""

    target: HostTarget
    input: StepInput


@dataclass(frozen=True)
class KitSecrets:
    """Secret values one host's kit file holds (adopt), read through the run's channel."""

    trust: str
    ok: bool
    message: str  # key names and counts only, never a value
    values: Mapping[str, SecretStr] = field(default_factory=dict, repr=False)
    unreachable: bool = False


@dataclass(frozen=True)
class HostStep:
    """One host action inside a multi-step run (`HostPort.run_steps`): ``key`` is unique in
    the run (the action id); ``after`` names the keys of steps on the same host that must
    succeed first, in this run."""

    key: str
    kind: ActionKind
    task: HostTask
    after: tuple[str, ...] = ()


@dataclass(frozen=True)
class HostResult:
    trust: str
    ok: bool
    changed: bool
    message: str  # never holds a secret
    unreachable: bool = False
    skipped_after: str | None = None  # run_steps: not run because this key did not succeed


# --- the ports -------------------------------------------------------------------------------


class HostPort(Protocol):
    def gather(self, targets: Sequence[HostTarget]) -> dict[str, ObservedHost]:
        """Facts of every target in one run; an unreachable host is ``reachable=False``."""
        ...

    def run(self, kind: ActionKind, tasks: Sequence[HostTask], *,
            cancel: Cancel | None = None) -> dict[str, HostResult]:
        """One host kind's step on every task's host, in one run; one result per trust."""
        ...

    def run_steps(self, steps: Sequence[HostStep], *,
                  cancel: Cancel | None = None) -> dict[str, HostResult]:
        """Several host actions in ONE run, each host's steps in one host program run, in
        the order given (a step whose ``after`` did not succeed is skipped); one result per
        step key."""
        ...

    def run_steps_then_gather(self, steps: Sequence[HostStep], facts_after: Sequence[HostTarget],
                              *, cancel: Cancel | None = None
                              ) -> tuple[dict[str, HostResult], dict[str, ObservedHost]]:
        """`run_steps`, then the facts of each ``facts_after`` target in the same run (a
        target without steps: a facts-only invocation). Facts not taken are left out."""
        ...

    def resolve_references(self, refs: Mapping[str, str], *,
                           region: str | None = None) -> dict[str, SecretStr]:
        """The values of `trust.credentials` references (env:, ssm:, secretsmanager:)."""
        ...

    def read_kit_secrets(self, targets: Sequence[HostTarget],
                         keys: Sequence[str]) -> dict[str, KitSecrets]:
        """The values of ``keys`` in each target's kit file, in one run (adopt). They come
        back over the run's in-memory channel only: never in Ansible's events, artifacts,
        argv or a file; the host is not changed."""
        ...


class ReleasePort(Protocol):
    def resolve(self, checkout_path: Path, ref: str) -> ObservedFlipRelease: ...

    def tree(self, checkout_path: Path, ref: str) -> ReleaseTree:
        """FLIP's `trust/` at ``ref``: tracked files only (an error names the ref)."""
        ...


class KitSourcePort(Protocol):
    def fetch(self, bucket: str, date: str, backend: FlBackend, slot: str,
              slot_number: int) -> FlKitSlice:
        """The slot's slice, checked (fed_client.json's client.fqsn; flower files
        non-empty); a refusal names the S3 key."""
        ...


# --- dry runs --------------------------------------------------------------------------------


class _DryRunHosts:
    def __init__(self, inner: HostPort) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return f"DryRun({self._inner!r})"

    def gather(self, targets: Sequence[HostTarget]) -> dict[str, ObservedHost]:
        return self._inner.gather(targets)

    def run(self, kind: ActionKind, tasks: Sequence[HostTask], *,
            cancel: Cancel | None = None) -> dict[str, HostResult]:
        return {t.target.trust: HostResult(t.target.trust, True, True,
                                           f"would run {kind} (dry run: host not contacted)")
                for t in tasks}

    def run_steps(self, steps: Sequence[HostStep], *,
                  cancel: Cancel | None = None) -> dict[str, HostResult]:
        return {s.key: HostResult(s.task.target.trust, True, True,
                                  f"would run {s.kind} (dry run: host not contacted)")
                for s in steps}

    def run_steps_then_gather(self, steps: Sequence[HostStep], facts_after: Sequence[HostTarget],
                              *, cancel: Cancel | None = None
                              ) -> tuple[dict[str, HostResult], dict[str, ObservedHost]]:
        """No host is contacted, so no facts are taken either."""
        return self.run_steps(steps, cancel=cancel), {}

    def resolve_references(self, refs: Mapping[str, str], *,
                           region: str | None = None) -> dict[str, SecretStr]:
        return self._inner.resolve_references(refs, region=region)

    def read_kit_secrets(self, targets: Sequence[HostTarget],
                         keys: Sequence[str]) -> dict[str, KitSecrets]:
        """A read: it changes no host, so a dry run may do it (only adopt asks)."""
        return self._inner.read_kit_secrets(targets, keys)


def dry_run_hosts(hosts: HostPort) -> HostPort:
    return _DryRunHosts(hosts)


def dry_run_release(release: ReleasePort) -> ReleasePort:
    """Git is only read: the real port is already safe in a dry run."""
    return release


def dry_run_kits(kits: KitSourcePort) -> KitSourcePort:
    """S3 is only read: the real port is already safe in a dry run."""
    return kits
