"""Shared pieces of the benchmark scripts: machine banner, generated manifests, timing.

Benchmarks are plain scripts (`uv run python benchmarks/<name>.py`) that print figures and
ratios measured in one run on one machine; ratios are what DESIGN.md §9 targets, because
absolute times depend on the machine.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

T = TypeVar("T")

HUB_TAG = "v2.3.0"
FL_TAG = "v2.3.0"
ACCOUNT = "123456789012"  # moto's account, so FG006 stays quiet against the emulator
REGION = "eu-west-2"

# Routable addresses for generated trusts: the documentation ranges first (as the examples
# use), then public space, skipping nothing the validator rejects.
_IP_POOLS = ("203.0.113.0/24", "198.51.100.0/24", "192.0.2.0/24", "81.2.0.0/16")


def banner(title: str) -> None:
    print(f"# {title}")
    print(f"machine: {platform.platform()} | cpus: {os.cpu_count()} | "
          f"python: {platform.python_version()} ({platform.python_implementation()})")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"commit: {commit()} | date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')} | "
          f"load average: {load}")
    print()


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def public_ips() -> Iterator[str]:
    for pool in _IP_POOLS:
        for ip in ipaddress.ip_network(pool).hosts():
            yield str(ip)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def best_of(n: int, fn: Callable[[], T]) -> tuple[T, float]:
    """Fastest of n runs: the least noisy figure on a shared 2-core machine."""
    best = float("inf")
    out: Any = None
    for _ in range(n):
        out, seconds = timed(fn)
        best = min(best, seconds)
    return out, best


def trust_entry(i: int, ip: str, kind: str, flip_root: str | None = None,
                docker: str | None = None) -> str:
    name = f"Trust_{i}"
    lines = [
        f"  - name: {name}",
        f"    kind: {kind}",
        f"    public_ip: {ip}",
        f"    fl_kit_slot: {name}",
    ]
    if kind == "tre":
        return "\n".join(lines)
    if flip_root is not None:
        lines += [
            "    host:",
            "      connection: local",
            f"      flip_root: {flip_root}",
            f"      docker: {docker or 'docker'}",
        ]
    else:
        lines += [
            "    host:",
            "      connection: ssh",
            f"      address: trust{i}.example.nhs.uk",
            "      user: ubuntu",
            f"      ssh_key: env:TRUST_{i}_SSH_KEY",
            "      flip_root: /opt/flip",
            "      docker: docker",
        ]
    return "\n".join(lines)


def manifest_yaml(trust_entries: list[str], env: str = "dev", bucket: str | None = None,
                  hub_tag: str = HUB_TAG, fl_tag: str = FL_TAG) -> str:
    head = f"""\
# yaml-language-server: $schema=../schemas/flip-environment.schema.json
version: 1
environment: {env}
aws:
  account_id: "{ACCOUNT}"
  region: {REGION}
state:
  bucket: {bucket or f"flip-gitops-state-{env}"}
  prefix: flipgitops
hub:
  domain: {env}.flip.example.org
  fl_backend: nvflare
  images:
    registry: ghcr.io/londonaicentre
    hub_tag: {hub_tag}
    fl_tag: {fl_tag}
  database:
    deletion_protection: true
    final_snapshot: true
  cognito: {{user_pool: flip-user-pool, mfa: required}}
policy:
  lockstep_fl_images: true
  max_trust_removals: 1
  immutable_tags: true
"""
    if not trust_entries:
        return head + "trusts: []\n"
    return head + "trusts:\n" + "\n".join(trust_entries) + "\n"


def generated_manifest(n: int, kind: str = "on-prem") -> str:
    ips = public_ips()
    return manifest_yaml([trust_entry(i, next(ips), kind) for i in range(1, n + 1)])


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"
