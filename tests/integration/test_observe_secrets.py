"""No secret value leaves `observe`: not on stdout, stderr, nor in any file it leaves behind.

A hub is seeded with real-looking keys in moto and local trust hosts get matching env files;
then the real CLI runs in a subprocess (`python -m flipgitops observe`) against both.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from awsworld import make_manifest
from hostfixtures import make_local_host, write_trust_env

from flipgitops.adapters.aws_session import Clients
from flipgitops.engine.observe import observe
from flipgitops.model.manifest import Manifest
from flipgitops.sandbox.moto_server import MotoServer
from flipgitops.sandbox.seed import SeedResult, seed_hub


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class World:
    def __init__(self, manifest: Manifest, path: Path, seed: SeedResult, env_files: list[Path]):
        self.manifest, self.path, self.seed, self.env_files = manifest, path, seed, env_files

    @property
    def secrets(self) -> list[str]:
        s = self.seed
        return [*s.trust_keys.values(), s.aes_key, s.internal_service_key]


@pytest.fixture
def world(moto: MotoServer, clients: Clients, tmp_path: Path) -> World:
    trusts = [
        {"name": f"Trust_{i}", "kind": "on-prem", "public_ip": f"203.0.113.{10 + i}",
         "fl_kit_slot": f"Trust_{i}",
         "host": make_local_host(tmp_path, f"Trust_{i}").model_dump(mode="json")}
        for i in (1, 2)
    ]
    m = make_manifest(trusts=trusts)
    seed = seed_hub(m, clients)
    env_files = []
    for t in m.trusts:
        assert t.host is not None
        keys = {"trust_api_key": seed.trust_keys[t.name], "aes_key_base64": seed.aes_key}
        env_files.append(write_trust_env(t.host, t.name, keys))
    path = tmp_path / "dev.yaml"
    path.write_text(
        "# yaml-language-server: $schema=../schemas/flip-environment.schema.json\n"
        + json.dumps(m.model_dump(mode="json"), indent=2) + "\n",
        encoding="utf-8",
    )
    return World(m, path, seed, env_files)


def assert_no_secret(text: str, world: World, where: str) -> None:
    for value in world.secrets:
        assert value not in text, f"a secret value appeared in {where}"


def files_left(root: Path, world: World) -> list[Path]:
    """Every file under tmp except the trust env files, which hold the keys by design."""
    return [p for p in root.rglob("*") if p.is_file() and p not in world.env_files]


def test_engine_observation_holds_only_hashes(world: World, clients: Clients) -> None:
    state = observe(world.manifest, manifest_path=world.path, hosts=True, clients=clients)
    assert_no_secret(state.model_dump_json(), world, "the observed state")
    assert_no_secret(repr(state), world, "repr(observed state)")
    for name, key in world.seed.trust_keys.items():
        host = state.hosts[name]
        assert host.reachable, host.reason
        assert host.trust_api_key_sha256 == sha(key) == state.hub.secret.trust_api_key_hashes[name]
        assert host.aes_key_sha256 == state.hub.secret.aes_key_sha256
        assert host.env_file_mode == "0600"


def run_cli(world: World, *args: str, verbose: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    assert env.get("AWS_ENDPOINT_URL", "").startswith("http://127.0.0.1")
    return subprocess.run(
        [sys.executable, "-m", "flipgitops", *(["-vv"] if verbose else []), "observe",
         "--env", str(world.path), *args],
        cwd=world.path.parent, env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("fmt", ["json", "text", "markdown"])
def test_cli_observe_without_hosts_prints_no_secret(world: World, fmt: str) -> None:
    result = run_cli(world, "--format", fmt, "--no-hosts")
    assert result.returncode == 0, result.stderr
    assert_no_secret(result.stdout, world, "stdout")
    assert_no_secret(result.stderr, world, "stderr")
    assert "botocore" not in result.stderr  # SDK logging stays quiet unless -v
    assert "Trust_1" in result.stdout
    if fmt == "json":
        assert json.loads(result.stdout)
    for path in files_left(world.path.parent, world):
        assert_no_secret(path.read_text(errors="replace"), world, str(path))


@pytest.mark.slow
def test_cli_observe_with_hosts_prints_and_leaves_no_secret(world: World) -> None:
    """The host facts playbook reads the env files holding the keys: its artifacts and
    output must not carry them either."""
    before = set(files_left(world.path.parent, world))
    outputs = {}
    for fmt in ("json", "text"):
        result = run_cli(world, "--format", fmt, verbose=True)
        assert result.returncode == 0, result.stderr
        assert_no_secret(result.stdout, world, f"stdout ({fmt})")
        assert_no_secret(result.stderr, world, f"stderr ({fmt})")
        outputs[fmt] = result.stdout
    hosts = json.dumps(json.loads(outputs["json"]))
    assert "Trust_1" in hosts and "Trust_2" in hosts
    after = files_left(world.path.parent, world)
    for path in after:
        assert_no_secret(path.read_text(errors="replace"), world, str(path))
    assert set(after) >= before
