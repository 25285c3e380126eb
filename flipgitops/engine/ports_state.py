"""Port to flipgitops' own state (S3 under `state.bucket`/`state.prefix`): the environment
lock, run journals, the applied record, the allowlist record and the ledger.

The ledger is the one record executors write: :meth:`StatePort.update_ledger` takes a
function from the ledger read to the ledger to write, and re-applies it when another writer
got in first, so callers never hold a stale copy across a write. The dry-run wrapper
(:func:`dry_run_state`) forwards reads and raises :class:`DryRunWrite` on every write — the
lock and journal included: a dry run takes no lock and leaves no journal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from flipgitops.engine.ports_hub import DryRunWrite
from flipgitops.model.observed import ObservedLedger

LedgerUpdate = Callable[[ObservedLedger], ObservedLedger]


class JournalPort(Protocol):
    run_id: str

    def event(self, event: str, **fields: Any) -> None: ...


class StateReader(Protocol):
    def read_ledger(self) -> ObservedLedger: ...

    def read_lock(self) -> dict[str, Any] | None: ...

    def read_applied(self) -> dict[str, Any] | None: ...

    def read_allowlist_owners(self) -> dict[str, str]: ...

    def read_journal(self, run_id: str) -> list[dict[str, Any]]: ...


class StateWriter(Protocol):
    def update_ledger(self, fn: LedgerUpdate) -> ObservedLedger:
        """Read-modify-write of the ledger (If-Match on its ETag); returns what was written."""
        ...

    def acquire_lock(self, holder: dict[str, Any], *, run_id: str | None = None,
                     ttl_seconds: int | None = None) -> str: ...

    def release_lock(self, run_id: str) -> None: ...

    def force_unlock(self, lock_id: str) -> bool: ...

    def journal(self, run_id: str) -> JournalPort: ...

    def write_applied(self, commit: str | None, fingerprint: str) -> None: ...

    def write_allowlist_owners(self, owners: dict[str, str]) -> None: ...


class StatePort(StateReader, StateWriter, Protocol):
    """flipgitops' own state for one environment."""


class _DryRunState:
    def __init__(self, inner: StatePort) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return f"DryRun({self._inner!r})"

    def read_ledger(self) -> ObservedLedger:
        return self._inner.read_ledger()

    def read_lock(self) -> dict[str, Any] | None:
        return self._inner.read_lock()

    def read_applied(self) -> dict[str, Any] | None:
        return self._inner.read_applied()

    def read_allowlist_owners(self) -> dict[str, str]:
        return self._inner.read_allowlist_owners()

    def read_journal(self, run_id: str) -> list[dict[str, Any]]:
        return self._inner.read_journal(run_id)

    def update_ledger(self, fn: LedgerUpdate) -> ObservedLedger:
        raise DryRunWrite("state", "update_ledger")

    def acquire_lock(self, holder: dict[str, Any], *, run_id: str | None = None,
                     ttl_seconds: int | None = None) -> str:
        raise DryRunWrite("state", "acquire_lock")

    def release_lock(self, run_id: str) -> None:
        raise DryRunWrite("state", "release_lock")

    def force_unlock(self, lock_id: str) -> bool:
        raise DryRunWrite("state", "force_unlock")

    def journal(self, run_id: str) -> JournalPort:
        raise DryRunWrite("state", "journal")

    def write_applied(self, commit: str | None, fingerprint: str) -> None:
        raise DryRunWrite("state", "write_applied")

    def write_allowlist_owners(self, owners: dict[str, str]) -> None:
        raise DryRunWrite("state", "write_allowlist_owners")


def dry_run_state(state: StatePort) -> StatePort:
    return _DryRunState(state)
