"""CLI logging: the SDKs stay quiet by default and never log below INFO, whatever -v says.

botocore logs every request at INFO/DEBUG and, at DEBUG, raw response bodies: the hub
secret's AES key and trust key hashes would land on stderr (and in CI logs). The real CLI
runs as a subprocess against the moto server, as CI runs it, so the logging setup under test
is exactly the one ``python -m flipgitops`` gets.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from applyworld import World

from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow

SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug", "ansible-runner")


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
def world(moto: MotoServer, tmp_path: Path) -> World:
    w = World(tmp_path, trusts=("Trust_1",), tre=True)
    w.seed_hub(trusts=True)
    return w


def test_default_output_has_no_sdk_logging(world: World) -> None:
    run = world.cli("observe", "--no-hosts")
    assert run.code == 0, run.text
    assert "Trust_1" in run.out, run.out
    assert not [line for line in run.err.splitlines()
                if any(name in line for name in SDK_LOGGERS)], run.err


def test_verbose_caps_sdk_logging_at_info_and_leaks_no_secret(world: World) -> None:
    secret = world.secret()
    aes = secret["aes_key"]
    hashes = list(secret["trust_api_key_hashes"].values())
    assert aes and hashes
    for flags in ("-v", "-vv", "-vvv"):
        run = world.cli(flags, "observe", "--no-hosts")
        assert run.code == 0, run.text
        assert sdk_lines(run.err, ("DEBUG",)) == [], f"{flags}:\n{run.err}"
        # -v really turns SDK logging on (at INFO), so the check above can fail.
        assert sdk_lines(run.err, ("INFO",)), f"{flags}: no SDK INFO lines:\n{run.err}"
        assert aes not in run.err and aes not in run.out, f"{flags}: the AES key leaked"
        for digest in hashes:
            assert digest not in run.err, f"{flags}: a full trust key hash was logged"
