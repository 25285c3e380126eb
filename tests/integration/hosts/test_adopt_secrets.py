"""The host -> controller direction of secrets (adopt's read_kit_secrets), with real
ansible-runner runs on a local host.

The values a host step reads for the controller travel only over the run's in-memory
channel: they are in no Ansible event (seen by an observer while the run is in flight), in
no file of the run's private directory (searched at the run's last event, while it still
exists), in no process's argv (every /proc/<pid>/cmdline searched while the run is in
flight), and nowhere under /tmp after it. The step changes nothing on the host.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flipgitops.adapters.hosts import AnsibleHosts
from flipgitops.engine.ports_hosts import HostTarget
from flipgitops.model.flip import HUB_SHARED_SENTINEL
from flipgitops.model.manifest import Host
from tests.leaksearch import grep_tree

KEYS = ("TRUST_API_KEY", "TRUST_INTERNAL_SERVICE_KEY", "ORTHANC_PASSWORD", "XNAT_ADMIN_PASSWORD")


def _target(root: Path, trust: str = "Trust_1") -> HostTarget:
    return HostTarget(trust=trust, host=Host(connection="local", flip_root=str(root),
                                             docker="/bin/true"),
                      code="GSTT", kit_file=".env.GSTT.stag", backend="nvflare", ec2=False,
                      hub_endpoint="127.0.0.1:1", fl_endpoint="127.0.0.1:1")


def _kit(root: Path, values: dict[str, str]) -> Path:
    path = root / "trust" / ".env.GSTT.stag"
    path.parent.mkdir(parents=True)
    lines = ["# ── Trust identity ──", "TRUST_NAME=Trust_1", "TRUST_CODE=GSTT",
             "ORTHANC_USERNAME=admin", f"ORTHANC_PASSWORD={values['ORTHANC_PASSWORD']}",
             "XNAT_ADMIN_PASSWORD=<run-make-generate-xnat-credentials>", HUB_SHARED_SENTINEL,
             f"AES_KEY_BASE64={values['AES_KEY_BASE64']}",
             f"TRUST_API_KEY={values['TRUST_API_KEY']}",
             f"TRUST_INTERNAL_SERVICE_KEY={values['TRUST_INTERNAL_SERVICE_KEY']}",
             "FL_KIT_SLOT=Trust_1"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    return path


@pytest.fixture
def runs() -> Iterator[Path]:
    """A short private run root: the channel's UNIX socket path must fit in 108 bytes."""
    path = Path(tempfile.mkdtemp(prefix="fga-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_secrets_read_from_a_host_travel_over_the_channel_only(tmp_path: Path,
                                                               runs: Path) -> None:
    values = {k: secrets.token_urlsafe(32) for k in (
        "TRUST_API_KEY", "TRUST_INTERNAL_SERVICE_KEY", "ORTHANC_PASSWORD", "AES_KEY_BASE64")}
    needles = list(values.values())
    root = tmp_path / "host" / "flip"
    kit = _kit(root, values)
    before = hashlib.sha256(kit.read_bytes()).hexdigest(), kit.stat().st_mtime_ns
    events: list[dict[str, Any]] = []
    leaks: dict[str, list[str]] = {"files": [], "argv": []}

    def observe(event: dict[str, Any]) -> None:
        events.append(event)
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                except OSError:
                    continue
                leaks["argv"] += [proc.name for n in needles if n.encode() in cmdline]
        if event.get("event") == "playbook_on_stats":  # the run's files all still exist
            leaks["files"] += grep_tree(runs, needles)

    hosts = AnsibleHosts(endpoints={}, tmp_root=str(runs), observer=observe)
    got = hosts.read_kit_secrets([_target(root), _target(tmp_path / "none", "Trust_2")], KEYS)

    one = got["Trust_1"]
    assert one.ok, one.message
    assert {k: v.get_secret_value() for k, v in one.values.items()} == {
        "TRUST_API_KEY": values["TRUST_API_KEY"],
        "TRUST_INTERNAL_SERVICE_KEY": values["TRUST_INTERNAL_SERVICE_KEY"],
        "ORTHANC_PASSWORD": values["ORTHANC_PASSWORD"]}  # AES not asked; a placeholder left out
    assert "XNAT_ADMIN_PASSWORD" in one.message  # named as absent, never a value
    missing = got["Trust_2"]
    assert not missing.ok and missing.values == {}
    assert "does not exist" in missing.message

    assert any(e.get("event") == "runner_on_ok" for e in events)  # the observer saw the run
    dumped = json.dumps(events, default=str)
    assert not [n for n in needles if n in dumped], "a secret reached an Ansible event"
    assert leaks == {"files": [], "argv": []}
    assert grep_tree(tmp_path, needles, skip={kit}) == []
    assert grep_tree(runs, needles) == []
    left = [n for n in os.listdir("/tmp") if n.startswith(f"flipgitops-ansible-{os.getpid()}-")]
    assert left == []  # no private run dir of this process outlives its run
    for text in (repr(one), str(one), one.message, missing.message):
        assert not [n for n in needles if n in text]
    assert (hashlib.sha256(kit.read_bytes()).hexdigest(), kit.stat().st_mtime_ns) == before
