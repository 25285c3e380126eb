"""The hub's own HTTP API: `/api/health` and the admin list of trusts.

FLIP (`flip-api/src/flip_api/main.py`@00e1b6b0, @812a7ed3): ``GET /api/health`` answers 200
``{"status": "ok", "message": "flip is running"}`` — no version, so a deploy's version
evidence is the running tasks' image, not this. ``GET /api/admin/trusts``
(`trusts_services/admin_get_trusts.py`@812a7ed3) takes a Cognito bearer token with the admin
permission and lists ``id, name, code, region, created_at, disabled_at, last_heartbeat,
project_count`` per trust (older versions have no ``disabled_at``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from flipgitops.adapters.endpoints import Endpoints
from flipgitops.adapters.http import HttpError, request, where
from flipgitops.model.flip import ADMIN_TRUSTS_PATH, HEALTH_PATH
from flipgitops.model.observed import AdminTrust, ObservedAdminApi


@dataclass(frozen=True)
class Health:
    url: str
    status: int | None  # None: no answer at all
    detail: str

    @property
    def ok(self) -> bool:
        return self.status == 200


def health(endpoints: Endpoints, domain: str) -> Health:
    url = endpoints.hub_url(domain, HEALTH_PATH)
    try:
        resp = request("GET", url, {"Accept": "application/json"})
    except HttpError as exc:
        return Health(where(url), None, str(exc))
    body = resp.json()
    status = body.get("status") if isinstance(body, dict) else None
    detail = f"HTTP {resp.status}" + (f", status {status!r}" if status else "")
    return Health(where(url), resp.status, detail)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def admin_trusts(endpoints: Endpoints, domain: str, token: SecretStr) -> ObservedAdminApi:
    """ONE call; every failure is ``ok=False`` with a reason (never the token)."""
    url = endpoints.hub_url(domain, ADMIN_TRUSTS_PATH)
    headers = {"Authorization": f"Bearer {token.get_secret_value()}",
               "Accept": "application/json"}
    try:
        resp = request("GET", url, headers)
    except HttpError as exc:
        return ObservedAdminApi(queried=True, ok=False, error=str(exc))
    if resp.status != 200:
        hint = {401: "the admin token is invalid or expired",
                403: "the token's user lacks the admin permission (or MFA enrolment)"}
        return ObservedAdminApi(queried=True, ok=False, error=(
            f"GET {where(url)} answered HTTP {resp.status}"
            + (f": {hint[resp.status]}" if resp.status in hint else "")))
    body = resp.json()
    if not isinstance(body, list) or not all(isinstance(t, dict) for t in body):
        return ObservedAdminApi(queried=True, ok=False,
                                error=f"GET {where(url)} did not answer a JSON list of trusts")
    trusts = []
    for item in body:
        name = _str(item.get("name"))
        if name is None:
            continue
        trusts.append(AdminTrust(
            name=name, code=_str(item.get("code")), region=_str(item.get("region")),
            id=_str(str(item["id"])) if item.get("id") is not None else None,
            disabled=item.get("disabled_at") is not None,
            last_heartbeat=_str(item.get("last_heartbeat")),
        ))
    return ObservedAdminApi(queried=True, ok=True,
                            trusts=tuple(sorted(trusts, key=lambda t: t.name)))
