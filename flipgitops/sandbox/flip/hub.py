"""The Central Hub's database and flip-api's process state, as FLIP keeps them.

One `HubState` is shared by the worker (which plays the one-off ECS tasks and ECS's
scheduler) and the stand-in flip-api (which answers trusts). It holds:

- the database: FLIP's `trust` table and `fl_kit_slot` pool (flip_api/db/models), the rows
  trusts' tasks and projects hang off, and whether schema `public` and its tables exist;
- what the running flip-api process loaded when it last booted (`Loaded`): the trust API-key
  header, and in the secret era (E2) the `TRUST_NAMES` environment and the
  `trust_api_key_hashes` of the `FLIP_API` secret, which E2 caches for its process lifetime;
- an event log tests read (`events`), e.g. ``("register", name)``, ``("boot", tag)``.

Everything is guarded by one lock, and every change wakes `wait_for`, so tests and the
seeder can wait for the background worker without sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from flipgitops.sandbox.flip import flipnames as fn


class HubError(Exception):
    """Base of the errors the stand-in hub raises to its HTTP layer and task scripts."""


class DatabaseUnavailable(HubError):
    """The tables are gone (after `DROP SCHEMA public CASCADE`, before flip-api's next boot):
    every query fails, as PostgreSQL's `relation "trust" does not exist` would."""

    def __init__(self, table: str = "trust") -> None:
        super().__init__(f'relation "{table}" does not exist')


class NotServing(HubError):
    """No flip-api task has booted yet: the load balancer has no target to send to."""


class AuthError(HubError):
    """401 with FLIP's detail text."""


class Forbidden(HubError):
    """403 with FLIP's detail text."""


class NotFound(HubError):
    """404 with FLIP's detail text."""


class Conflict(HubError):
    """409 with FLIP's detail text."""


class RegistrationError(HubError):
    """FLIP's TrustRegistrationError family (empty name/code, duplicate, no free slot)."""


class BootError(HubError):
    """flip-api could not start (its migrations or settings failed)."""


def now() -> datetime:
    return datetime.now(UTC)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def iso_ms(value: datetime | None) -> str | None:
    """admin_get_trusts.py@812a7ed3: `isoformat(timespec="milliseconds") + "Z"` of naive UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


@dataclass
class TrustRow:
    """FLIP's `trust` table (flip_api/db/models/main_models.py Trust)."""

    id: str
    name: str
    code: str | None
    region: str | None
    api_key_hash: str | None = field(repr=False)
    created_at: datetime
    disabled_at: datetime | None = None
    last_heartbeat: datetime | None = None
    services_health: Any = None


@dataclass
class SlotRow:
    """FLIP's `fl_kit_slot` table: slot_name is the primary key."""

    slot_name: str
    slot_number: int
    assigned_to_trust_id: str | None = None
    assigned_at: datetime | None = None


@dataclass
class TaskRow:
    """FLIP's `trust_task` table, reduced to what the trust routes read and write."""

    id: str
    trust_id: str
    task_type: str
    payload: str
    created_at: datetime
    status: str = "PENDING"
    result: Any = None


@dataclass(frozen=True)
class Loaded:
    """What the running flip-api process read when it booted (settings are read once)."""

    image_tag: str | None
    api_key_header: str
    trust_names: tuple[str, ...] = ()
    # Secret era only: name -> sha256 hex, or None when the secret has no usable value
    # (E2 then fails every authentication with a 500).
    trust_api_key_hashes: Mapping[str, str] | None = field(default=None, repr=False)
    aes_key_fingerprint: str | None = None


@dataclass(frozen=True)
class Identity:
    """Who an API key belongs to, as the trust routes report it."""

    trust_id: str | None
    trust_name: str


@dataclass(frozen=True)
class Registration:
    """What FLIP's register_trust service returns: the row, its slot and the two keys."""

    trust: TrustRow
    slot: SlotRow
    api_key: str = field(repr=False)
    internal_key: str = field(repr=False)


class HubState:
    """The hub's database and flip-api's loaded settings, thread-safe."""

    def __init__(self, era: fn.Era = "database") -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._era: fn.Era = era
        self._schema = True
        self._tables = True
        self._trusts: dict[str, TrustRow] = {}
        self._slots: dict[str, SlotRow] = {}
        self._tasks: dict[str, TaskRow] = {}
        self._dependents: dict[str, dict[str, int]] = {}
        self._loaded: Loaded | None = None
        self._events: list[tuple[Any, ...]] = []
        self._tokens: dict[str, bool] = {}
        self._egress: dict[str, str] = {}
        self._refusal: str | None = None
        self.requests: deque[tuple[str, str, int]] = deque(maxlen=10_000)

    # --- bookkeeping ------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One lock held across a script's read-then-write (FLIP's session + row locks)."""
        with self._lock:
            yield
            self._changed.notify_all()

    def _event(self, *event: Any) -> None:
        self._events.append(event)
        self._changed.notify_all()

    def record(self, *event: Any) -> None:
        with self._lock:
            self._event(*event)

    @property
    def events(self) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._events)

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
        """Block until ``predicate()`` holds (re-checked on every change) or time runs out."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.2))
            return True

    @property
    def era(self) -> fn.Era:
        return self._era

    def refuse_connections(self, reason: str | None) -> None:
        """A database that turns direct clients away (an RDS Proxy whose IAM auth fails, a
        security group that lost the task's subnet), or, with None, one that accepts them.
        A script connecting itself then fails with psycopg2's error; moto still reports
        the task's exit code as 0, as Fargate does."""
        with self._lock:
            self._refusal = reason

    @property
    def connection_refusal(self) -> str | None:
        with self._lock:
            return self._refusal

    def set_era(self, era: fn.Era) -> None:
        """Which flip-api build the hub runs: E2 (`secret`) or the current one (`database`)."""
        with self._lock:
            self._era = era

    @property
    def loaded(self) -> Loaded | None:
        with self._lock:
            return self._loaded

    @property
    def schema_exists(self) -> bool:
        with self._lock:
            return self._schema

    @property
    def tables_exist(self) -> bool:
        with self._lock:
            return self._tables

    def _need_tables(self, table: str = "trust") -> None:
        if not self._tables:
            raise DatabaseUnavailable(table)

    # --- reading the tables (tests, admin route) -------------------------------------

    def trusts(self) -> list[TrustRow]:
        with self._lock:
            self._need_tables()
            return [replace(t) for t in self._trusts.values()]

    def trust(self, name: str) -> TrustRow | None:
        with self._lock:
            self._need_tables()
            row = next((t for t in self._trusts.values() if t.name == name), None)
            return replace(row) if row else None

    def slots(self) -> list[SlotRow]:
        with self._lock:
            self._need_tables("fl_kit_slot")
            return sorted((replace(s) for s in self._slots.values()),
                          key=lambda s: (s.slot_number, s.slot_name))

    def slot_of(self, trust_id: str) -> SlotRow | None:
        with self._lock:
            self._need_tables("fl_kit_slot")
            row = next((s for s in self._slots.values() if s.assigned_to_trust_id == trust_id),
                       None)
            return replace(row) if row else None

    # --- the slot pool (db/seed/fl_kit_slots.py@315baf08) -----------------------------

    def insert_missing_slots(self, names: list[str]) -> int:
        """Additive only: never deletes, re-assigns or un-assigns a row."""
        with self._lock:
            self._need_tables("fl_kit_slot")
            added = 0
            for name in names:
                if name not in self._slots:
                    self._slots[name] = SlotRow(name, fn.slot_number(name))
                    added += 1
            self._changed.notify_all()
            return added

    def _claim_free_slot(self) -> SlotRow | None:
        free = [s for s in self._slots.values() if s.assigned_to_trust_id is None]
        return min(free, key=lambda s: s.slot_number) if free else None

    # --- register_trust service (trusts_services/services/register_trust.py@160f4bf2) -

    def register_trust(
        self,
        name: str,
        code: str | None,
        region: str | None,
        resolve_slot_names: Callable[[], list[str]],
        *,
        slot: str | None = None,
    ) -> Registration:
        """Validate, mint two keys, store only the API key's sha256, claim the lowest free
        slot (reconciling the pool once from its source when none is free).

        ``slot`` claims a named free slot instead: only the seeder uses it, to leave a hub
        as an earlier sequence of FLIP registrations and deletions would have.
        """
        with self._lock:
            self._need_tables()
            name = name.strip()
            if not name:
                raise RegistrationError(fn.ERR_EMPTY_NAME)
            if code is None or not code.strip():
                raise RegistrationError(fn.ERR_EMPTY_CODE)
            if any(t.name == name for t in self._trusts.values()):
                raise RegistrationError(fn.ERR_DUPLICATE.format(name=name))
            if slot is not None:
                row = self._slots.get(slot)
                chosen = row if row is not None and row.assigned_to_trust_id is None else None
            else:
                chosen = self._claim_free_slot()
                if chosen is None:
                    self.insert_missing_slots(resolve_slot_names())
                    chosen = self._claim_free_slot()
            if chosen is None:
                raise RegistrationError(fn.ERR_NO_SLOT)
            api_key = secrets.token_urlsafe(32)
            internal_key = secrets.token_urlsafe(32)  # its hash is discarded by FLIP
            stamp = now()
            trust = TrustRow(
                id=str(uuid.uuid4()), name=name, code=code, region=region,
                api_key_hash=sha256_hex(api_key), created_at=stamp,
            )
            self._trusts[trust.id] = trust
            chosen.assigned_to_trust_id = trust.id
            chosen.assigned_at = stamp
            self._event("register", name)
            return Registration(replace(trust), replace(chosen), api_key, internal_key)

    # --- delete_trust (scripts/delete_trust.py@3c9a08e0) ------------------------------

    def delete_trust(self, name: str) -> dict[str, Any] | None:
        """Free the slot, delete dependent rows, delete the trust; None when absent."""
        with self._lock:
            self._need_tables()
            name = name.strip()
            trust = next((t for t in self._trusts.values() if t.name == name), None)
            if trust is None:
                return None
            freed: str | None = None
            for row in self._slots.values():
                if row.assigned_to_trust_id == trust.id:
                    row.assigned_to_trust_id = None
                    row.assigned_at = None
                    freed = row.slot_name
            counts = dict.fromkeys(fn.DEPENDENT_TABLES, 0)
            counts.update(self._dependents.pop(trust.id, {}))
            tasks = [t for t in self._tasks.values() if t.trust_id == trust.id]
            counts["trust_task"] += len(tasks)
            for task in tasks:
                del self._tasks[task.id]
            del self._trusts[trust.id]
            self._event("delete", name)
            return {"trust_id": trust.id, "name": trust.name, "freed_fl_kit_slot": freed,
                    "dependent_rows_deleted": counts}

    def add_dependent_rows(self, trust_name: str, table: str, count: int) -> None:
        """Give a trust hub records (projects, FL results...) that a delete cascades."""
        if table not in fn.DEPENDENT_TABLES:
            raise ValueError(f"unknown dependent table {table!r}; one of {fn.DEPENDENT_TABLES}")
        with self._lock:
            trust = self._by_name(trust_name)
            rows = self._dependents.setdefault(trust.id, {})
            rows[table] = rows.get(table, 0) + count

    def _by_name(self, name: str) -> TrustRow:
        self._need_tables()
        trust = next((t for t in self._trusts.values() if t.name == name), None)
        if trust is None:
            raise KeyError(f"no trust named {name!r} on the stand-in hub")
        return trust

    # --- schema and boot --------------------------------------------------------------

    def drop_schema(self) -> None:
        """`DROP SCHEMA public CASCADE`: every table and row is gone."""
        with self._lock:
            self._schema = False
            self._tables = False
            self._trusts.clear()
            self._slots.clear()
            self._tasks.clear()
            self._dependents.clear()
            self._event("schema_drop")

    def create_schema(self) -> None:
        """`CREATE SCHEMA public`: an empty schema; the tables wait for flip-api's boot."""
        with self._lock:
            self._schema = True
            self._event("schema_create")

    def boot(self, loaded: Loaded, slot_names: list[str]) -> None:
        """A new flip-api task started: create missing tables (the entrypoint's migrations),
        seed the slot pool additively, and, in E2, seed a trust row per TRUST_NAMES entry
        (db/seed/trusts.py@4d522c49). Then the loaded settings replace the old process's."""
        with self._lock:
            if not self._schema:
                raise BootError('schema "public" does not exist')
            self._tables = True
            self.insert_missing_slots(slot_names)
            if self._era == "secret":
                known = {t.name for t in self._trusts.values()}
                for name in loaded.trust_names:
                    if name not in known:
                        row = TrustRow(str(uuid.uuid4()), name, None, None, None, now())
                        self._trusts[row.id] = row
            self._loaded = loaded
            self._event("boot", loaded.image_tag)

    def halt(self) -> None:
        """flip-api was scaled to zero: nothing serves until its next boot."""
        with self._lock:
            self._loaded = None
            self._event("halt")

    # --- the trust routes (auth/access_manager.py@3ba224eb, E2 access_manager) --------

    def _serving(self) -> Loaded:
        if self._loaded is None:
            raise NotServing("flip-api has no running task")
        return self._loaded

    def api_key_header(self) -> str:
        with self._lock:
            return self._serving().api_key_header

    def authenticate(self, api_key: str | None) -> Identity:
        """The database era sweeps every row's hash (no early exit); E2 walks the hashes it
        loaded at boot and returns the first match. One hash per trust in both."""
        with self._lock:
            loaded = self._serving()
            if not api_key:
                raise AuthError(fn.DETAIL_KEY_MISSING)
            provided = sha256_hex(api_key)
            if self._era == "database":
                self._need_tables()
                matched: TrustRow | None = None
                for row in self._trusts.values():
                    if row.api_key_hash is not None and hmac.compare_digest(
                        provided, row.api_key_hash
                    ):
                        matched = row
                if matched is None:
                    raise AuthError(fn.DETAIL_KEY_INVALID)
                return Identity(matched.id, matched.name)
            hashes = loaded.trust_api_key_hashes
            if hashes is None:
                raise DatabaseUnavailable("trust_api_key_hashes")
            for name, stored in hashes.items():
                if hmac.compare_digest(provided, stored):
                    self._need_tables()
                    found = next((t for t in self._trusts.values() if t.name == name), None)
                    return Identity(found.id if found else None, name)
            raise AuthError(fn.DETAIL_KEY_INVALID)

    def heartbeat(self, who: Identity, health: Any) -> dict[str, Any]:
        with self._lock:
            loaded = self._serving()
            self._need_tables()
            row = self._trusts.get(who.trust_id or "")
            if row is not None:
                row.last_heartbeat = now()
                if health is not None:
                    row.services_health = health
            self._changed.notify_all()
            return {"trust_id": who.trust_id, "trust_name": who.trust_name,
                    "message": fn.HEARTBEAT_MESSAGE, "hub_version": loaded.image_tag,
                    "aes_key_fingerprint": loaded.aes_key_fingerprint}

    def enqueue_task(self, trust_name: str, task_type: str, payload: str) -> str:
        """Queue a task for a trust (what the hub's UI does when a researcher acts)."""
        with self._lock:
            trust = self._by_name(trust_name)
            task = TaskRow(str(uuid.uuid4()), trust.id, task_type, payload, now())
            self._tasks[task.id] = task
            self._changed.notify_all()
            return task.id

    def pending_tasks(self, who: Identity) -> dict[str, Any]:
        """Up to 50 PENDING tasks, marked IN_PROGRESS as they are handed out."""
        with self._lock:
            self._serving()
            self._need_tables("trust_task")
            out = []
            for task in self._tasks.values():
                if task.trust_id == who.trust_id and task.status == "PENDING":
                    task.status = "IN_PROGRESS"
                    out.append({"id": task.id, "task_type": task.task_type,
                                "payload": task.payload, "created_at": iso_ms(task.created_at)})
                    if len(out) == fn.PENDING_TASKS_LIMIT:
                        break
            self._changed.notify_all()
            return {"trust_id": who.trust_id, "trust_name": who.trust_name, "tasks": out}

    def task_result(self, who: Identity, task_id: str, result: Any) -> dict[str, Any]:
        with self._lock:
            self._serving()
            self._need_tables("trust_task")
            task = self._tasks.get(task_id)
            if task is None:
                raise NotFound(f"Task {task_id} not found")
            if task.trust_id != who.trust_id:
                raise Forbidden(f"Task {task_id} does not belong to trust '{who.trust_name}'")
            if task.status != "IN_PROGRESS":
                raise Conflict(
                    f"Task {task_id} is not in progress (current status: {task.status})"
                )
            task.status = "COMPLETED"
            task.result = result
            self._changed.notify_all()
            return {"trust_id": who.trust_id, "trust_name": who.trust_name,
                    "message": f"Task {task_id} result recorded"}

    def task(self, task_id: str) -> TaskRow | None:
        with self._lock:
            row = self._tasks.get(task_id)
            return replace(row) if row else None

    # --- the admin route (trusts_services/admin_get_trusts.py@812a7ed3) ---------------

    def add_token(self, token: str, *, admin: bool = True) -> None:
        """A bearer token the stand-in accepts; ``admin`` grants CAN_ACCESS_ADMIN_PANEL."""
        with self._lock:
            self._tokens[token] = admin

    def admin_trusts(self, token: str | None) -> list[dict[str, Any]]:
        with self._lock:
            self._serving()
            if not token or token not in self._tokens:
                raise AuthError("Invalid token" if token else "Not authenticated")
            if not self._tokens[token]:
                raise Forbidden(fn.DETAIL_ADMIN_REQUIRED)
            self._need_tables()
            return [
                {"id": t.id, "name": t.name, "code": t.code, "region": t.region,
                 "created_at": iso_ms(t.created_at), "disabled_at": iso_ms(t.disabled_at),
                 "last_heartbeat": iso_ms(t.last_heartbeat),
                 "project_count": self._dependents.get(t.id, {}).get(
                     "project_trust_intersect", 0)}
                for t in sorted(self._trusts.values(), key=lambda t: t.created_at)
            ]

    # --- the internet's view of a trust host (sandbox only) --------------------------

    def set_egress(self, trust: str, ip: str | None) -> None:
        """The public IP a trust host's traffic appears from (None: unknown)."""
        with self._lock:
            if ip is None:
                self._egress.pop(trust, None)
            else:
                self._egress[trust] = ip

    def egress(self, trust: str) -> str | None:
        with self._lock:
            return self._egress.get(trust)
