"""What the tests that drive a hub Terraform root share: the real binary (required in CI),
the S3 backend on moto as FLIP's Makefile `init` configures it, and a root's hash tree
(what "byte-identical" is checked against)."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

REGION = "eu-west-2"


def require_terraform() -> None:
    """Skip a Terraform test where no terraform binary is on PATH, except in CI (CI is set),
    which must run them: a skipped proof of the Terraform guards is no proof."""
    import pytest

    if shutil.which("terraform") is not None:
        return
    if os.environ.get("CI"):
        pytest.fail("CI is set, so the Terraform tests must run, but terraform is not on PATH")
    pytest.skip("terraform is not on PATH")


def s3_backend(moto_url: str, bucket: str, key: str, region: str = REGION) -> dict[str, str]:
    """`-backend-config` values for an S3 backend on moto: only this explicit endpoint may
    point Terraform at the emulator."""
    return {
        "bucket": bucket, "key": key, "region": region, "use_lockfile": "true",
        "endpoints": f'{{s3="{moto_url}"}}', "use_path_style": "true",
        "skip_credentials_validation": "true", "skip_requesting_account_id": "true",
        "skip_metadata_api_check": "true", "skip_region_validation": "true",
    }


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with its content hash ("dir" for a directory)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "dir" for p in sorted(root.rglob("*"))}
