"""The stand-in FLIP's world, both halves (a merge of h/standin-trust and h/standin-hub,
which each added a `world.py`; their contents are kept unchanged below).

Trust half — the world file: where the stand-in hub listens, the one fact the trust side
needs from it.

A kit file names the hub as FLIP's does (`CENTRAL_HUB_API_URL=https://<domain>/api`). The
sandbox has no DNS or TLS for that domain, so the stand-in plays both: the world file maps
each `https://<domain>` origin to the stand-in hub's plain-HTTP address, and the stand-in
trust-api rewrites the origin before it connects. Shape (JSON, 0600):

    {"hub_urls": {"https://hub.flip.example": "http://127.0.0.1:8123"}}

A name the world file does not map does not resolve (the stand-in never asks real DNS), except
loopback literals (`127.0.0.1`, `localhost`, `[::1]`), which are reached as they are.

Hub half — `StandinHub`: the hub side of the stand-in FLIP, started and stopped as one thing.

Given a running moto server, it starts the hub worker (one-off tasks and ECS's scheduler),
the stand-in flip-api, the stand-in image registry and a plain TCP listener standing for the
FL server behind the NLB, and says where they are in `endpoints`: the JSON flipgitops reads
from ``FLIPGITOPS_ENDPOINTS`` to reach them instead of ``https://<domain>``, ``ghcr.io`` and
``<fl host>:<port>``. On exit every thread is joined and every socket closed, and moto's ECS
task transition is put back.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import select
import socket
import tempfile
import threading
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from flipgitops.sandbox.flip import flipnames as fn

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class WorldError(Exception):
    """A world file that cannot be read; the message names the file and the fix."""


def write_world(path: Path, hub_urls: Mapping[str, str]) -> Path:
    """Write (atomically, 0600) the mapping of public hub origins to local addresses."""
    for public, local in hub_urls.items():
        if urlsplit(public).scheme not in ("https", "http") or not urlsplit(public).hostname:
            raise WorldError(f"hub origin {public!r} must look like https://<domain>")
        if urlsplit(local).scheme != "http" or not urlsplit(local).hostname:
            raise WorldError(f"hub address {local!r} must look like http://127.0.0.1:<port>")
    data = {"hub_urls": {_origin(k): v.rstrip("/") for k, v in hub_urls.items()}}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".world-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def read_world(path: Path | None) -> dict[str, str]:
    """The hub_urls mapping; an absent path means an empty world (nothing resolves)."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorldError(f"world file {path} does not exist; write it with write_world()") from None
    except (OSError, ValueError) as exc:
        raise WorldError(f"world file {path} is not JSON ({exc.__class__.__name__})") from None
    urls = data.get("hub_urls") if isinstance(data, dict) else None
    if not isinstance(urls, dict):
        raise WorldError(f'world file {path} needs {{"hub_urls": {{...}}}}')
    return {_origin(str(k)): str(v).rstrip("/") for k, v in urls.items()}


def resolve(url: str, hub_urls: Mapping[str, str]) -> str | None:
    """The URL to connect to for `url`, or None when its host does not resolve."""
    parts = urlsplit(url)
    origin = _origin(url)
    if origin in hub_urls:
        tail = url[len(f"{parts.scheme}://{parts.netloc}"):]
        return hub_urls[origin] + tail
    if parts.scheme == "http" and parts.hostname in _LOOPBACK:
        return url
    return None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


# --- the hub half ----------------------------------------------------------------------

ENDPOINTS_ENV = "FLIPGITOPS_ENDPOINTS"
# A one-off task must stay RUNNING until the worker has done its work and stopped it.
_MANUAL = {"progression": "manual", "times": 1_000_000}


class StandinHubError(Exception):
    """The stand-in hub was pointed at something it must not drive."""


def _moto_api(moto_url: str, action: str, body: dict[str, Any]) -> None:
    import urllib.request  # here: the container CLI imports this module on every call

    req = urllib.request.Request(
        f"{moto_url.rstrip('/')}/moto-api/state-manager/{action}",
        data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10):
        pass


class _TcpListener:
    """Accepts and closes connections: the FL server's port, for reachability checks."""

    def __init__(self, bind: str) -> None:
        from flipgitops.sandbox.flip.httpbase import THREAD_PREFIX

        self.sock = socket.create_server((bind, 0))
        self.port: int = self.sock.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"{THREAD_PREFIX}-fl-server",
                                         daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.1)
            if ready:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    continue
                self.connections += 1
                conn.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.sock.close()


class StandinHub:
    """FLIP's hub side against moto. Use as a context manager.

    ``domain`` and ``fl_host``/``fl_port`` are the names trusts and flipgitops would use
    (``https://<domain>/api``, ``<fl host>:<fl port>``); ``bind`` is the address every
    server listens on and ``advertise`` the one `endpoints` names (default: ``bind``, or
    127.0.0.1 for a wildcard bind), e.g. a veth address reachable from a network namespace.
    """

    def __init__(self, moto_url: str, region: str, *, domain: str = "flip.example.org",
                 fl_host: str | None = None, fl_port: int = 8002, era: fn.Era = "database",
                 bind: str = "127.0.0.1", advertise: str | None = None,
                 interval: float = 0.1) -> None:
        host = urlsplit(moto_url).hostname or ""
        if host.endswith("amazonaws.com") or not urlsplit(moto_url).scheme.startswith("http"):
            raise StandinHubError(
                f"{moto_url} is not an AWS emulator; the stand-in hub only drives moto")
        self.moto_url = moto_url.rstrip("/")
        self.region = region
        self.domain = domain
        self.fl_host = fl_host or f"fl.{domain}"
        self.fl_port = fl_port
        self.bind = bind
        self.advertise = advertise or ("127.0.0.1" if bind in ("0.0.0.0", "") else bind)
        # The hub half is imported here, not at the top: the container CLI and trust-api
        # processes import this module for the world file only, and the hub half pulls in
        # boto3 (about a second of every stand-in `docker` invocation's start-up).
        from flipgitops.sandbox.flip.flip_api import FlipApiServer
        from flipgitops.sandbox.flip.hub import HubState
        from flipgitops.sandbox.flip.registry import REGISTRY_HOST, ImageRegistry
        from flipgitops.sandbox.flip.worker import HubWorker

        self.state = HubState(era)
        self.registry = ImageRegistry(REGISTRY_HOST)
        self.admin_token = secrets.token_urlsafe(32)
        self.state.add_token(self.admin_token, admin=True)
        self.worker = HubWorker(self.state, self.registry, self.moto_url, region,
                                interval=interval)
        self._api = FlipApiServer(self.state)
        self._fl: _TcpListener | None = None
        self.api_port = 0
        self.registry_port = 0
        self._started = False

    # --- lifecycle --------------------------------------------------------------------

    def __enter__(self) -> StandinHub:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def start(self) -> None:
        _moto_api(self.moto_url, "set-transition",
                  {"model_name": "ecs::task", "transition": _MANUAL})
        try:
            self.registry_port = self.registry.start(self.bind)
            self.api_port = self._api.start(self.bind)
            self._fl = _TcpListener(self.bind)
            self._fl.start()
            self.worker.start()
        except BaseException:
            self.close()
            raise
        self._started = True

    def close(self) -> None:
        self.worker.stop()
        self._api.close()
        self.registry.close()
        if self._fl is not None:
            self._fl.close()
        with suppress(OSError):  # the emulator may already be gone
            _moto_api(self.moto_url, "unset-transition", {"model_name": "ecs::task"})
        self._started = False

    # --- what flipgitops and tests read -----------------------------------------------

    @property
    def hub_url(self) -> str:
        return f"http://{self.advertise}:{self.api_port}"

    @property
    def api_url(self) -> str:
        """CENTRAL_HUB_API_URL as a trust on this machine reaches it."""
        return f"{self.hub_url}/api"

    @property
    def fl_port_local(self) -> int:
        return self._fl.port if self._fl else 0

    @property
    def endpoints(self) -> dict[str, Any]:
        """The value of ``FLIPGITOPS_ENDPOINTS`` (use `endpoints_json` for the string)."""
        local = self.advertise
        return {
            "hub": self.hub_url,
            "registries": {self.registry.host: f"http://{local}:{self.registry_port}"},
            "resolve": {
                f"{self.domain}:443": f"{local}:{self.api_port}",
                f"{self.fl_host}:{self.fl_port}": f"{local}:{self.fl_port_local}",
            },
            "egress_probe": f"{self.hub_url}/sandbox/egress/{{trust}}",
        }

    @property
    def endpoints_json(self) -> str:
        return json.dumps(self.endpoints, sort_keys=True)

    def set_egress(self, trust: str, ip: str | None) -> None:
        """What `egress_probe` answers for ``trust`` (None: unknown, a 404)."""
        self.state.set_egress(trust, ip)

    def wait_booted(self, tag: str | None = None, timeout: float = 10.0) -> bool:
        """Until flip-api has booted (with image tag ``tag``, when given)."""
        def booted() -> bool:
            loaded = self.state.loaded
            return loaded is not None and (tag is None or loaded.image_tag == tag)
        return self.state.wait_for(booted, timeout)
