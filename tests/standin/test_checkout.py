"""The FLIP checkout: a real repository shaped like FLIP, two releases, untracked operator files."""

from __future__ import annotations

import stat
from pathlib import Path

import git
import pytest
from standin_helpers import SERVICES

from flipgitops.sandbox.flip.checkout import (
    CheckoutError,
    FlipCheckout,
    fake_kit_values,
    make_flip_checkout,
    render_kit,
)
from flipgitops.sandbox.flip.compose import load_project

# trust/.env.example@01292201, listed from FLIP's file, independently of the stand-in's copy.
FLIP_SECTIONS = [
    "# ── Host-local profile ",
    "# ── Trust-local credentials ",
    "# ── Hub-shared (managed by register-trust / sync-trust-kits — do not edit) ──",
    "# ── Kit credentials (managed) ",
]
FLIP_KEYS = [
    "OMOP_DB_PORT", "PACS_UI_PORT", "XNAT_PORT", "TRUST_DEBUG_PORT", "IMAGING_DEBUG_PORT",
    "DATA_ACCESS_DEBUG_PORT", "GRAFANA_PORT", "LOKI_PORT", "ORTHANC_STORAGE_DIR",
    "BASE_IMAGES_DOWNLOAD_DIR", "XNAT_DATA_DIR", "FL_KIT_DIR", "AICENTRE_BUCKET_NAME",
    "ORTHANC_USERNAME", "ORTHANC_PASSWORD", "OMOP_POSTGRES_USER", "OMOP_POSTGRES_PASSWORD",
    "OMOP_POSTGRES_DB", "OMOP_DB_TAG", "DATA_ACCESS_POSTGRES_USER",
    "DATA_ACCESS_POSTGRES_PASSWORD", "COHORT_QUERY_THRESHOLD", "XNAT_ADMIN_USER",
    "XNAT_ADMIN_INITIAL_PASSWORD", "XNAT_ADMIN_PASSWORD", "XNAT_SERVICE_USER",
    "XNAT_SERVICE_PASSWORD", "XNAT_DATASOURCE_PASSWORD", "XNAT_DATASOURCE_ADMIN_PASSWORD",
    "XNAT_ACTIVEMQ_PASSWORD", "DATA_ACCESS_API_URL", "IMAGING_API_URL",
    "TRUST_INTERNAL_SERVICE_KEY_HEADER", "GRAFANA_ADMIN_PASSWORD", "PACS_DICOM_PORT",
    "POLL_INTERVAL_SECONDS", "DATA_ACCESS_API_PORT", "IMAGING_API_PORT", "TRUST_API_PORT",
    "TRUST_LOG_LEVEL", "NUM_AVAILABLE_GPUS", "MEMORY_PER_GPU_IN_GIB", "MIN_CLIENTS",
    "AES_KEY_BASE64", "CENTRAL_HUB_API_URL", "TRUST_API_KEY_HEADER", "FL_BACKEND",
    "FLOWER_KIT_DATE", "FLARE_KIT_DATE", "DOCKER_TAG", "DOCKER_REGISTRY", "DOCKER_FL_TAG",
    "DOCKER_FL_REGISTRY", "NLB_SUBDOMAIN", "FL_SERVER_PORT", "TRUST_API_KEY",
    "TRUST_INTERNAL_SERVICE_KEY", "FL_KIT_SLOT", "FL_KIT_SLOT_NUMBER", "EXPECTED_TRUST_ID",
]


def _git(checkout: FlipCheckout, *args: str) -> str:
    return str(git.Repo(checkout.root).git.execute(["git", *args]))


def test_two_tags_whose_trust_dirs_differ(checkout: FlipCheckout) -> None:
    old, new = checkout.tag_names
    assert set(checkout.tags) == {old, new} == {"v2.3.0", "v2.4.0"}
    assert checkout.tags[old] != checkout.tags[new]
    assert _git(checkout, "rev-parse", f"{new}^{{commit}}") == checkout.tags[new] == checkout.head
    changed = _git(checkout, "diff", "--name-only", old, new, "--", "trust/").splitlines()
    assert sorted(changed) == sorted(checkout.changed)
    nv = "trust/deploy/compose_trust.production.nvflare.yml"
    assert "${FL_SITE_PRIVACY_POLICY:-}" in _git(checkout, "show", f"{new}:{nv}")
    assert "FL_SITE_PRIVACY_POLICY" not in _git(checkout, "show", f"{old}:{nv}")
    assert "MIN_CLIENTS=${MIN_CLIENTS}" in _git(checkout, "show", f"{old}:{nv}")


def test_only_the_template_is_tracked_the_live_kit_is_not(checkout: FlipCheckout) -> None:
    tracked = _git(checkout, "ls-files", "trust/").splitlines()
    assert "trust/.env.example" in tracked
    assert not [p for p in tracked if p.startswith("trust/.env.") and p != "trust/.env.example"]
    assert checkout.kit_file.is_file()
    assert stat.S_IMODE(checkout.kit_file.stat().st_mode) == 0o600
    rel = str(checkout.kit_file.relative_to(checkout.root))
    assert rel not in tracked
    assert _git(checkout, "check-ignore", rel) == rel
    others = _git(checkout, "ls-files", "--others", "--exclude-standard", "trust/").splitlines()
    assert others == ["trust/operator-notes.txt"]
    for path in checkout.untracked:
        assert path.exists()
        assert str(path.relative_to(checkout.root)) not in tracked
    outside = _git(checkout, "ls-files").splitlines()
    assert "flip-api/src/flip_api/__init__.py" in outside and "deploy/fl_backend.mk" in outside


def test_the_kit_template_has_flips_sections_keys_and_placeholders(
        checkout: FlipCheckout) -> None:
    lines = (checkout.trust_dir / ".env.example").read_text(encoding="utf-8").splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("# ── ")]
    assert [lines[i][: len(h)] for i, h in zip(headers, FLIP_SECTIONS, strict=True)] == \
        FLIP_SECTIONS
    keys = [line.split("=", 1)[0] for line in lines if line and not line.startswith("#")]
    assert keys == FLIP_KEYS
    managed = lines[headers[2] + 1:]
    placeholders = [line.split("=", 1)[1] for line in managed if line and line[0] != "#"]
    assert set(placeholders) == {"<run-make-register-trust>"} and len(placeholders) == 17


def test_render_kit_prepends_identity_and_upserts_in_place(checkout: FlipCheckout) -> None:
    text = render_kit(fake_kit_values(TRUST_API_KEY="k1", OBSERVABILITY_CONFIG_DIR="/x"),
                      name="St Thomas'", code="GSTT")
    lines = text.splitlines()
    assert lines[1:3] == ["TRUST_NAME=St Thomas'", "TRUST_CODE=GSTT"]
    assert "<run-make-" not in text
    assert lines.count("TRUST_API_KEY=k1") == 1
    assert lines.index("TRUST_API_KEY=k1") < lines.index("FL_KIT_SLOT=Trust_1")
    assert lines[-1] == "OBSERVABILITY_CONFIG_DIR=/x"


def test_compose_files_carry_flips_services(checkout: FlipCheckout) -> None:
    env = {"TRUST_NETWORK_NAME": "n", "DOCKER_FL_CLIENT_NAME": "flare-fl-client",
           "TRUST_NAME": "Trust_1"}
    for backend in ("nvflare", "flower"):
        project = load_project(checkout.compose_files(backend), [checkout.kit_file],
                               checkout.trust_dir, "trust1", env)
        assert set(project.services) == SERVICES
        assert project.default_network() == ("n", True)
    project = load_project(checkout.compose_files("flower"), [checkout.kit_file],
                           checkout.trust_dir, "trust1", env)
    command = project.services["fl-client-net-1"]["command"]
    assert "fl.flip.example:8002" in command and "/keys/supernode_credentials_1" in command


def test_a_used_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "junk").write_text("x")
    with pytest.raises(CheckoutError, match="not empty"):
        make_flip_checkout(tmp_path)
