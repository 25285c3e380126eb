"""The SSH trust hosts (tests/sshhosts.py) are what they claim, and the hosts adapter drives
them with become: sudo that asks for a password, strict host keys, nothing left running.

The host in each test is sshd in a network namespace; the login user is not root and sudo
asks it for a password (docs/architecture.md §8). Facts are gathered through the real adapter
(`AnsibleHosts`, real ansible-runner runs over real ssh)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from flipgitops.adapters.hosts import AnsibleHosts
from flipgitops.engine.ports_hosts import HostTarget
from flipgitops.model.manifest import Manifest
from tests.sshhosts import SshHost, SshHosts, argv_of_all, secrets_in
from tests.unit.hosts.hostworld import DOMAIN, FL_HOST, make_manifest, trust_entry

STANDIN_DOCKER = str(Path(sys.executable).parent / "flip-standin-docker")


def ssh(hosts: SshHosts, host: SshHost, command: str, stdin: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    """The plain OpenSSH client, key from a memfd of this process (never a file; ssh closes
    inherited descriptors before it reads keys, so it opens ours through /proc)."""
    fd = os.memfd_create("test-key")
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, host.private_key.encode())
        return subprocess.run(
            ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
             "-o", f"UserKnownHostsFile={hosts.known_hosts}", "-i", f"/proc/{os.getpid()}/fd/{fd}",
             f"{host.user}@{host.address}", command],
            input=stdin, capture_output=True, text=True, timeout=60)
    finally:
        os.close(fd)


def manifest_for(hosts: SshHosts, base: Path) -> Manifest:
    host = hosts.hosts[0]
    docker = f"{STANDIN_DOCKER} --daemon-dir {hosts.hosts_root / 'Trust_1' / 'docker'}"
    return make_manifest([trust_entry(
        "Trust_1", "GSTT", connection="ssh", docker=docker,
        flip_root=str(hosts.hosts_root / "Trust_1" / "flip"), host=host.manifest_host())],
        checkout=str(base))


def endpoints(host: SshHost) -> dict[str, object]:
    """Every probe the facts module makes goes to a closed port on the veth: nothing leaves
    the machine."""
    closed = f"{host.gateway}:9"
    return {"resolve": {f"{DOMAIN}:443": closed, f"{FL_HOST}:8002": closed},
            "egress_probe": f"http://{closed}/egress/{{trust}}"}


def test_the_hosts_are_what_they_claim(ssh_hosts: Callable[[int], SshHosts]) -> None:
    hosts = ssh_hosts(1)
    host = hosts.hosts[0]
    who = ssh(hosts, host, "id -un; id -u")
    assert who.returncode == 0, who.stderr
    assert who.stdout.split() == [host.user, who.stdout.split()[1]] and \
        who.stdout.split()[1] != "0", "the login user must not be root"
    no_password = ssh(hosts, host, "sudo -n true")
    assert no_password.returncode != 0 and "password" in no_password.stderr, \
        "sudo must ask for a password"
    wrong = ssh(hosts, host, "sudo -S -p '' true", stdin="not-the-password\n")
    assert wrong.returncode != 0
    right = ssh(hosts, host, "sudo -S -p '' id -u", stdin=host.sudo_password + "\n")
    assert right.returncode == 0 and right.stdout.strip() == "0", right.stderr
    inside = subprocess.run(["ip", "netns", "exec", host.netns, "ip", "-o", "-4", "addr"],
                            capture_output=True, text=True, check=True).stdout
    assert f"{host.address}/30" in inside
    assert host.sshd is not None and host.sshd.pid in host.pids(), "sshd runs in the namespace"

    hosts.close()
    assert hosts.leftovers() == []
    assert host.sshd.poll() is not None


@pytest.mark.slow
def test_facts_over_ssh_with_become(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    ssh_hosts: Callable[[int], SshHosts]) -> None:
    hosts = ssh_hosts(1)
    host = hosts.hosts[0]
    for key, value in hosts.env.items():
        monkeypatch.setenv(key, value)
    manifest = manifest_for(hosts, tmp_path)
    target = HostTarget.of(manifest, manifest.trusts[0])
    adapter = AnsibleHosts(endpoints=endpoints(host))

    # become works with the referenced password: the facts module ran as root over ssh
    facts = adapter.gather([target])["Trust_1"]
    assert facts.reachable, facts.reason
    assert facts.docker_present and facts.compose_present, "the container CLI ran on the host"
    assert facts.reaches_hub is False, "the probe went to the closed port it was given"
    assert adapter.module_invocations == {"Trust_1": 1}

    # the run leaves no ssh master behind, and no session open on the host
    masters = [a for a in argv_of_all().values()
               if b"[mux]" in a and f"flipgitops-ansible-{os.getpid()}-".encode() in a]
    assert not masters, "an ssh ControlPersist master outlived the run"
    assert host.sshd is not None
    assert host.pids() == [host.sshd.pid], "a login session is still open on the host"

    # a wrong sudo password is named as such, and never shown
    wrong = "wrong-" + host.sudo_password[::-1]
    monkeypatch.setenv(host.sudo_env, wrong)
    facts = AnsibleHosts(endpoints=endpoints(host)).gather([target])["Trust_1"]
    assert not facts.reachable
    assert facts.reason is not None and "Incorrect sudo password" in facts.reason, facts.reason
    assert not secrets_in(facts.reason.encode(), [wrong, host.sudo_password])

    # no password where sudo asks for one: the reference and the variable are named
    monkeypatch.delenv(host.sudo_env)
    facts = AnsibleHosts(endpoints=endpoints(host)).gather([target])["Trust_1"]
    assert not facts.reachable and facts.reason is not None
    assert "host.become_password" in facts.reason and host.sudo_env in facts.reason

    # a host presenting another key than the one known is refused, not trusted anew
    monkeypatch.setenv(host.sudo_env, host.sudo_password)
    other = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(tmp_path / "other")], capture_output=True, check=True)
    assert other.returncode == 0
    other_key = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    hosts.known_hosts.write_text(f"{host.address} {other_key}\n")
    facts = AnsibleHosts(endpoints=endpoints(host)).gather([target])["Trust_1"]
    assert not facts.reachable and facts.reason is not None
    assert "host key" in facts.reason.lower(), facts.reason
