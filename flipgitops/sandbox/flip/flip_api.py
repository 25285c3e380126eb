"""The stand-in flip-api: FLIP's trust-facing routes on a local address.

Routes, bodies and status codes follow FLIP (all under ``API_PREFIX = "/api"``):

- ``GET /api/health`` and ``GET /api`` (main.py@00e1b6b0, @812a7ed3): no version field;
- ``GET /api/tasks/pending``, ``POST /api/tasks/{id}/result``, ``POST /api/trust/heartbeat``
  (private_services/trust_tasks.py@160f4bf2): identity is the API key, sent in the header
  flip-api's ``TRUST_API_KEY_HEADER`` names and hashed as-is (auth/access_manager.py@3ba224eb);
  the heartbeat reply also carries ``hub_version`` and ``aes_key_fingerprint``, which
  trust-api's hub_status reads (FLIP#1204, flip_api/utils/version.py@b428e74b);
- ``GET /api/admin/trusts`` with a bearer token (trusts_services/admin_get_trusts.py@812a7ed3).

Errors a route does not handle are FastAPI's: a database failure is a bare
``500 Internal Server Error``; before any flip-api task has booted, the load balancer answers
``503``. ``GET /sandbox/egress/<trust>`` is not FLIP's: it plays the internet's view of a
trust host, for egress-IP checks.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote, urlsplit

from flipgitops.sandbox.flip import flipnames as fn
from flipgitops.sandbox.flip.httpbase import JsonHandler, Server
from flipgitops.sandbox.flip.hub import (
    AuthError,
    Conflict,
    DatabaseUnavailable,
    Forbidden,
    HubState,
    NotFound,
    NotServing,
)

API_PREFIX = "/api"
EGRESS_PREFIX = "/sandbox/egress/"
_CHALLENGE = {"WWW-Authenticate": "ApiKey"}


class FlipApiServer:
    """Owns the HTTP server; `start(bind)` returns the port."""

    def __init__(self, state: HubState) -> None:
        self.state = state
        self._server: Server | None = None

    def start(self, bind: str) -> int:
        self._server = Server(_FlipApiHandler, bind, "flip-api", self.state)
        self._server.start()
        return self._server.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None


class _FlipApiHandler(JsonHandler):
    server_version = "uvicorn"

    @property
    def state(self) -> HubState:
        return self.server.context  # type: ignore[attr-defined, no-any-return]

    def do_GET(self) -> None:  # stdlib name
        self._dispatch()

    def do_POST(self) -> None:  # stdlib name
        self._dispatch()

    def _dispatch(self) -> None:
        path = urlsplit(self.path).path
        status = 500
        try:
            status = self._route(path)
        except NotServing:
            status = 503
            self.text(503, "Service Temporarily Unavailable")
        except DatabaseUnavailable:
            status = 500
            if path == f"{API_PREFIX}/admin/trusts":
                self.reply(500, {"detail": "Internal server error"})
            else:
                self.text(500, "Internal Server Error")
        except AuthError as e:
            status = 401
            self.reply(401, {"detail": str(e)}, _CHALLENGE)
        except Forbidden as e:
            status = 403
            self.reply(403, {"detail": str(e)})
        except NotFound as e:
            status = 404
            self.reply(404, {"detail": str(e)})
        except Conflict as e:
            status = 409
            self.reply(409, {"detail": str(e)})
        self.state.requests.append((self.command, path, status))

    def _ok(self, body: Any) -> int:
        self.reply(200, body)
        return 200

    def _route(self, path: str) -> int:
        method = self.command
        if method == "GET" and path.startswith(EGRESS_PREFIX):
            ip = self.state.egress(unquote(path[len(EGRESS_PREFIX):]))
            if ip is None:
                self.text(404, "unknown")
                return 404
            self.text(200, ip)
            return 200
        if not path.startswith(API_PREFIX):
            self.reply(404, {"detail": "Not Found"})
            return 404
        self.state.api_key_header()  # 503 until a flip-api task has booted
        sub = path[len(API_PREFIX):]
        if method == "GET" and sub == "":
            return self._ok(fn.ROOT_BODY)
        if method == "GET" and sub == "/health":
            return self._ok(fn.HEALTH_BODY)
        if method == "GET" and sub == "/admin/trusts":
            auth = self.headers.get("Authorization", "")
            token = auth[len("Bearer "):] if auth.startswith("Bearer ") else None
            return self._ok(self.state.admin_trusts(token))
        if method == "GET" and sub == "/tasks/pending":
            return self._ok(self.state.pending_tasks(self._identity()))
        if method == "POST" and sub == "/trust/heartbeat":
            who = self._identity()
            body, bad = self._json_body()
            if bad:
                return self._unprocessable()
            return self._ok(self.state.heartbeat(who, body))
        parts = sub.strip("/").split("/")
        if method == "POST" and len(parts) == 3 and parts[0] == "tasks" and parts[2] == "result":
            who = self._identity()
            body, bad = self._json_body()
            if bad or not isinstance(body, dict):
                return self._unprocessable()
            return self._ok(self.state.task_result(who, parts[1], body))
        if sub in ("/health", "/tasks/pending", "/trust/heartbeat", "/admin/trusts"):
            self.reply(405, {"detail": "Method Not Allowed"})
            return 405
        self.reply(404, {"detail": "Not Found"})
        return 404

    def _identity(self) -> Any:
        header = self.state.api_key_header()
        return self.state.authenticate(self.headers.get(header))

    def _json_body(self) -> tuple[Any, bool]:
        raw = self.read_body()
        if not raw.strip():
            return None, False
        try:
            body = json.loads(raw)
        except ValueError:
            return None, True
        return body, not isinstance(body, dict)

    def _unprocessable(self) -> int:
        self.reply(422, {"detail": [{"type": "json_invalid", "loc": ["body"],
                                     "msg": "JSON object expected"}]})
        return 422
