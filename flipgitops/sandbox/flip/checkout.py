"""A FLIP checkout: a real git repository shaped like londonaicentre/FLIP, with two releases.

`make_flip_checkout(path)` builds it with real git (GitPython): FLIP's `trust/` directory
(the four production compose files, the kit template, the observability config, a Makefile
placeholder, FLIP's .gitignore), a few files outside `trust/` that a trust host must never
receive, two annotated tags (`v2.3.0`, `v2.4.0`; flip_files.py says how they differ), and, in
the work tree only, what an operator's checkout also holds: an ignored live kit file
(`trust/.env.GSTT.production`, fake values, 0600), an ignored data dir and an untracked note.

`render_kit` writes a kit the way FLIP's tooling does: scripts/new_trust.py@17ae2fae's
identity block, then trust/.env.example with each key set in place (trust_kit_lib.upsert@
17ae2fae: a key already in the file is replaced where it stands, a new key is appended).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import git

from flipgitops.sandbox.flip import flip_files as ff

KIT_CODE: Final = "GSTT"
KIT_NAME: Final = "Trust_1"
KIT_FILE: Final = f"trust/.env.{KIT_CODE}.production"
# The trust/ paths whose content differs between the two releases.
CHANGED_PATHS: Final = (
    "trust/deploy/compose_trust.production.nvflare.yml",
    "trust/observability/alloy/config.alloy",
)
COMMON_COMPOSE: Final = "deploy/compose_trust.production.yml"
GPU_COMPOSE: Final = "deploy/compose_trust.production.gpu.yml"


@dataclass(frozen=True)
class FlipCheckout:
    """Where the checkout is, its releases (tag -> commit) and what git does not track."""

    root: Path
    trust_dir: Path
    tags: dict[str, str]
    head: str
    kit_file: Path
    untracked: tuple[Path, ...]
    changed: tuple[str, ...] = CHANGED_PATHS

    @property
    def tag_names(self) -> tuple[str, str]:
        return ff.TAG_OLD, ff.TAG_NEW

    def compose_files(self, backend: str = "nvflare", gpu: bool = False) -> list[Path]:
        """The -f files trust/Makefile@0046dc28 passes, in its order (paths under trust/)."""
        files = [COMMON_COMPOSE, f"deploy/compose_trust.production.{backend}.yml"]
        if gpu:
            files.append(GPU_COMPOSE)
        return [self.trust_dir / f for f in files]


def release_files(tag: str) -> dict[str, str]:
    """Every tracked file of one release: repository path -> text."""
    new = tag == ff.TAG_NEW
    files = {
        "README.md": ff.readme(tag),
        "Makefile": ff.ROOT_MAKEFILE,
        "deploy/fl_backend.mk": ff.FL_BACKEND_MK,
        "flip-api/README.md": ff.FLIP_API_README,
        "flip-api/src/flip_api/__init__.py": ff.FLIP_API_INIT,
        "trust/.gitignore": ff.TRUST_GITIGNORE,
        "trust/.env.example": ff.ENV_EXAMPLE,
        "trust/Makefile": ff.TRUST_MAKEFILE,
        f"trust/{COMMON_COMPOSE}": ff.BASE_COMPOSE,
        "trust/deploy/compose_trust.production.nvflare.yml":
            ff.NVFLARE_COMPOSE_NEW if new else ff.NVFLARE_COMPOSE_OLD,
        "trust/deploy/compose_trust.production.flower.yml": ff.FLOWER_COMPOSE,
        f"trust/{GPU_COMPOSE}": ff.GPU_COMPOSE,
    }
    observability = ff.OBSERVABILITY_NEW if new else ff.OBSERVABILITY_OLD
    files.update({f"trust/observability/{k}": v for k, v in observability.items()})
    return files


def fake_kit_values(**overrides: str) -> dict[str, str]:
    """A registered kit's managed values, fake and recognisable (`fake-…`, *.example)."""
    values = {
        "XNAT_DATASOURCE_PASSWORD": "fake-xnat-datasource-password",
        "XNAT_DATASOURCE_ADMIN_PASSWORD": "fake-xnat-datasource-admin-password",
        "XNAT_ACTIVEMQ_PASSWORD": "fake-xnat-activemq-password",
        "AES_KEY_BASE64": base64.b64encode(b"fake-stand-in-aes-key-32-bytes!!").decode(),
        "CENTRAL_HUB_API_URL": "https://hub.flip.example/api",
        "TRUST_API_KEY_HEADER": "X-Trust-API-Key",
        "FL_BACKEND": "nvflare",
        "FLOWER_KIT_DATE": "20250101",
        "FLARE_KIT_DATE": "20250101",
        "DOCKER_TAG": ff.TAG_NEW,
        "DOCKER_REGISTRY": "ghcr.io/londonaicentre/",
        "DOCKER_FL_TAG": ff.TAG_NEW,
        "DOCKER_FL_REGISTRY": "ghcr.io/londonaicentre/",
        "NLB_SUBDOMAIN": "fl.flip.example",
        "FL_SERVER_PORT": "8002",
        "TRUST_API_KEY": "fake-trust-api-key-0000000000000000000000000",
        "TRUST_INTERNAL_SERVICE_KEY": "fake-internal-service-key-000000000000000000",
        "FL_KIT_SLOT": "Trust_1",
        "FL_KIT_SLOT_NUMBER": "1",
        "EXPECTED_TRUST_ID": "00000000-0000-4000-8000-000000000001",
    }
    values.update(overrides)
    return values


def render_kit(values: Mapping[str, str], *, name: str = KIT_NAME, code: str = KIT_CODE,
               region: str | None = None, template: str = ff.ENV_EXAMPLE) -> str:
    """A kit file's text: identity block, then the template with `values` upserted."""
    identity = ["# ── Trust identity (sent to the hub by `make register-trust`) ──",
                f"TRUST_NAME={name}", f"TRUST_CODE={code}"]
    if region:
        identity.append(f"TRUST_REGION={region}")
    identity.append("")
    lines = template.splitlines()
    for key, value in values.items():
        hits = [i for i, line in enumerate(lines)
                if not line.lstrip().startswith("#") and line.split("=", 1)[0] == key]
        for i in hits:
            lines[i] = f"{key}={value}"
        if not hits:
            lines.append(f"{key}={value}")
    return "\n".join(identity) + "\n" + "\n".join(lines) + "\n"


def write_kit(path: Path, text: str) -> Path:
    """Write a kit file at 0600 (FLIP's KIT_FILE_MODE, trust_kit_lib.py@17ae2fae)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.truncate(0)
        handle.write(text)
    return path


class CheckoutError(Exception):
    """The target directory cannot hold a new checkout."""


def make_flip_checkout(path: Path) -> FlipCheckout:
    """Create the FLIP-shaped repository at `path` (absent or empty); HEAD is v2.4.0."""
    root = path.expanduser().resolve()
    if root.exists() and any(root.iterdir()):
        raise CheckoutError(f"{root} is not empty; give make_flip_checkout a new directory")
    root.mkdir(parents=True, exist_ok=True)
    repo = git.Repo.init(root, initial_branch="main")
    with repo.config_writer() as config:
        config.set_value("user", "name", "FLIP stand-in")
        config.set_value("user", "email", "standin@flip.invalid")
        config.set_value("commit", "gpgsign", "false")
        config.set_value("tag", "gpgsign", "false")
    tags: dict[str, str] = {}
    for tag in (ff.TAG_OLD, ff.TAG_NEW):
        for rel, text in release_files(tag).items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        repo.git.add("-A")
        repo.git.add("-f", "trust/.env.example")  # tracked although .env.* is ignored
        repo.git.commit("-m", f"FLIP {tag} (stand-in release)")
        repo.create_tag(tag, message=f"FLIP {tag}")
        tags[tag] = repo.tags[tag].commit.hexsha
    trust = root / "trust"
    kit = write_kit(root / KIT_FILE, render_kit(fake_kit_values()))
    data = trust / "data" / "trust" / "README.txt"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text("images downloaded from XNAT land here (ignored by trust/.gitignore)\n")
    notes = trust / "operator-notes.txt"
    notes.write_text("an operator's scratch file: untracked, not ignored\n")
    return FlipCheckout(root=root, trust_dir=trust, tags=tags, head=repo.head.commit.hexsha,
                        kit_file=kit, untracked=(kit, data, notes))
