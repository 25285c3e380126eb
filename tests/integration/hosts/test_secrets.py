"""Secrets and manifest text on their way to hosts (issue 19), with real ansible-runner runs.

- manifest values are data: `{{ lookup('pipe', …) }}` in flip_root, domain and registry
  runs nothing;
- a SIGKILL of flipgitops at any moment of a run leaves no secret under /tmp (nor the AWS
  credentials of its environment), and the next run removes the dead run's private dir;
- a failure names the file that could not be written, never the secret;
- Python's signal handlers are back after a run, and a signal during a run cancels it.
"""

from __future__ import annotations

import os
import secrets
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import FrameType

import pytest
from pydantic import SecretStr

from flipgitops.adapters import hosts as hosts_adapter
from flipgitops.adapters.hosts import AnsibleHosts, remove_stale_private_dirs
from flipgitops.engine.executors import load_executors
from flipgitops.engine.ports_hosts import HostTarget, HostTask, KitFileInput, ProvisionInput
from flipgitops.model.actions import ActionKind, WriteKitFileParams
from flipgitops.model.manifest import Host
from tests.integration.hosts.hostsandbox import act, bare_world, run_action
from tests.leaksearch import grep_tree

K = ActionKind


@pytest.fixture(autouse=True)
def _executors() -> None:
    load_executors()


@pytest.mark.slow
def test_manifest_text_is_never_templated(tmp_path: Path) -> None:
    marker = Path("/tmp") / f"flipgitops-pwned-{secrets.token_hex(6)}"
    evil = "{{ lookup('pipe', 'touch " + str(marker) + "') }}"
    root = tmp_path / evil / "flip"
    world = bare_world(tmp_path, flip_root=root, domain=evil, registry=evil)
    try:
        outcome = run_action(world, act(K.HOST_WRITE_KIT_FILE, "Trust_1",
                                        WriteKitFileParams(credentials_generation=1)))
        assert outcome.ok, outcome.message
        trust = world.manifest.trusts[0]
        facts = world.hosts.gather([HostTarget.of(world.manifest, trust)])["Trust_1"]
        assert facts.reachable, facts.reason
    finally:
        pwned = marker.exists()
        marker.unlink(missing_ok=True)
    assert not pwned, "a manifest value was templated"
    kit = (root / "trust" / ".env.C1X.production").read_text()
    assert f"CENTRAL_HUB_API_URL=https://{evil}/api" in kit
    assert f"DOCKER_REGISTRY={evil}/" in kit
    assert facts.kit_file.values["DOCKER_FL_REGISTRY"] == f"{evil}/"
    assert facts.flip_root_present


def test_a_failure_names_the_file_not_the_secret(tmp_path: Path) -> None:
    world = bare_world(tmp_path)
    trust_dir = world.flip_root() / "trust"
    trust_dir.mkdir(parents=True)
    if subprocess.run(["mount", "--bind", "-o", "ro", str(trust_dir), str(trust_dir)],
                      capture_output=True, check=False).returncode != 0:
        pytest.skip("no bind mounts here (a read-only directory cannot be made as root)")
    try:
        outcome = run_action(world, act(K.HOST_WRITE_KIT_FILE, "Trust_1",
                                        WriteKitFileParams(credentials_generation=1)))
    finally:
        subprocess.run(["umount", str(trust_dir)], check=True)
    assert not outcome.ok
    assert f"could not write {trust_dir}/.env.C1X.production: Read-only file system" in \
        outcome.message
    assert not [s for s in world.secrets() if s in outcome.message]


def _write_kit(hosts: AnsibleHosts, root: Path, content: str) -> dict[str, object]:
    target = HostTarget(trust="Trust_1", host=Host(connection="local", flip_root=str(root),
                                                   docker="/bin/true"),
                        code="C1X", kit_file=".env.C1X.production", backend="nvflare",
                        ec2=False, hub_endpoint="127.0.0.1:1", fl_endpoint="127.0.0.1:1")
    return dict(hosts.run(K.HOST_WRITE_KIT_FILE, [HostTask(target, KitFileInput(
        SecretStr(content)))]))


CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from pydantic import SecretStr
    sys.path.insert(0, {tests!r})
    from integration.hosts.test_secrets import _write_kit
    from flipgitops.adapters.hosts import AnsibleHosts
    print("started", flush=True)
    _write_kit(AnsibleHosts(endpoints={{}}), Path({root!r}), {content!r})
    print("done", flush=True)
""")


@pytest.mark.slow
def test_a_sigkill_at_any_moment_leaves_no_secret(tmp_path: Path) -> None:
    minted = time.time()  # every file that can hold the values below changes after this
    token = secrets.token_urlsafe(32)
    aws = secrets.token_urlsafe(30)
    content = f"TRUST_API_KEY={token}\n"
    tests = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "AWS_SECRET_ACCESS_KEY": aws, "AWS_ACCESS_KEY_ID": "AKIAFLIPGITOPSTEST"}
    dead: list[int] = []
    kit_files = set()
    for i, delay in enumerate((0.5, 1.5, 3.0, 4.5)):
        root = tmp_path / f"h{i}"
        kit_files.add(root / "trust" / ".env.C1X.production")
        child = subprocess.Popen([sys.executable, "-c", CHILD.format(
            tests=tests, root=str(root), content=content)], env=env, stdout=subprocess.PIPE,
            text=True)
        assert child.stdout is not None and child.stdout.readline().strip() == "started"
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        dead.append(child.pid)
    time.sleep(3)  # whatever the killed runs left running ends (their pty is gone)
    leaks = grep_tree(Path("/tmp"), [token, aws], skip=kit_files, changed_since=minted)
    assert leaks == []
    for path in kit_files:
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for proc in Path("/proc").iterdir():  # no process left holds the secret in its argv
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            assert token.encode() not in cmdline
    left = [n for n in os.listdir("/tmp") if any(n.startswith(
        f"{hosts_adapter.PRIVATE_PREFIX}{pid}-") for pid in dead)]
    removed = remove_stale_private_dirs("/tmp")
    assert set(left) <= set(removed)


@pytest.mark.slow
def test_signals_are_restored_and_a_signal_cancels_the_run(tmp_path: Path) -> None:
    seen: list[int] = []

    def mine(signum: int, _frame: FrameType | None) -> None:
        seen.append(signum)

    previous = signal.signal(signal.SIGINT, mine)
    try:
        hosts = AnsibleHosts(endpoints={})
        _write_kit(hosts, tmp_path / "a", "A=1\n")
        assert signal.getsignal(signal.SIGINT) is mine and seen == []
        timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        started = time.monotonic()
        target = HostTarget(trust="Trust_1", host=Host(
            connection="local", flip_root=str(tmp_path / "b"), docker="/bin/sh -c 'sleep 30'"),
            code="C1X", kit_file=".env.C1X.production", backend="nvflare", ec2=False,
            hub_endpoint="127.0.0.1:1", fl_endpoint="127.0.0.1:1")
        result = hosts.run(K.HOST_PROVISION, [HostTask(target, ProvisionInput(profile={}))])
        timer.join()
        assert time.monotonic() - started < 20
        assert not result["Trust_1"].ok and "cancelled" in result["Trust_1"].message
        assert seen == [signal.SIGINT]  # delivered to our handler once the run stopped
        assert signal.getsignal(signal.SIGINT) is mine
        assert signal.getsignal(signal.SIGTERM) is not None
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_runner_environment_carries_no_aws_credentials(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret-value-xyz")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "aws-session-value-xyz")

    class _Channel:
        env = {"FLIPGITOPS_CHANNEL": "/x", "FLIPGITOPS_CHANNEL_TOKEN": "t"}

    prepared = {**os.environ, "ANSIBLE_STDOUT_CALLBACK": "awx_display"}
    env = hosts_adapter._runner_env(prepared, tmp_path, tmp_path, _Channel())  # type: ignore[arg-type]
    assert not [k for k in env if k.startswith("AWS_")]
    assert env["ANSIBLE_STDOUT_CALLBACK"] == "awx_display"
    assert env["ANSIBLE_PIPELINING"] == "True"


def test_referenced_credentials_are_resolved_and_the_rest_minted_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    value = secrets.token_urlsafe(24)
    monkeypatch.setenv("TRUST_1_OMOP", value)
    world = bare_world(tmp_path)
    trust = world.manifest.trusts[0].model_copy(
        update={"credentials": {"OMOP_POSTGRES_PASSWORD": "env:TRUST_1_OMOP"}})
    world.manifest = world.manifest.model_copy(update={"trusts": [trust]})
    outcome = run_action(world, act(K.HOST_WRITE_KIT_FILE, "Trust_1",
                                    WriteKitFileParams(credentials_generation=1)))
    assert outcome.ok, outcome.message
    text = (world.flip_root() / "trust" / ".env.C1X.production").read_text()
    assert f"OMOP_POSTGRES_PASSWORD={value}\n" in text
    minted = world.escrow.local["Trust_1"].values
    assert "OMOP_POSTGRES_PASSWORD" not in minted and len(minted) == 9
    for key, secret in minted.items():
        assert f"{key}={secret.get_secret_value()}\n" in text
