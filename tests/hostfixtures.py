"""Helpers that build local trust hosts for tests (connection local, flip_root under tmp).

Other test modules import these to get hosts the real playbooks can run against: the container
CLI is the docker stand-in installed in this venv, so no container engine is needed.
"""

from __future__ import annotations

import base64
import hashlib
import socket
import sys
from pathlib import Path
from typing import Any

from flipgitops.model.manifest import Host

STANDIN = Path(sys.executable).parent / "flipgitops-docker-standin"

DEFAULT_VARS: dict[str, Any] = {
    "hub_url": "https://app.flip.example.org",
    "registry": "ghcr.io/londonaicentre",
    "docker_tag": "v2.3.0",
    "docker_fl_tag": "v2.3.0",
    "fl_backend": "nvflare",
    "services": {"orthanc": True, "xnat": False},
}


def make_local_host(tmp_path: Path, trust_name: str, *, docker: str | None = None) -> Host:
    """A local host whose flip_root is ``tmp_path/hosts/<trust>/flip`` (not created yet)."""
    return Host(
        connection="local",
        address="localhost",
        flip_root=str(tmp_path / "hosts" / trust_name / "flip"),
        docker=docker or str(STANDIN),
    )


def closed_loopback_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound then released), so ssh is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def make_unreachable_host(tmp_path: Path, trust_name: str) -> Host:
    """An ssh host on a closed loopback port: unreachable, and never leaves this machine."""
    return Host(
        connection="ssh",
        address=f"127.0.0.1:{closed_loopback_port()}",
        user="nobody",
        flip_root=str(tmp_path / "hosts" / trust_name / "flip"),
        docker=str(STANDIN),
    )


def host_vars(trust_name: str, **overrides: Any) -> dict[str, Any]:
    """Non-secret HostTask.vars for a trust, with the defaults above."""
    return {"trust_name": trust_name, **DEFAULT_VARS, **overrides}


def make_keys(seed: str) -> dict[str, str]:
    """Deterministic test credentials (HostTask.secrets) derived from ``seed``."""
    api_key = hashlib.sha256(f"api:{seed}".encode()).hexdigest()
    aes = base64.b64encode(hashlib.sha256(f"aes:{seed}".encode()).digest()).decode()
    return {"trust_api_key": api_key, "aes_key_base64": aes}


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def write_trust_env(
    host: Host,
    trust_name: str,
    secrets: dict[str, str],
    *,
    fl_kit_slot: str | None = None,
    mode: int = 0o600,
    **overrides: Any,
) -> Path:
    """Write ``<flip_root>/trust/.env`` as host.deliver would (for "in sync" host tests),
    plus the flip_root tree and the kit for the slot."""
    root = Path(host.flip_root)
    for sub in ("services", "trust", "data"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("startup", "local", "transfer"):
        (root / "services" / (fl_kit_slot or trust_name) / sub).mkdir(parents=True, exist_ok=True)
    v = host_vars(trust_name, **overrides)
    lines = [
        f"TRUST_NAME={trust_name}",
        f"CENTRAL_HUB_API_URL={v['hub_url']}",
        f"IMAGE_REGISTRY={v['registry']}",
        f"DOCKER_TAG={v['docker_tag']}",
        f"DOCKER_FL_TAG={v['docker_fl_tag']}",
        f"FL_BACKEND={v['fl_backend']}",
        f"FL_KIT_SLOT={fl_kit_slot or trust_name}",
        f"TRUST_API_KEY={secrets['trust_api_key']}",
        f"AES_KEY_BASE64={secrets['aes_key_base64']}",
    ]
    path = root / "trust" / ".env"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(mode)
    return path
