"""Manifests and boto3 clients for tests that talk to the moto server.

A module with its own name, not a conftest: `from conftest import ...` resolves to whichever
conftest was imported first, so it broke as soon as two test folders ran together.
"""

from __future__ import annotations

from typing import Any

import boto3

from flipgitops.adapters.aws_session import CallCounter, Clients
from flipgitops.model.manifest import Manifest
from flipgitops.sandbox.moto_server import MOTO_ACCOUNT_ID

REGION = "eu-west-2"


def trust_ip(i: int) -> str:
    """Distinct documentation-range IPs for up to 750 trusts."""
    block = ("203.0.113", "198.51.100", "192.0.2")[i // 250]
    return f"{block}.{i % 250 + 1}"


def make_manifest(
    n_trusts: int = 3,
    *,
    environment: str = "dev",
    account_id: str = MOTO_ACCOUNT_ID,
    trusts: list[dict[str, Any]] | None = None,
    **hub: Any,
) -> Manifest:
    """A manifest for Trust_1..Trust_N (kind tre: hub side only), hub fields overridable."""
    if trusts is None:
        trusts = [
            {"name": f"Trust_{i}", "kind": "tre", "public_ip": trust_ip(i - 1),
             "fl_kit_slot": f"Trust_{i}"}
            for i in range(1, n_trusts + 1)
        ]
    hub_doc: dict[str, Any] = {
        "domain": f"{environment}.flip.example.org",
        "images": {"hub_tag": "v2.3.0", "fl_tag": "v2.3.0"},
    }
    hub_doc.update(hub)
    return Manifest.model_validate(
        {
            "version": 1,
            "environment": environment,
            "aws": {"account_id": account_id, "region": REGION},
            "state": {"bucket": f"flip-gitops-state-{environment}", "prefix": "flipgitops"},
            "hub": hub_doc,
            "trusts": trusts,
        }
    )


_SESSION: list[boto3.Session] = []


def session() -> boto3.Session:
    """One boto3 session (and its loaded service models) for all tests: loading the EC2
    model alone takes a second. Clients are still new per test, so hooks do not leak."""
    if not _SESSION:
        _SESSION.append(boto3.Session(region_name=REGION))
    return _SESSION[0]


def new_clients(counter: CallCounter | None = None) -> Clients:
    return Clients(session(), counter=counter)
