"""The stand-in trust-api: a real process that polls a (fake) hub and logs FLIP's lines."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from standin_helpers import TRUST_ID, Host, Kit, live_pids_under, wait_for
from standin_hub import FakeHub

from flipgitops.sandbox.flip import processes, trust_api
from flipgitops.sandbox.flip.checkout import FlipCheckout
from flipgitops.sandbox.flip.world import write_world

AUTHENTICATED = f"INFO:     Authenticated to hub as trust 'Trust_1' ({TRUST_ID})."


def _up(host: Host, kit: Kit, checkout: FlipCheckout, *extra: Path) -> None:
    host.ready_network()
    result = host.compose(kit, [*checkout.compose_files(), *extra], "up", "-d")
    assert result.rc == 0, result.err


def test_right_key_authenticates_once(host: Host, kit: Kit, checkout: FlipCheckout,
                                      hub: FakeHub) -> None:
    _up(host, kit, checkout)
    assert wait_for(lambda: sum(s.path == "/api/tasks/pending" for s in hub.seen) >= 2)
    lines = [line.split(" | ", 1)[1] for line in host.logs().splitlines()]
    assert lines[:4] == [
        "INFO:     Trust API started with task poller and health collector",
        "INFO:     Starting task poller (key-only auth), polling every 1s from "
        "https://hub.flip.example/api. Identity is reported by the hub on first contact.",
        "DEBUG:    Heartbeat sent successfully",  # the kit's TRUST_LOG_LEVEL=DEBUG
        AUTHENTICATED,
    ]
    assert lines.count(AUTHENTICATED) == 1
    assert host.logs().startswith("trust-api-1  | ")
    assert {(s.method, s.path) for s in hub.seen} == {
        ("POST", "/api/trust/heartbeat"), ("GET", "/api/tasks/pending")}
    assert all(s.authenticated for s in hub.seen)
    assert hub.seen[0].method == "POST"  # heartbeat, then poll
    logs = host.docker("compose", "-p", "trust1", "logs", "--tail", "1", "-t", "trust-api")
    assert len(logs.out.splitlines()) == 1
    assert re.match(r"trust-api-1  \| \d{4}-\d\d-\d\dT[\d:.]+Z (INFO|DEBUG)", logs.out)
    future = host.docker("compose", "-p", "trust1", "logs", "--since", "2999-01-01T00:00:00Z")
    assert future.rc == 0 and future.out == ""
    recent = host.docker("compose", "-p", "trust1", "logs", "--since", "1h", "trust-api")
    assert AUTHENTICATED in recent.out


def test_wrong_key_logs_flips_rejections(host: Host, kit: Kit, checkout: FlipCheckout,
                                         hub: FakeHub) -> None:
    hub.trusts.clear()
    _up(host, kit, checkout)
    assert wait_for(lambda: "Unexpected status 401 polling for tasks" in host.logs())
    logs = host.logs()
    assert ('ERROR:    Heartbeat rejected by hub: HTTP 401 — {"detail":"Invalid API Key."}'
            in logs)
    assert "WARNING:  Unexpected status 401 polling for tasks" in logs
    assert "Authenticated to hub" not in logs


def test_no_secret_in_argv_or_on_disk(host: Host, kit: Kit, checkout: FlipCheckout,
                                      hub: FakeHub) -> None:
    _up(host, kit, checkout)
    assert wait_for(lambda: AUTHENTICATED in host.logs())
    (pid,) = host.pids()
    argv = (Path("/proc") / str(pid) / "cmdline").read_bytes()
    environ = (Path("/proc") / str(pid) / "environ").read_bytes()
    minted = kit.secrets()
    for value in minted:
        assert value.encode() not in argv
    # The key reaches the process the way it reaches FLIP's container: its environment.
    assert f"TRUST_API_KEY={kit.values['TRUST_API_KEY']}".encode() in environ.split(b"\0")
    assert b"TRUST_INTERNAL_SERVICE_KEY=" in environ and b"PATH=" not in environ
    files = [p for p in host.daemon_dir.rglob("*") if p.is_file()]
    assert any(p.name == "json.log" for p in files)
    for path in files:
        data = path.read_bytes()
        for value in minted:
            assert value.encode() not in data, path


def test_down_and_stop_all_leave_no_process(host: Host, kit: Kit, checkout: FlipCheckout,
                                            hub: FakeHub) -> None:
    _up(host, kit, checkout)
    assert wait_for(lambda: AUTHENTICATED in host.logs())
    assert len(live_pids_under(host.daemon_dir)) == 1
    down = host.docker("compose", "-p", "trust1", "down")
    assert down.rc == 0
    assert live_pids_under(host.daemon_dir) == []
    _up_again = host.compose(kit, checkout.compose_files(), "up", "-d")
    assert _up_again.rc == 0
    assert len(host.pids()) == 1
    assert trust_api.stop_all(host.daemon_dir) == 1
    assert live_pids_under(host.daemon_dir) == []
    assert host.ps()["trust-api"]["State"] == "exited"


def test_a_stray_process_exits_when_its_daemon_dir_goes(
        host: Host, kit: Kit, checkout: FlipCheckout, hub: FakeHub) -> None:
    _up(host, kit, checkout)
    assert wait_for(lambda: AUTHENTICATED in host.logs())  # it is polling
    (pid,) = host.pids()
    started = processes.start_time(pid)
    assert started is not None
    shutil.rmtree(host.daemon_dir)
    assert wait_for(lambda: not processes.alive(pid, started), timeout=3.0)  # 3 poll intervals


def test_shutdown_line_on_stop_and_recreate_kills_the_old_process(
        host: Host, kit: Kit, checkout: FlipCheckout, hub: FakeHub) -> None:
    _up(host, kit, checkout)
    assert wait_for(lambda: AUTHENTICATED in host.logs())
    (old,) = host.pids()
    kit.rewrite(TRUST_LOG_LEVEL="INFO")
    assert host.compose(kit, checkout.compose_files(), "up", "-d").rc == 0
    (new,) = host.pids()
    assert new != old and processes.start_time(old) is None
    assert wait_for(lambda: AUTHENTICATED in host.logs())  # a new container, a new log
    assert "DEBUG:" not in host.logs()
    assert host.docker("compose", "-p", "trust1", "stop", "trust-api").rc == 0
    assert "INFO:     Trust API shutting down" in host.logs()
    assert host.ps()["trust-api"]["Status"].startswith("Exited (0)")
    assert host.pids() == []


def test_expected_trust_id_mismatch_exits_2(host: Host, kit: Kit, checkout: FlipCheckout,
                                            hub: FakeHub, tmp_path: Path) -> None:
    """FLIP's compose does not pass EXPECTED_TRUST_ID; an override file does, as an operator's."""
    override = tmp_path / "expect.yml"
    override.write_text(
        "services:\n  trust-api:\n    environment:\n"
        "      EXPECTED_TRUST_ID: ${EXPECTED_TRUST_ID}\n")
    _up(host, kit, checkout, override)
    assert wait_for(lambda: host.ps()["trust-api"]["State"] == "exited")
    row = host.ps()["trust-api"]
    assert row["ExitCode"] == 2 and row["Status"].startswith("Exited (2)")
    assert host.ps(all_=False).get("trust-api") is None
    expected = kit.values["EXPECTED_TRUST_ID"]
    assert (f"ERROR:    Hub identifies this host as trust 'Trust_1' ({TRUST_ID}); kit declares "
            f"EXPECTED_TRUST_ID={expected}. Wrong kit deployed to this host? Exiting."
            in host.logs())
    assert "Authenticated to hub" not in host.logs()


def test_unreachable_hub_and_unknown_domain(host: Host, kit: Kit, checkout: FlipCheckout,
                                            hub: FakeHub) -> None:
    hub.stop()
    _up(host, kit, checkout)
    assert wait_for(lambda: "Error polling for tasks: [Errno 111] Connection refused"
                    in host.logs())
    assert "Error sending heartbeat: [Errno 111] Connection refused" in host.logs()
    assert host.world is not None
    write_world(host.world, {"https://other.example": "http://127.0.0.1:1"})
    assert wait_for(lambda: "Error polling for tasks: [Errno -2] Name or service not known"
                    in host.logs())


def test_stale_aes_key_is_warned_once(host: Host, kit: Kit, checkout: FlipCheckout,
                                      hub: FakeHub) -> None:
    hub.aes_key_fingerprint = hashlib.sha256(b"another key").hexdigest()[:12]
    _up(host, kit, checkout)
    assert wait_for(lambda: sum(s.path.endswith("heartbeat") for s in hub.seen) >= 2)
    assert host.logs().count("This trust's AES key differs from the hub's") == 1


def test_console_entry_point(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "flip-standin-docker"
    out = subprocess.run([str(script), "--daemon-dir", str(tmp_path / "d"), "info", "--format",
                          "{{json .Swarm}}"], capture_output=True, text=True, check=False,
                         env={**os.environ})
    assert out.returncode == 0, out.stderr
    assert '"LocalNodeState":"inactive"' in out.stdout
    missing = subprocess.run([str(script), "ps"], capture_output=True, text=True, check=False)
    assert missing.returncode == 1 and "needs --daemon-dir" in missing.stderr


def test_the_makefiles_command_line_from_trust_dir(tmp_path: Path, kit: Kit,
                                                   checkout: FlipCheckout, world: Path) -> None:
    """As trust/Makefile@0046dc28 runs it: relative paths from trust/, a real subprocess."""
    script = Path(sys.executable).parent / "flip-standin-docker"
    daemon = tmp_path / "host" / "docker"
    base = [str(script), "--daemon-dir", str(daemon), "--world", str(world)]
    shutil.copy(kit.path, checkout.trust_dir / ".env.STANDINTEST.production")
    env = {"PATH": os.environ.get("PATH", ""), "TRUST_NETWORK_NAME": "deploy_trust-network-1",
           "TRUST_NUMBER": "1", "TRUST_NAME": "Trust_1", "DEBUG": "",
           "DOCKER_FL_CLIENT_NAME": "flare-fl-client"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], cwd=checkout.trust_dir, env=env, text=True,
                              capture_output=True, check=False)

    try:
        inspect = run("network", "inspect", "deploy_trust-network-1")
        assert inspect.returncode == 1
        assert run("swarm", "init", "--advertise-addr", "127.0.0.1").returncode == 0
        assert run("network", "create", "--driver", "overlay", "--attachable",
                   "deploy_trust-network-1").returncode == 0
        up = run("compose", "--env-file", ".env.STANDINTEST.production", "--project-directory",
                 ".", "-f", "deploy/compose_trust.production.yml",
                 "-f", "deploy/compose_trust.production.nvflare.yml",
                 "-p", "trust1", "up", "-d", "--pull", "always")
        assert up.returncode == 0, up.stderr
        ps = run("compose", "-p", "trust1", "ps", "--format", "json")
        assert len(ps.stdout.splitlines()) == 9
        assert wait_for(lambda: AUTHENTICATED in run("compose", "-p", "trust1", "logs").stdout)
        down = run("compose", "--env-file", ".env.STANDINTEST.production", "--project-directory",
                   ".", "-f", "deploy/compose_trust.production.yml",
                   "-f", "deploy/compose_trust.production.nvflare.yml",
                   "-p", "trust1", "down", "--remove-orphans")
        assert down.returncode == 0
        assert live_pids_under(daemon.resolve()) == []
    finally:
        (checkout.trust_dir / ".env.STANDINTEST.production").unlink()
        trust_api.stop_all(daemon)
