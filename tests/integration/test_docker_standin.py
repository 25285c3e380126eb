"""The docker stand-in: compose semantics the trust-host playbooks rely on, run for real."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flipgitops.sandbox.docker_standin import main
from tests.hostfixtures import STANDIN

KEY = "standin-test-key-0123456789abcdef"

COMPOSE = """\
name: trust
x-svc: &svc
  env_file: [.env]
services:
  trust-api:
    <<: *svc
    image: ${IMAGE_REGISTRY}/trust-api:${DOCKER_TAG}
  fl-client:
    <<: *svc
    image: ${IMAGE_REGISTRY}/flare-fl-client:${DOCKER_FL_TAG:-v0.0.1}
"""


def _project(tmp_path: Path, *, tag: str = "v2.3.0", key: str | None = KEY) -> list[str]:
    (tmp_path / "compose.yml").write_text(COMPOSE)
    lines = [
        "IMAGE_REGISTRY=ghcr.io/londonaicentre",
        f"DOCKER_TAG={tag}",
        "DOCKER_FL_TAG=v2.3.0",
        "TRUST_NAME=Trust_1",
        "CENTRAL_HUB_API_URL=https://hub.example.org",
    ]
    if key is not None:
        lines.append(f"TRUST_API_KEY={key}")
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    return ["compose", "-p", "trust", "-f", str(tmp_path / "compose.yml"),
            "--env-file", str(tmp_path / ".env")]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def _ps(base: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, object]]:
    code, out, _ = _run([*base, "ps", "--format", "json"], capsys)
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    return {str(r["Service"]): r for r in rows}


def test_console_script_answers_version_and_info() -> None:
    for cmd in ("version", "info"):
        proc = subprocess.run([str(STANDIN), cmd], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip()


def test_console_script_runs_compose_up(tmp_path: Path) -> None:
    base = _project(tmp_path)
    proc = subprocess.run([str(STANDIN), *base, "up", "-d"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Started" in proc.stderr
    assert (tmp_path / ".standin" / "trust.json").is_file()


def test_up_ps_in_docker_json_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _project(tmp_path)
    code, _, err = _run([*base, "up", "-d"], capsys)
    assert code == 0
    assert err.count("Started") == 2
    rows = _ps(base, capsys)
    assert set(rows) == {"trust-api", "fl-client"}
    api = rows["trust-api"]
    assert api["Image"] == "ghcr.io/londonaicentre/trust-api:v2.3.0"
    assert api["State"] == "running"
    assert api["Name"] == "trust-trust-api-1"
    assert api["Project"] == "trust"
    assert rows["fl-client"]["Image"] == "ghcr.io/londonaicentre/flare-fl-client:v2.3.0"


def test_up_is_idempotent_and_recreates_on_tag_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _project(tmp_path)
    _run([*base, "up", "-d"], capsys)
    code, _, err = _run([*base, "up", "-d"], capsys)
    assert code == 0
    assert "Running" in err and "Started" not in err
    base = _project(tmp_path, tag="v2.4.0")
    _, _, err = _run([*base, "up", "-d"], capsys)
    assert "Recreated" in err
    assert _ps(base, capsys)["trust-api"]["Image"] == "ghcr.io/londonaicentre/trust-api:v2.4.0"


def test_empty_tag_is_an_invalid_reference(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _project(tmp_path, tag="")
    code, _, err = _run([*base, "up", "-d"], capsys)
    assert code == 1
    assert "invalid reference format" in err
    assert not (tmp_path / ".standin" / "trust.json").exists()


def test_logs_show_a_recent_poll_only_with_a_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _project(tmp_path)
    _run([*base, "up", "-d"], capsys)
    code, out, _ = _run([*base, "logs", "--no-color", "--since", "5m", "trust-api"], capsys)
    assert code == 0
    poll = [line for line in out.splitlines() if "polled central hub" in line]
    assert len(poll) == 1
    assert "https://hub.example.org/tasks/Trust_1/pending: 200 OK" in poll[0]
    stamp = poll[0].split("| ", 1)[1][:19]
    when = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - when) < timedelta(minutes=1)

    base = _project(tmp_path, key=None)
    _run([*base, "up", "-d"], capsys)  # env changed: trust-api is recreated without a key
    _, out, _ = _run([*base, "logs", "trust-api"], capsys)
    assert "polled central hub" not in out
    assert "TRUST_API_KEY is not set" in out


def test_since_filters_old_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _project(tmp_path)
    _run([*base, "up", "-d"], capsys)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    _, out, _ = _run([*base, "logs", "--since", future, "trust-api"], capsys)
    assert out == ""
    _, out, _ = _run([*base, "logs", "--timestamps", "--since", "1h", "trust-api"], capsys)
    assert "started from image" in out and "polled central hub" in out


def test_secret_values_are_never_printed_or_recorded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _project(tmp_path)
    seen = ""
    for cmd in (["up", "-d"], ["ps", "--format", "json"], ["ps"], ["logs", "-t"],
                ["restart", "trust-api"], ["down"]):
        _, out, err = _run([*base, *cmd], capsys)
        seen += out + err
    assert KEY not in seen
    assert KEY not in (tmp_path / ".standin" / "trust.json").read_text()


def test_restart_down_and_orphans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _project(tmp_path)
    _run([*base, "up", "-d"], capsys)
    code, _, err = _run([*base, "restart", "trust-api"], capsys)
    assert code == 0 and "trust-trust-api-1  Started" in err
    code, _, err = _run([*base, "restart", "nope"], capsys)
    assert code == 1

    (tmp_path / "compose.yml").write_text(COMPOSE.split("  fl-client:")[0])
    _, _, err = _run([*base, "up", "-d", "--remove-orphans"], capsys)
    assert "trust-fl-client-1  Removed" in err
    assert set(_ps(base, capsys)) == {"trust-api"}

    _, _, err = _run([*base, "down"], capsys)
    assert "Removed" in err
    assert _ps(base, capsys) == {}
    _, out, _ = _run([*base, "logs"], capsys)
    assert out == ""


def test_stop_hides_from_ps_unless_all(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _project(tmp_path)
    _run([*base, "up", "-d"], capsys)
    _run([*base, "stop", "trust-api"], capsys)
    assert set(_ps(base, capsys)) == {"fl-client"}
    _, out, _ = _run([*base, "ps", "-a", "--format", "json"], capsys)
    states = {json.loads(x)["Service"]: json.loads(x)["State"] for x in out.splitlines()}
    assert states == {"trust-api": "exited", "fl-client": "running"}


def test_usage_errors_exit_nonzero(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = _project(tmp_path)
    assert _run(["run", "alpine"], capsys)[0] == 1
    assert _run([*base, "exec", "trust-api"], capsys)[0] == 1
    assert _run(["compose", "up", "-d"], capsys)[0] == 1  # no -f
    missing = ["compose", "-p", "x", "-f", str(tmp_path / "nope.yml"), "up", "-d"]
    code, _, err = _run(missing, capsys)
    assert code == 1 and "no such file" in err
