"""Runs one real CLI command for the demo and tells the viewer what it means.

Each step is the real `flipgitops` run as a subprocess in the sandbox's git repository, with
the environment an operator's shell pointed at the sandbox would have (AWS_* for the local
AWS emulator, FLIPGITOPS_ENDPOINTS for the stand-in hub), so the viewer sees the exact output
and exit code they would get themselves; the narrator only adds a header, the reason for
the step and a verdict on the exit code.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

Echo = Callable[[str], None]

EXIT_MEANING = {
    0: "ok / in sync / no changes",
    1: "error or invalid",
    2: "changes to make / drift found",
    3: "blocked by a guard",
    4: "another run holds the lock",
}

# Generous: a step is seconds, but a wedged Ansible run must not hang the demo forever.
STEP_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Step:
    args: tuple[str, ...]
    expect: int
    # Lines of output the step must show for the story to be true (e.g. the guard's ID).
    expect_text: tuple[str, ...] = ()


@dataclass
class Outcome:
    step: Step
    code: int
    output: str
    seconds: float
    missing: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code == self.step.expect and not self.missing


class Narrator:
    def __init__(self, echo: Echo, workdir: Path, env: Mapping[str, str], total: int) -> None:
        self.echo = echo
        self.workdir = workdir
        self.env = dict(env)
        self.total = total
        self.number = 0
        self.outcomes: list[Outcome] = []

    def section(self, title: str, why: str) -> None:
        self.number += 1
        self.echo("")
        self.echo(f"=== Step {self.number}/{self.total}: {title} " + "=" * max(3, 60 - len(title)))
        for line in why.strip().splitlines():
            self.echo(f"  {line.strip()}")

    def note(self, text: str) -> None:
        self.echo(f"  * {text}")

    def run(self, step: Step) -> Outcome:
        """Run `flipgitops <args>` in the sandbox, streaming its output, and judge the exit."""
        self.echo("")
        self.echo(f"$ flipgitops {' '.join(step.args)}")
        started = time.monotonic()
        code, output = _run_cli(step.args, self.workdir, self.env, self.echo)
        seconds = time.monotonic() - started
        missing = [t for t in step.expect_text if t not in output]
        outcome = Outcome(step, code, output, seconds, missing)
        self.outcomes.append(outcome)
        meaning = EXIT_MEANING.get(code, "unexpected")
        if outcome.ok:
            self.echo(f"-> exit {code} ({meaning}), as expected [{seconds:.1f}s]")
        else:
            want = EXIT_MEANING.get(step.expect, "?")
            self.echo(
                f"-> UNEXPECTED: `flipgitops {' '.join(step.args)}` exited {code} ({meaning}); "
                f"the demo expected exit {step.expect} ({want}) [{seconds:.1f}s]"
            )
            for text in missing:
                self.echo(f"-> UNEXPECTED: the output should mention {text!r} and does not")
        return outcome


def _run_cli(args: tuple[str, ...], cwd: Path, env: Mapping[str, str],
             echo: Echo) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "flipgitops", *args]
    # Its own process group, so that stopping the demo (Ctrl-C, SIGTERM, the timeout) can
    # stop the command *and* its children (ansible-playbook and its workers) together.
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
        start_new_session=True,
    )
    watchdog = threading.Timer(STEP_TIMEOUT_S, _stop_group, (proc,))
    watchdog.start()
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            lines.append(line)
            echo(f"    {line}")
        code = proc.wait()
    finally:
        watchdog.cancel()
        if proc.poll() is None:
            _stop_group(proc)
        if proc.stdout is not None:
            proc.stdout.close()
    if code < 0:
        lines.append(f"(stopped by signal {-code})")
    return code, "\n".join(lines)


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the command's process group, then SIGKILL what is left after a grace period."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
