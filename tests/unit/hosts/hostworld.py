"""Manifests, kits and credentials for the hosts tests (pure data; no world is touched).

Imported as `unit.hosts.hostworld` by the integration tests too (tests/ is on sys.path).
Keys are minted per test with `secrets`, so a test that searches for them finds only what
the code under test leaked.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from flipgitops.model.kit import LOCAL_CREDENTIAL_KEYS, EscrowedKit, LocalCredentials, TrustKit
from flipgitops.model.manifest import Manifest

DOMAIN = "app.flip.example.org"
FL_HOST = "fl.app.flip.example.org"
BUCKET = "flipdev-aicentre"
KIT_DATE = "2025-06-01"


def trust_entry(name: str = "Trust_1", code: str = "GSTT", *, flip_root: str,
                docker: str = "docker", kind: str = "on-prem", connection: str = "local",
                settings: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    host: dict[str, Any] = {"connection": connection, "flip_root": flip_root, "docker": docker}
    host.update(extra.pop("host", {}))
    return {"name": name, "code": code, "kind": kind, "public_ip": "203.0.113.10",
            "fl_kit_slot": extra.pop("fl_kit_slot", name), "host": host,
            "settings": settings if settings is not None else {"NUM_AVAILABLE_GPUS": "0"},
            **extra}


def make_manifest(trusts: list[dict[str, Any]], *, backend: str = "nvflare",
                  environment: str = "prod", domain: str = DOMAIN,
                  registry: str = "ghcr.io/londonaicentre", checkout: str = "FLIP",
                  ref: str = "v2.3.0", **hub: Any) -> Manifest:
    data: dict[str, Any] = {
        "version": 1, "environment": environment,
        "aws": {"account_id": "123456789012", "region": "eu-west-2"},
        "state": {"bucket": "flip-gitops-state"},
        "flip": {"checkout": checkout, "ref": ref},
        "hub": {"domain": domain, "fl_backend": backend,
                "trust_api_key_header": "X-Trust-API-Key",
                "images": {"registry": registry, "hub_tag": "v2.3.0", "fl_tag": "v2.3.0"},
                "fl_server": {"port": 8002, "hostname": FL_HOST},
                "fl_kits": {"bucket": BUCKET, "date": KIT_DATE}, **hub},
        "trusts": trusts,
    }
    return Manifest.model_validate(data)


def make_kit(name: str = "Trust_1", slot_number: int = 1, *, trust_id: str | None = None,
             generation: int = 1) -> EscrowedKit:
    kit = TrustKit(trust_id=trust_id or f"id-{secrets.token_hex(4)}", trust_name=name,
                   trust_api_key=SecretStr(secrets.token_urlsafe(32)),
                   trust_internal_service_key=SecretStr(secrets.token_urlsafe(32)),
                   fl_kit_slot=name, fl_kit_slot_number=slot_number)
    return EscrowedKit(kit=kit, credentials_generation=generation)


def make_local() -> LocalCredentials:
    return LocalCredentials(values={k: SecretStr(secrets.token_urlsafe(32))
                                    for k in LOCAL_CREDENTIAL_KEYS})


def make_aes() -> SecretStr:
    import base64

    return SecretStr(base64.b64encode(secrets.token_bytes(32)).decode())


def secret_values(kit: EscrowedKit, local: LocalCredentials, aes: SecretStr) -> list[str]:
    out = [v.get_secret_value() for v in local.values.values()] + [aes.get_secret_value()]
    for key in (kit.kit.trust_api_key, kit.kit.trust_internal_service_key):
        assert key is not None
        out.append(key.get_secret_value())
    return out


def grep_tree(root: Path, needles: list[str], *, skip: set[Path] | None = None) -> list[str]:
    """Regular files under ``root`` (recursively, unreadable ones ignored) holding any
    needle. Other processes' files may come and go meanwhile (/tmp is shared with other
    tests and runs, whose private dirs are deleted when they end), so what vanishes while
    it is walked is skipped, never an error (rglob raised on a directory deleted under it)."""
    hits: list[str] = []
    skip = skip or set()
    encoded = [n.encode() for n in needles]
    for parent, _dirs, files in os.walk(root, onerror=lambda _e: None):
        for name in files:
            path = Path(parent) / name
            try:
                if path in skip or not stat.S_ISREG(path.lstat().st_mode):
                    continue  # symlinks, sockets and FIFOs (reading one would block)
                data = path.read_bytes()
            except OSError:
                continue
            if any(n in data for n in encoded):
                hits.append(str(path))
    return hits
