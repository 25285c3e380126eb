"""`flipgitops kit`'s archive (FLIP's package-onprem-trust-kit layout) and its 0600 write."""

from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
from pathlib import Path

import pytest

from flipgitops.engine.kit import KitExportError, archive, write_private
from flipgitops.engine.ports_hosts import FlKitSlice, KitFile

KIT_NAME = ".env.GSTT.production"
KIT_TEXT = b"TRUST_NAME=Trust_1\nTRUST_API_KEY=not-a-real-key\n"


FED = b'{"client":{"fqsn":"Trust_1"}}'


def nvflare_slice() -> FlKitSlice:
    files = (
        KitFile("services/Trust_1/startup/fed_client.json", 0o644, FED),
        KitFile("services/Trust_1/startup/client.key", 0o600, b"PRIVATE"),
        KitFile("services/Trust_1/startup/start.sh", 0o755, b"#!/bin/sh\n"),
        KitFile("services/Trust_1/local/log_config.json.default", 0o644, b"{}"),
    )
    return FlKitSlice(backend="nvflare", date="2025-06-01", slot="Trust_1", slot_number=1,
                      source="s3://b/p", fingerprint="f", files=files,
                      dirs=("services/Trust_1/local", "services/Trust_1/transfer"))


def members(data: bytes) -> dict[str, tuple[str, int, bytes | None]]:
    out: dict[str, tuple[str, int, bytes | None]] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for m in tar.getmembers():
            body = tar.extractfile(m).read() if m.isfile() else None  # type: ignore[union-attr]
            out[m.name] = ("d" if m.isdir() else "f", m.mode, body)
    return out


def test_the_archive_is_flips_layout_with_a_hosts_modes() -> None:
    got = members(archive(KIT_NAME, KIT_TEXT, nvflare_slice(), mtime=0))
    slot = "fl-kit/net-1/services/Trust_1"
    assert got == {
        KIT_NAME: ("f", 0o600, KIT_TEXT),
        "fl-kit": ("d", 0o755, None),
        "fl-kit/net-1": ("d", 0o755, None),
        "fl-kit/net-1/services": ("d", 0o755, None),
        slot: ("d", 0o755, None),
        f"{slot}/local": ("d", 0o755, None),
        f"{slot}/local/log_config.json.default": ("f", 0o644, b"{}"),
        f"{slot}/startup": ("d", 0o755, None),
        f"{slot}/startup/client.key": ("f", 0o600, b"PRIVATE"),
        f"{slot}/startup/fed_client.json": ("f", 0o644, FED),
        f"{slot}/startup/start.sh": ("f", 0o755, b"#!/bin/sh\n"),
        f"{slot}/transfer": ("d", 0o755, None),
    }
    # The kit file comes first, as `tar -czf … .env.<kit> fl-kit` lists it.
    with tarfile.open(fileobj=io.BytesIO(archive(KIT_NAME, KIT_TEXT, nvflare_slice())),
                      mode="r:gz") as tar:
        assert tar.getnames()[0] == KIT_NAME


def test_a_flower_archive_holds_the_ca_and_the_slots_credentials_only() -> None:
    kit = FlKitSlice(backend="flower", date="2025-06-01", slot="Trust_3", slot_number=3,
                     source="s3://b/p", fingerprint="f", files=(
                         KitFile("certificates/ca.crt", 0o644, b"CA"),
                         KitFile("keys/supernode_credentials_3", 0o640, b"KEY")))
    got = members(archive(KIT_NAME, KIT_TEXT, kit))
    assert sorted(n for n, (kind, _, _) in got.items() if kind == "f") == [
        KIT_NAME, "fl-kit/net-1/certificates/ca.crt", "fl-kit/net-1/keys/supernode_credentials_3"]
    assert got["fl-kit/net-1/keys/supernode_credentials_3"][1] == 0o640


def test_write_private_creates_0600_whatever_the_umask(tmp_path: Path) -> None:
    out = tmp_path / "kit.tar.gz"
    old = os.umask(0)
    try:
        write_private(out, b"secret bytes", force=False)
    finally:
        os.umask(old)
    assert out.read_bytes() == b"secret bytes"
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


def test_write_private_never_overwrites_without_force(tmp_path: Path) -> None:
    out = tmp_path / "kit.tar.gz"
    out.write_bytes(b"the operator's earlier export")
    with pytest.raises(KitExportError, match="already exists: pass --force"):
        write_private(out, b"new", force=False)
    assert out.read_bytes() == b"the operator's earlier export"
    out.chmod(0o644)
    write_private(out, b"new", force=True)
    assert out.read_bytes() == b"new" and stat.S_IMODE(out.stat().st_mode) == 0o600


def test_write_private_never_writes_through_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    link = tmp_path / "kit.tar.gz"
    link.symlink_to(victim)
    with pytest.raises(KitExportError, match="already exists"):
        write_private(link, b"new", force=False)
    write_private(link, b"new", force=True)  # the link is replaced, its target untouched
    assert victim.read_text() == "keep me"
    assert not link.is_symlink() and link.read_bytes() == b"new"


def test_a_failed_write_leaves_nothing_behind(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "kit.tar.gz"

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(KitExportError, match="No space left on device"):
        write_private(out, b"secret", force=False)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KitExportError, match="is a directory"):
        write_private(tmp_path, b"x", force=True)
