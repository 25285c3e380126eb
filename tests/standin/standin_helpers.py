"""Helpers for the trust-side stand-in tests: a host running the stand-in CLI, kits, waiting."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flipgitops.sandbox.flip import processes, trust_api
from flipgitops.sandbox.flip.checkout import FlipCheckout, fake_kit_values, render_kit, write_kit
from flipgitops.sandbox.flip.container_cli import main

HUB_ORIGIN = "https://hub.flip.example"
TRUST_ID = "6f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"
SERVICES = {"omop-db", "orthanc", "imaging-api", "data-access-api", "trust-api", "loki",
            "alloy", "grafana", "fl-client-net-1"}


@dataclass
class Result:
    rc: int
    out: str
    err: str


def trust_env(slot: int = 1, name: str = "Trust_1") -> dict[str, str]:
    """The shell environment trust/Makefile@0046dc28 gives compose (TRUST_VARS, fl_backend.mk)."""
    return {
        "TRUST_NETWORK_NAME": f"deploy_trust-network-{slot}", "TRUST_NUMBER": str(slot),
        "TRUST_NAME": name, "DEBUG": "", "DOCKER_GID": "1000",
        "DOCKER_FL_API_NAME": "flare-fl-api", "DOCKER_FL_SERVER_NAME": "flare-fl-server",
        "DOCKER_FL_CLIENT_NAME": "flare-fl-client",
        "FL_PROVISIONED_DIR": "fl-services/nvflare/provision/workspace-dev",
        "FL_JOBS_DIR": "jobs", "DOCKER_FL_REGISTRY": "ghcr.io/londonaicentre/",
    }


@dataclass
class Kit:
    path: Path
    values: dict[str, str]

    def secrets(self) -> list[str]:
        keys = ("TRUST_API_KEY", "TRUST_INTERNAL_SERVICE_KEY", "AES_KEY_BASE64",
                "OMOP_POSTGRES_PASSWORD", "DATA_ACCESS_POSTGRES_PASSWORD", "ORTHANC_PASSWORD",
                "XNAT_SERVICE_PASSWORD", "GRAFANA_ADMIN_PASSWORD")
        return [self.values[k] for k in keys]

    def rewrite(self, **changes: str) -> None:
        self.values.update(changes)
        write_kit(self.path, render_kit(self.values))


class Host:
    """One sandbox trust host: its daemon dir, and the stand-in CLI run in-process."""

    def __init__(self, root: Path, world: Path | None) -> None:
        self.root = root
        self.daemon_dir = (root / "docker").resolve()
        self.world = world

    def docker(self, *args: str, env: dict[str, str] | None = None) -> Result:
        argv = ["--daemon-dir", str(self.daemon_dir)]
        if self.world is not None:
            argv += ["--world", str(self.world)]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            rc = main([*argv, *args], environ=env if env is not None else trust_env())
        return Result(rc, out.getvalue(), err.getvalue())

    def ready_network(self, name: str = "deploy_trust-network-1") -> None:
        assert self.docker("swarm", "init", "--advertise-addr", "127.0.0.1").rc == 0
        assert self.docker("network", "create", "--driver", "overlay", "--attachable",
                           name).rc == 0

    def compose(self, kit: Kit, files: list[Path], *args: str, project: str = "trust1",
                env: dict[str, str] | None = None, project_dir: Path | None = None) -> Result:
        argv = ["compose", "--env-file", str(kit.path),
                "--project-directory", str(project_dir or files[0].parent.parent)]
        for file in files:
            argv += ["-f", str(file)]
        return self.docker(*argv, "-p", project, *args, env=env)

    def ps(self, project: str = "trust1", all_: bool = True) -> dict[str, dict[str, Any]]:
        args = ["compose", "-p", project, "ps", "--format", "json"] + (["-a"] if all_ else [])
        result = self.docker(*args)
        assert result.rc == 0, result.err
        rows = [json.loads(line) for line in result.out.splitlines() if line.strip()]
        return {row["Service"]: row for row in rows}

    def logs(self, service: str = "trust-api", project: str = "trust1") -> str:
        result = self.docker("compose", "-p", project, "logs", "--no-color", service)
        assert result.rc == 0, result.err
        return result.out

    def pids(self) -> list[int]:
        return processes.find(trust_api.MODULE, "--daemon-dir", str(self.daemon_dir))


def wait_for(predicate: Callable[[], bool], timeout: float = 8.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def live_pids_under(path: Path) -> list[int]:
    """Every live (non-zombie) process whose argv names `path`: what a sandbox leaves behind."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and processes.start_time(int(entry.name)) is not None:
            argv = processes.cmdline(int(entry.name))
            if any(str(path) in part for part in argv):
                found.append(int(entry.name))
    return found


def minted_values(fl_kit_dir: Path, checkout: FlipCheckout, data: Path) -> dict[str, str]:
    return fake_kit_values(
        TRUST_API_KEY=secrets.token_urlsafe(32),
        TRUST_INTERNAL_SERVICE_KEY=secrets.token_urlsafe(32),
        AES_KEY_BASE64=base64.b64encode(secrets.token_bytes(32)).decode(),
        OMOP_POSTGRES_PASSWORD=secrets.token_urlsafe(16),
        DATA_ACCESS_POSTGRES_PASSWORD=secrets.token_urlsafe(16),
        ORTHANC_PASSWORD=secrets.token_urlsafe(16),
        XNAT_SERVICE_PASSWORD=secrets.token_urlsafe(16),
        GRAFANA_ADMIN_PASSWORD=secrets.token_urlsafe(16),
        CENTRAL_HUB_API_URL=f"{HUB_ORIGIN}/api",
        POLL_INTERVAL_SECONDS="1",
        FL_KIT_DIR=str(fl_kit_dir),
        BASE_IMAGES_DOWNLOAD_DIR=str(data / "images"),
        ORTHANC_STORAGE_DIR=str(data / "orthanc"),
        OBSERVABILITY_CONFIG_DIR=str(checkout.trust_dir / "observability"),
    )
