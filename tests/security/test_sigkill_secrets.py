"""Issue 19: no secret persists after a SIGKILL of an apply, at several points of one real
onboarding (the sandbox: moto, the stand-in FLIP, a local trust host, `python -m flipgitops
apply` as a subprocess).

The apply is killed with SIGKILL (no handler runs: like a CI runner killed for its memory)
while register_trust's ECS task runs, while the Ansible run writing the kit file is in
flight and while the stack starts. After each kill the lock is still held (a SIGKILL
cannot release it) and `flipgitops unlock` with the holder's id clears it; the next apply
removes the dead run's Ansible private dir; the last apply converges. Then every value the
onboarding minted or handled (the trust's API and internal keys, the trust-local
credentials flipgitops minted, the hub's AES and internal service keys, the AWS secret key
of the apply's own environment) is searched for under /tmp and in the manifest repository,
and in every process's argv. Only the places FLIP keeps them on the host are allowed: the
0600 kit file and the container engine's own state (the stand-in's daemon dir, which plays
/var/lib/docker).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from flipgitops.adapters import hosts as hosts_adapter
from flipgitops.sandbox.environment import REGION, Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.moto_server import MotoServer
from tests.leaksearch import grep_tree
from tests.reliability.live import Live, StateBucket

pytestmark = pytest.mark.slow

TRUSTS = (TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London"),)
APPLY = ("apply", "--env", "dev", "--yes")
# (what shows on the apply's output, seconds to wait after it) before the SIGKILL. The host
# steps are one chain (one Ansible run, every kind's line printed as it starts): the second
# kill lands while Ansible starts, the third inside the host's steps (kit file, stack).
KILL_POINTS = (
    (r"waiting for register_trust Trust_1", 0.5),
    (r"host\.provision: 1 host\(s\)", 0.3),
    (r"host\.write_kit_file: 1 host\(s\)", 1.5),
)


@pytest.fixture
def minted() -> float:
    """When this test's world began: every value it mints (the sandbox's hub keys
    included) is younger, so only files changed since can hold one."""
    return time.time()


@pytest.fixture
def box(minted: float, moto: MotoServer, tmp_path: Path) -> Iterator[Sandbox]:
    with sandbox(tmp_path / "world", trusts=TRUSTS, moto=moto) as world:
        yield world


def _secret_values(box: Sandbox) -> dict[str, str]:
    """Every secret of this world after the onboarding, by where it came from."""
    ssm = boto3.client("ssm", region_name=REGION, endpoint_url=box.moto.url)
    sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=box.moto.url)
    found: dict[str, str] = {}
    for name in ("kit", "local"):
        value = ssm.get_parameter(Name=f"/flipgitops/dev/trusts/Trust_1/{name}",
                                  WithDecryption=True)["Parameter"]["Value"]
        data = json.loads(value)
        for key, leaf in data.items():
            if isinstance(leaf, str) and len(leaf) >= 20 and key not in (
                    "trust_id", "trust_name", "fl_kit_slot"):
                found[f"escrow {name}.{key}"] = leaf
    hub = json.loads(sm.get_secret_value(SecretId="FLIP_API")["SecretString"])
    for key in ("aes_key", "internal_service_key"):
        found[f"FLIP_API.{key}"] = hub[key]
    return found


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError:
        return b""


def _unlock(box: Sandbox, state: StateBucket) -> None:
    lock = state.lock()
    assert lock is not None, "a SIGKILLed apply cannot have released its lock"
    held = box.cli(*APPLY)
    assert held.code == 4 and f"--lock-id {lock['lock_id']}" in held.err, held.text
    cleared = box.cli("unlock", "--env", "dev", "--lock-id", str(lock["lock_id"]))
    assert cleared.code == 0, cleared.text
    assert state.lock() is None


def test_sigkill_at_any_point_of_an_apply_leaves_no_secret_behind(box: Sandbox,
                                                                   minted: float) -> None:
    state = StateBucket(box)
    aws_secret = secrets.token_urlsafe(30)
    env = {"AWS_SECRET_ACCESS_KEY": aws_secret}
    dead: list[int] = []
    timings: dict[str, float] = {}
    for pattern, delay in KILL_POINTS:
        t0 = time.monotonic()
        live = Live(box, *APPLY, extra_env=env)
        live.wait_for(pattern, timeout=240)
        time.sleep(delay)
        live.send(signal.SIGKILL)
        assert live.finish(60) == -signal.SIGKILL
        dead.append(live.proc.pid)
        _unlock(box, state)
        timings[pattern.split(" ")[0].replace("\\", "")] = time.monotonic() - t0

    tmp = hosts_adapter._short_tmp()
    t0 = time.monotonic()
    final = box.cli(*APPLY, extra_env=env)
    # "no changes" when the last kill landed after the host chain had done its steps
    assert final.code == 0 and ("converged:" in final.out or "no changes" in final.out), \
        final.text
    timings["converge"] = time.monotonic() - t0
    left = [n for n in os.listdir(tmp) for pid in dead
            if n.startswith(f"{hosts_adapter.PRIVATE_PREFIX}{pid}-")]
    assert left == [], f"the dead runs' private dirs were not removed: {left}"

    print("wall times (s):", {k: round(v, 1) for k, v in timings.items()})
    needles = {**_secret_values(box), "AWS_SECRET_ACCESS_KEY": aws_secret}
    assert len(needles) >= 10, needles.keys()  # 2 kit keys, 9 local, AES, internal, AWS
    kit_file = box.flip_root("Trust_1") / "trust" / ".env.GSTT.development"
    assert stat.S_IMODE(kit_file.stat().st_mode) == 0o600
    held = kit_file.read_text()
    assert all(v in held for k, v in needles.items()
               if k.startswith("escrow") or k == "FLIP_API.aes_key")
    time.sleep(2)  # whatever a killed run left running ends
    allowed = {kit_file}
    daemon = box.daemon_dir("Trust_1")
    hits = [h for h in grep_tree(Path("/tmp"), list(needles.values()), skip=allowed,
                                 changed_since=minted)
            if not Path(h).is_relative_to(daemon)]
    hits += grep_tree(box.repo, list(needles.values()))
    named = {h: [k for k, v in needles.items() if v.encode() in _read(h)] for h in hits}
    assert named == {}, f"secrets left on disk: {named}"
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            assert not [k for k, v in needles.items() if v.encode() in argv], proc.name
