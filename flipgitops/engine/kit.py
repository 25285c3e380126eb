"""`flipgitops kit`: one trust's kit as a 0600 archive, for a TRE or an out-of-band hand-off.

FLIP's own procedure is `deploy/providers/AWS/scripts/package-onprem-trust-kit.sh`
(@43910fb5, @d8aab2c1): it stages the trust's kit file and the slot's slice of the FL kit
bucket, then `tar -czf` them into one archive it chmods 600:

    .env.<kit>                                        (0600)
    fl-kit/net-1/services/<slot>/{startup,local,transfer}/…   (nvflare)
    fl-kit/net-1/certificates/…, fl-kit/net-1/keys/supernode_credentials_<N>   (flower)

Here the kit file is named as hosts have it (`.env.<CODE>.<env token>`, FLIP's current
naming: register-trusts.sh@03bb6813, env_mode.mk@82d7ede5) and rendered by
`core/kitfile.render` from the escrow (FLIP's kit JSON), the trust-local credentials and the
hub's AES key, exactly as `host.write_kit_file` renders it for a host; the FL kit is the
slice the kit-source port fetches for `host.deliver_fl_kit`, with the modes a host gets. So
the archive holds byte for byte what an onboarded host holds.

Secrets: the archive is built in memory first (every read and check can fail without a file
existing), then written to a file created 0600 with O_EXCL (no temp file, nothing wider
than 0600 ever exists); a failed write removes the file it created. Without ``force`` an
existing file is never touched.
"""

from __future__ import annotations

import errno
import io
import os
import stat
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from flipgitops.core import kitfile
from flipgitops.engine.executors import SecretCache
from flipgitops.engine.host_executors import (
    kit_slot,
    local_credentials_missing,
    trust_local_credentials,
)
from flipgitops.engine.manifests import load_env
from flipgitops.engine.ports import Ports
from flipgitops.engine.ports_hosts import FlKitSlice
from flipgitops.engine.wiring import Wiring
from flipgitops.errors import FlipGitopsError
from flipgitops.model import flip
from flipgitops.model.kit import EscrowedKit, LocalCredentials
from flipgitops.model.manifest import Manifest, Trust

Status = Callable[[str], None]

ARCHIVE_MODE = 0o600
KIT_FILE_MODE = 0o600
DIR_MODE = 0o755
FL_KIT_ROOT = flip.FL_KIT_SUBDIR  # `fl-kit/` in FLIP's archive


class KitExportError(FlipGitopsError):
    """The kit cannot be exported; the message names the trust and what to do."""


def run_kit(env: str, *, trust: str, out: Path, force: bool, status: Status) -> Path:
    """Write ``trust``'s kit archive to ``out`` (0600); the path written."""
    manifest, path = load_env(env)
    target = _trust(manifest, trust)
    out = Path(out)
    _check_out(out, force)
    wiring = Wiring.for_manifest(manifest, path)
    ports = wiring.ports()
    status(f"reading {target.name}'s escrowed kit...")
    held = _escrowed(ports, manifest, target)
    try:
        slot, number = kit_slot(held, target.name)
    except ValueError as exc:
        raise KitExportError(str(exc)) from None
    local = _local(wiring, ports, manifest, target, status)
    hub = manifest.hub
    status(f"fetching the FL kit of {slot} ({hub.fl_backend}, {hub.fl_kits.date}) from "
           f"s3://{hub.fl_kits.bucket}...")
    fl_kit = ports.kits.fetch(hub.fl_kits.bucket, hub.fl_kits.date, hub.fl_backend, slot,
                              number)
    try:
        text = kitfile.render(manifest, target, kit=held.kit, local=local,
                              aes_key=ports.hub.read_aes_key())
    except kitfile.KitFileError as exc:
        raise KitExportError(str(exc)) from None
    name = flip.kit_file_name(target.code, manifest.environment)
    data = archive(name, text.encode("utf-8"), fl_kit)
    write_private(out, data, force=force)
    return out


def _trust(manifest: Manifest, name: str) -> Trust:
    trust = manifest.trust(name)
    if trust is None:
        known = ", ".join(t.name for t in manifest.trusts) or "none"
        raise KitExportError(f"trust {name!r} is not in the {manifest.environment} manifest "
                             f"(its trusts: {known})")
    if trust.state == "decommissioned":
        raise KitExportError(f"{name} is decommissioned: it has no kit to hand off")
    return trust


def _check_out(out: Path, force: bool) -> None:
    """Refuse before any work: an existing file without --force, a directory, no parent."""
    if out.is_dir():
        raise KitExportError(f"--out {out} is a directory: name the archive file")
    if os.path.lexists(out) and not force:
        raise KitExportError(f"--out {out} already exists: pass --force to overwrite it")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise KitExportError(f"--out {out}: {parent} is not a directory; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise KitExportError(f"--out {out}: {parent} is not writable")


def _escrowed(ports: Ports, manifest: Manifest, trust: Trust) -> EscrowedKit:
    held = ports.escrow.read_kit(trust.name)
    env = manifest.environment
    if held is None:
        raise KitExportError(
            f"flipgitops holds no kit for {trust.name} in the {env} escrow: it is not "
            f"registered yet (run `flipgitops plan --env {env}`, then apply its "
            "registry.register) or it was adopted without its keys (rotate it with a "
            "credentials_generation bump so flipgitops holds them)")
    if not held.kit.has_credentials:
        raise KitExportError(
            f"the escrowed kit of {trust.name} holds no trust API key (adopted without its "
            "keys): bump its credentials_generation so flipgitops mints and holds them")
    return held


def _local(wiring: Wiring, ports: Ports, manifest: Manifest, trust: Trust, status: Status
           ) -> LocalCredentials:
    """The trust-local credentials; minting them (first hand-off of a TRE) writes the
    escrow, so it happens under the environment's lock, like an apply."""
    region = manifest.aws.region
    if not local_credentials_missing(ports, trust):
        return trust_local_credentials(ports, trust, region=region, cache=SecretCache())
    status(f"minting {trust.name}'s trust-local credentials (escrowed before the archive "
           "is written)...")
    run_id = wiring.acquire_lock()
    try:
        return trust_local_credentials(ports, trust, region=region, cache=SecretCache())
    finally:
        problem = wiring.release_lock(run_id)
        if problem:
            status(f"warning: {problem}")


def archive(kit_file_name: str, kit_file: bytes, fl_kit: FlKitSlice, *,
            mtime: float | None = None) -> bytes:
    """The tar.gz package-onprem-trust-kit.sh makes, in memory: the kit file (0600) and
    `fl-kit/net-1/…` with the modes a host gets (directories 0755, local/ and transfer/
    present and empty for nvflare)."""
    when = int(time.time() if mtime is None else mtime)
    buf = io.BytesIO()
    seen: set[str] = set()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, kit_file_name, kit_file, KIT_FILE_MODE, when, owner=0)

        def directory(rel: str) -> None:
            parts = rel.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                name = "/".join(parts[:i])
                if name not in seen:
                    seen.add(name)
                    _add(tar, name, None, DIR_MODE, when, owner=flip.FL_KIT_OWNER_UID)

        net1 = f"{FL_KIT_ROOT}/net-1"
        directory(net1)
        for item in sorted(fl_kit.files, key=lambda f: f.path):
            member = f"{net1}/{item.path}"
            directory(member.rsplit("/", 1)[0])
            _add(tar, member, item.data, item.mode, when, owner=flip.FL_KIT_OWNER_UID)
        for rel in fl_kit.dirs:
            directory(f"{net1}/{rel}")
    return buf.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes | None, mode: int, when: int, *,
         owner: int) -> None:
    info = tarfile.TarInfo(name)
    info.mode = mode
    info.mtime = when
    info.uid = info.gid = owner
    info.uname = info.gname = ""
    if data is None:
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def write_private(out: Path, data: bytes, *, force: bool) -> None:
    """Create ``out`` 0600 (O_EXCL: never through a symlink, never another's file) and write
    ``data``; with ``force`` an existing file (or symlink) is removed first. A failed write
    removes the file it created."""
    if force:
        try:
            info = os.lstat(out)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISDIR(info.st_mode):
                raise KitExportError(f"--out {out} is a directory: name the archive file")
            os.unlink(out)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(out, flags, ARCHIVE_MODE)
    except FileExistsError:
        raise KitExportError(f"--out {out} already exists: pass --force to overwrite it") \
            from None
    except OSError as exc:
        raise KitExportError(f"--out {out}: cannot create it ({exc.strerror or exc})") from None
    try:
        os.fchmod(fd, ARCHIVE_MODE)  # exactly 0600, whatever the umask
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    except BaseException as exc:
        os.close(fd)
        os.unlink(out)
        if isinstance(exc, OSError):
            reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
            raise KitExportError(f"--out {out}: writing failed ({reason}); nothing was "
                                 "left behind") from None
        raise
    os.close(fd)
