"""boto3 clients for the emulator, created once per (endpoint, region, service).

Creating a boto3 session and its clients loads botocore's service models, which costs
about a second and a half each time; the stand-in makes a world per test, so its clients
are cached. botocore clients are safe to share between threads once created; creation is
serialised by a lock. Credentials are the emulator's fake ones, never the environment's.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3

_LOCK = threading.Lock()
_SESSIONS: dict[str, boto3.session.Session] = {}
_CLIENTS: dict[tuple[str, str, str], Any] = {}


def client(service: str, endpoint_url: str, region: str) -> Any:
    """A client of ``service`` at ``endpoint_url`` (an emulator) in ``region``."""
    key = (endpoint_url, region, service)
    with _LOCK:
        if key not in _CLIENTS:
            session = _SESSIONS.get(region)
            if session is None:
                session = _SESSIONS[region] = boto3.session.Session(
                    aws_access_key_id="testing", aws_secret_access_key="testing",
                    aws_session_token="testing", region_name=region,
                )
            _CLIENTS[key] = session.client(service, endpoint_url=endpoint_url)  # type: ignore[call-overload]
        return _CLIENTS[key]
