"""flipgitops' own state in S3: the environment lock, run journals, the applied record.

Layout under ``state.bucket``/``state.prefix``: ``locks/<env>.json``,
``runs/<env>/<run id>.jsonl``, ``applied/<env>.json`` and, when the hub's Terraform owns the
allowlist, ``allowlist/<env>.json`` (whose IP each Terraform-written rule is). The lock is a
conditional create (``If-None-Match: *``), so of two concurrent applies exactly one gets it; a
stale lock is reported with how to clear it, never silently taken over.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from flipgitops.adapters.aws_session import (
    Clients,
    as_clients,
    call,
    error_code,
    must,
    redact,
    translate,
)
from flipgitops.errors import AwsError, LockHeld
from flipgitops.model.manifest import Manifest
from flipgitops.model.plan import Action

UNREADABLE_PREFIX = "unreadable-"  # lock id of a lock object that is not a lock record
DEFAULT_LOCK_TTL = 2 * 60 * 60  # seconds; an apply that takes longer is stuck
MAX_ERROR_CHARS = 500  # journal lines stay small
ABSENT = ("NoSuchKey", "404")  # error codes of a get_object that found no object


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
        self, key: str, *, missing: tuple[str, ...] = ABSENT
    ) -> tuple[bytes, str] | None:
        """(body, ETag without quotes) of an object, None when it does not exist (any of
        the ``missing`` error codes)."""
        resp = call(
            lambda: self.clients.s3.get_object(Bucket=self.bucket, Key=key),
            doing=self._doing("reading", key),
            missing=missing,
        )
        if resp is None:
            return None
        return resp["Body"].read(), str(resp.get("ETag", "")).strip('"')

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
        """(the lock record as `_read_lock` describes it, the object's ETag)."""
        got = self._get_bytes(key)
        if got is None:
            return None, ""
        body, etag = got
        lock = _json_object(body) or {}
        lock_id = lock.get("lock_id") or lock.get("run_id")
        if isinstance(lock_id, str) and lock_id:
            return {**lock, "lock_id": lock_id}, etag
        return {"lock_id": f"{UNREADABLE_PREFIX}{etag or 'no-etag'}", "unreadable": True,
                "size": len(body)}, etag

    def _held(self, env: str, lock: dict[str, Any] | None) -> LockHeld:
        if lock is None:  # released between our attempt and our read
            return LockHeld(f"environment {env} was locked by another run just now; rerun")
        if lock.get("unreadable"):
            key = self.lock_key(env)
            return LockHeld(
                f"environment {env} is locked: the lock object at s3://{self.bucket}/{key} is "
                f"unreadable (not a flipgitops lock record; {lock['size']} bytes), so who "
                "holds it is unknown. Check that no apply of this environment is running, "
                f"then remove it with: flipgitops unlock --env {env} --lock-id {lock['lock_id']}"
            )
        holder = lock.get("holder") or {}
        extra = [f"{k}={v}" for k, v in sorted(holder.items()) if k not in ("who", "commit")]
        who = ", ".join([str(holder.get("who") or "an unnamed holder"), *extra])
        lock_id = lock.get("lock_id") or lock.get("run_id")
        started = lock.get("started_at", "?")
        commit = f", commit {lock['commit']}" if lock.get("commit") else ""
        ttl = lock.get("ttl_seconds")
        age = _age_seconds(str(started))
        clear = f"flipgitops unlock --env {env} --lock-id {lock_id}"
        head = f"environment {env} is locked by {who} (run {lock_id}, started {started}{commit})"
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

    def event(self, event: str, **fields: Any) -> None:
        line = {"at": now_iso(), "run_id": self.run_id, "event": event}
        line.update({k: v for k, v in fields.items() if v is not None})
        self.lines.append(line)
        body = "".join(json.dumps(entry, sort_keys=True, default=str) + "\n"
                       for entry in self.lines)
        self.store.put_text(self.key, body, content_type="application/x-ndjson")

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


def read_allowlist_owners(manifest: Manifest, *, clients: Clients | None = None
                          ) -> dict[str, str]:
    return store_for(manifest, clients=clients).read_allowlist_owners(manifest.environment)


def write_allowlist_owners(manifest: Manifest, owners: dict[str, str], *,
                           clients: Clients | None = None) -> None:
    store_for(manifest, clients=clients).write_allowlist_owners(manifest.environment, owners)
