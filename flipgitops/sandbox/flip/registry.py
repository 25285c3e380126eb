"""A stand-in image registry speaking the OCI distribution API the way ghcr.io does.

FLIP's `deploy-centralhub` (deploy/providers/AWS/Makefile@00e1b6b0, @0a13d3f9) checks an
image exists before repointing a service: an anonymous pull token from
``GET /token?scope=repository:<repo>:pull``, then ``HEAD /v2/<repo>/manifests/<tag>`` with
``Authorization: Bearer <token>``: 200 (with ``Docker-Content-Digest``) or 404. The same
tag set decides, in the worker, whether an ECS task's image can be pulled.

Tokens are scoped to one repository, like ghcr's; a manifest request without one is a 401
carrying the ``WWW-Authenticate`` challenge that names the token endpoint.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
from collections.abc import Iterable
from urllib.parse import parse_qs, urlsplit

from flipgitops.sandbox.flip.httpbase import JsonHandler, Server

REGISTRY_HOST = "ghcr.io"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
# Fargate's default runtimePlatform (X86_64 / LINUX): the platform a hub task pulls for.
PULL_PLATFORM = "linux/amd64"


def split_image(image: str) -> tuple[str, str, str]:
    """`ghcr.io/londonaicentre/flip-api:v2` -> (`ghcr.io`, `londonaicentre/flip-api`, `v2`).
    A digest pin (`@sha256:...`) is returned as the reference; no tag means `latest`."""
    name, _, digest = image.partition("@")
    first, _, rest = name.partition("/")
    if not rest or ("." not in first and ":" not in first and first != "localhost"):
        host, path = "docker.io", name
    else:
        host, path = first, rest
    head, _, last = path.rpartition("/")
    repo_last, sep, tag = last.partition(":")
    repo = f"{head}/{repo_last}" if head else repo_last
    return host, repo, digest or (tag if sep else "latest")


class ImageRegistry:
    """The tags the registry holds, thread-safe, and the HTTP server that serves them."""

    def __init__(self, host: str = REGISTRY_HOST) -> None:
        self.host = host
        self._lock = threading.Lock()
        self._tags: dict[tuple[str, str], str] = {}
        self._platforms: dict[tuple[str, str], tuple[str, ...]] = {}
        self._tokens: dict[str, str] = {}
        self.requests: list[tuple[str, str, int]] = []
        self._server: Server | None = None

    # --- the tag set ------------------------------------------------------------------

    def add(self, repo: str, tag: str, *, platforms: Iterable[str] = (PULL_PLATFORM,)) -> str:
        """Publish ``repo:tag`` (e.g. `londonaicentre/flip-api`, `v2.3.0`); its digest.
        ``platforms`` are the image index's entries: an image built for `linux/arm64` only
        answers FLIP's manifest check (200) and still cannot be pulled by a Fargate task."""
        digest = "sha256:" + hashlib.sha256(f"{repo}:{tag}".encode()).hexdigest()
        with self._lock:
            self._tags[(repo, tag)] = digest
            self._platforms[(repo, tag)] = tuple(platforms)
        return digest

    def add_all(self, refs: Iterable[tuple[str, str]]) -> None:
        for repo, tag in refs:
            self.add(repo, tag)

    def remove(self, repo: str, tag: str) -> None:
        with self._lock:
            self._tags.pop((repo, tag), None)
            self._platforms.pop((repo, tag), None)

    def platforms(self, repo: str, reference: str) -> tuple[str, ...]:
        with self._lock:
            tags = [t for (r, t), d in self._tags.items()
                    if r == repo and (t == reference or d == reference)]
            return self._platforms.get((repo, tags[0]), ()) if tags else ()

    def tags(self) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._tags)

    def digest(self, repo: str, reference: str) -> str | None:
        with self._lock:
            if reference.startswith("sha256:"):
                known = any(r == repo and d == reference for (r, _), d in self._tags.items())
                return reference if known else None
            return self._tags.get((repo, reference))

    def has_image(self, image: str) -> bool:
        """Whether a pull of a full image reference would succeed from this registry."""
        return self.pull_failure(image) is None

    def pull_failure(self, image: str) -> str | None:
        """Why a Fargate task could not pull ``image`` (None: it can): ``not found``, or the
        index has no entry for the task's platform."""
        host, repo, reference = split_image(image)
        if host != self.host or self.digest(repo, reference) is None:
            return "not found"
        if PULL_PLATFORM not in self.platforms(repo, reference):
            return f"platform {PULL_PLATFORM} not in the image index"
        return None

    # --- HTTP ---------------------------------------------------------------------------

    def start(self, bind: str) -> int:
        self._server = Server(_RegistryHandler, bind, "registry", self)
        self._server.start()
        return self._server.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def mint_token(self, repo: str) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[token] = repo
        return token

    def token_scope(self, token: str) -> str | None:
        with self._lock:
            return self._tokens.get(token)

    def log(self, method: str, path: str, status: int) -> None:
        with self._lock:
            self.requests.append((method, path, status))


class _RegistryHandler(JsonHandler):
    server_version = "ghcr-standin"

    @property
    def registry(self) -> ImageRegistry:
        return self.server.context  # type: ignore[attr-defined, no-any-return]

    def do_GET(self) -> None:  # stdlib name
        self._route(send_body=True)

    def do_HEAD(self) -> None:  # stdlib name
        self._route(send_body=False)

    def _route(self, *, send_body: bool) -> None:
        url = urlsplit(self.path)
        status = self._answer(url.path, url.query, send_body=send_body)
        self.registry.log(self.command, self.path, status)

    def _errors(self, status: int, code: str, message: str, *, send_body: bool,
                headers: dict[str, str] | None = None) -> int:
        body = {"errors": [{"code": code, "message": message}]}
        self.reply(status, body, headers, send_body=send_body)
        return status

    def _answer(self, path: str, query: str, *, send_body: bool) -> int:
        if path == "/token":
            scope = parse_qs(query).get("scope", [""])[0]
            parts = scope.split(":")
            if len(parts) != 3 or parts[0] != "repository" or "pull" not in parts[2].split(","):
                return self._errors(400, "UNSUPPORTED", "invalid scope", send_body=send_body)
            token = self.registry.mint_token(parts[1])
            self.reply(200, {"token": token}, send_body=send_body)
            return 200
        if path in ("/v2", "/v2/"):
            self.reply(200, {}, send_body=send_body)
            return 200
        if path.startswith("/v2/") and "/manifests/" in path:
            repo, _, reference = path[len("/v2/"):].rpartition("/manifests/")
            return self._manifest(repo, reference, send_body=send_body)
        return self._errors(404, "NOT_FOUND", "not found", send_body=send_body)

    def _manifest(self, repo: str, reference: str, *, send_body: bool) -> int:
        auth = self.headers.get("Authorization", "")
        token = auth[len("Bearer "):] if auth.startswith("Bearer ") else ""
        if not token or self.registry.token_scope(token) != repo:
            host = self.headers.get("Host", "ghcr.io")
            challenge = (f'Bearer realm="http://{host}/token",service="{self.registry.host}",'
                         f'scope="repository:{repo}:pull"')
            return self._errors(401, "UNAUTHORIZED", "authentication required",
                                send_body=send_body, headers={"WWW-Authenticate": challenge})
        digest = self.registry.digest(repo, reference)
        if digest is None:
            return self._errors(404, "MANIFEST_UNKNOWN", "manifest unknown", send_body=send_body)
        entries = [{"platform": {"os": p.split("/")[0], "architecture": p.split("/")[-1]}}
                   for p in self.registry.platforms(repo, reference)]
        manifest = json.dumps({"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE,
                               "manifests": entries}).encode()
        self.reply(200, manifest, {"Content-Type": INDEX_MEDIA_TYPE,
                                   "Docker-Content-Digest": digest}, send_body=send_body)
        return 200
