"""One slot's FL participant kit, read from the kit bucket on the controller (boto3).

Trust hosts have no AWS credentials, so the controller reads the slot's slice and hands it
to the host in memory. The slice is what FLIP's flip_fl_kit/tasks/s3.yml@83e67f0e syncs:
- nvflare: everything under `fl-flare-participant-kits/<date>/net-1/services/<slot>/`
  (startup/, local/, …), placed at `<FL_KIT_DIR>/net-1/services/<slot>/`;
- flower: `fl-flower-participant-kits/<date>/net-1/certificates/ca.crt` and
  `…/net-1/keys/supernode_credentials_<N>` only, placed at `<FL_KIT_DIR>/net-1/…`.
It is checked the way FLIP checks it, before any host changes: nvflare's
`startup/fed_client.json` non-empty with `client.fqsn` equal to the slot; flower's two
files non-empty. A refusal names the S3 key.

Modes: S3 keeps none. Private keys get 0600 (nvflare `*.key`) or FLIP's 0640 (flower's
supernode credentials, generate-tls-certificates.sh@389f4019), scripts 0755 (the client's
entrypoint chmods them +x at start, so the kit does not change under it), the rest 0644.

The fingerprint is the bucket observation's (adapters/kit_listing.py: over key relative to
the date prefix, ETag, size), so the delivery record on the host compares with the plan's
`source_fingerprint`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flipgitops.adapters import kit_listing
from flipgitops.engine.ports_hosts import FlKitSlice, KitFile
from flipgitops.errors import AdapterError
from flipgitops.model.flip import FlBackend

FED_CLIENT = "startup/fed_client.json"
MAX_KIT_BYTES = 64 * 1024 * 1024


class KitSourceError(AdapterError):
    """The slot's kit cannot be used; the message names the S3 key and what is wrong."""


def file_mode(backend: FlBackend, path: str) -> int:
    name = path.rsplit("/", 1)[-1]
    if backend == "flower":
        return 0o640 if path.startswith("keys/") else 0o644
    if name.endswith(".key"):
        return 0o600
    if name.endswith(".sh"):
        return 0o755
    return 0o644


def check_fed_client(data: bytes, slot: str, where: str) -> None:
    """s3.yml's two checks on `startup/fed_client.json`."""
    if not data.strip():
        raise KitSourceError(f"{where} is missing or empty: the kit for {slot} is not an "
                             "NVFLARE participant kit (fix the bucket or fl_kits.date)")
    try:
        kit = json.loads(data)
    except ValueError:
        raise KitSourceError(f"{where} is not JSON") from None
    fqsn = kit.get("client", {}).get("fqsn") if isinstance(kit, dict) and isinstance(
        kit.get("client", {}), dict) else None
    if fqsn != slot:
        raise KitSourceError(f"{where} names client.fqsn {fqsn!r}, not {slot!r}: this is "
                             "another slot's kit; nothing was delivered")


class S3KitSource:
    """The KitSourcePort on S3 (AWS_ENDPOINT_URL honoured by boto3)."""

    def __init__(self, s3: Any | None = None, *, client: Callable[[], Any] | None = None
                 ) -> None:
        self._s3 = s3
        self._factory = client

    def __repr__(self) -> str:
        return "S3KitSource()"

    def _client(self) -> Any:
        if self._s3 is None:
            if self._factory is not None:
                self._s3 = self._factory()
            else:
                import boto3

                self._s3 = boto3.client("s3")
        return self._s3

    def _list(self, bucket: str, prefix: str) -> list[dict[str, Any]]:
        try:
            pages = self._client().get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix)
            return [dict(o) for page in pages for o in page.get("Contents", [])]
        except (ClientError, BotoCoreError) as exc:
            raise KitSourceError(f"cannot list s3://{bucket}/{prefix}: "
                                 f"{_aws_reason(exc)}") from None

    def _get(self, bucket: str, key: str) -> bytes:
        try:
            body = self._client().get_object(Bucket=bucket, Key=key)["Body"]
            data: bytes = body.read(MAX_KIT_BYTES + 1)
        except (ClientError, BotoCoreError) as exc:
            raise KitSourceError(f"cannot read s3://{bucket}/{key}: {_aws_reason(exc)}") \
                from None
        if len(data) > MAX_KIT_BYTES:
            raise KitSourceError(f"s3://{bucket}/{key} is larger than an FL kit file can be")
        return data

    def fetch(self, bucket: str, date: str, backend: FlBackend, slot: str,
              slot_number: int) -> FlKitSlice:
        base = kit_listing.listing_prefix(backend, date)
        date_prefix = kit_listing.date_prefix(backend, date)
        if backend == "nvflare":
            prefix = f"{base}{slot}/"
            listed = {str(o["Key"]): o for o in self._list(bucket, prefix)}
            # Folder markers count in the fingerprint (as the bucket observation counts
            # them) but are not files.
            keys = {k: o for k, o in listed.items() if not k.endswith("/")}
            fed = f"{prefix}{FED_CLIENT}"
            if fed not in keys:
                raise KitSourceError(f"s3://{bucket}/{fed} does not exist: no NVFLARE kit for "
                                     f"{slot} on {date}")
            rel = {k: f"services/{slot}/{k[len(prefix):]}" for k in keys}
            dirs: tuple[str, ...] = (f"services/{slot}/local", f"services/{slot}/transfer")
        else:
            wanted = [date_prefix + kit_listing.FLOWER_CA, date_prefix
                      + kit_listing.FLOWER_CREDENTIALS.format(number=slot_number)]
            listed = {str(o["Key"]): o for o in self._list(bucket, base)}
            for key in wanted:
                if key not in listed:
                    raise KitSourceError(f"s3://{bucket}/{key} does not exist: no Flower kit "
                                         f"for {slot} (number {slot_number}) on {date}")
            keys = {k: listed[k] for k in wanted}
            listed = keys
            rel = {k: k[len(base):] for k in wanted}
            dirs = ()
        files: list[KitFile] = []
        for key in sorted(keys):
            data = self._get(bucket, key)
            path = rel[key]
            if key.endswith(FED_CLIENT) and backend == "nvflare":
                check_fed_client(data, slot, f"s3://{bucket}/{key}")
            if backend == "flower" and not data.strip():
                raise KitSourceError(f"s3://{bucket}/{key} is empty: the Flower kit is "
                                     "incomplete; nothing was delivered")
            files.append(KitFile(path=path, mode=file_mode(backend, path), data=data))
        entries = [(k[len(date_prefix):], str(o.get("ETag", "")).strip('"'),
                    int(o.get("Size", 0))) for k, o in listed.items()]
        return FlKitSlice(backend=backend, date=date, slot=slot, slot_number=slot_number,
                          source=f"s3://{bucket}/{base}",
                          fingerprint=kit_listing.fingerprint(entries), files=tuple(files),
                          dirs=dirs)


def _aws_reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"{err.get('Code', 'error')}: {err.get('Message', '')}".strip(": ")
    return type(exc).__name__
