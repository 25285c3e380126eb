"""A real moto server on a free loopback port, reached over HTTP like real AWS.

The demo and the test-suite both use it: boto3 is pointed at it with AWS_ENDPOINT_URL, so
the adapters run exactly the code they run against AWS.
"""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

# Fake credentials for the emulator only; moto accepts any value.
SANDBOX_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-2",
}

# moto's default account id for every request.
MOTO_ACCOUNT_ID = "123456789012"


@dataclass
class MotoServer:
    url: str
    _server: object

    def reset(self) -> None:
        """Forget every resource (POST /moto-api/reset)."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def stop(self) -> None:
        self._server.stop()  # type: ignore[attr-defined]


# Who wants to hear of each request a moto server of this process serves, by its URL: the
# stand-in hub's worker wakes on ECS writes instead of polling moto ten times a second
# (flipgitops/sandbox/flip/worker.py). A callback gets the request's X-Amz-Target (or "").
Listener = Callable[[str], None]
_LISTENERS: dict[str, list[Listener]] = {}
_LISTENERS_LOCK = threading.Lock()


def listen(url: str, callback: Listener) -> Callable[[], None] | None:
    """Hear of every request the moto server at ``url`` serves, if it runs in this process
    (None otherwise: the caller keeps polling). Returns the call that stops it."""
    key = url.rstrip("/")
    with _LISTENERS_LOCK:
        if key not in _LISTENERS:
            return None
        _LISTENERS[key].append(callback)

    def stop() -> None:
        with _LISTENERS_LOCK:
            if callback in _LISTENERS.get(key, []):
                _LISTENERS[key].remove(callback)

    return stop


class _Heard:
    """moto's WSGI app, telling this server's listeners of each request first."""

    def __init__(self, app: Any, key: str) -> None:
        self.app, self.key = app, key

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with _LISTENERS_LOCK:
            listeners = list(_LISTENERS.get(self.key, ()))
        target = str(environ.get("HTTP_X_AMZ_TARGET") or "")
        for callback in listeners:
            callback(target)
        return self.app(environ, start_response)


def _remember_backends(dispatcher: Any) -> None:
    """Look up each Host header's backend once, not on every request.

    moto's dispatcher (`DomainDispatcherApplication.get_backend_for_host`) lists its own
    package directory and stats each of its ~170 entries, then tries its URL patterns, on
    every request, twice for one sent to 127.0.0.1 (once for that host, once for the host
    it infers from the signature): ~5 ms a request, a tenth of the sandbox's moto time. The
    answer depends on the host name alone (moto's modules and patterns do not change while
    it runs), so it is kept per host; moto's own lock already serialises the calls.
    """
    lookup = getattr(dispatcher, "get_backend_for_host", None)
    if lookup is None:  # not the dispatcher this was written against: leave it alone
        return
    known: dict[str | None, Any] = {}

    def backend_for_host(host: str | None) -> Any:
        if host not in known:
            known[host] = lookup(host)
        return known[host]

    dispatcher.get_backend_for_host = backend_for_host


_LOADERS: dict[str | None, Any] = {}
_LOADERS_LOCK = threading.Lock()


def share_model_loader() -> None:
    """One botocore model loader per process, shared by every session made in it.

    botocore gives each new Session its own `Loader`, whose cache of parsed service models
    dies with the session. A flipgitops command makes one session; the sandbox and the tests
    make many in one process (the seed, the stand-in hub, each test's `Clients` and
    operator reads), and every one of them parsed EC2's 550 KB gzipped model again, ~0.1
    CPU-s a time, ~40 CPU-s over the suite. The models are read-only once loaded, so the
    loader (per AWS_DATA_PATH) is shared. Called by `moto_server`: sandbox processes only.
    """
    import botocore.loaders
    import botocore.session

    made = botocore.loaders.create_loader
    if getattr(botocore.session.create_loader, "shared", False):
        return

    def create_loader(search_path_string: str | None = None) -> Any:
        with _LOADERS_LOCK:
            if search_path_string not in _LOADERS:
                _LOADERS[search_path_string] = made(search_path_string)
            return _LOADERS[search_path_string]

    create_loader.shared = True  # type: ignore[attr-defined]
    botocore.session.create_loader = create_loader


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    """Start a ThreadedMotoServer on 127.0.0.1:<free port>; stop it on exit."""
    import logging
    import os

    # moto builds 1,282 default AMIs (and an EBS volume for each) whenever it creates an EC2
    # backend: on first use and again after every reset, 0.2-0.75 s each time. Nothing in
    # the sandbox describes images, so it is skipped unless the caller asked for it. moto
    # reads the variable when it builds a backend, in this process (its server is a thread).
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    share_model_loader()

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    handle = MotoServer(url=f"http://{host}:{port}", _server=server)
    wsgi = server._server  # werkzeug's server: its app is moto's dispatcher
    with _LISTENERS_LOCK:
        _LISTENERS[handle.url] = []
    if wsgi is not None:
        _remember_backends(wsgi.app)
        wsgi.app = _Heard(wsgi.app, handle.url)
    try:
        yield handle
    finally:
        with _LISTENERS_LOCK:
            _LISTENERS.pop(handle.url, None)
        server.stop()
