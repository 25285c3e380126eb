"""Executors: how each action kind touches the world, looked up by ``Action.kind``.

The planner decides *what* and in which order; executors hold *how*: the procedure FLIP's own
scripts follow, in an order that survives a crash at any point (escrow before anything
depends on a key, read back what a task wrote before judging it, ...). They reach the world
only through the ports in :class:`ExecContext` (`engine/ports.py`), so the same procedure runs
against real adapters, against the dry-run wrappers that change nothing, and in tests.

Each executor is idempotent: a rerun after a crash may repeat any prefix of a plan. Host
kinds are *grouped*: one call receives every action of its kind in a wave, so one Ansible run
serves every host. Outcome messages are shown and journaled: never a secret in them.

Registration: modules `engine/hub_executors.py` and `engine/host_executors.py` decorate their
functions with :func:`executor`; :func:`executor_for` loads them on first use and checks that
every `ActionKind` has exactly one executor (a meta-test walks the same check).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TypeVar

from flipgitops.model.actions import Action, ActionKind
from flipgitops.model.kit import EscrowedKit, LocalCredentials
from flipgitops.model.manifest import Manifest, Trust
from flipgitops.model.observed import ObservedState

if TYPE_CHECKING:
    from flipgitops.engine.ports import Ports
    from flipgitops.engine.ports_hosts import HostResult, HostTask


@dataclass(frozen=True)
class Outcome:
    """What one action did. ``message`` is shown and journaled: it must never hold a secret."""

    ok: bool
    changed: bool = False
    message: str = ""
    # Refused by a guard at apply time (e.g. on the Terraform plan that is about to be
    # applied), not broken: the run exits 3 like a plan-time block when nothing else failed.
    blocked: bool = False


class SecretCache:
    """Keys this run minted or read from the escrow, in memory only (never in a repr)."""

    def __init__(self) -> None:
        self._kits: dict[str, EscrowedKit] = {}
        self._local: dict[str, LocalCredentials] = {}

    def __repr__(self) -> str:
        return f"SecretCache({len(self._kits)} kits, {len(self._local)} local)"

    def kit(self, trust: str) -> EscrowedKit | None:
        return self._kits.get(trust)

    def remember_kit(self, trust: str, kit: EscrowedKit) -> None:
        self._kits[trust] = kit

    def local(self, trust: str) -> LocalCredentials | None:
        return self._local.get(trust)

    def remember_local(self, trust: str, creds: LocalCredentials) -> None:
        self._local[trust] = creds

    def forget(self, trust: str) -> None:
        self._kits.pop(trust, None)
        self._local.pop(trust, None)


@dataclass
class ExecContext:
    """Everything executors share during one run."""

    manifest: Manifest
    manifest_dir: Path
    observed: ObservedState  # the observation this run's plan was made from
    ports: Ports
    dry_run: bool = False
    allow: frozenset[str] = frozenset()  # guards the operator accepted (--allow)
    fl_quiesced: bool = False  # --fl-quiesced: FL may be restarted (FG007)
    run_id: str | None = None
    # A line of progress for long work (waiting for a task, a deployment); no secrets.
    report: Callable[[str], None] = field(default=lambda _line: None)
    # The interrupt flag (SIGINT/SIGTERM): long host runs are cancelled through it.
    cancel: Callable[[], bool] = field(default=lambda: False)
    secrets: SecretCache = field(default_factory=SecretCache)

    def trust(self, name: str) -> Trust:
        trust = self.manifest.trust(name)
        if trust is None:
            raise LookupError(f"trust {name} is not in the manifest")
        return trust


Runner = Callable[[ExecContext, Sequence[Action]], Mapping[str, Outcome]]


class HostBatch(Protocol):
    """A host kind's actions turned into host tasks, nothing contacted yet (see
    `engine/host_executors.py`): the engine may run several batches as one host run."""

    kind: ActionKind
    tasks: dict[str, HostTask]  # action id -> its host's task
    decided: dict[str, Outcome]  # known before any host is contacted (a task not built)

    def finish(self, results: Mapping[str, HostResult]) -> dict[str, Outcome]:
        """Outcomes of ``tasks`` from their results (keyed by action id), plus ``decided``."""
        ...


Preparer = Callable[[ExecContext, Sequence[Action]], HostBatch]


@dataclass(frozen=True)
class Executor:
    """``grouped`` executors receive every action of their kind in a wave at once; those
    with ``prepare`` (the host kinds) can also hand their tasks to the engine, which runs
    consecutive host waves as one host run (`engine/apply.py`)."""

    run: Runner
    grouped: bool = False
    prepare: Preparer | None = None


EXECUTORS: dict[ActionKind, Executor] = {}


def executor(kind: ActionKind, *, grouped: bool = False,
             prepare: Preparer | None = None) -> Callable[[Runner], Runner]:
    """Register ``fn`` as the executor of ``kind`` (exactly one per kind)."""

    def register(fn: Runner) -> Runner:
        if kind in EXECUTORS:
            raise RuntimeError(f"two executors for {kind}")
        EXECUTORS[kind] = Executor(run=fn, grouped=grouped, prepare=prepare)
        return fn

    return register


def single(fn: Callable[[ExecContext, Action], Outcome]) -> Runner:
    """Adapt a one-action function to the executor signature."""

    def run(ctx: ExecContext, actions: Sequence[Action]) -> dict[str, Outcome]:
        return {a.id: fn(ctx, a) for a in actions}

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


SIDE_BY_SIDE_WORKERS = 8
_T = TypeVar("_T")
_R = TypeVar("_R")


def side_by_side(fn: Callable[[_T], _R], items: Sequence[_T]) -> list[_R]:
    """``[fn(item) for item in items]``, up to SIDE_BY_SIDE_WORKERS at once, results in
    order. For a group's independent per-trust work that waits on AWS (reads, one-off tasks):
    one after the other, ten trusts wait ten times. ``fn`` must report its own failures
    (an exception still propagates, once the others are done)."""
    if len(items) < 2:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(SIDE_BY_SIDE_WORKERS, len(items)),
                            thread_name_prefix="flipgitops-group") as pool:
        return list(pool.map(fn, items))


_loaded = False


def load_executors() -> dict[ActionKind, Executor]:
    """Import the executor modules once; fail loudly if a kind has no executor."""
    global _loaded
    if not _loaded:
        import flipgitops.engine.host_executors
        import flipgitops.engine.hub_executors  # noqa: F401

        _loaded = True
    missing = sorted(set(ActionKind) - set(EXECUTORS))
    if missing:
        raise RuntimeError("action kinds without an executor: " + ", ".join(missing))
    return EXECUTORS


def executor_for(kind: ActionKind) -> Executor:
    return load_executors()[kind]
