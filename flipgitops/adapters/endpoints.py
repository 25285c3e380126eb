"""Where flipgitops' HTTP calls go: the hub, image registries, and the sandbox's overrides.

In production nothing is configured and every URL is the real one (`https://<domain>`,
`https://<registry host>`). The sandbox and the tests run the hub's flip-api and an OCI
registry on 127.0.0.1, so one environment variable, ``FLIPGITOPS_ENDPOINTS``, redirects them:

    {"hub": "http://127.0.0.1:P",                       # replaces https://<domain>
     "registries": {"ghcr.io": "http://127.0.0.1:P2"},  # registry host -> base URL
     "resolve": {"fl.dev.flip.example.org": "127.0.0.1"},  # host name -> address (hosts)
     "egress_probe": "http://127.0.0.1:P3/ip"}          # what a host asks for its egress IP

It is parsed here and only here; a malformed value is an error naming the key and the fix,
because silently falling back to the real hub from a test would talk to production.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flipgitops.adapters.env_json import json_object_env
from flipgitops.errors import AdapterError

ENV_VAR = "FLIPGITOPS_ENDPOINTS"
_KEYS = ("hub", "registries", "resolve", "egress_probe")


class EndpointsError(AdapterError):
    """FLIPGITOPS_ENDPOINTS cannot be used as it is."""


@dataclass(frozen=True)
class Endpoints:
    """The overrides in force; every field empty in production."""

    hub: str | None = None
    registries: Mapping[str, str] = field(default_factory=dict)
    resolve: Mapping[str, str] = field(default_factory=dict)
    egress_probe: str | None = None

    def hub_url(self, domain: str, path: str) -> str:
        """`https://<domain><path>`, or the override's base with the same path."""
        base = self.hub.rstrip("/") if self.hub else f"https://{domain}"
        return base + path

    def registry_url(self, host: str) -> str:
        """The base URL of the registry ``host`` (``ghcr.io``) serves its API at."""
        override = self.registries.get(host)
        return override.rstrip("/") if override else f"https://{host}"


def _url(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise EndpointsError(f"{ENV_VAR}: {where} must be a URL string, e.g. "
                             "\"http://127.0.0.1:8080\"")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointsError(f"{ENV_VAR}: {where} is not an http(s) URL with a host "
                             f"({value[:100]!r})")
    return value


def _str_map(value: object, where: str, *, urls: bool) -> dict[str, str]:
    if not isinstance(value, dict):
        raise EndpointsError(f"{ENV_VAR}: {where} must be a JSON object")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(item, str) or not item:
            raise EndpointsError(f"{ENV_VAR}: {where}.{key} must be a non-empty string")
        out[str(key)] = _url(item, f"{where}.{key}") if urls else item
    return out


def parse_endpoints(text: str | None) -> Endpoints:
    """Parse the variable's value; empty or unset means production (no overrides)."""
    data = json_object_env(ENV_VAR, text, _KEYS, example='{"hub": "http://127.0.0.1:8080"}',
                           unset_means="production", error=EndpointsError)
    if data is None:
        return Endpoints()
    return Endpoints(
        hub=_url(data["hub"], "hub") if data.get("hub") is not None else None,
        registries=_str_map(data.get("registries", {}), "registries", urls=True),
        resolve=_str_map(data.get("resolve", {}), "resolve", urls=False),
        egress_probe=(_url(data["egress_probe"], "egress_probe")
                      if data.get("egress_probe") is not None else None),
    )


def endpoints_from_env(environ: Mapping[str, str] | None = None) -> Endpoints:
    """The overrides of this process (``FLIPGITOPS_ENDPOINTS``)."""
    env = os.environ if environ is None else environ
    return parse_endpoints(env.get(ENV_VAR))
