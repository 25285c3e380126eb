"""Small readers of the hub secret shared by the AWS integration tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flipgitops.adapters.aws_session import Clients


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def secret(clients: Clients) -> dict[str, Any]:
    """The hub secret as the hub reads it (FLIP_API, straight from Secrets Manager)."""
    data: dict[str, Any] = json.loads(
        clients.secretsmanager.get_secret_value(SecretId="FLIP_API")["SecretString"]
    )
    return data


def versions(clients: Clients) -> int:
    """How many versions the hub secret has: each write adds one."""
    return len(clients.secretsmanager.list_secret_version_ids(SecretId="FLIP_API")["Versions"])
