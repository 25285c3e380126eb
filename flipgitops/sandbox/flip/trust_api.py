"""The stand-in trust-api: FLIP's task poller, as a real process that really polls the hub.

The container CLI starts it for the `trust-api` service (`spawn`), with the container's
resolved environment as its whole process environment: the key reaches it the way it
reaches FLIP's container, never through argv or a file. It then does what
trust/trust-api/trust_api/services/task_poller.py@03dc1c54 does, with the same messages:

- every POLL_INTERVAL_SECONDS: `POST {CENTRAL_HUB_API_URL}/trust/heartbeat` (bodyless: the
  stand-in has no health collector), then `GET {CENTRAL_HUB_API_URL}/tasks/pending`, each with
  the header `{TRUST_API_KEY_HEADER: TRUST_API_KEY}`; no redirects are followed (httpx's
  default);
- `Authenticated to hub as trust 'NAME' (ID).` once, after the first response carrying
  `trust_id` and `trust_name`; with EXPECTED_TRUST_ID set and different, FLIP's error line and
  exit status 2;
- `Unexpected status N polling for tasks`, `Heartbeat rejected by hub: HTTP N — <text[:200]>`,
  `Error polling for tasks: …`, `Error sending heartbeat: …`, `Received N pending tasks from
  hub`; hub_status.py@17ae2fae's stale-AES-key warning when the heartbeat reply carries a
  different `aes_key_fingerprint`;
- main.py@2205b98a's `Trust API started with task poller and health collector` before the
  poller's start line and `Trust API shutting down` on SIGTERM.

Lines are written in uvicorn's default form (`INFO:     <message>`: the trust-api logger is
uvicorn's) as docker json-file records in the container's log, which `compose logs` shows.
The `https://<domain>` of CENTRAL_HUB_API_URL is mapped through the world file (world.py).

The process exits by itself as soon as its container directory is gone (the record was
removed, or the whole daemon dir was deleted), so nothing outlives a sandbox.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import contextlib
import functools
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from flipgitops.sandbox.flip import processes
from flipgitops.sandbox.flip.daemon import EXIT_FILE, LOG_FILE, Daemon
from flipgitops.sandbox.flip.world import WorldError, read_world, resolve

MODULE = "flipgitops.sandbox.flip.trust_api"
# Kept so an in-process caller's Popen objects are not collected (and warned about) while the
# detached processes run; they are reaped by processes.alive().
_SPAWNED: list[subprocess.Popen[bytes]] = []


# -- starting and stopping ---------------------------------------------------------------------


def spawn(daemon_dir: Path, container_id: str, env: Mapping[str, str],
          world: Path | None) -> dict[str, int]:
    """Start the poller for one container, detached in its own session; returns pid + start."""
    container_dir = Daemon(daemon_dir).container_dir(container_id)
    argv = [sys.executable, "-m", MODULE, "--daemon-dir", str(daemon_dir),
            "--container", container_id]
    if world is not None:
        argv += ["--world", str(world)]
    stderr = os.open(container_dir / "stderr", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        proc = subprocess.Popen(  # argv is ours; the environment is the container's
            argv, env=dict(env), cwd=container_dir, stdin=subprocess.DEVNULL,
            stdout=stderr, stderr=stderr, start_new_session=True, close_fds=True,
        )
    finally:
        os.close(stderr)
    _SPAWNED.append(proc)
    started = None
    deadline = time.monotonic() + 2.0
    while started is None and time.monotonic() < deadline:
        started = processes.start_time(proc.pid)
        if started is None:
            time.sleep(0.005)
    return {"pid": proc.pid, "start": started or 0}


def stop_all(daemon_dir: Path) -> int:
    """Kill every process this daemon dir started (sandbox teardown); returns how many.

    Found through /proc by module and `--daemon-dir`, so it works even when the records are
    gone or the daemon dir was already deleted.
    """
    root = str(daemon_dir.expanduser().resolve())
    stopped = 0
    for pid in processes.find(MODULE, "--daemon-dir", root):
        started = processes.start_time(pid)
        if started is not None and processes.terminate(pid, started, grace=1.0):
            stopped += 1
    return stopped


# -- FLIP's settings (trust_api/config.py@03dc1c54) -------------------------------------------


class SettingsError(Exception):
    """pydantic-settings' refusal to build Settings; the container exits at import."""


@dataclass(frozen=True)
class Settings:
    hub_url: str
    api_key: str = ""
    key_header: str = ""
    aes_key: str = ""
    poll_interval: int = 5
    expected_trust_id: str = ""
    log_level: str = "INFO"


def load_settings(env: Mapping[str, str]) -> Settings:
    errors = [
        f"{name}\n  Field required [type=missing, input_value={{...}}, input_type=dict]"
        for name in ("CENTRAL_HUB_API_URL", "TRUST_API_KEY", "TRUST_API_KEY_HEADER",
                     "AES_KEY_BASE64")
        if name not in env
    ]
    interval = 5
    raw = env.get("POLL_INTERVAL_SECONDS")
    if raw is not None:
        try:
            interval = int(raw.strip())
        except ValueError:
            errors.append(
                "POLL_INTERVAL_SECONDS\n  Input should be a valid integer, unable to parse "
                f"string as an integer [type=int_parsing, input_value={raw!r}, input_type=str]"
            )
    if errors:
        raise SettingsError(f"{len(errors)} validation error{'s' if len(errors) > 1 else ''} "
                            "for Settings\n" + "\n".join(errors))
    return Settings(
        hub_url=env["CENTRAL_HUB_API_URL"], api_key=env["TRUST_API_KEY"],
        key_header=env["TRUST_API_KEY_HEADER"], aes_key=env["AES_KEY_BASE64"],
        poll_interval=interval, expected_trust_id=env.get("EXPECTED_TRUST_ID", ""),
        log_level=env.get("LOG_LEVEL", "INFO") or "INFO",
    )


# -- the container log ------------------------------------------------------------------------


class _Gone(BaseException):
    """The container directory disappeared: the container no longer exists."""


class _Stopped(BaseException):
    """SIGTERM, as `docker stop` sends it."""


class JsonFileHandler(logging.Handler):
    """Writes records the way docker's json-file driver stores a container's stderr."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path

    def emit(self, record: logging.LogRecord) -> None:
        line = {"log": self.format(record) + "\n", "stream": "stderr",
                "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except FileNotFoundError:
            return
        with os.fdopen(fd, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")


class UvicornFormatter(logging.Formatter):
    """uvicorn's default `%(levelprefix)s %(message)s`: `INFO:` padded to 9 columns."""

    def format(self, record: logging.LogRecord) -> str:
        prefix = f"{record.levelname}:".ljust(9)
        return f"{prefix} {record.getMessage()}"


# -- the poller (task_poller.py@03dc1c54) ---------------------------------------------------


@functools.cache
def _opener() -> Any:
    """An opener that never follows a redirect. Built on first use: the container CLI imports
    this module to start trust-api, and urllib.request (with ssl) costs ~0.1 s to import."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect)


class HubError(Exception):
    """A transport failure, worded like httpx's (`[Errno 111] Connection refused`)."""


class Poller:
    def __init__(self, settings: Settings, world: Path | None, container_dir: Path,
                 logger: logging.Logger) -> None:
        self.s = settings
        self.world = world
        self.container_dir = container_dir
        self.log = logger
        self.identity_logged = False
        self.mismatch_logged = False

    # transport

    def _request(self, method: str, path: str) -> tuple[int, str]:
        url = f"{self.s.hub_url}{path}"
        try:
            target = resolve(url, read_world(self.world))
        except WorldError:
            target = None
        if target is None:
            raise HubError("[Errno -2] Name or service not known")
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            target, method=method, headers={self.s.key_header: self.s.api_key},
            data=b"" if method == "POST" else None,
        )
        try:
            with _opener().open(request, timeout=30.0) as response:
                return int(response.status), response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode("utf-8", "replace")
        except urllib.error.URLError as exc:
            raise HubError(str(exc.reason)) from None
        except (OSError, ValueError) as exc:
            raise HubError(str(exc)) from None

    # FLIP's steps

    def announce_identity(self, body: dict[str, Any]) -> None:
        if self.identity_logged:
            return
        trust_id = body.get("trust_id")
        trust_name = body.get("trust_name")
        if not trust_id or not trust_name:
            return
        if self.s.expected_trust_id and trust_id != self.s.expected_trust_id:
            self.log.error(
                "Hub identifies this host as trust %r (%s); kit declares "
                "EXPECTED_TRUST_ID=%s. Wrong kit deployed to this host? Exiting.",
                trust_name, trust_id, self.s.expected_trust_id,
            )
            sys.exit(2)
        self.log.info("Authenticated to hub as trust %r (%s).", trust_name, trust_id)
        self.identity_logged = True

    def poll_for_tasks(self) -> list[Any]:
        try:
            status, text = self._request("GET", "/tasks/pending")
            if status != 200:
                self.log.warning(f"Unexpected status {status} polling for tasks")
                return []
            body = json.loads(text)
            self.announce_identity(body)
            tasks: list[Any] = body.get("tasks", [])
            if tasks:
                self.log.info(f"Received {len(tasks)} pending tasks from hub")
            return tasks
        except Exception as exc:
            self.log.error(f"Error polling for tasks: {exc}")
            return []

    def send_heartbeat(self) -> None:
        try:
            status, text = self._request("POST", "/trust/heartbeat")
            if 200 <= status < 300:
                self.log.debug("Heartbeat sent successfully")
                try:
                    body = json.loads(text)
                except ValueError:
                    body = None
                if isinstance(body, dict):
                    self.announce_identity(body)
                    self.record_hub_status(body)
            else:
                self.log.error(f"Heartbeat rejected by hub: HTTP {status} — {text[:200]}")
        except Exception as exc:
            self.log.error(f"Error sending heartbeat: {exc}")

    def record_hub_status(self, body: dict[str, Any]) -> None:
        """hub_status.record@17ae2fae: warn once when the hub's AES key is not ours."""
        hub_fingerprint = body.get("aes_key_fingerprint")
        if not isinstance(hub_fingerprint, str):
            return
        try:
            own = hashlib.sha256(base64.b64decode(self.s.aes_key, validate=True)).hexdigest()
        except (binascii.Error, ValueError) as exc:
            self.log.error(f"Cannot fingerprint this trust's AES key: {type(exc).__name__}: {exc}")
            return
        if own[:12] != hub_fingerprint and not self.mismatch_logged:
            self.log.warning(
                "This trust's AES key differs from the hub's — every task payload will fail "
                "to decrypt. The kit's Hub-shared block is stale: ask the FLIP admin for a "
                "refreshed kit (make sync-trust-kit → make package-onprem-trust-kit) and "
                "replace the Hub-shared block."
            )
            self.mismatch_logged = True
        elif own[:12] == hub_fingerprint:
            self.mismatch_logged = False

    def run(self) -> None:
        self.log.info(
            f"Starting task poller (key-only auth), polling every {self.s.poll_interval}s "
            f"from {self.s.hub_url}. Identity is reported by the hub on first contact."
        )
        while True:
            self.check_exists()
            try:
                self.send_heartbeat()
                self.poll_for_tasks()
            except Exception as exc:
                self.log.error(f"Error in polling loop: {exc}")
            self.sleep(self.s.poll_interval)

    def check_exists(self) -> None:
        if not self.container_dir.is_dir():
            raise _Gone

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + max(seconds, 0)
        while True:
            self.check_exists()
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))


# -- the process ------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Stopped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=MODULE)
    parser.add_argument("--daemon-dir", required=True, type=Path)
    parser.add_argument("--container", required=True)
    parser.add_argument("--world", type=Path)
    args = parser.parse_args(argv)
    container_dir = Daemon(args.daemon_dir).container_dir(args.container)
    if not container_dir.is_dir():
        return 1
    logger = logging.getLogger("uvicorn")
    logger.propagate = False
    handler = JsonFileHandler(container_dir / LOG_FILE)
    handler.setFormatter(UvicornFormatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    signal.signal(signal.SIGTERM, _on_sigterm)
    code = 0
    try:
        settings = load_settings(os.environ)
        logger.setLevel(getattr(logging, settings.log_level.upper(), logging.INFO))
        logger.info("Trust API started with task poller and health collector")
        Poller(settings, args.world, container_dir, logger).run()
    except SettingsError as exc:
        logger.error(f"pydantic_core._pydantic_core.ValidationError: {exc}")
        code = 1
    except _Stopped:
        logger.info("Trust API shutting down")
    except _Gone:
        return 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        logger.error(traceback.format_exc().rstrip())
        code = 1
    with contextlib.suppress(OSError):
        fd = os.open(container_dir / EXIT_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{code}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
