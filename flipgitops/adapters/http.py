"""The few HTTP calls flipgitops makes outside AWS: the hub's own API and image registries.

One small client (stdlib urllib: no dependency) so that every call has a timeout, never
follows a redirect to another host with our token, and fails as a sentence naming the URL
— never with the token or a response body that might echo it.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from flipgitops.errors import AdapterError

DEFAULT_TIMEOUT = 15.0
MAX_BODY = 4 * 1024 * 1024  # a trust list of thousands fits; a runaway answer does not


class HttpError(AdapterError):
    """The request could not be made or answered (not: answered with a 4xx/5xx)."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as itself; our Authorization never travels on


_OPENER = urllib.request.build_opener(_NoRedirect)


def where(url: str) -> str:
    """The URL without query or credentials, for messages."""
    p = urlsplit(url)
    return f"{p.scheme}://{p.hostname}{f':{p.port}' if p.port else ''}{p.path}"


def request(method: str, url: str, headers: Mapping[str, str] | None = None,
            timeout: float = DEFAULT_TIMEOUT) -> Response:
    """One request; any HTTP status is a Response, only failing to talk is an HttpError."""
    req = urllib.request.Request(url, method=method, headers=dict(headers or {}))
    try:
        with _OPENER.open(req, timeout=timeout) as resp:
            return Response(resp.status, dict(resp.headers.items()), resp.read(MAX_BODY))
    except urllib.error.HTTPError as exc:
        body = exc.read(MAX_BODY) if exc.fp is not None else b""
        return Response(exc.code, dict(exc.headers.items()) if exc.headers else {}, body)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, ssl.SSLError):
            raise HttpError(f"TLS failed talking to {where(url)} ({type(reason).__name__}): "
                            "is its certificate trusted here?") from None
        raise HttpError(f"could not reach {where(url)}: {str(reason)[:200]}") from None
    except (TimeoutError, OSError) as exc:
        raise HttpError(f"could not reach {where(url)}: {type(exc).__name__}") from None
