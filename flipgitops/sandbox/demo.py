"""`flipgitops demo`: the whole GitOps loop against a sandbox that lives for one run.

The sandbox is a real moto server on a loopback port (AWS) plus trust "hosts" that are
directories under a temporary directory, driven by the real Ansible playbooks with the
stand-in container CLI. Every step runs the real CLI as a subprocess so what the viewer sees
(output and exit code) is exactly what they would get typing the command; the demo checks
each exit code and says so plainly when one is not what the story expects.

Nothing outlives the demo unless `--keep` is given: the server is stopped and the temporary
directory removed in `finally` blocks, also on Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from flipgitops.model.manifest import Manifest
from flipgitops.sandbox.moto_server import SANDBOX_ENV, moto_server
from flipgitops.sandbox.narrator import Echo, Narrator, Step
from flipgitops.sandbox.tamper import (
    ROGUE_CIDR,
    add_manual_ingress_rule,
    deploy_image_by_hand,
    revoke_manual_ingress_rule,
)
from flipgitops.sandbox.workspace import (
    bump_tag,
    set_hub_tag,
    source_manifest,
    standin_cli,
    write_sandbox_manifest,
)

TMP_PREFIX = "flipgitops-demo-"
ENV = "dev"
STEPS = 6


@dataclass(frozen=True)
class Sandbox:
    url: str
    workdir: Path
    manifest_path: Path
    manifest: Manifest


@contextmanager
def _sandbox_env(url: str) -> Iterator[None]:
    """Point this process and its children at the sandbox; restore the caller's env after."""
    # The venv's bin first: the CLI's children (ansible-playbook, the stand-in) live there,
    # also when the demo was started as `.venv/bin/flipgitops` without activating the venv.
    bindir = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    wanted = {**SANDBOX_ENV, "AWS_ENDPOINT_URL": url,
              "PATH": bindir + (os.pathsep + path if path else "")}
    dropped = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE",
               "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION")
    saved = {k: os.environ.get(k) for k in (*wanted, *dropped)}
    os.environ.update(wanted)
    for key in dropped:
        os.environ.pop(key, None)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def sandbox(echo: Echo) -> Iterator[Sandbox]:
    """A seeded FLIP-shaped hub in moto and a working directory with the dev manifest."""
    from flipgitops.engine.manifests import load_manifest
    from flipgitops.sandbox.seed import seed_hub

    source = source_manifest()
    docker = standin_cli()
    workdir = Path(tempfile.mkdtemp(prefix=TMP_PREFIX)).resolve()
    try:
        with moto_server() as server, _sandbox_env(server.url):
            manifest_path = write_sandbox_manifest(source, workdir, docker)
            manifest = load_manifest(manifest_path)
            seed_hub(manifest, trusts=False)
            echo(f"Sandbox: AWS emulator (moto) at {server.url}, working directory {workdir}")
            echo(f"  hub seeded for environment '{manifest.environment}' (account "
                 f"{manifest.aws.account_id}, {manifest.aws.region}) with no trusts yet;")
            echo(f"  {len(manifest.trusts)} trust(s) in the manifest, hosts under "
                 f"{workdir / 'hosts'} with the stand-in container CLI {docker.name}")
            yield Sandbox(server.url, workdir, manifest_path, manifest)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _story(sb: Sandbox, n: Narrator) -> bool:
    """The six steps; False as soon as one does not go as the story says."""
    m = sb.manifest
    env = ("--env", ENV)
    trusts = [t.name for t in m.trusts]

    n.section("validate the manifest", """
        Static checks only, no network: schema, unique names/IPs/slots, routable /32s,
        immutable tags, secrets only as references. Exit 0 = valid.""")
    if not n.run(Step(("validate",), 0)).ok:
        return False

    n.section("plan the onboarding", f"""
        The hub exists but has no trusts; the manifest declares {', '.join(trusts)}.
        The plan shows ordered actions (credentials -> hub secret -> redeploy -> allowlist
        -> hosts) and any guards. Exit 2 = there are changes to apply.""")
    if not n.run(Step(("plan", *env), 2, tuple(trusts))).ok:
        return False

    n.section("apply, then plan again", """
        apply executes the plan wave by wave (hosts in parallel) and re-observes.
        A second plan must then find nothing to do: exit 0.""")
    if not n.run(Step(("apply", *env, "--yes"), 0)).ok:
        return False
    if not n.run(Step(("plan", *env), 0)).ok:
        return False

    hotfix = f"{m.hub.images.fl_tag}-hotfix1" if m.hub.images.fl_tag.startswith("v") else "v0.0.1"
    n.section("someone changes production by hand", f"""
        Behind flipgitops' back (plain boto3, as with the AWS console or CLI):
        - an extra ingress rule opens the FL port to {ROGUE_CIDR};
        - fl-server is rolled to image tag {hotfix} (new task definition + update_service).
        The nightly drift check must notice both: exit 2.""")
    add_manual_ingress_rule(m)
    image = deploy_image_by_hand(m, "fl_server", hotfix)
    n.note(f"added ingress {ROGUE_CIDR} on {m.hub.fl_server.security_group}:{m.hub.fl_server.port}")
    n.note(f"{m.hub.ecs.services.fl_server} now runs {image}")
    rogue_ip = ROGUE_CIDR.split("/")[0]
    if not n.run(Step(("drift", *env), 2, (rogue_ip, hotfix))).ok:
        return False

    bumped = bump_tag(m.hub.images.hub_tag)
    n.section("a lockstep violation is blocked", f"""
        A pull request bumps hub_tag to {bumped} but forgets fl_tag. The hub API and the FL
        images must move together (policy.lockstep_fl_images), so guard FG001 blocks the plan:
        exit 3. The edit is then reverted, as the reviewer would ask.""")
    original = sb.manifest_path.read_text(encoding="utf-8")
    set_hub_tag(sb.manifest_path, bumped)
    n.note(f"edited environments/{ENV}.yaml: hub_tag {m.hub.images.hub_tag} -> {bumped}")
    try:
        blocked = n.run(Step(("plan", *env), 3, ("FG001",))).ok
    finally:
        sb.manifest_path.write_text(original, encoding="utf-8")
        n.note(f"reverted environments/{ENV}.yaml")
    if not blocked:
        return False

    n.section("converge again", f"""
        apply --fl-quiesced restores fl-server to {m.hub.images.fl_tag}: replacing the FL server
        task aborts any training in progress, so guard FG007 wants that confirmation (no
        training runs in the sandbox). The hand-made rule is listed as unmanaged but left
        alone: it has no `flipgitops:<trust>` description, so it may belong to someone else
        (the hub's Terraform, a colleague) and flipgitops never deletes what it did not write,
        not even with --prune. The operator revokes it by hand; drift then finds nothing.""")
    if not n.run(Step(("apply", *env, "--yes", "--fl-quiesced"), 0, (rogue_ip,))).ok:
        return False
    revoke_manual_ingress_rule(m)
    n.note(f"revoked {ROGUE_CIDR} by hand (aws ec2 revoke-security-group-ingress)")
    return n.run(Step(("drift", *env), 0)).ok


def _wait_for_interrupt(sb: Sandbox, echo: Echo) -> None:
    echo("")
    echo("The sandbox keeps running. Point the CLI at it from another shell:")
    echo(f"  export AWS_ENDPOINT_URL={sb.url}")
    for key, value in SANDBOX_ENV.items():
        echo(f"  export {key}={value}")
    echo(f"  cd {sb.workdir}")
    cli = "flipgitops"
    beside = Path(sys.executable).parent / "flipgitops"
    if shutil.which(cli) != str(beside) and beside.is_file():
        cli = str(beside)  # the venv is not on the user's PATH: name the script itself
    echo(f"  {cli} plan --env {ENV}")
    echo("Press Ctrl-C to stop the sandbox (the server stops, the directory is removed).")
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


def run_demo(keep: bool, echo: Echo) -> int:
    """Run the story; 0 when every step ended as expected, 1 otherwise."""
    started = time.monotonic()
    echo("flipgitops demo: validate -> plan -> apply -> drift -> guard -> converge, for real,")
    echo("against a local AWS emulator and local trust hosts. Nothing outside a temp dir changes.")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        ok = _run(keep, echo, started)
    finally:
        signal.signal(signal.SIGTERM, previous)
    echo("Sandbox stopped and removed.")
    return 0 if ok else 1


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM during the steps unwinds like Ctrl-C, so the sandbox is still removed."""
    raise KeyboardInterrupt


def _run(keep: bool, echo: Echo, started: float) -> bool:
    with sandbox(echo) as sb:
        narrator = Narrator(echo, sb.workdir, STEPS)
        ok = _story(sb, narrator)
        elapsed = time.monotonic() - started
        echo("")
        if ok:
            echo(f"Demo complete: {len(narrator.outcomes)} commands, every exit code as "
                 f"expected, in {elapsed:.0f}s.")
        else:
            last = narrator.outcomes[-1] if narrator.outcomes else None
            what = f"`flipgitops {' '.join(last.step.args)}`" if last else "the setup"
            echo(f"Demo FAILED at step {narrator.number}/{STEPS} ({what}): see UNEXPECTED above.")
        if keep:
            _wait_for_interrupt(sb, echo)
    return ok
