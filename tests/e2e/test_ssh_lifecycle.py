"""A trust's whole life over real SSH with become (docs/architecture.md §8, issue 15): the real CLI
onboards two trusts on hosts that are sshd in network namespaces, upgrades them in lockstep
(hub_tag, fl_tag and flip.ref v2.3.0 -> v2.4.0, `--fl-quiesced`) and decommissions one,
and after every step a fresh `plan` finds nothing to do.

The login users are not root and sudo asks them for a password, so every host step works
only if the sudo password reaches sudo; it and the SSH private keys are given as `env:`
references, as an operator's CI would. No secret may appear in any output, in the argv of
any process while applying, in the Ansible private dirs while they exist, in any file on the
hosts except the kit file, or in any file under /tmp once everything is torn down.

One test walks the whole life on purpose: each step starts from the converged result of the
previous one, and each step is an apply of minutes of SSH round trips on two cores.
"""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from flipgitops.model.kit import SECRET_KIT_KEYS
from flipgitops.sandbox.environment import Run, Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.flip.daemon import LOG_FILE, Daemon
from flipgitops.sandbox.flip.processes import alive
from flipgitops.sandbox.moto_server import MotoServer
from tests.sshhosts import (
    Sampler,
    SshHost,
    SshHosts,
    argv_of_all,
    scan_tree,
    secrets_in,
)

pytestmark = [pytest.mark.slow, pytest.mark.long]  # the long lane: `pytest -m long`

TRUSTS = (TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London"),
          TrustSpec("Trust_2", "KCH", "203.0.113.12", kind="aws"))
NAMES = [t.name for t in TRUSTS]
AUTHENTICATED = "Authenticated to hub as trust '{name}'"


# --- what a host holds -------------------------------------------------------------------------


def tracked_trust_tree(checkout: Path, ref: str) -> dict[str, tuple[str, bytes]]:
    """FLIP's `trust/` at ref, from git itself: relative path -> (git mode, content)."""
    listing = subprocess.run(["git", "-C", str(checkout), "ls-tree", "-r", "-z", ref, "trust/"],
                             capture_output=True, check=True).stdout
    out: dict[str, tuple[str, bytes]] = {}
    for entry in filter(None, listing.split(b"\0")):
        meta, path = entry.split(b"\t", 1)
        mode = meta.split()[0].decode()
        blob = subprocess.run(["git", "-C", str(checkout), "cat-file", "blob",
                               meta.split()[2].decode()], capture_output=True, check=True)
        out[path.decode().removeprefix("trust/")] = (mode, blob.stdout)
    return out


def kit_file(box: Sandbox, trust: TrustSpec) -> Path:
    found = sorted((box.flip_root(trust.name) / "trust").glob(f".env.{trust.code}.*"))
    assert len(found) == 1, f"{trust.name}: kit files on the host: {found}"
    return found[0]


def assert_trust_dir_at(box: Sandbox, trust: TrustSpec, ref: str) -> None:
    """`<flip_root>/trust` holds exactly FLIP's tracked trust/ at ref (and the kit file)."""
    want = tracked_trust_tree(box.checkout.root, ref)
    trust_dir = box.flip_root(trust.name) / "trust"
    kit = kit_file(box, trust)
    have = {str(p.relative_to(trust_dir)) for p in trust_dir.rglob("*")
            if (p.is_file() or p.is_symlink()) and p != kit}
    assert have == set(want), (f"{trust.name}: trust/ differs from {ref}: extra "
                               f"{sorted(have - set(want))}, missing {sorted(set(want) - have)}")
    for rel, (mode, data) in want.items():
        path = trust_dir / rel
        if mode == "120000":
            assert os.readlink(path).encode() == data, f"{trust.name}: link {rel}"
            continue
        assert path.read_bytes() == data, f"{trust.name}: {rel} is not FLIP's at {ref}"
        assert bool(path.stat().st_mode & 0o100) == (mode == "100755"), f"{rel}: exec bit"
    assert not (trust_dir / "operator-notes.txt").exists(), "an untracked file was deployed"


def assert_kit_file_as_flip_leaves_it(box: Sandbox, trust: TrustSpec, host: SshHost) -> None:
    """0600, owned by flip_owner:flip_group (FLIP's roles: the login user and its group)."""
    st = kit_file(box, trust).stat()
    user = pwd.getpwnam(host.user)
    assert st.st_mode & 0o777 == 0o600, f"{trust.name}: kit file mode {st.st_mode & 0o777:o}"
    assert (st.st_uid, st.st_gid) == (user.pw_uid, user.pw_gid), (
        f"{trust.name}: kit file owned by {st.st_uid}:{st.st_gid}, not {host.user}")
    trust_dir = box.flip_root(trust.name) / "trust"
    assert trust_dir.stat().st_uid == user.pw_uid, f"{trust.name}: trust/ not the login user's"


def project(box: Sandbox, trust: str) -> tuple[str, dict[str, dict[str, Any]]]:
    """The one project the stand-in container CLI records on a host: (name, containers)."""
    daemon = Daemon(box.daemon_dir(trust))
    names = daemon.project_names()
    if not names:
        return "", {}
    assert len(names) == 1, f"{trust}: projects {names}"
    return names[0], {s: daemon.observe(r)
                      for s, r in daemon.project(names[0])["containers"].items()}


def assert_stack_runs(box: Sandbox, trust: str, host: SshHost, tag: str) -> None:
    slot = box.hub.state.slot_of(_trust_id(box, trust))
    assert slot is not None, f"{trust}: the hub holds no slot for it"
    name, containers = project(box, trust)
    assert name == f"trust{slot.slot_number}", f"{trust}: project {name!r}"
    for service in ("trust-api", "fl-client-net-1"):
        assert service in containers, f"{trust}: no {service} in {sorted(containers)}"
        record = containers[service]
        assert record["state"] == "running", f"{trust}: {service} is {record['state']}"
        assert record["image"].endswith(f":{tag}"), f"{trust}: {service} runs {record['image']}"
    api = containers["trust-api"]
    log = (Daemon(box.daemon_dir(trust)).container_dir(api["id"]) / LOG_FILE).read_text()
    assert AUTHENTICATED.format(name=trust) in log, f"{trust}: trust-api never authenticated"
    # trust-api was started over SSH: it runs inside the host's network namespace.
    pid = api["process"]["pid"]
    assert os.stat(f"/proc/{pid}/ns/net").st_ino == os.stat(f"/run/netns/{host.netns}").st_ino


def assert_stack_stopped(box: Sandbox, trust: str) -> None:
    _name, containers = project(box, trust)
    running = [s for s, r in containers.items() if r["state"] == "running"]
    assert not running, f"{trust}: still running {running}"
    pids = [r["process"]["pid"] for r in containers.values() if r.get("process")
            and alive(r["process"]["pid"], r["process"]["start"])]
    assert not pids, f"{trust}: container processes alive: {pids}"


def _trust_id(box: Sandbox, trust: str) -> str:
    row = box.hub.state.trust(trust)
    assert row is not None, f"{trust} is not registered on the hub"
    return row.id


def allowlist(box: Sandbox) -> set[tuple[str, str]]:
    ec2 = boto3.client("ec2", endpoint_url=box.moto.url, region_name="eu-west-2")
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": ["flip-fl-server-nlb*"]}])["SecurityGroups"]
    return {(r["CidrIp"], r.get("Description", "")) for g in groups
            for p in g["IpPermissions"] for r in p.get("IpRanges", [])}


def release(box: Sandbox, old: str, new: str) -> None:
    """FLIP's CI publishes the new release: every image the registry has at `old`."""
    for repo, tag in sorted(box.hub.registry.tags()):
        if tag == old:
            box.hub.registry.add(repo, new)


def host_secrets(box: Sandbox) -> list[str]:
    """The trust keys and credentials flipgitops delivered (read from the kit files)."""
    values: list[str] = []
    for trust in TRUSTS:
        for line in kit_file(box, trust).read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() in SECRET_KIT_KEYS and len(value.strip()) >= 8:
                values.append(value.strip())
    return values


# --- the test ---------------------------------------------------------------------------------


class Life:
    """The CLI run by an operator's shell, with the checks every step makes."""

    def __init__(self, box: Sandbox, hosts: SshHosts) -> None:
        self.box, self.hosts = box, hosts
        self.runs: list[tuple[str, Run]] = []
        self.samplers: list[Sampler] = []
        self.timings: list[tuple[str, float]] = []

    def cli(self, label: str, *args: str, sample: bool = False) -> Run:
        start = time.monotonic()
        if sample:
            with Sampler() as sampler:
                run = self.box.cli(*args, "--env", "dev", extra_env=self.hosts.env)
            self.samplers.append(sampler)
        else:
            run = self.box.cli(*args, "--env", "dev", extra_env=self.hosts.env)
        self.timings.append((label, time.monotonic() - start))
        print(f"{label}: exit {run.code} in {self.timings[-1][1]:.0f}s", flush=True)
        self.runs.append((label, run))
        self.assert_nothing_of_the_run_left()
        return run

    def apply(self, label: str, *extra: str) -> None:
        run = self.cli(label, "apply", "--yes", *extra, sample=True)
        assert run.code == 0, f"{label}: apply exited {run.code}:\n{run.text[-6000:]}"
        assert "converged" in run.out, run.text[-3000:]

    def plan_is_empty(self, label: str) -> None:
        run = self.cli(f"plan after {label}", "plan")
        assert run.code == 0, f"plan after {label} is not empty:\n{run.text[-6000:]}"

    def save(self, commit: str, **changes: Any) -> None:
        trusts = changes.pop("trusts", TRUSTS)
        self.box.write_manifest(self.box.manifest_doc(trusts, **changes), commit=commit)

    def assert_nothing_of_the_run_left(self) -> None:
        """No ssh master, private dir or login session outlives a CLI command."""
        ours = [p for s in self.samplers for p in s.private_dirs]
        assert not [p for p in ours if os.path.exists(p)], "Ansible private dirs left"
        masters = [a for a in argv_of_all().values()
                   if b"[mux]" in a and any(p.encode() in a for p in ours)]
        assert not masters, f"ssh masters outlived the run: {masters}"
        for host in self.hosts.hosts:
            sessions = [pid for pid in host.pids()
                        if Path(f"/proc/{pid}/comm").read_text().strip() == "sshd"
                        and host.sshd is not None and pid != host.sshd.pid]
            assert not sessions, f"{host.netns}: ssh sessions still open: {sessions}"


def test_onboard_upgrade_decommission_over_ssh_with_become(
        moto: MotoServer, tmp_path: Path, ssh_hosts: Callable[[int], SshHosts]) -> None:
    started = time.monotonic()
    hosts = ssh_hosts(len(TRUSTS))
    by_trust = dict(zip(NAMES, hosts.hosts, strict=True))
    with sandbox(tmp_path / "world", trusts=TRUSTS, moto=moto, hub_bind=hosts.hub_address,
                 hosts_root=hosts.hosts_root,
                 host_fields=hosts.manifest_hosts(NAMES)) as box:
        life = Life(box, hosts)
        assert [t["host"]["connection"] for t in box.manifest_doc(TRUSTS)["trusts"]] == [
            "ssh", "ssh"]

        # 1. onboarding ---------------------------------------------------------------------
        life.apply("onboarding")
        for trust in TRUSTS:
            host = by_trust[trust.name]
            assert_trust_dir_at(box, trust, "v2.3.0")
            assert_kit_file_as_flip_leaves_it(box, trust, host)
            assert_stack_runs(box, trust.name, host, "v2.3.0")
        assert {("register", n) for n in NAMES} <= set(box.hub.state.events)
        assert {(f"{t.public_ip}/32", f"flipgitops:{t.name}") for t in TRUSTS} <= allowlist(box)
        secrets = [*hosts.secrets, *host_secrets(box)]
        life.plan_is_empty("onboarding")

        # 2. lockstep upgrade, FLIP's trust/ at the new release -----------------------------
        release(box, "v2.3.0", "v2.4.0")
        life.save("upgrade to v2.4.0", hub_tag="v2.4.0", fl_tag="v2.4.0", flip_ref="v2.4.0")
        life.apply("upgrade", "--fl-quiesced")
        for trust in TRUSTS:
            host = by_trust[trust.name]
            assert_trust_dir_at(box, trust, "v2.4.0")
            assert_kit_file_as_flip_leaves_it(box, trust, host)
            assert_stack_runs(box, trust.name, host, "v2.4.0")
        assert box.hub.state.loaded is not None and box.hub.state.loaded.image_tag == "v2.4.0"
        life.plan_is_empty("upgrade")

        # 3. decommission Trust_1 -----------------------------------------------------------
        gone = TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London",
                         state="decommissioned")
        life.save("decommission Trust_1", trusts=(gone, TRUSTS[1]), hub_tag="v2.4.0",
                  fl_tag="v2.4.0", flip_ref="v2.4.0")
        life.apply("decommission")
        assert_stack_stopped(box, "Trust_1")
        assert box.hub.state.trust("Trust_1") is None, "Trust_1 is still registered"
        assert ("delete", "Trust_1") in box.hub.state.events
        rules = allowlist(box)
        assert not [r for r in rules if r[0] == "203.0.113.11/32"], f"rule left: {rules}"
        assert_stack_runs(box, "Trust_2", by_trust["Trust_2"], "v2.4.0")
        life.plan_is_empty("decommission")

        # No secret in any output, argv, Ansible private dir, or host file but the kit file.
        for label, run in life.runs:
            assert not secrets_in(run.text.encode(), secrets), f"{label}: a secret in output"
        assert sum(len(s.argv) for s in life.samplers) > 100, "the argv sampler saw nothing"
        assert any(b"sudo" in a for s in life.samplers for a in s.argv), \
            "no sudo was sampled: become did not run over ssh"
        for sampler in life.samplers:
            assert sampler.private_dirs and any(p.endswith("/inventory.yml")
                                                for p in sampler.files), "no run was sampled"
            assert not sampler.leaks(secrets), sampler.leaks(secrets)
        kits = [p for t in TRUSTS
                for p in (box.flip_root(t.name) / "trust").glob(f".env.{t.code}.*")]
        assert not scan_tree(hosts.base, secrets, skip=kits)

    # 4. torn down: no trust-api, sshd, namespace, user or secret left ---------------------
    hosts.close()
    assert hosts.leftovers() == []
    assert not [a for a in argv_of_all().values()
                if b"flipgitops.sandbox.flip.trust_api" in a and str(hosts.base).encode() in a]
    assert not scan_tree(Path(tempfile.gettempdir()), secrets)
    wall = time.monotonic() - started
    print("\nSSH lifecycle wall time: " + ", ".join(
        f"{label} {seconds:.0f}s" for label, seconds in life.timings) + f"; total {wall:.0f}s")
