"""flipgitops' own state in S3: the lock, run journals, the applied record, the ledger.

Layout under ``state.bucket``/``state.prefix``: ``locks/<env>.json``,
``runs/<env>/<run id>.jsonl``, ``applied/<env>.json``, ``ledger/<env>.json`` (what flipgitops
registered on the hub: per-trust records, the internal key's generation, the secret era's
pending redeploy — bookkeeping that never goes into FLIP's Terraform-owned ``FLIP_API``) and,
when the hub's Terraform owns the allowlist, ``allowlist/<env>.json``.

The lock is a conditional create (``If-None-Match: *``), so of two concurrent applies exactly
one gets it; a stale lock is reported with how to clear it, never silently taken over. The
ledger is a read-modify-write conditioned on the ETag read (``If-Match``), so two writers
cannot lose each other's update. Whatever sits in these objects is untrusted text: advice
built from a lock quotes, bounds and escapes it (issue 19).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from flipgitops.adapters.aws_session import (
    Clients,
    as_clients,
    call,
    error_code,
    must,
    redact,
    translate,
)
from flipgitops.errors import AwsError, LockHeld, TransientError
from flipgitops.model.actions import Action
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import LedgerTrust, ObservedLedger

UNREADABLE_PREFIX = "unreadable-"  # lock id of a lock object that is not a lock record
DEFAULT_LOCK_TTL = 2 * 60 * 60  # seconds; an apply that takes longer is stuck
MAX_ERROR_CHARS = 500  # journal lines stay small
ABSENT = ("NoSuchKey", "404")  # error codes of a get_object that found no object
CONFLICT = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")
MAX_LOCK_BYTES = 64 * 1024  # a lock record is a few hundred bytes; more is not a lock
# Lock ids flipgitops writes (run ids: 20261201T113551Z-1a2b3c4d); anything else in a lock
# object is shown escaped and replaced by the object's `unreadable-<ETag>` id, so the
# `unlock` advice an operator copies is never text someone else chose.
SAFE_LOCK_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]{0,79}")
SHOWN_CHARS = 120  # one shown field of a lock
LEDGER_FORMAT = 1
# This process's ledger writers take turns (the engine judges registrations side by side),
# so they never spend each other's attempts; other processes meet the conditional write.
_LEDGER_LOCK = threading.RLock()
LEDGER_WRITE_ATTEMPTS = 5  # concurrent writers re-read and re-apply; more means a hot loop


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ-") + secrets.token_hex(4)


def _age_seconds(started_at: str) -> float | None:
    try:
        return (datetime.now(UTC) - datetime.fromisoformat(started_at)).total_seconds()
    except (TypeError, ValueError):
        return None


class StateStore:
    def __init__(self, clients: Clients, bucket: str, prefix: str = "flipgitops") -> None:
        self.clients = clients
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    def key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p)

    # --- raw objects ----------------------------------------------------------------------

    def _doing(self, verb: str, key: str) -> str:
        return f"{verb} s3://{self.bucket}/{key} (state bucket; create it if it does not exist)"

    def get_json(self, key: str, *, missing: tuple[str, ...] = ABSENT) -> dict[str, Any] | None:
        """The object as a JSON object; None when absent or not an object. Invalid JSON
        raises AwsError naming the object, never a bare JSONDecodeError (a traceback)."""
        got = self._get_bytes(key, missing=missing)
        if got is None:
            return None
        try:
            data = json.loads(got[0] or b"null")
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            raise AwsError(
                f"s3://{self.bucket}/{key} is not valid JSON (hand-edited or truncated?): "
                "fix or delete it"
            ) from None
        return data if isinstance(data, dict) else None

    def _get_bytes(
        self, key: str, *, missing: tuple[str, ...] = ABSENT, limit: int | None = None
    ) -> tuple[bytes, str] | None:
        """(body, ETag without quotes) of an object, None when it does not exist (any of
        the ``missing`` error codes). With ``limit``, at most that many bytes are read."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if limit is not None:
            args["Range"] = f"bytes=0-{limit}"  # one byte more than allowed: "too big"
        resp = call(
            lambda: self.clients.s3.get_object(**args),
            doing=self._doing("reading", key),
            missing=(*missing, "InvalidRange") if limit is not None else missing,
        )
        if resp is None:
            return None
        return resp["Body"].read(), _etag(resp.get("ETag"))

    def put_text(self, key: str, body: str, content_type: str = "application/json") -> None:
        must(
            lambda: self.clients.s3.put_object(
                Bucket=self.bucket, Key=key, Body=body.encode(), ContentType=content_type
            ),
            doing=self._doing("writing", key),
        )

    def get_text(self, key: str) -> str | None:
        got = self._get_bytes(key)
        return None if got is None else got[0].decode()

    # --- lock -----------------------------------------------------------------------------

    def lock_key(self, env: str) -> str:
        return self.key("locks", f"{env}.json")

    def acquire_lock(
        self,
        env: str,
        holder: dict[str, Any],
        *,
        run_id: str | None = None,
        ttl_seconds: int = DEFAULT_LOCK_TTL,
    ) -> str:
        """Take the environment lock or raise LockHeld naming who has it. Returns the run id
        (which is also the lock id `flipgitops unlock` takes)."""
        run_id = run_id or new_run_id()
        body = {
            "lock_id": run_id,
            "run_id": run_id,
            "environment": env,
            "holder": holder,
            "commit": holder.get("commit"),
            "started_at": now_iso(),
            "ttl_seconds": ttl_seconds,
        }
        key = self.lock_key(env)
        try:
            self.clients.s3.put_object(
                Bucket=self.bucket, Key=key, Body=json.dumps(body).encode(),
                ContentType="application/json", IfNoneMatch="*",
            )
        except ClientError as exc:
            if error_code(exc) not in ("PreconditionFailed", "412", "ConditionalRequestConflict"):
                raise translate(exc, doing=self._doing("creating lock", key)) from None
            raise self._held(env, self._read_lock(key)) from None
        except BotoCoreError as exc:
            raise translate(exc, doing=self._doing("creating lock", key)) from None
        return run_id

    def _read_lock(self, key: str) -> dict[str, Any] | None:
        """The lock record; None when there is no lock. Whatever else sits at the lock key (a
        hand edit, a truncated write) still means "locked": it is described by a stand-in
        record whose id, ``unreadable-<ETag>``, is what `force_unlock` takes to remove it,
        so only that exact object can be removed by that id."""
        return self._read_lock_version(key)[0]

    def _read_lock_version(self, key: str) -> tuple[dict[str, Any] | None, str]:
        """(the lock record as `_read_lock` describes it, the object's ETag). No state bucket
        means no lock (the bucket deleted mid-apply took the lock with it)."""
        got = self._get_bytes(key, limit=MAX_LOCK_BYTES, missing=(*ABSENT, "NoSuchBucket"))
        if got is None:
            return None, ""
        body, etag = got
        unreadable = {"lock_id": f"{UNREADABLE_PREFIX}{etag or 'no-etag'}", "unreadable": True,
                      "size": len(body), "too_big": len(body) > MAX_LOCK_BYTES}
        lock = None if len(body) > MAX_LOCK_BYTES else _json_object(body)
        if lock is None:
            return unreadable, etag
        lock_id = lock.get("lock_id") or lock.get("run_id")
        if isinstance(lock_id, str) and SAFE_LOCK_ID.fullmatch(lock_id):
            return {**lock, "lock_id": lock_id}, etag
        # A record with an id flipgitops would never write: who holds it is shown (escaped),
        # the id operators are told to use is the object's own.
        return {**unreadable, "recorded_id": lock_id, "holder": lock.get("holder")}, etag

    def _held(self, env: str, lock: dict[str, Any] | None) -> LockHeld:
        if lock is None:  # released between our attempt and our read
            return LockHeld(f"environment {env} was locked by another run just now; rerun")
        key = self.lock_key(env)
        if lock.get("unreadable"):
            clear = f"flipgitops unlock --env {env} --lock-id {lock['lock_id']}"
            if lock.get("too_big"):
                what = f"more than {MAX_LOCK_BYTES} bytes, not a flipgitops lock record"
            elif "recorded_id" in lock:
                what = (f"its lock id {shown(lock['recorded_id'])} is not one flipgitops "
                        f"writes; holder {shown(lock.get('holder'))}")
            else:
                what = f"not a flipgitops lock record; {lock['size']} bytes"
            return LockHeld(
                f"environment {env} is locked: the lock object at s3://{self.bucket}/{key} is "
                f"unreadable ({what}), so who holds it is unknown. Check that no apply of "
                f"this environment is running, then remove it with: {clear}"
            )
        holder = lock.get("holder")
        if isinstance(holder, dict):
            items = sorted(holder.items(), key=lambda kv: str(kv[0]))
            extra = [f"{shown(k, 40, quote=False)}={shown(v)}" for k, v in items
                     if k not in ("who", "commit")][:8]
            who = ", ".join([shown(holder.get("who") or "an unnamed holder", quote=False),
                             *extra])
        else:
            who = shown(holder if holder is not None else "an unnamed holder",
                        quote=holder is not None)
        lock_id = lock["lock_id"]
        started = lock.get("started_at", "?")
        commit = f", commit {shown(lock['commit'], 40)}" if lock.get("commit") else ""
        ttl = lock.get("ttl_seconds")
        age = _age_seconds(str(started))
        clear = f"flipgitops unlock --env {env} --lock-id {lock_id}"
        head = (f"environment {env} is locked by {who} (run {lock_id}, started "
                f"{shown(started, 40, quote=False)}{commit})")
        if isinstance(ttl, int | float) and age is not None and age > ttl:
            return LockHeld(
                f"{head}; the lock is STALE (older than its {int(ttl)} s TTL). If that run "
                f"is no longer active, clear it with: {clear}"
            )
        return LockHeld(
            f"{head}; wait for it to finish. If it crashed, clear the lock with: {clear}"
        )

    def read_lock(self, env: str) -> dict[str, Any] | None:
        """The lock record, or for an unreadable lock object ``{"lock_id":
        "unreadable-<ETag>", "unreadable": True, ...}``; None when unlocked."""
        return self._read_lock(self.lock_key(env))

    def _delete_if(self, env: str, lock_id: str) -> bool:
        """Delete the lock only if it is still the very object we read (``If-Match`` on its
        ETag): two `unlock`s, or an unlock racing a new apply's lock, can never remove a
        lock that was taken after we looked."""
        key = self.lock_key(env)
        lock, etag = self._read_lock_version(key)
        if lock is None or lock.get("lock_id") != lock_id:
            return False
        try:
            self.clients.s3.delete_object(Bucket=self.bucket, Key=key, IfMatch=f'"{etag}"')
        except ClientError as exc:
            if error_code(exc) in ("PreconditionFailed", "412", "NoSuchKey", "404"):
                return False  # replaced or removed since we read it: not ours to delete
            raise translate(exc, doing=self._doing("deleting lock", key)) from None
        except BotoCoreError as exc:
            raise translate(exc, doing=self._doing("deleting lock", key)) from None
        return True

    def release_lock(self, env: str, run_id: str) -> None:
        """Release our own lock; a lock that is no longer ours is left alone."""
        self._delete_if(env, run_id)

    def force_unlock(self, env: str, lock_id: str) -> bool:
        """Clear a stale lock, only when ``lock_id`` is the holder's; True if removed."""
        return self._delete_if(env, lock_id)

    # --- applied record -------------------------------------------------------------------

    def applied_key(self, env: str) -> str:
        return self.key("applied", f"{env}.json")

    def write_applied(self, env: str, commit: str | None, fingerprint: str) -> None:
        record = {
            "environment": env, "commit": commit, "fingerprint": fingerprint,
            "applied_at": now_iso(),
        }
        self.put_text(self.applied_key(env), json.dumps(record, sort_keys=True))

    def read_applied(self, env: str) -> dict[str, Any] | None:
        return self.get_json(self.applied_key(env))

    # --- allowlist record (allowlist `terraform`) -----------------------------------------

    def allowlist_key(self, env: str) -> str:
        return self.key("allowlist", f"{env}.json")

    def write_allowlist_owners(self, env: str, owners: dict[str, str]) -> None:
        record = {"environment": env, "owners": owners, "written_at": now_iso()}
        self.put_text(self.allowlist_key(env), json.dumps(record, sort_keys=True))

    def read_allowlist_owners(self, env: str) -> dict[str, str]:
        """CIDR -> trust; empty when there is no record yet (or no state bucket: `plan`
        before the first apply)."""
        key = self.allowlist_key(env)
        record = self.get_json(key, missing=(*ABSENT, "NoSuchBucket"))
        if record is None:
            return {}
        owners = record.get("owners")
        if not isinstance(owners, dict):
            raise AwsError(f"s3://{self.bucket}/{key} is not an allowlist record (hand-edited "
                           "or truncated?): delete it; the next converged apply rewrites it")
        return {str(k): str(v) for k, v in owners.items()}

    # --- ledger ---------------------------------------------------------------------------

    def ledger_key(self, env: str) -> str:
        return self.key("ledger", f"{env}.json")

    def _ledger_version(self, env: str) -> tuple[ObservedLedger, str | None]:
        """(the ledger, its ETag); ``exists=False`` and no ETag when there is none yet."""
        key = self.ledger_key(env)
        got = self._get_bytes(key, missing=(*ABSENT, "NoSuchBucket"))
        if got is None:
            return ObservedLedger(exists=False), None
        body, etag = got
        return parse_ledger(body, f"s3://{self.bucket}/{key}"), etag

    def read_ledger(self, env: str) -> ObservedLedger:
        """One GET. Absent: ``exists=False``. Malformed: ``readable=False`` with an error
        naming the object and the field (the core then refuses to plan registrations)."""
        return self._ledger_version(env)[0]

    def update_ledger(self, env: str, fn: Callable[[ObservedLedger], ObservedLedger]
                      ) -> ObservedLedger:
        """Read, apply ``fn``, write only if the object is still the one read (``If-Match``
        its ETag, or ``If-None-Match: *`` when there was none); on a conflict re-read and
        re-apply, so a concurrent writer's update is never lost. An unreadable ledger is
        never overwritten. Returns the ledger as written (or as it was, when unchanged)."""
        with _LEDGER_LOCK:
            return self._update_ledger(env, fn)

    def _update_ledger(self, env: str, fn: Callable[[ObservedLedger], ObservedLedger]
                       ) -> ObservedLedger:
        key = self.ledger_key(env)
        for _ in range(LEDGER_WRITE_ATTEMPTS):
            current, etag = self._ledger_version(env)
            if not current.readable:
                raise AwsError(f"{current.error}; refusing to write over it")
            new = fn(current)
            if _ledger_doc(new, env) == _ledger_doc(current, env) and current.exists:
                return current
            body = json.dumps(_ledger_doc(new, env) | {"updated_at": now_iso()},
                              sort_keys=True, indent=1).encode()
            condition: Any = {"IfMatch": f'"{etag}"'} if etag else {"IfNoneMatch": "*"}
            try:
                self.clients.s3.put_object(Bucket=self.bucket, Key=key, Body=body,
                                           ContentType="application/json", **condition)
            except ClientError as exc:
                if error_code(exc) in CONFLICT:
                    continue  # someone wrote in between: re-read, re-apply
                raise translate(exc, doing=self._doing("writing ledger", key)) from None
            except BotoCoreError as exc:
                raise translate(exc, doing=self._doing("writing ledger", key)) from None
            return new.model_copy(update={"exists": True})
        raise TransientError(f"s3://{self.bucket}/{key} kept changing while flipgitops "
                             f"updated it ({LEDGER_WRITE_ATTEMPTS} attempts); rerun")

    # --- journals -------------------------------------------------------------------------

    def journal(self, env: str, run_id: str) -> Journal:
        return Journal(self, run_id, env=env)

    def read_journal(self, env: str, run_id: str) -> list[dict[str, Any]]:
        text = self.get_text(self.key("runs", env, f"{run_id}.jsonl")) or ""
        return [json.loads(line) for line in text.splitlines() if line.strip()]


class Journal:
    """An append-only record of one run, one JSON line per event.

    S3 cannot append, so every event rewrites the object with all lines so far. Lines hold
    ids, kinds, targets, statuses and masked, shortened messages only, which keeps them
    small and free of secrets. ``Journal(manifest, run_id)`` or ``Journal(store, run_id,
    env=...)``.
    """

    def __init__(
        self,
        where: Manifest | StateStore,
        run_id: str | None,
        *,
        env: str | None = None,
        session: boto3.Session | None = None,
        clients: Clients | None = None,
    ) -> None:
        if isinstance(where, StateStore):
            if env is None:
                raise ValueError("Journal(store, run_id) needs env=")
            self.store, self.env = where, env
        else:
            self.store = store_for(where, session=session, clients=clients)
            self.env = where.environment
        self.run_id = run_id or new_run_id()
        self.key = self.store.key("runs", self.env, f"{self.run_id}.jsonl")
        self.lines: list[dict[str, Any]] = []
        self._held = 0
        self._pending = False

    def event(self, event: str, **fields: Any) -> None:
        line = {"at": now_iso(), "run_id": self.run_id, "event": event}
        line.update({k: v for k, v in fields.items() if v is not None})
        self.lines.append(line)
        self._pending = True
        if not self._held:
            self.flush()

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Events inside are stored together when it ends (one write, not one each): the
        starts, and then the outcomes, of a group of actions that ran as one, e.g. the
        sixty host steps of ten onboardings in one host run. Nothing is lost that matters:
        a run killed before the write is replanned from what is live."""
        self._held += 1
        try:
            yield
        finally:
            self._held -= 1
            if not self._held:
                self.flush()

    def flush(self) -> None:
        """Store every event so far now (also inside `hold`, e.g. before a hard exit)."""
        if not self._pending:
            return
        body = "".join(json.dumps(entry, sort_keys=True, default=str) + "\n"
                       for entry in self.lines)
        self.store.put_text(self.key, body, content_type="application/x-ndjson")
        self._pending = False

    def _action(self, event: str, action: Action, **fields: Any) -> None:
        self.event(event, action=action.id, kind=action.kind, target=action.target, **fields)

    def start(self, action: Action) -> None:
        self._action("action.start", action)

    def finish(
        self, action: Action, *, changed: bool | None = None, message: str | None = None
    ) -> None:
        self._action("action.finish", action, changed=changed, message=_short(message))

    def failure(self, action: Action, error: BaseException | str) -> None:
        kind = type(error).__name__ if isinstance(error, BaseException) else None
        self._action("action.failure", action, error=_short(str(error)), error_type=kind)

    def skipped(self, action: Action, reason: str) -> None:
        """An action held back because something it depends on failed: the journal shows
        every planned action's fate, not only those that started."""
        self._action("action.not_run", action, reason=_short(reason))

    def close(self) -> None:
        """Every event is already stored; kept so callers can scope a journal's life."""


def _json_object(body: bytes) -> dict[str, Any] | None:
    """A body parsed as a JSON object; None for anything else (invalid, truncated, a list)."""
    try:
        data = json.loads(body)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return None
    return data if isinstance(data, dict) else None


def _short(text: str | None) -> str | None:
    return None if text is None else redact(text)[:MAX_ERROR_CHARS]


def _etag(value: object) -> str:
    """An ETag without quotes, reduced to the characters S3 uses (it reaches messages)."""
    return re.sub(r"[^A-Za-z0-9-]", "", str(value or ""))[:80]


def shown(value: object, limit: int = SHOWN_CHARS, *, quote: bool = True) -> str:
    """Untrusted text as it may appear in advice: one line, control characters escaped,
    bounded, and quoted (repr) unless it is a plain token."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)[:limit * 2]
    flat = text.encode("unicode_escape").decode("ascii")
    cut = flat if len(flat) <= limit else flat[:limit] + f"…({len(text)} chars)"
    if not quote and re.fullmatch(r"[A-Za-z0-9._:@/+-]{1,120}", cut):
        return cut
    return "'" + cut.replace("'", "\\'") + "'"


# --- the ledger's stored form -------------------------------------------------------------


class _LedgerDoc(BaseModel):
    """``ledger/<env>.json``: strict, so a hand edit that breaks a field is named."""

    model_config = ConfigDict(extra="forbid")

    format: int = LEDGER_FORMAT
    environment: str | None = None
    updated_at: str | None = None
    trusts: dict[str, LedgerTrust] = Field(default_factory=dict)
    internal_service_key_generation: int | None = None
    redeploy_pending: bool = False
    delivered_kits: dict[str, str] = Field(default_factory=dict)


def _ledger_doc(ledger: ObservedLedger, env: str) -> dict[str, Any]:
    return {
        "format": LEDGER_FORMAT, "environment": env,
        "trusts": {n: t.model_dump(mode="json") for n, t in sorted(ledger.trusts.items())},
        "internal_service_key_generation": ledger.internal_service_key_generation,
        "redeploy_pending": ledger.redeploy_pending,
        "delivered_kits": dict(sorted(ledger.delivered_kits.items())),
    }


def parse_ledger(body: bytes, where: str) -> ObservedLedger:
    """The stored ledger; malformed content is ``readable=False`` naming object and field."""
    data = _json_object(body)
    if data is None:
        return ObservedLedger(exists=True, readable=False, error=(
            f"{where} is not a JSON object (hand-edited or truncated?): restore it from the "
            "bucket's versions or fix it"))
    try:
        doc = _LedgerDoc.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return ObservedLedger(exists=True, readable=False, error=(
            f"{where} is not a flipgitops ledger: {shown(loc, 80, quote=False)}: "
            f"{shown(first.get('msg', ''), 120, quote=False)}"
            f"{f' (and {exc.error_count() - 1} more)' if exc.error_count() > 1 else ''}"))
    if doc.format != LEDGER_FORMAT:
        return ObservedLedger(exists=True, readable=False, error=(
            f"{where} has ledger format {doc.format}; this flipgitops reads format "
            f"{LEDGER_FORMAT}: upgrade flipgitops"))
    return ObservedLedger(exists=True, trusts=doc.trusts,
                          internal_service_key_generation=doc.internal_service_key_generation,
                          redeploy_pending=doc.redeploy_pending,
                          delivered_kits=doc.delivered_kits)


# --- manifest-level helpers: what the apply engine calls -----------------------------------


def store_for(
    manifest: Manifest, *, session: boto3.Session | None = None, clients: Clients | None = None
) -> StateStore:
    c = clients if clients is not None else as_clients(session, manifest.aws.region)
    return StateStore(c, manifest.state.bucket, manifest.state.prefix)


def _holder(holder: str | dict[str, Any]) -> dict[str, Any]:
    return dict(holder) if isinstance(holder, dict) else {"who": holder}


def acquire_lock(
    manifest: Manifest,
    holder: str | dict[str, Any],
    *,
    session: boto3.Session | None = None,
    clients: Clients | None = None,
    run_id: str | None = None,
    ttl_seconds: int = DEFAULT_LOCK_TTL,
) -> str:
    return store_for(manifest, session=session, clients=clients).acquire_lock(
        manifest.environment, _holder(holder), run_id=run_id, ttl_seconds=ttl_seconds
    )


def release_lock(
    manifest: Manifest, run_id: str, *, session: boto3.Session | None = None,
    clients: Clients | None = None,
) -> None:
    store_for(manifest, session=session, clients=clients).release_lock(
        manifest.environment, run_id
    )


def force_unlock(
    manifest: Manifest, lock_id: str, *, session: boto3.Session | None = None,
    clients: Clients | None = None,
) -> bool:
    return store_for(manifest, session=session, clients=clients).force_unlock(
        manifest.environment, lock_id
    )


def write_applied(
    manifest: Manifest, commit: str | None, fingerprint: str, *,
    session: boto3.Session | None = None, clients: Clients | None = None,
) -> None:
    store_for(manifest, session=session, clients=clients).write_applied(
        manifest.environment, commit, fingerprint
    )


def read_applied(
    manifest: Manifest, *, session: boto3.Session | None = None, clients: Clients | None = None,
) -> dict[str, Any] | None:
    return store_for(manifest, session=session, clients=clients).read_applied(
        manifest.environment
    )


def read_ledger(manifest: Manifest, *, clients: Clients | None = None) -> ObservedLedger:
    """One S3 GET of ``<prefix>/ledger/<env>.json``."""
    return store_for(manifest, clients=clients).read_ledger(manifest.environment)


def read_allowlist_owners(manifest: Manifest, *, clients: Clients | None = None
                          ) -> dict[str, str]:
    return store_for(manifest, clients=clients).read_allowlist_owners(manifest.environment)


def write_allowlist_owners(manifest: Manifest, owners: dict[str, str], *,
                           clients: Clients | None = None) -> None:
    store_for(manifest, clients=clients).write_allowlist_owners(manifest.environment, owners)


class S3State:
    """StatePort of one environment (`engine/ports_state.py`) on a `StateStore`."""

    def __init__(self, store: StateStore, env: str) -> None:
        self.store = store
        self.env = env

    def __repr__(self) -> str:
        return f"S3State(s3://{self.store.bucket}/{self.store.prefix}, env={self.env!r})"

    @classmethod
    def for_manifest(cls, manifest: Manifest, clients: Clients) -> S3State:
        return cls(store_for(manifest, clients=clients), manifest.environment)

    def read_ledger(self) -> ObservedLedger:
        return self.store.read_ledger(self.env)

    def update_ledger(self, fn: Callable[[ObservedLedger], ObservedLedger]) -> ObservedLedger:
        return self.store.update_ledger(self.env, fn)

    def read_lock(self) -> dict[str, Any] | None:
        return self.store.read_lock(self.env)

    def acquire_lock(self, holder: dict[str, Any], *, run_id: str | None = None,
                     ttl_seconds: int | None = None) -> str:
        return self.store.acquire_lock(self.env, holder, run_id=run_id,
                                       ttl_seconds=ttl_seconds or DEFAULT_LOCK_TTL)

    def release_lock(self, run_id: str) -> None:
        self.store.release_lock(self.env, run_id)

    def force_unlock(self, lock_id: str) -> bool:
        return self.store.force_unlock(self.env, lock_id)

    def journal(self, run_id: str) -> Journal:
        return Journal(self.store, run_id, env=self.env)

    def read_journal(self, run_id: str) -> list[dict[str, Any]]:
        return self.store.read_journal(self.env, run_id)

    def read_applied(self) -> dict[str, Any] | None:
        return self.store.read_applied(self.env)

    def write_applied(self, commit: str | None, fingerprint: str) -> None:
        self.store.write_applied(self.env, commit, fingerprint)

    def read_allowlist_owners(self) -> dict[str, str]:
        return self.store.read_allowlist_owners(self.env)

    def write_allowlist_owners(self, owners: dict[str, str]) -> None:
        self.store.write_allowlist_owners(self.env, owners)
