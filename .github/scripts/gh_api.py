"""A tiny GitHub REST client on the standard library, for the workflow scripts.

The scripts run on a bare runner before anything is installed, so they use urllib only.
The base URL comes from GITHUB_API_URL (GitHub sets it; it differs on GitHub Enterprise),
which is also how the tests point the scripts at a local HTTP server.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

_NEXT = re.compile(r'<([^>]+)>;\s*rel="next"')


class GitHubError(RuntimeError):
    """A GitHub API call failed; the message names the call and GitHub's answer."""


class GitHub:
    def __init__(self, token: str, repository: str, api_url: str = "https://api.github.com",
                 timeout: float = 30.0) -> None:
        if not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
            raise GitHubError(f"GITHUB_REPOSITORY must be owner/name, got {repository!r}")
        self._token = token
        self.repository = repository
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout

    @classmethod
    def from_env(cls) -> GitHub:
        token = os.environ.get("GITHUB_TOKEN", "")
        repository = os.environ.get("GITHUB_REPOSITORY", "")
        if not token or not repository:
            raise GitHubError("GITHUB_TOKEN and GITHUB_REPOSITORY must be set")
        return cls(token, repository, os.environ.get("GITHUB_API_URL", "https://api.github.com"))

    def repo_path(self, suffix: str) -> str:
        return f"/repos/{self.repository}/{suffix.lstrip('/')}"

    def request(self, method: str, path: str, body: Any = None,
                query: dict[str, str] | None = None) -> Any:
        url = path if path.startswith("http") else self.api_url + path
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
        data, _ = self._send(method, url, body)
        return data

    def paginate(self, path: str, query: dict[str, str] | None = None,
                 key: str | None = None) -> list[Any]:
        """Every item of a listing, following Link: rel="next" (``key`` for wrapped lists)."""
        url: str | None = self.api_url + path + "?" + urllib.parse.urlencode(
            {"per_page": "100", **(query or {})})
        items: list[Any] = []
        while url:
            data, link = self._send("GET", url, None)
            page = data.get(key, []) if key else data
            if not isinstance(page, list):
                raise GitHubError(f"GET {path}: expected a list, got {type(page).__name__}")
            items.extend(page)
            match = _NEXT.search(link or "")
            url = match.group(1) if match else None
        return items

    def _send(self, method: str, url: str, body: Any) -> tuple[Any, str | None]:
        payload = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=payload, method=method)
        req.add_header("Accept", "application/vnd.github+json")
        req.add_header("X-GitHub-Api-Version", "2022-11-28")
        req.add_header("Authorization", f"Bearer {self._token}")
        req.add_header("User-Agent", "flipgitops-workflows")
        if payload is not None:
            req.add_header("Content-Type", "application/json")
        shown = urllib.parse.urlsplit(url).path
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
                link = resp.headers.get("Link")
        except urllib.error.HTTPError as exc:
            detail = _message(exc.read())
            raise GitHubError(f"{method} {shown}: HTTP {exc.code} {detail}".rstrip()) from None
        except urllib.error.URLError as exc:
            raise GitHubError(f"{method} {shown}: {exc.reason}") from None
        return (json.loads(raw) if raw else None), link


def _message(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        return ""
    return str(data.get("message", "")) if isinstance(data, dict) else ""


def write_outputs(values: dict[str, str], path: str | None = None) -> None:
    """Append ``key=value`` lines to $GITHUB_OUTPUT (or print them when it is not set)."""
    if any("\n" in k or "\n" in v for k, v in values.items()):
        raise ValueError("GITHUB_OUTPUT values must be single lines")
    lines = "".join(f"{k}={v}\n" for k, v in values.items())
    target = path or os.environ.get("GITHUB_OUTPUT")
    if target:
        with open(target, "a", encoding="utf-8") as fh:
            fh.write(lines)
    else:
        print(lines, end="")
