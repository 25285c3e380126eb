"""Does an image tag exist in its registry? Asked before any hub service is changed.

FLIP's `deploy-centralhub` (AWS `Makefile`@0a13d3f9, phase 1) fetches a pull token from
`https://ghcr.io/token?scope=repository:<repo>:pull` and sends
``HEAD /v2/<repo>/manifests/<tag>`` with the OCI/Docker manifest media types: 200 is
verified, 404 "not found in GHCR", anything else stops the deploy. It skips non-ghcr images;
flipgitops asks any OCI registry the same way (the distribution API's Bearer challenge, with
ghcr's token endpoint as the fallback) and ECR registries with `ecr.describe_images`.
``FLIPGITOPS_ENDPOINTS.registries`` points a registry host at the sandbox's stand-in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from flipgitops.adapters.aws_session import Clients, error_code, translate
from flipgitops.adapters.endpoints import Endpoints
from flipgitops.adapters.http import HttpError, request, where
from flipgitops.model.flip import image_repository, image_tag

# FLIP's Accept header for the manifest HEAD, verbatim.
MANIFEST_ACCEPT = ("application/vnd.oci.image.index.v1+json, "
                   "application/vnd.oci.image.manifest.v1+json, "
                   "application/vnd.docker.distribution.manifest.list.v2+json, "
                   "application/vnd.docker.distribution.manifest.v2+json")
ECR_HOST = re.compile(r"(?P<account>[0-9]{12})\.dkr\.ecr\.(?P<region>[a-z0-9-]+)"
                      r"\.amazonaws\.com(\.cn)?")
DOCKER_HUB = "registry-1.docker.io"
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


@dataclass(frozen=True)
class ImageCheck:
    image: str
    exists: bool | None  # None: the registry could not say (an error, never "exists")
    detail: str


def split_image(image: str) -> tuple[str, str, str | None]:
    """(registry host, repository path, tag) of an image reference."""
    repo = image_repository(image)
    first, _, rest = repo.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        return first, rest, image_tag(image)
    path = repo if "/" in repo else f"library/{repo}"
    return DOCKER_HUB, path, image_tag(image)


def _token(endpoints: Endpoints, host: str, repo: str, challenge: str | None) -> str | None:
    base = endpoints.registry_url(host)
    params = dict(_CHALLENGE.findall(challenge or ""))
    realm = params.get("realm")
    if realm:
        parts = urlsplit(realm)
        if parts.hostname == host and host in endpoints.registries:
            realm = base + parts.path  # the stand-in names the real host in its challenge
        query = {k: v for k, v in (("service", params.get("service")),
                                   ("scope", params.get("scope")
                                    or f"repository:{repo}:pull")) if v}
        url = f"{realm}?{urlencode(query)}"
    else:
        url = f"{base}/token?{urlencode({'scope': f'repository:{repo}:pull'})}"
    resp = request("GET", url)
    body = resp.json()
    if resp.status != 200 or not isinstance(body, dict):
        return None
    token = body.get("token") or body.get("access_token")
    return token if isinstance(token, str) and token else None


def _oci_check(endpoints: Endpoints, image: str, host: str, repo: str, tag: str) -> ImageCheck:
    url = f"{endpoints.registry_url(host)}/v2/{repo}/manifests/{tag}"
    headers = {"Accept": MANIFEST_ACCEPT}
    try:
        resp = request("HEAD", url, headers)
        if resp.status == 401:
            challenge = next((v for k, v in resp.headers.items()
                              if k.lower() == "www-authenticate"), None)
            token = _token(endpoints, host, repo, challenge)
            if token is None:
                return ImageCheck(image, None, f"{host}: pull token fetch failed for {repo}")
            resp = request("HEAD", url, {**headers, "Authorization": f"Bearer {token}"})
    except HttpError as exc:
        return ImageCheck(image, None, str(exc))
    if resp.status == 200:
        return ImageCheck(image, True, f"verified in {host}")
    if resp.status == 404:
        return ImageCheck(image, False, f"not found in {host}")
    return ImageCheck(image, None, f"manifest check at {where(url)} returned HTTP {resp.status}")


def _ecr_check(clients: Clients, image: str, account: str, region: str, repo: str,
               tag: str) -> ImageCheck:
    ecr: Any = (clients.ecr if region == clients.region
                else clients.session.client("ecr", region_name=region))
    try:
        ecr.describe_images(registryId=account, repositoryName=repo,
                            imageIds=[{"imageTag": tag}])
    except ClientError as exc:
        if error_code(exc) in ("ImageNotFoundException", "RepositoryNotFoundException"):
            return ImageCheck(image, False, f"not found in ECR ({error_code(exc)})")
        return ImageCheck(image, None, str(translate(exc, doing=f"checking {image} in ECR")))
    except BotoCoreError as exc:
        return ImageCheck(image, None, str(translate(exc, doing=f"checking {image} in ECR")))
    return ImageCheck(image, True, "verified in ECR")


def check_image(image: str, endpoints: Endpoints, clients: Clients) -> ImageCheck:
    if "@" in image:
        return ImageCheck(image, None, "digest-pinned images cannot be moved to a tag "
                                       "(FLIP's deploy-centralhub refuses them too)")
    host, repo, tag = split_image(image)
    if not tag:
        return ImageCheck(image, None, "the image has no tag")
    ecr = ECR_HOST.fullmatch(host)
    if ecr and host not in endpoints.registries:
        return _ecr_check(clients, image, ecr["account"], ecr["region"], repo, tag)
    return _oci_check(endpoints, image, host, repo, tag)
