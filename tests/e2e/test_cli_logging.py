"""CLI logging: the SDKs stay quiet by default and never log below INFO, whatever -v says.

botocore logs every request at INFO/DEBUG and, at DEBUG, raw response bodies: FLIP_API's
AES key and the trust key hashes would land on stderr (and in CI logs); ansible-runner at
DEBUG logs a run's whole output. The real CLI runs as a subprocess in the v2 sandbox (moto,
the stand-in FLIP with an older, secret-registry hub whose FLIP_API holds key hashes, a
local trust host), so the logging under test is exactly what `python -m flipgitops` gets.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from flipgitops.cli import SDK_LOGGERS
from flipgitops.sandbox.environment import REGION, Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow

TRUSTS = (TrustSpec("Trust_1", "GSTT", "203.0.113.11", slot="Trust_1"),)


def sdk_lines(stderr: str, levels: tuple[str, ...]) -> list[str]:
    """stderr lines logged by an SDK logger at one of ``levels`` (format: LEVEL name: msg)."""
    out = []
    for line in stderr.splitlines():
        level, _, rest = line.partition(" ")
        name = rest.split(":", 1)[0]
        if level in levels and name.split(".")[0] in SDK_LOGGERS:
            out.append(line)
    return out


@pytest.fixture
def box(moto: MotoServer, tmp_path: Path) -> Iterator[Sandbox]:
    with sandbox(tmp_path / "world", trusts=TRUSTS, registry="secret", existing=("Trust_1",),
                 moto=moto) as world:
        yield world


def _hub_secrets(box: Sandbox) -> list[str]:
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=box.moto.url)
    doc = json.loads(sm.get_secret_value(SecretId="FLIP_API")["SecretString"])
    hashes = doc["trust_api_key_hashes"]
    if isinstance(hashes, str):
        hashes = json.loads(hashes)
    values = [doc["aes_key"], doc["internal_service_key"], *hashes.values()]
    assert all(isinstance(v, str) and len(v) >= 16 for v in values) and len(values) >= 3
    return values


def test_sdk_logging_is_capped_at_info_and_never_carries_a_secret(box: Sandbox) -> None:
    secrets = _hub_secrets(box)
    quiet = box.cli("observe", "--env", "dev", "--no-hosts")
    assert quiet.code == 0, quiet.text
    assert "Trust_1" in quiet.out
    assert not [line for line in quiet.err.splitlines()
                if any(f" {name}" in line for name in SDK_LOGGERS)], quiet.err
    for flags, args in (("-v", ("observe", "--env", "dev", "--no-hosts")),
                        ("-vv", ("observe", "--env", "dev", "--no-hosts")),
                        ("-vvv", ("plan", "--env", "dev"))):
        run = box.cli(flags, *args)
        assert run.code in (0, 2), f"{flags} {args}: {run.text}"
        assert sdk_lines(run.err, ("DEBUG",)) == [], f"{flags}:\n{run.err}"
        # -v really turns SDK logging on (at INFO), so the check above can fail
        assert sdk_lines(run.err, ("INFO",)), f"{flags}: no SDK INFO lines:\n{run.err}"
        assert "Traceback" not in run.text
        leaked = [s[:6] for s in secrets if s in run.err or s in run.out]
        assert leaked == [], f"{flags} {args}: a hub secret reached the output"
        if flags == "-vvv":  # with hosts: ansible-runner's logger is capped too
            assert "gathering facts from 1 trust host" in run.err
            assert not [line for line in run.err.splitlines()
                        if line.startswith("DEBUG ansible")]
