"""FLIP_API, the hub's Secrets Manager secret: read it, judge it, and edit it safely.

FLIP's Terraform (`main.tf`, module `flip_api_secret`) writes it whole with
``jsonencode({aes_key, internal_service_key_hash, internal_service_key})`` and, on E2 hubs,
``trust_api_key_hashes = var.TRUST_API_KEY_HASHES`` — a Terraform string variable, so the
hashes sit in the secret as a JSON-encoded *string*; hand-edited secrets hold an object.
Both forms are read, and a write keeps whichever form was there.

Nothing in here returns a secret value except `aes_key`, which hands the AES key to the one
caller that must deliver it (as ``SecretStr``). Observation reduces values to sha256 hex.
A secret that is missing, empty or mistyped is *malformed*, said by name: a corrupt
``aes_key`` must never reach a trust (issue 19).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import SecretStr

from flipgitops.adapters.aws_session import Clients, error_code, must, translate
from flipgitops.errors import AwsError, TransientError
from flipgitops.model.flip import (
    LEGACY_SECRET_KEYS,
    SECRET_AES_KEY,
    SECRET_INTERNAL_KEY,
    SECRET_INTERNAL_KEY_HASH,
    SECRET_TRUST_HASHES,
)
from flipgitops.model.kit import sha256_hex
from flipgitops.model.observed import ObservedSecret

KNOWN_KEYS = (SECRET_AES_KEY, SECRET_INTERNAL_KEY, SECRET_INTERNAL_KEY_HASH, SECRET_TRUST_HASHES)
LEGACY_PREFIX = "flipgitops_"  # any key an older flipgitops wrote carries it (or is listed)

HashForm = Literal["string", "object"]


class SecretError(AwsError):
    """FLIP_API is absent or its content cannot be used (named, never quoted)."""


class SecretNotObject(SecretError):
    """FLIP_API's value is not a JSON object (observed as malformed, refused for writes)."""


@dataclass(frozen=True)
class SecretDoc:
    """One version of FLIP_API. ``data`` holds secret values: it has no repr."""

    name: str
    version_id: str | None
    changed: datetime | None
    data: dict[str, Any] = field(repr=False)


def is_legacy_key(key: str) -> bool:
    return key in LEGACY_SECRET_KEYS or key.startswith(LEGACY_PREFIX)


def get_secret(clients: Clients, name: str, version_id: str | None = None) -> Any:
    """get_secret_value, None when the secret does not exist."""
    args: dict[str, Any] = {"SecretId": name}
    if version_id:
        args["VersionId"] = version_id
    doing = f"reading hub secret {name}"
    try:
        return clients.secretsmanager.get_secret_value(**args)
    except ClientError as exc:
        code = error_code(exc)
        if code == "ResourceNotFoundException":
            return None
        if code == "InvalidRequestException":
            raise SecretError(
                f"AWS refused {doing} (InvalidRequestException): it is most likely scheduled "
                f"for deletion; restore it with `aws secretsmanager restore-secret --secret-id "
                f"{name}` if that was a mistake"
            ) from None
        raise translate(exc, doing=doing) from None
    except BotoCoreError as exc:
        raise translate(exc, doing=doing) from None


def parse_document(text: object, name: str) -> dict[str, Any] | None:
    """The secret as a dict; None when it is not a JSON object (content never quoted)."""
    if not isinstance(text, str):
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def read_document(clients: Clients, name: str, version_id: str | None = None
                  ) -> SecretDoc | None:
    """FLIP_API as a document; None when absent; SecretError when not a JSON object."""
    resp = get_secret(clients, name, version_id)
    if resp is None:
        return None
    data = parse_document(resp.get("SecretString"), name)
    if data is None:
        raise SecretNotObject(
            f"hub secret {name} is not a JSON object; FLIP's Terraform writes "
            "{aes_key, internal_service_key, internal_service_key_hash}: fix it in Secrets "
            "Manager (its content is not shown)"
        )
    changed = resp.get("CreatedDate")
    return SecretDoc(name=name, version_id=resp.get("VersionId"),
                     changed=changed if isinstance(changed, datetime) else None, data=data)


def trust_hashes(data: dict[str, Any]) -> tuple[dict[str, str] | None, HashForm | None,
                                                str | None]:
    """(name -> sha256 hex, the stored form, a problem) of ``trust_api_key_hashes``.

    Absent: (None, None, None). A string that is not a JSON object, or any value that is not
    a string: a problem naming it — never an empty registry, which would look like "no
    trusts" and lead to re-registering every one of them.
    """
    if SECRET_TRUST_HASHES not in data:
        return None, None, None
    raw = data[SECRET_TRUST_HASHES]
    form: HashForm = "string" if isinstance(raw, str) else "object"
    value = raw
    if isinstance(raw, str):
        try:
            value = json.loads(raw)
        except ValueError:  # "" too: FLIP's json.loads(get_secret(...)) fails on it
            return None, form, (f"{SECRET_TRUST_HASHES} is a string that is not JSON "
                                "(FLIP's Terraform stores a JSON-encoded object)")
    if not isinstance(value, dict):
        return None, form, (f"{SECRET_TRUST_HASHES} is a JSON {type(value).__name__}, "
                            "not an object of trust name -> sha256 hex")
    bad = sorted(str(k) for k, v in value.items() if not isinstance(v, str) or not v)
    if bad:
        return None, form, (f"{SECRET_TRUST_HASHES} has non-string or empty hashes for "
                            f"{', '.join(bad[:5])}{' …' if len(bad) > 5 else ''}")
    return {str(k): str(v) for k, v in value.items()}, form, None


def encode_trust_hashes(hashes: dict[str, str], form: HashForm | None) -> object:
    """The registry in the form it was stored in (a new key: FLIP's Terraform's string)."""
    ordered = dict(sorted(hashes.items()))
    return ordered if form == "object" else json.dumps(ordered)


def _key_problem(data: dict[str, Any], key: str) -> str | None:
    if key not in data:
        return f"{key} is missing"
    value = data[key]
    if not isinstance(value, str):
        return f"{key} is a {type(value).__name__}, not a string"
    if not value.strip():
        return f"{key} is empty"
    return None


def observe(doc: SecretDoc | None, name: str) -> ObservedSecret:
    """What plan and drift may know of FLIP_API: key names, hashes, problems; no value."""
    if doc is None:
        return ObservedSecret(exists=False, name=name)
    data = doc.data
    malformed: list[str] = []
    aes_problem = _key_problem(data, SECRET_AES_KEY)
    if aes_problem:
        malformed.append(aes_problem)
    values: dict[str, str | None] = {}
    for key in (SECRET_INTERNAL_KEY, SECRET_INTERNAL_KEY_HASH):
        value = data.get(key)
        if key in data and not isinstance(value, str):
            malformed.append(f"{key} is a {type(value).__name__}, not a string")
        values[key] = value if isinstance(value, str) and value else None
    hashes, _, problem = trust_hashes(data)
    if problem:
        malformed.append(problem)
    aes = data.get(SECRET_AES_KEY)
    internal = values[SECRET_INTERNAL_KEY]
    return ObservedSecret(
        exists=True,
        name=name,
        malformed=tuple(malformed),
        aes_key_sha256=sha256_hex(aes) if aes_problem is None and isinstance(aes, str) else None,
        internal_key_sha256=sha256_hex(internal) if internal else None,
        internal_key_hash=values[SECRET_INTERNAL_KEY_HASH],
        trust_api_key_hashes=hashes,
        legacy_keys=tuple(sorted(k for k in data if is_legacy_key(k))),
        other_keys=tuple(sorted(k for k in data if k not in KNOWN_KEYS and not is_legacy_key(k))),
        version_id=doc.version_id,
        last_changed=doc.changed.isoformat() if doc.changed else None,
    )


def observe_secret(clients: Clients, name: str) -> tuple[ObservedSecret, SecretDoc | None]:
    """(what may be known of FLIP_API, the document for the rest of this observation). A
    secret that is not a JSON object is observed as malformed, not raised."""
    try:
        doc = read_document(clients, name)
    except SecretNotObject:
        return ObservedSecret(exists=True, name=name, malformed=(
            f"{name} is not a JSON object (FLIP's Terraform writes one)",)), None
    return observe(doc, name), doc


@dataclass(frozen=True)
class SecretView:
    """What executors read of FLIP_API: the registry and hashes, never a key value."""

    name: str
    exists: bool
    hashes: dict[str, str] | None = None  # trust_api_key_hashes (secret era)
    hash_form: HashForm | None = None
    hash_problem: str | None = None
    legacy: dict[str, Any] = field(default_factory=dict)  # older flipgitops' bookkeeping
    internal_key_sha256: str | None = None
    internal_key_hash: str | None = None
    changed: datetime | None = None


def view(doc: SecretDoc | None, name: str) -> SecretView:
    if doc is None:
        return SecretView(name=name, exists=False)
    hashes, form, problem = trust_hashes(doc.data)
    internal = doc.data.get(SECRET_INTERNAL_KEY)
    digest = doc.data.get(SECRET_INTERNAL_KEY_HASH)
    return SecretView(
        name=name, exists=True, hashes=hashes, hash_form=form, hash_problem=problem,
        legacy={k: v for k, v in doc.data.items() if is_legacy_key(k)},
        internal_key_sha256=sha256_hex(internal) if isinstance(internal, str) and internal
        else None,
        internal_key_hash=digest if isinstance(digest, str) and digest else None,
        changed=doc.changed,
    )


def aes_key(doc: SecretDoc | None, name: str) -> SecretStr:
    """The hub's AES key for delivery to trusts, or an error that changes nothing."""
    if doc is None:
        raise SecretError(f"hub secret {name} does not exist: deploy the hub (FLIP's "
                          "Terraform) first or fix hub.secret in the manifest")
    problem = _key_problem(doc.data, SECRET_AES_KEY)
    if problem:
        raise SecretError(
            f"hub secret {name}: {problem}; refusing to deliver it to any trust (fix "
            "TF_VAR_AES_KEY_BASE64 / the secret, then rerun)"
        )
    return SecretStr(str(doc.data[SECRET_AES_KEY]))


# --- compare-and-swap writes -------------------------------------------------------------


def _stages(clients: Clients, name: str) -> dict[str, list[str]]:
    resp = must(lambda: clients.secretsmanager.describe_secret(SecretId=name),
                doing=f"describing hub secret {name}")
    return {k: list(v) for k, v in resp.get("VersionIdsToStages", {}).items()}


def _version_with(stages: dict[str, list[str]], stage: str) -> str | None:
    return next((v for v, s in stages.items() if stage in s), None)


def _write(clients: Clients, name: str, read_version: str | None, data: dict[str, Any]) -> str:
    """Write only if AWSCURRENT is still the version we read."""
    if _version_with(_stages(clients, name), "AWSCURRENT") != read_version:
        raise TransientError(
            f"hub secret {name} changed while flipgitops was editing it (someone else "
            "wrote it); nothing was written; rerun to re-read and re-apply"
        )
    resp = must(
        lambda: clients.secretsmanager.put_secret_value(
            SecretId=name, SecretString=json.dumps(data), ClientRequestToken=str(uuid.uuid4())
        ),
        doing=f"writing hub secret {name}",
    )
    return str(resp["VersionId"])


Mutation = Callable[[dict[str, Any]], dict[str, Any]]


def read_modify_write(clients: Clients, name: str, mutate: Mutation) -> bool:
    """One read-modify-write of FLIP_API; every key ``mutate`` leaves alone stays as it was.

    Secrets Manager has no conditional put, so a concurrent edit is detected on both sides:
    before the write the version read must still be AWSCURRENT; after it, the version our
    write displaced (AWSPREVIOUS) must be the one we read. If another writer slipped in
    between, their version is re-read, our change re-applied on top of it, and
    TransientError tells the engine to stop and rerun (which re-observes). Returns whether
    anything was written.
    """
    doc = read_document(clients, name)
    if doc is None:
        raise SecretError(f"hub secret {name} does not exist: flipgitops never creates it; "
                          "deploy the hub (FLIP's Terraform) first or fix hub.secret")
    new = mutate(dict(doc.data))
    if new == doc.data:
        return False
    written = _write(clients, name, doc.version_id, new)
    stages = _stages(clients, name)
    displaced = _version_with(stages, "AWSPREVIOUS")
    if displaced != doc.version_id:
        if displaced is not None and _version_with(stages, "AWSCURRENT") == written:
            theirs = read_document(clients, name, displaced)
            if theirs is not None:
                _write(clients, name, written, mutate(dict(theirs.data)))
        raise TransientError(
            f"hub secret {name} was written by someone else at the same time; their change "
            "was kept and flipgitops' change re-applied on top; rerun to confirm"
        )
    return True
