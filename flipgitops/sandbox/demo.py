"""`flipgitops demo`: the whole GitOps loop against the stand-in FLIP, in under a minute.

The world is `sandbox/environment.py`'s: a moto server on a loopback port (AWS), the
stand-in FLIP hub on it (one-off flip-api tasks, flip-api, the image registry, FL kits), a
FLIP checkout, trust "hosts" that are directories driven by the real Ansible content with the
stand-in container CLI, and a git repository holding `environments/dev.yaml`. Every step
runs the real CLI as a subprocess (`narrator.py`), with the environment an operator's shell
would have, so what the viewer sees (output and exit code) is exactly what they would get
typing the command; the demo checks each exit code and says so plainly when one is not what
the story expects.

The story: validate → plan → apply (two host trusts and a TRE onboarded; it converges only
when its own fresh plan is empty) → someone stops trust-api on a host → drift finds it → a
pull request moves hub_tag without fl_tag and guard FG001 blocks it → apply converges →
status.

Nothing outlives the demo unless `--keep` is given: the trust processes are stopped, the
servers closed and the temporary directory removed in `finally` blocks, also on Ctrl-C and
SIGTERM.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import FrameType

from flipgitops.sandbox.environment import DEFAULT_TRUSTS, Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.narrator import Echo, Narrator, Step

TMP_PREFIX = "flipgitops-demo-"
ENV = "dev"
STEPS = 6  # the story's sections (`Narrator.section`)
TARGET_SECONDS = 60.0
TRUSTS = (*DEFAULT_TRUSTS, TrustSpec("Trust_3", "TRE", "203.0.113.13", kind="tre"))
TAMPERED = "Trust_1"  # the host whose trust-api someone stops
TRUST_API = "trust-api"


class DemoError(Exception):
    """The sandbox did not let the demo make its manual change (names what and why)."""


def _story(box: Sandbox, n: Narrator) -> bool:
    """The steps; False as soon as one does not go as the story says."""
    env = ("--env", ENV)
    hosts = [t.name for t in TRUSTS if t.kind != "tre"]
    tre = [t.name for t in TRUSTS if t.kind == "tre"]

    n.section("validate the manifest", """
        Static checks only, no network: the schema, unique names/IPs/slots, public /32s,
        immutable tags, secrets only as references. Exit 0 = valid.""")
    if not n.run(Step(("validate",), 0)).ok:
        return False

    n.section("plan the onboarding", f"""
        The hub runs FLIP with no trusts; the manifest declares {', '.join(hosts)} (hosts
        flipgitops runs FLIP's trust stack on) and {', '.join(tre)} (a TRE: hub side only).
        The plan orders register_trust (FLIP's one-off task) -> the NLB allowlist -> each
        host: provision, FLIP's trust/ release, the FL kit, the kit file, start, verify.
        Exit 2 = there are changes to apply.""")
    if not n.run(Step(("plan", *env), 2, (*hosts, *tre))).ok:
        return False

    n.section("apply", """
        apply locks the environment, runs the plan wave by wave (the host waves as one
        Ansible run, hosts in parallel), then observes everything again and plans: it says
        "converged" (exit 0) only when that fresh plan is empty and nothing is out of sync,
        the same verdict a second `plan` would give.""")
    if not n.run(Step(("apply", *env, "--yes"), 0, ("converged",))).ok:
        return False

    n.section("someone stops trust-api on a host", f"""
        Behind flipgitops' back, an operator on {TAMPERED}'s host runs
        `docker stop` on its trust-api container: the trust stops polling the hub.
        The nightly drift check must notice: exit 2.""")
    name = _stop_trust_api(box, TAMPERED)
    n.note(f"on {TAMPERED}'s host: docker stop {name}")
    if not n.run(Step(("drift", *env), 2, (TAMPERED,))).ok:
        return False

    hub_tag = "v2.3.0"
    bumped = "v2.4.0"
    n.section("a lockstep violation is blocked", f"""
        A pull request moves hub_tag to {bumped} but forgets fl_tag. The hub API and the FL
        images must move together (policy.lockstep_fl_images), so guard FG001 blocks the
        plan: exit 3, nothing can be applied. The edit is then reverted, as the reviewer
        would ask.""")
    original = box.manifest_path.read_text(encoding="utf-8")
    edited = original.replace(f"hub_tag: {hub_tag}\n", f"hub_tag: {bumped}\n", 1)
    if edited == original:
        raise DemoError(f"environments/{ENV}.yaml has no `hub_tag: {hub_tag}` line to edit")
    box.manifest_path.write_text(edited, encoding="utf-8")
    n.note(f"edited environments/{ENV}.yaml: hub_tag {hub_tag} -> {bumped}")
    try:
        blocked = n.run(Step(("plan", *env), 3, ("FG001",))).ok
    finally:
        box.manifest_path.write_text(original, encoding="utf-8")
        n.note(f"reverted environments/{ENV}.yaml")
    if not blocked:
        return False

    n.section("converge, then status", f"""
        apply starts {TAMPERED}'s stack again the way FLIP's trust/Makefile does and waits
        for trust-api to authenticate to the hub. status then reads the hub and every trust
        (what the hub itself confirms: trust-api authenticated): exit 0 = healthy.""")
    if not n.run(Step(("apply", *env, "--yes"), 0, ("converged",))).ok:
        return False
    return n.run(Step(("status", *env), 0)).ok


def _stop_trust_api(box: Sandbox, trust: str) -> str:
    """`docker ps` then `docker stop <trust-api>` with the host's (stand-in) container CLI."""
    docker = shlex.split(box.docker(trust))
    listing = subprocess.run([*docker, "ps"], capture_output=True, text=True, timeout=60,
                             check=False)
    names = [line.split()[-1] for line in listing.stdout.splitlines()[1:] if line.split()]
    wanted = [n for n in names if TRUST_API in n]
    if listing.returncode != 0 or not wanted:
        raise DemoError(f"{trust}'s host runs no {TRUST_API} container to stop "
                        f"(docker ps: {listing.stdout.strip() or listing.stderr.strip()})")
    stopped = subprocess.run([*docker, "stop", wanted[0]], capture_output=True, text=True,
                             timeout=60, check=False)
    if stopped.returncode != 0:
        raise DemoError(f"docker stop {wanted[0]} failed: {stopped.stderr.strip()}")
    return wanted[0]


def _environment_lines(box: Sandbox) -> list[str]:
    """How to point a shell at the sandbox: exactly what the demo's commands had."""
    env = box.environ()
    keys = sorted(k for k in env if k.startswith(("AWS_", "FLIPGITOPS_")))
    return [f"  export {k}={shlex.quote(env[k])}" for k in keys]


def _wait_for_interrupt(box: Sandbox, echo: Echo) -> None:
    echo("")
    echo("The sandbox keeps running. Point the CLI at it from another shell:")
    for line in _environment_lines(box):
        echo(line)
    echo(f"  cd {box.repo}")
    cli = "flipgitops"
    beside = Path(sys.executable).parent / "flipgitops"
    if shutil.which(cli) != str(beside) and beside.is_file():
        cli = str(beside)  # the venv is not on the user's PATH: name the script itself
    echo(f"  {cli} plan --env {ENV}")
    echo("Press Ctrl-C to stop the sandbox (its processes stop, the directory is removed).")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Handled explicitly rather than via KeyboardInterrupt: a shell starts background jobs
    # with SIGINT ignored, and `kill` sends SIGTERM; both must still clean up.
    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, on_signal) for sig in watched}
    try:
        while not stop.wait(0.5):
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    echo("Stopping the sandbox...")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM during the steps unwinds like Ctrl-C, so the sandbox is still removed."""
    raise KeyboardInterrupt


def run_demo(keep: bool, echo: Echo) -> int:
    """Run the story; 0 when every step ended as expected (and the demo printed how long it
    took), 1 otherwise."""
    started = time.monotonic()
    echo("flipgitops demo: validate -> plan -> apply -> drift -> guard -> converge -> status,")
    echo("for real, against a local AWS emulator, the stand-in FLIP and local trust hosts.")
    echo("Nothing outside a temporary directory changes.")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    root = Path(tempfile.mkdtemp(prefix=TMP_PREFIX)).resolve()
    try:
        ok = _run(root, keep, echo, started)
    except DemoError as exc:
        echo(f"Demo FAILED: {exc}")
        ok = False
    finally:
        signal.signal(signal.SIGTERM, previous)
        shutil.rmtree(root, ignore_errors=True)
    echo("Sandbox stopped and removed.")
    return 0 if ok else 1


def _run(root: Path, keep: bool, echo: Echo, started: float) -> bool:
    with sandbox(root / "world", env_name=ENV, trusts=TRUSTS) as box:
        echo(f"Sandbox ready in {time.monotonic() - started:.0f} s: AWS emulator (moto) at "
             f"{box.moto.url}, the stand-in FLIP hub, a FLIP checkout with v2.3.0 and v2.4.0,")
        echo(f"  {len(TRUSTS)} trusts in {box.manifest_path.relative_to(root / 'world')} "
             f"(hosts under {root / 'world' / 'hosts'}).")
        narrator = Narrator(echo, box.repo, _child_env(box), STEPS)
        ok = _story(box, narrator)
        elapsed = time.monotonic() - started
        echo("")
        if ok:
            verdict = ("under a minute" if elapsed < TARGET_SECONDS
                       else f"over the {TARGET_SECONDS:.0f} s target")
            echo(f"Demo complete: {len(narrator.outcomes)} commands, every exit code as "
                 f"expected, in {elapsed:.1f} s ({verdict}).")
        else:
            last = narrator.outcomes[-1] if narrator.outcomes else None
            what = f"`flipgitops {' '.join(last.step.args)}`" if last else "the setup"
            echo(f"Demo FAILED at step {narrator.number}/{STEPS} ({what}) after {elapsed:.0f} "
                 "s: see UNEXPECTED above.")
        if keep:
            _wait_for_interrupt(box, echo)
    return ok


def _child_env(box: Sandbox) -> dict[str, str]:
    """The sandbox's environment, with this venv's bin first on PATH: the CLI's children
    (ansible-playbook, the stand-in) live there, also when the demo was started as
    `.venv/bin/flipgitops` without activating the venv."""
    env = box.environ()
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + (os.pathsep + env["PATH"] if env.get("PATH") else "")
    return env
