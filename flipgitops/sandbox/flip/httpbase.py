"""A small threaded HTTP server on a chosen address and an ephemeral port.

Shared by the stand-in flip-api and the stand-in image registry. Handler threads are named
``standin-hub-*`` so a test can prove none outlives the world, requests are HTTP/1.0 (one
per connection, so closing the server never waits on an idle keep-alive client), and a
socket timeout bounds a client that stops talking.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

THREAD_PREFIX = "standin-hub"


class JsonHandler(BaseHTTPRequestHandler):
    """Helpers for JSON replies; subclasses implement do_GET/do_POST/do_HEAD."""

    protocol_version = "HTTP/1.0"
    timeout = 10
    server_version = "standin"
    sys_version = ""

    def setup(self) -> None:
        threading.current_thread().name = f"{THREAD_PREFIX}-http-{self.server.server_port}"  # type: ignore[attr-defined]
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        """Silent: a sandbox server must not write request lines to the test's stderr."""

    def reply(self, status: int, body: Any, headers: dict[str, str] | None = None,
              *, send_body: bool = True) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        content_type = "application/json"
        extra = dict(headers or {})
        content_type = extra.pop("Content-Type", content_type)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for key, value in extra.items():
            self.send_header(key, value)
        self.end_headers()
        if send_body:
            self.wfile.write(data)

    def text(self, status: int, body: str) -> None:
        self.reply(status, body.encode(), {"Content-Type": "text/plain; charset=utf-8"})

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""


class Server:
    """A ThreadingHTTPServer run by a named thread; `close()` stops and joins everything."""

    def __init__(self, handler: type[BaseHTTPRequestHandler], bind: str, name: str,
                 context: Any) -> None:
        self.httpd = ThreadingHTTPServer((bind, 0), handler)
        self.httpd.daemon_threads = False  # server_close() joins handler threads
        self.httpd.context = context  # type: ignore[attr-defined]
        self.port: int = self.httpd.server_address[1]
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
            name=f"{THREAD_PREFIX}-{name}", daemon=True,
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        if self._thread.is_alive():
            self.httpd.shutdown()
            self._thread.join(timeout=10)
        self.httpd.server_close()
