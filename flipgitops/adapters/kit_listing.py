"""The FL participant kits in the kit bucket, as one prefix listing (no object is read).

FLIP's kit layout (`flip_fl_kit/tasks/s3.yml`, `package-onprem-trust-kit.sh`@43910fb5):
nvflare kits are ``fl-flare-participant-kits/<date>/net-1/services/<slot>/{startup,local}/…``,
one directory per slot; flower kits are ``fl-flower-participant-kits/<date>/net-1/`` with a
shared ``certificates/ca.crt`` and one ``keys/supernode_credentials_<N>`` per slot number.
Each slot's slice gets a fingerprint over (key, ETag, size), so a new kit — new
certificates under the same names — is seen without downloading anything. The number of
calls grows with the bucket's objects (1,000 per page): an nvflare slot holds about a dozen,
so the listing takes one more page per ~80 trusts — the one AWS read of an observation that
grows with the trusts. The recipe is
the host modules' (flipgitops_host/flkit.py `listing_fingerprint`), so a host
can recompute it from its own files when every ETag of the slice is an MD5 (`etag_md5`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flipgitops.adapters.aws_session import Clients, error_code, translate
from flipgitops.model import flip
from flipgitops.model.flip import FLOWER_KIT_PREFIX, NVFLARE_KIT_PREFIX, FlBackend
from flipgitops.model.observed import KitSlice, ObservedKitBucket
from flipgitops.reconcilers.ansible.flipgitops_host.flkit import (
    listing_fingerprint,
)

FLOWER_CA = "net-1/certificates/ca.crt"
FLOWER_CREDENTIALS = "net-1/keys/supernode_credentials_{number}"

Entry = tuple[str, str, int]  # (key relative to the date prefix, ETag, size)


# S3's ETag of an object uploaded in one part: the MD5 of its bytes (multipart: `<md5>-<n>`).
_MD5_ETAG = re.compile(r"[0-9a-f]{32}")


def fingerprint(entries: Iterable[Entry]) -> str:
    return listing_fingerprint(entries)


def etag_md5(entries: Iterable[Entry]) -> bool:
    """Every ETag is an MD5, so a host can recompute the slice's fingerprint."""
    return all(_MD5_ETAG.fullmatch(e) for _, e, _ in entries)


def date_prefix(backend: FlBackend, date: str) -> str:
    """`fl-<backend>-participant-kits/<date>/`: what slice keys are relative to."""
    listing = listing_prefix(backend, date)
    return listing[: listing.index(f"/{date}/") + len(date) + 2]


def listing_prefix(backend: FlBackend, date: str) -> str:
    return (FLOWER_KIT_PREFIX if backend == "flower" else NVFLARE_KIT_PREFIX).format(date=date)


def _list(clients: Clients, bucket: str, prefix: str) -> list[dict[str, Any]]:
    pages = clients.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [dict(o) for page in pages for o in page.get("Contents", [])]


def slices(backend: FlBackend, date: str, objects: Sequence[dict[str, Any]],
           known_slots: Iterable[str]) -> tuple[dict[str, KitSlice], str | None]:
    """(slot -> slice, flower's shared ca.crt fingerprint) from one listing."""
    base = date_prefix(backend, date)
    entries = [(str(o["Key"])[len(base):], str(o.get("ETag", "")).strip('"'),
                int(o.get("Size", 0))) for o in objects if str(o["Key"]).startswith(base)]
    if backend == "nvflare":
        by_slot: dict[str, list[Entry]] = {}
        for entry in entries:
            parts = entry[0].split("/")  # net-1/services/<slot>/...
            if len(parts) > 3 and parts[3]:
                by_slot.setdefault(parts[2], []).append(entry)
        return {slot: KitSlice(slot=slot, keys=tuple(sorted(k for k, _, _ in es)),
                               fingerprint=fingerprint(es), etag_md5=etag_md5(es))
                for slot, es in sorted(by_slot.items())}, None
    by_key = {e[0]: e for e in entries}
    ca = by_key.get(FLOWER_CA)
    out: dict[str, KitSlice] = {}
    for slot in sorted(set(known_slots)):
        creds = by_key.get(FLOWER_CREDENTIALS.format(number=flip.slot_number(slot)))
        if creds is None:
            continue
        chosen = [e for e in (ca, creds) if e is not None]
        out[slot] = KitSlice(slot=slot, keys=tuple(sorted(e[0] for e in chosen)),
                             fingerprint=fingerprint(chosen), etag_md5=etag_md5(chosen))
    return out, fingerprint([ca]) if ca else None


def observe_kits(clients: Clients, bucket: str, date: str, backend: FlBackend,
                 known_slots: Iterable[str]) -> ObservedKitBucket:
    prefix = listing_prefix(backend, date)
    try:
        objects = _list(clients, bucket, prefix)
    except ClientError as exc:
        if error_code(exc) == "NoSuchBucket":
            return ObservedKitBucket(bucket=bucket, date=date, backend=backend, exists=False)
        error = str(translate(exc, doing=f"listing s3://{bucket}/{prefix}"))
        return ObservedKitBucket(bucket=bucket, date=date, backend=backend, readable=False,
                                 error=error)
    except BotoCoreError as exc:
        raise translate(exc, doing=f"listing s3://{bucket}/{prefix}") from None
    found, shared = slices(backend, date, objects, known_slots)
    return ObservedKitBucket(bucket=bucket, date=date, backend=backend, slices=found,
                             shared_fingerprint=shared)
