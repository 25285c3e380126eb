"""The stand-in registry answers FLIP's deploy-centralhub image check as ghcr.io does."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from hubworld import http

from flipgitops.sandbox.flip.registry import ImageRegistry, split_image

ACCEPT = ("application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, "
          "application/vnd.docker.distribution.manifest.list.v2+json, "
          "application/vnd.docker.distribution.manifest.v2+json")


@pytest.fixture
def registry() -> Iterator[tuple[ImageRegistry, str]]:
    reg = ImageRegistry()
    reg.add("londonaicentre/flip-api", "v2.3.0")
    port = reg.start("127.0.0.1")
    yield reg, f"http://127.0.0.1:{port}"
    reg.close()


def head(url: str, token: str | None) -> tuple[int, dict[str, str]]:
    """Makefile@00e1b6b0: `curl -sSI -H "Authorization: Bearer $token" -H "Accept: ..."`."""
    headers = {"Accept": ACCEPT, **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(url, method="HEAD", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers)


def token(base: str, repo: str) -> str:
    status, body = http("GET", f"{base}/token?scope=repository:{repo}:pull")
    assert status == 200
    return str(body["token"])


def test_a_published_tag_is_200_with_a_digest(registry: tuple[ImageRegistry, str]) -> None:
    reg, base = registry
    t = token(base, "londonaicentre/flip-api")
    status, headers = head(f"{base}/v2/londonaicentre/flip-api/manifests/v2.3.0", t)
    assert status == 200
    assert headers["Docker-Content-Digest"] == reg.digest("londonaicentre/flip-api", "v2.3.0")
    assert headers["Docker-Content-Digest"].startswith("sha256:")


def test_a_missing_tag_is_404_manifest_unknown(registry: tuple[ImageRegistry, str]) -> None:
    _, base = registry
    t = token(base, "londonaicentre/flip-api")
    assert head(f"{base}/v2/londonaicentre/flip-api/manifests/v9.9.9", t)[0] == 404
    status, body = http("GET", f"{base}/v2/londonaicentre/flip-api/manifests/v9.9.9",
                        {"Authorization": f"Bearer {t}"})
    assert status == 404 and body["errors"][0]["code"] == "MANIFEST_UNKNOWN"


def test_no_token_or_another_repos_token_is_401(registry: tuple[ImageRegistry, str]) -> None:
    _, base = registry
    url = f"{base}/v2/londonaicentre/flip-api/manifests/v2.3.0"
    status, headers = head(url, None)
    assert status == 401
    assert 'scope="repository:londonaicentre/flip-api:pull"' in headers["WWW-Authenticate"]
    assert head(url, token(base, "londonaicentre/trust-api"))[0] == 401


def test_tags_can_be_added_and_removed(registry: tuple[ImageRegistry, str]) -> None:
    reg, base = registry
    url = f"{base}/v2/londonaicentre/flip-api/manifests/v2.4.0"
    t = token(base, "londonaicentre/flip-api")
    assert head(url, t)[0] == 404
    reg.add("londonaicentre/flip-api", "v2.4.0")
    assert head(url, t)[0] == 200
    assert reg.has_image("ghcr.io/londonaicentre/flip-api:v2.4.0")
    reg.remove("londonaicentre/flip-api", "v2.4.0")
    assert head(url, t)[0] == 404
    assert not reg.has_image("ghcr.io/londonaicentre/flip-api:v2.4.0")
    assert not reg.has_image("docker.io/londonaicentre/flip-api:v2.3.0")  # another registry


def test_image_references_split_like_docker() -> None:
    assert split_image("ghcr.io/londonaicentre/flip-api:v2") == (
        "ghcr.io", "londonaicentre/flip-api", "v2")
    assert split_image("localhost:5000/a/b") == ("localhost:5000", "a/b", "latest")
    assert split_image("grafana/loki:3.4.0") == ("docker.io", "grafana/loki", "3.4.0")
    assert split_image("ghcr.io/x/y@sha256:ab") == ("ghcr.io", "x/y", "sha256:ab")
