"""One host's "docker daemon" state, kept in its daemon dir (0700 dirs, 0600 files).

Layout:
    daemon.json                    swarm state, networks, GPUs the host has (none by default)
    projects/<project>.json        the project's containers, one record per service
    containers/<id>/json.log       the container's log, one docker json-file line per record
    containers/<id>/exit_code      written by a container process as it exits
    lock                           flock(2) taken by every command, so hosts run serially

Nothing here ever holds a plaintext environment value: a record keeps each variable's name
and the sha256 of its value.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flipgitops.sandbox.flip import processes

LOG_FILE = "json.log"
EXIT_FILE = "exit_code"


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def value_digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def new_id() -> str:
    import secrets  # here, like shutil and tempfile: read-only commands need none of them

    return secrets.token_hex(32)


def swarm_id() -> str:
    """A swarm object's id (a node's, an overlay network's): 25 lowercase hex digits."""
    return new_id()[:25]


def private_dir(path: Path) -> Path:
    """mkdir -p with every directory this creates at 0700."""
    missing = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        os.chmod(directory, 0o700)
    return path


def write_private(path: Path, text: str) -> None:
    """Atomic write at 0600 (mkstemp creates 0600; replace keeps readers consistent)."""
    import tempfile

    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class Daemon:
    """The state behind one host's container CLI."""

    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    # -- files ---------------------------------------------------------------------------

    def ensure(self) -> None:
        private_dir(self.root)
        private_dir(self.root / "projects")
        private_dir(self.root / "containers")

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        self.ensure()
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self, path: Path, default: dict[str, Any]) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return default
        return data

    def state(self) -> dict[str, Any]:
        data = self._read(self.root / "daemon.json", {})
        data.setdefault("swarm", {"state": "inactive"})
        data.setdefault("networks", {})
        data.setdefault("gpus", 0)
        return data

    def save_state(self, data: dict[str, Any]) -> None:
        write_private(self.root / "daemon.json", json.dumps(data, indent=2, sort_keys=True))

    def project_names(self) -> list[str]:
        folder = self.root / "projects"
        return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []

    def project(self, name: str) -> dict[str, Any]:
        return self._read(self.root / "projects" / f"{name}.json",
                          {"name": name, "containers": {}})

    def save_project(self, name: str, data: dict[str, Any]) -> None:
        if not data.get("containers"):
            with contextlib.suppress(FileNotFoundError):
                (self.root / "projects" / f"{name}.json").unlink()
            return
        write_private(self.root / "projects" / f"{name}.json",
                      json.dumps(data, indent=2, sort_keys=True))

    def container_dir(self, container_id: str) -> Path:
        return self.root / "containers" / container_id

    def make_container_dir(self, container_id: str) -> Path:
        return private_dir(self.container_dir(container_id))

    def remove_container_dir(self, container_id: str) -> None:
        import shutil

        shutil.rmtree(self.container_dir(container_id), ignore_errors=True)

    # -- containers ----------------------------------------------------------------------

    def all_containers(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(project, service, record) for every container this daemon holds."""
        for project in self.project_names():
            for service, record in sorted(self.project(project)["containers"].items()):
                yield project, service, record

    def observe(self, record: dict[str, Any]) -> dict[str, Any]:
        """The record with its live state: a container whose process died shows `exited`."""
        view = dict(record)
        proc = record.get("process")
        if record.get("state") == "running" and proc and not processes.alive(
            proc["pid"], proc["start"]
        ):
            view["state"] = "exited"
            view["exit_code"] = self.exit_code(record["id"])
            view["finished"] = self._finished(record["id"]) or record.get("started")
        return view

    def exit_code(self, container_id: str) -> int:
        """What the process wrote as it exited; 137 (SIGKILL) when it could not write."""
        try:
            return int((self.container_dir(container_id) / EXIT_FILE).read_text().strip())
        except (FileNotFoundError, ValueError):
            return 137

    def _finished(self, container_id: str) -> str | None:
        path = self.container_dir(container_id) / EXIT_FILE
        try:
            return datetime.fromtimestamp(path.stat().st_mtime, UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.%fZ")
        except FileNotFoundError:
            return None

    def stop_process(self, record: dict[str, Any]) -> None:
        """Stop the container's process (if any) and mark it exited, like `docker stop`."""
        proc = record.get("process")
        if proc:
            processes.terminate(proc["pid"], proc["start"])
        if record.get("state") == "running":
            record["exit_code"] = self.exit_code(record["id"]) if proc else 0
            record["state"] = "exited"
            record["finished"] = self._finished(record["id"]) if proc else now_iso()
            record["finished"] = record["finished"] or now_iso()
        record["process"] = None

    def host_gpus(self) -> int:
        return int(self.state().get("gpus", 0))


def set_host_gpus(daemon_dir: Path, count: int) -> None:
    """Give the host `count` GPUs (the stand-in host has none unless told)."""
    daemon = Daemon(daemon_dir)
    with daemon.lock():
        state = daemon.state()
        state["gpus"] = count
        daemon.save_state(state)


def recorded_environment(daemon_dir: Path, project: str, service: str) -> dict[str, str]:
    """What a container was started with: variable name -> sha256 of its value."""
    record = Daemon(daemon_dir).project(project)["containers"].get(service)
    if record is None:
        raise KeyError(f"no container for service {service!r} in project {project!r}")
    return dict(record["environment"])
