"""The stand-in container CLI's fork server (cli_server.py) and its thin client
(docker_client.py): a forwarded command must be indistinguishable from the same command run
by the whole stand-in CLI in a process of its own — output, exit status, working directory,
environment — and the client must stay thin, or the server buys nothing."""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from flipgitops.sandbox.flip import docker_client
from flipgitops.sandbox.flip.cli_server import CliServer, decode_request

COMPOSE = """\
services:
  api:
    image: "busybox:${TAG}"
  db:
    image: "postgres:16"
"""


def _client(sock: Path, daemon: Path, *args: str, cwd: Path, env: dict[str, str],
            python_flags: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-I", "-S", *python_flags, docker_client.__file__,  # the flags go first
         "--server", str(sock), "--daemon-dir", str(daemon), *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


def _whole_cli(daemon: Path, *args: str, cwd: Path,
               env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flipgitops.sandbox.flip.container_cli", "--daemon-dir",
         str(daemon), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
        check=False)


COMMANDS: list[tuple[str, ...]] = [
    ("version",),
    ("info", "--format", "{{.Swarm.LocalNodeState}}"),
    ("network", "inspect", "deploy_trust-network-1"),  # refused: exit 1, Docker's message
    ("nonsense",),  # not a command the stand-in plays
    ("compose", "-p", "Not_Valid", "ps"),  # a refusal raised by a lazily imported module
    ("compose", "-f", "c.yml", "-p", "proj", "config", "--services"),  # cwd: c.yml
    ("compose", "-f", "c.yml", "-p", "proj", "config", "--hash", "*"),  # env: ${TAG}
    ("compose", "-f", "c.yml", "-p", "proj", "ps", "--format", "json", "-a"),
]


def test_a_forwarded_command_is_the_command_run_in_its_own_process(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "c.yml").write_text(COMPOSE, encoding="utf-8")
    env = {**os.environ, "TAG": "1.36"}
    with CliServer() as server:
        for args in COMMANDS:
            via = _client(server.socket, tmp_path / "served", *args, cwd=work, env=env)
            own = _whole_cli(tmp_path / "own", *args, cwd=work, env=env)
            assert (via.returncode, via.stdout, via.stderr) == \
                (own.returncode, own.stdout, own.stderr), args
        # the environment reached the fork: another TAG, another hash
        hashes = {tag: _client(server.socket, tmp_path / "served", *COMMANDS[6], cwd=work,
                               env={**os.environ, "TAG": tag}).stdout for tag in ("1", "2")}
        assert hashes["1"] and hashes["1"] != hashes["2"]
    assert _whole_cli(tmp_path / "own", "nonsense", cwd=work, env=env).returncode == 1


def test_a_large_environment_arrives_whole(tmp_path: Path) -> None:
    """Half a megabyte of environment: more than one read on either side of the socket."""
    (tmp_path / "c.yml").write_text(COMPOSE, encoding="utf-8")
    filler = {f"FILLER_{i}": "x" * 100_000 for i in range(5)}
    args = ("compose", "-f", "c.yml", "-p", "proj", "config", "--hash", "*")
    with CliServer() as server:
        got = {tag: _client(server.socket, tmp_path / "d", *args, cwd=tmp_path,
                            env={**os.environ, **filler, "TAG": tag}) for tag in ("1", "2")}
    own = _whole_cli(tmp_path / "d", *args, cwd=tmp_path, env={**os.environ, "TAG": "1"})
    assert got["1"].returncode == 0 and got["1"].stdout == own.stdout
    assert got["1"].stdout != got["2"].stdout


def test_a_reader_that_left_is_met_as_the_whole_cli_meets_it(tmp_path: Path) -> None:
    """`docker … | head`: stdout's reader is gone. A Python process ignores SIGPIPE, so the
    whole CLI sees BrokenPipeError and exits 1; the fork must do the same, not die of it."""
    def run(command: list[str]) -> int:
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            return subprocess.run(command, stdout=write_end, stderr=subprocess.DEVNULL,
                                  timeout=60, check=False).returncode
        finally:
            os.close(write_end)

    args = ["--daemon-dir", str(tmp_path / "d"), "version"]
    with CliServer() as server:
        via = run([*server.client_command(), *args])
    own = run([sys.executable, "-m", "flipgitops.sandbox.flip.container_cli", *args])
    assert own == 1 and via == own


def test_with_no_server_the_client_runs_the_whole_cli_itself(tmp_path: Path) -> None:
    gone = tmp_path / "no-such.sock"
    via = _client(gone, tmp_path / "d", "version", cwd=tmp_path, env=dict(os.environ))
    own = _whole_cli(tmp_path / "d", "version", cwd=tmp_path, env=dict(os.environ))
    assert via.returncode == 0 and via.stdout == own.stdout and "Version:" in via.stdout
    refused = _client(gone, tmp_path / "d", "nonsense", cwd=tmp_path, env=dict(os.environ))
    assert refused.returncode == 1 and "is not a docker command" in refused.stderr


def test_the_client_imports_nothing_of_ours(tmp_path: Path) -> None:
    with CliServer() as server:
        got = _client(server.socket, tmp_path / "d", "version", cwd=tmp_path,
                      env=dict(os.environ), python_flags=("-X", "importtime"))
    assert got.returncode == 0 and "Version:" in got.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in got.stderr.splitlines()
                if line.startswith("import time:")]
    assert "_socket" in imported  # the report is there, and lists what was imported
    assert not [m for m in imported if m.startswith(("flipgitops", "socket", "typing"))]


def test_only_its_own_user_may_connect_and_bad_requests_change_nothing(tmp_path: Path) -> None:
    with CliServer() as server:
        assert stat.S_IMODE(server.socket.stat().st_mode) == 0o600
        for garbage in (b"", b"\x00" * 8, b"\x00\x00\x00\x00\x00\x00\x00\x05nope!"):
            raw = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            raw.connect(str(server.socket))
            raw.sendall(garbage)
            raw.shutdown(socket.SHUT_WR)
            assert raw.recv(1) == b""  # not served: no b"S", the client would run it itself
            raw.close()
        ok = _client(server.socket, tmp_path / "d", "version", cwd=tmp_path,
                     env=dict(os.environ))
        assert ok.returncode == 0 and "Version:" in ok.stdout
        assert server.alive()
    assert not server.socket.exists() and not server.alive()


_FORWARD = """
import sys
sys.path.insert(0, sys.argv[1])
import docker_client
print(docker_client.forward(sys.argv[2], ["--daemon-dir", sys.argv[3], "version"]))
"""


@pytest.mark.slow
def test_a_client_in_another_network_namespace_is_not_served(tmp_path: Path) -> None:
    """A fork runs in the server's namespaces; a host in a network namespace of its own (the
    ssh hosts, root after become) must run its command there, so the server refuses it and
    the client runs the whole CLI itself (forward() returns None)."""
    from tests.sshhosts import PREFIX, skip_or_fail, unavailable

    reason = unavailable()
    if reason is not None:
        skip_or_fail(reason)
    netns = f"{PREFIX}cli-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", netns], check=True, capture_output=True)
    try:
        with CliServer() as server:
            probe = [sys.executable, "-I", "-S", "-c", _FORWARD,
                     str(Path(docker_client.__file__).parent), str(server.socket),
                     str(tmp_path / "d")]
            here = subprocess.run(probe, capture_output=True, text=True, timeout=60,
                                  check=False)
            there = subprocess.run(["ip", "netns", "exec", netns, *probe], capture_output=True,
                                   text=True, timeout=60, check=False)
            assert server.alive()
    finally:
        subprocess.run(["ip", "netns", "delete", netns], check=False, capture_output=True)
    assert here.stdout.splitlines()[-1:] == ["0"], here.stdout + here.stderr  # served
    assert there.stdout.splitlines()[-1:] == ["None"], there.stdout + there.stderr


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text(encoding="utf-8")
    return [int(p) for p in text.split()]


def _full_pipe() -> tuple[int, int]:
    """A pipe whose buffer is full: the next write to it blocks until someone reads."""
    import fcntl

    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETFL, os.O_NONBLOCK)
    with contextlib.suppress(BlockingIOError):
        while True:
            os.write(write_end, b"x" * 65536)
    fcntl.fcntl(write_end, fcntl.F_SETFL, 0)
    return read_end, write_end


def _blocked_command(server: CliServer, daemon: Path, stdout: int
                     ) -> tuple[subprocess.Popen[bytes], int]:
    """A client whose command (`version`) is running in a fork, blocked on its stdout."""
    import time

    assert server.pid is not None
    client = subprocess.Popen(
        [*server.client_command(), "--daemon-dir", str(daemon), "version"], stdout=stdout,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while not _children(server.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    forks = _children(server.pid)
    assert len(forks) == 1, "the command should be running, blocked on its stdout"
    time.sleep(0.2)
    assert _children(server.pid) == forks and client.poll() is None  # still blocked
    return client, forks[0]


def _no_children(pid: int, timeout: float = 20) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while _children(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return not _children(pid)


def test_a_client_that_dies_takes_its_command_with_it(tmp_path: Path) -> None:
    """SIGKILL the client while its command runs: the fork must go too, as the process it
    stands for would have."""
    import signal

    read_end, write_end = _full_pipe()
    with CliServer() as server:
        client, _ = _blocked_command(server, tmp_path / "d", write_end)
        client.send_signal(signal.SIGKILL)
        client.wait(timeout=10)
        assert server.pid is not None and _no_children(server.pid), \
            "the fork outlived its client"
        assert server.alive()
    os.close(read_end)
    os.close(write_end)


def test_a_command_killed_by_a_signal_kills_its_client_with_that_signal(tmp_path: Path) -> None:
    import signal

    read_end, write_end = _full_pipe()
    with CliServer() as server:
        client, fork = _blocked_command(server, tmp_path / "d", write_end)
        os.kill(fork, signal.SIGTERM)
        assert client.wait(timeout=20) == -signal.SIGTERM
        assert server.pid is not None and _no_children(server.pid)
    os.close(read_end)
    os.close(write_end)


@pytest.mark.parametrize("payload", [b"", b"/cwd", b"/cwd\x00x", b"/cwd\x003\x00a"])
def test_a_malformed_request_is_refused(payload: bytes) -> None:
    with pytest.raises(ValueError):
        decode_request(payload)


def test_a_request_decodes_to_cwd_argv_and_environment() -> None:
    payload = b"\x00".join([b"/w", b"2", b"ps", b"-a", b"A=1", b"B=x=y", b"junk"])
    assert decode_request(payload) == ("/w", ["ps", "-a"], {"A": "1", "B": "x=y"})


@pytest.mark.parametrize(("args", "server"), [
    (["--server", "/s", "ps"], "/s"), (["--server=/s", "ps"], "/s"),
    (["--daemon-dir", "/d", "--server", "/s", "ps"], "/s"), (["--daemon-dir=/d", "ps"], None),
    (["ps", "--server", "/s"], None), (["--server"], None),
])
def test_the_client_finds_server_only_among_the_global_flags(args: list[str],
                                                             server: str | None) -> None:
    assert docker_client.server_flag(args) == server
