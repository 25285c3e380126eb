"""flipgitops as a package: the wheel, installed without the sandbox extra, drives a host.

`uv build` makes the wheel; a fresh venv gets it the way a production install would (no
`[sandbox]`), so moto and its Flask stack must be absent there. That install's own
`flipgitops` then answers `--help`, validates a manifest, says how to get the demo, and
applies a real onboarding (a hub action and every host action, through its own
ansible-playbook and the playbooks carried as package data) against a sandbox this test
process runs: the sandbox is the world, the installed wheel is the operator's tool.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from flipgitops.sandbox.environment import TrustSpec, sandbox
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[2]
TRUST = TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London")


def _uv() -> str:
    found = shutil.which("uv")
    if found is None:
        pytest.skip("uv is not on PATH")
    return found


def _run(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
         timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv holding only the wheel and its runtime dependencies; its bin directory."""
    uv = _uv()
    root = tmp_path_factory.mktemp("wheel")
    built = _run([uv, "build", "--wheel", "--out-dir", str(root / "dist"), str(REPO_ROOT)])
    assert built.returncode == 0, built.stderr[-3000:]
    wheels = sorted((root / "dist").glob("flipgitops-*.whl"))
    assert len(wheels) == 1, wheels
    venv = root / "venv"
    made = _run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)])
    assert made.returncode == 0, made.stderr[-2000:]
    python = venv / "bin" / "python"
    got = _run([uv, "pip", "install", "--quiet", "--python", str(python), str(wheels[0])])
    assert got.returncode == 0, got.stderr[-3000:]
    return venv / "bin"


def _clean_env(bindir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AWS_", "FLIPGITOPS_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = str(bindir) + os.pathsep + env.get("PATH", "")
    env["NO_COLOR"] = "1"
    return env


def test_the_wheel_installs_without_the_sandbox(installed: Path, tmp_path: Path) -> None:
    env = _clean_env(installed)
    for module in ("moto", "flask"):
        probe = _run([str(installed / "python"), "-c", f"import {module}"], env=env)
        assert probe.returncode != 0, f"{module} is installed without the sandbox extra"
    where = _run([str(installed / "python"), "-c",
                  "import flipgitops, importlib.resources as r; print(flipgitops.__file__); "
                  "print(r.files('flipgitops.reconcilers.ansible') / 'playbooks')"],
                 env=env, cwd=tmp_path)
    assert where.returncode == 0, where.stderr
    assert all(line.startswith(str(installed.parent)) for line in where.stdout.split()), where
    helped = _run([str(installed / "flipgitops"), "--help"], env=env, cwd=tmp_path)
    assert helped.returncode == 0 and "plan" in helped.stdout, helped.stderr
    manifest = tmp_path / "environments" / "prod.yaml"
    manifest.parent.mkdir()
    shutil.copy(REPO_ROOT / "environments" / "prod.yaml", manifest)
    valid = _run([str(installed / "flipgitops"), "validate"], env=env, cwd=tmp_path)
    assert valid.returncode == 0, valid.stdout + valid.stderr
    assert "1 file(s) valid" in valid.stdout
    demo = _run([str(installed / "flipgitops"), "demo"], env=env, cwd=tmp_path)
    assert demo.returncode == 1, demo.stdout + demo.stderr
    assert "flipgitops[sandbox]" in demo.stderr and "Traceback" not in demo.stderr


def test_the_installed_wheel_onboards_a_host(installed: Path, tmp_path: Path,
                                             moto: MotoServer) -> None:
    with sandbox(tmp_path / "box", trusts=[TRUST], moto=moto) as box:
        env = box.environ()
        env["PATH"] = str(installed) + os.pathsep + env.get("PATH", "")
        env = {k: v for k, v in env.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
        applied = _run([str(installed / "flipgitops"), "apply", "--env", box.env_name,
                        "--yes"], cwd=box.repo, env=env, timeout=900)
        assert applied.returncode == 0, applied.stdout[-4000:] + applied.stderr[-3000:]
        assert "host.start_stack:Trust_1" in applied.stdout
        assert "host.verify:Trust_1 ... ok" in applied.stdout
        again = _run([str(installed / "flipgitops"), "plan", "--env", box.env_name],
                     cwd=box.repo, env=env)
        assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-2000:]
