"""A tiny fake hub for the trust-side stand-in's tests (a test double of flip-api, no more).

It answers the two routes FLIP's trust-api polls with FLIP's shapes
(flip-api's trust routes: 200 bodies carry trust_id and trust_name, the heartbeat also
hub_version; a bad key gets 401 {"detail": "Invalid API Key."}), and records what it saw.
Keys are held as sha256 hashes, as FLIP's hub holds them.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    method: str
    path: str
    authenticated: bool


@dataclass
class FakeHub:
    trusts: dict[str, tuple[str, str]]  # sha256(key) -> (trust_id, trust_name)
    header: str = "X-Trust-API-Key"
    hub_version: str = "v2.4.0"
    aes_key_fingerprint: str | None = None
    seen: list[Seen] = field(default_factory=list)

    def __post_init__(self) -> None:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def _answer(self, method: str) -> None:
                key = self.headers.get(hub.header, "")
                trust = hub.trusts.get(hashlib.sha256(key.encode()).hexdigest())
                hub.seen.append(Seen(method, self.path, trust is not None))
                routes = {("POST", "/api/trust/heartbeat"), ("GET", "/api/tasks/pending")}
                if (method, self.path) not in routes:
                    self._send(404, {"detail": "Not Found"})
                elif trust is None:
                    self._send(401, {"detail": "Invalid API Key."})
                elif self.path.endswith("/heartbeat"):
                    body: dict[str, Any] = {"status": "ok", "trust_id": trust[0],
                                            "trust_name": trust[1],
                                            "hub_version": hub.hub_version}
                    if hub.aes_key_fingerprint:
                        body["aes_key_fingerprint"] = hub.aes_key_fingerprint
                    self._send(200, body)
                else:
                    self._send(200, {"tasks": [], "trust_id": trust[0], "trust_name": trust[1]})

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body, separators=(",", ":")).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._answer("GET")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                self._answer("POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
