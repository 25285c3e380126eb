"""`flipgitops demo` end to end: the real CLI in a subprocess, as a user would run it.

The demo starts its own sandbox (a moto server, the stand-in FLIP hub, trust hosts whose
FLIP stacks run as stand-in processes), so these tests use no fixture: they check what a
user sees (every step's command and exit code, the guard, the drift finding, the time it
printed) and that nothing is left behind: no temp dir, no process (counted), no listening
server.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from flipgitops.sandbox.demo import TMP_PREFIX
from flipgitops.sandbox.flip import processes

pytestmark = pytest.mark.slow

# Far above the demo's own budget (under a minute on an idle 2-core machine): a loaded CI
# machine must not turn a slow run into a failure; a hang still fails.
TIMEOUT_S = 600

EXPECTED_STEPS = [
    ("validate", 0),
    ("plan --env dev", 2),
    ("apply --env dev --yes", 0),
    ("drift --env dev", 2),
    ("plan --env dev", 3),
    ("apply --env dev --yes", 0),
    ("status --env dev", 0),
]

_STEP = re.compile(r"^\$ flipgitops (?P<cmd>.+)$")
_EXIT = re.compile(r"^-> (?:exit (?P<ok>\d+) |UNEXPECTED: .* exited (?P<bad>\d+) )")
_WORKDIR = re.compile(r"hosts under (?P<dir>/\S+)/world/hosts\)")
_TOOK = re.compile(r"^Demo complete: .* in (?P<s>[0-9.]+) s \(", re.MULTILINE)
_URL = re.compile(r"moto\) at (?P<url>http://\S+),")


def _clean_env() -> dict[str, str]:
    """The user's environment, minus anything that would point the demo elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLIPGITOPS_"))}
    env["NO_COLOR"] = "1"
    return env


def _demo_dirs() -> set[str]:
    return {p.name for p in Path(tempfile.gettempdir()).glob(TMP_PREFIX + "*")}


def _steps(output: str) -> list[tuple[str, int]]:
    """(command, exit code) pairs in the order the demo ran them."""
    steps: list[tuple[str, int]] = []
    command: str | None = None
    for line in output.splitlines():
        m = _STEP.match(line)
        if m:
            command = m.group("cmd")
            continue
        e = _EXIT.match(line)
        if e and command is not None:
            steps.append((command, int(e.group("ok") or e.group("bad"))))
            command = None
    return steps


def _section(output: str, number: int) -> str:
    start = output.index(f"=== Step {number}/")
    end = output.find(f"=== Step {number + 1}/", start)
    return output[start:] if end < 0 else output[start:end]


def _processes_in(path: str) -> list[str]:
    """Live processes whose command line or working directory is inside ``path``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        if path in cmdline or cwd == path or cwd.startswith(path + "/"):
            found.append(f"{proc.name}: {cmdline.strip()} (cwd {cwd})")
    return found


def _port_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, int(port))) == 0


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM first: the demo cleans up its sandbox on it (SIGKILL would leave the temp dir)."""
    processes.stop_child(proc, grace=60)


def _assert_left_nothing(output: str, before: set[str]) -> None:
    workdir = _WORKDIR.search(output)
    url = _URL.search(output)
    assert workdir and url, output[:2000]
    assert not Path(workdir.group("dir")).exists()
    assert _demo_dirs() - before == set()
    assert _processes_in(workdir.group("dir")) == []
    assert not _port_open(url.group("url")), "the demo's moto server still listens"


def test_demo_runs_the_whole_loop_and_leaves_nothing_behind() -> None:
    before = _demo_dirs()
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flipgitops", "demo"],
        env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        out, err = proc.communicate(timeout=TIMEOUT_S)
    finally:
        _stop(proc)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, out[-6000:] + err[-3000:]
    assert _steps(out) == EXPECTED_STEPS
    assert "UNEXPECTED" not in out
    assert "Demo complete" in out
    # Step 2: the onboarding plan names every trust (two hosts and a TRE) and FLIP's task.
    onboarding = _section(out, 2)
    assert all(t in onboarding for t in ("Trust_1", "Trust_2", "Trust_3"))
    assert "registry.register" in onboarding
    # Step 4: drift names the host whose trust-api was stopped by hand, and only it.
    # Step 3: apply converges, which it says only when its own fresh plan is empty.
    assert "converged: " in _section(out, 3)
    drift = _section(out, 4)
    assert "docker stop trust1-trust-api-1" in drift
    assert "host:Trust_1" in drift and "host:Trust_2" not in drift
    # Step 5: the lockstep guard blocks and is named.
    assert "FG001" in _section(out, 5)
    # Step 6: status confirms trust-api authenticated on both hosts again.
    assert _section(out, 6).count("trust-api authenticated as Trust_") == 2
    took = _TOOK.search(out)
    assert took, out[-2000:]  # the demo prints its own time
    assert "Sandbox stopped and removed." in out
    _assert_left_nothing(out, before)
    print(f"demo took {elapsed:.1f}s (it printed {took.group('s')} s)")


@pytest.mark.long  # a second whole demo; the full suite runs the plain one above
def test_demo_keep_serves_the_sandbox_until_interrupted() -> None:
    before = _demo_dirs()
    proc = subprocess.Popen(
        [sys.executable, "-m", "flipgitops", "demo", "--keep"],
        env=_clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        stdin=subprocess.DEVNULL,
    )
    watchdog = threading.Timer(TIMEOUT_S, proc.terminate)
    watchdog.start()
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        out = "\n".join(lines)
        assert "Demo complete" in out, out[-6000:]
        # The printed instructions work: the kept sandbox is converged, so a plan is empty.
        # Read the way a shell would (values are shell-quoted, JSON ones hold spaces).
        exports = dict(shlex.split(line)[1].split("=", 1) for line in out.splitlines()
                       if line.startswith("  export "))
        cd = re.search(r"^  cd (\S+)$", out, flags=re.MULTILINE)
        assert cd and "AWS_ENDPOINT_URL" in exports and exports["AWS_ACCESS_KEY_ID"] == "testing"
        plan = subprocess.run(
            [sys.executable, "-m", "flipgitops", "plan", "--env", "dev"],
            env={**_clean_env(), **exports}, cwd=cd.group(1), capture_output=True, text=True,
            timeout=120,
        )
        assert plan.returncode == 0, plan.stdout + plan.stderr
        assert proc.poll() is None, "the demo must keep running until interrupted"
        proc.send_signal(signal.SIGINT)
        rest = proc.stdout.read()
        code = proc.wait(timeout=60)
    finally:
        watchdog.cancel()
        _stop(proc)
    out = out + "\n" + rest
    assert code == 0, out[-3000:]
    assert "Sandbox stopped and removed." in out
    _assert_left_nothing(out, before)
