"""The in-memory channel between one Ansible run and the flipgitops process that started it.

Why: a value flipgitops hands to a trust host (the kit file with its keys, the FL kit's
private keys, a sudo password, and every manifest value) must never be written to disk on
the controller and must never pass through Jinja, where `{{ lookup('pipe', …) }}` in a
manifest string would run. So nothing goes into inventory, host_vars, extra-vars or the
runner's environment. Instead the parent serves each host's module arguments over a UNIX
socket in the run's 0700 private directory; the `flipgitops_step` action plugin (running in
Ansible's worker process on the controller) fetches them in Python and hands them to the
module as arguments, which Ansible pipes to the host's interpreter over stdin. Values built
in Python are never templated, and a SIGKILL at any moment leaves only an empty socket inode.

The plugin reports each module's result back over the same channel (modules never echo a
secret; `invocation` is dropped), so results of `no_log` tasks still reach the parent with
the message that says what failed.

Protocol: one JSON line per connection, one JSON line back.
  {"token": t, "op": "get", "host": h, "key": k}          -> {"ok": true, "value": …}
  {"token": t, "op": "put", "host": h, "key": k, "value": v} -> {"ok": true}
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets
import socket
import socketserver
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_SOCKET = "FLIPGITOPS_CHANNEL"
ENV_TOKEN = "FLIPGITOPS_CHANNEL_TOKEN"
SOCKET_NAME = "ch.sock"
CLIENT_TIMEOUT_SECONDS = 60.0
MAX_REQUEST_BYTES = 256 * 1024 * 1024


class ChannelError(Exception):
    """The channel is gone or refused a request (the message never holds a value)."""


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            line = self.rfile.readline(MAX_REQUEST_BYTES)
            request = json.loads(line)
            reply = self.server.owner.answer(request)
        except (ValueError, OSError):
            reply = {"ok": False, "error": "malformed request"}
        with contextlib.suppress(OSError):
            self.wfile.write(json.dumps(reply).encode() + b"\n")


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    owner: ChannelServer


class ChannelServer:
    """Serves ``entries[host][key]`` to this run's plugins; collects what they ``put``.

    Use as a context manager around the run. ``directory`` must be private (0700).
    """

    def __init__(self, directory: Path, entries: Mapping[str, Mapping[str, Any]]) -> None:
        self.path = directory / SOCKET_NAME
        self.token = secrets.token_hex(16)
        self._entries = {h: dict(v) for h, v in entries.items()}
        self._lock = threading.Lock()
        self.received: dict[str, dict[str, Any]] = {}
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never show a value
        return f"ChannelServer({self.path}, hosts={len(self._entries)})"

    @property
    def env(self) -> dict[str, str]:
        return {ENV_SOCKET: str(self.path), ENV_TOKEN: self.token}

    def answer(self, request: Mapping[str, Any]) -> dict[str, Any]:
        token = str(request.get("token", ""))
        if not hmac.compare_digest(token, self.token):
            return {"ok": False, "error": "wrong channel token"}
        host, key = str(request.get("host", "")), str(request.get("key", ""))
        op = request.get("op")
        with self._lock:
            if op == "get":
                if key not in self._entries.get(host, {}):
                    return {"ok": False, "error": f"nothing for {host}/{key}"}
                return {"ok": True, "value": self._entries[host][key]}
            if op == "put":
                self.received.setdefault(host, {})[key] = request.get("value")
                return {"ok": True}
        return {"ok": False, "error": f"unknown op {op!r}"}

    def __enter__(self) -> ChannelServer:
        server = _Server(str(self.path), _Handler, bind_and_activate=False)
        server.owner = self
        old = os.umask(0o177)
        try:
            server.server_bind()
        finally:
            os.umask(old)
        server.server_activate()
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="flipgitops-channel",
                                        daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._entries.clear()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


# --- client side: used by the Ansible plugins, inside ansible-playbook's processes ---------


def _call(request: dict[str, Any]) -> Any:
    path, token = os.environ.get(ENV_SOCKET), os.environ.get(ENV_TOKEN)
    if not path or not token:
        raise ChannelError("not started by flipgitops (no channel in the environment); "
                           "these playbooks only run through flipgitops")
    request["token"] = token
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(CLIENT_TIMEOUT_SECONDS)
            sock.connect(path)
            sock.sendall(json.dumps(request).encode() + b"\n")
            with sock.makefile("rb") as reader:
                line = reader.readline(MAX_REQUEST_BYTES)
    except OSError as exc:
        raise ChannelError(f"the flipgitops channel is gone ({type(exc).__name__}); was the "
                           "run interrupted?") from None
    try:
        reply = json.loads(line)
    except ValueError:
        raise ChannelError("the flipgitops channel sent a malformed reply") from None
    if not isinstance(reply, dict) or not reply.get("ok"):
        error = reply.get("error") if isinstance(reply, dict) else None
        raise ChannelError(f"the flipgitops channel refused: {error}")
    return reply.get("value")


def fetch(host: str, key: str) -> Any:
    return _call({"op": "get", "host": host, "key": key})


def put(host: str, key: str, value: Any) -> None:
    _call({"op": "put", "host": host, "key": key, "value": value})
