"""What an operator sees and does on a sandbox's trust hosts, for the end-to-end tests.

Everything here reads the host the way a person would: files under `<flip_root>`, the
stand-in daemon's own records (`projects/<project>.json`), `docker compose logs`, git for
FLIP's checkout; and acts the way FLIP's own procedures do (trust/Makefile@0046dc28's
up-trust / down-trust command lines, chmod, an editor). Nothing here imports flipgitops'
core or engine: a helper that shared flipgitops' rules could agree with a wrong one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from flipgitops.sandbox.environment import REGION, Run, Sandbox
from flipgitops.sandbox.flip.procedures import FL_BACKEND_EXPORTS
from flipgitops.sandbox.moto_server import SANDBOX_ENV
from tests.leaksearch import grep_tree

# deploy/fl_backend.mk@2941e84d: what trust/Makefile exports to compose for each backend
# (one table, the stand-in FLIP's, which plays FLIP's Makefile).
BACKEND_EXPORTS = FL_BACKEND_EXPORTS


@dataclass
class Operator:
    """One sandbox seen from outside: every CLI run is kept for the leak search."""

    box: Sandbox
    runs: list[tuple[tuple[str, ...], Run]] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    timings: list[tuple[str, float]] = field(default_factory=list)

    def cli(self, *args: str, expect: int | Iterable[int] | None = None) -> Run:
        t0 = time.monotonic()
        run = self.box.cli(*args)
        self.timings.append((" ".join(args[:3]), time.monotonic() - t0))
        self.runs.append((args, run))
        if expect is not None:
            wanted = {expect} if isinstance(expect, int) else set(expect)
            assert run.code in wanted, (f"flipgitops {' '.join(args)} exited {run.code}, "
                                        f"wanted {sorted(wanted)}:\n{run.text[-6000:]}")
        return run

    def json(self, *args: str, expect: int | Iterable[int] | None = None) -> dict[str, Any]:
        run = self.cli(*args, "--format", "json", expect=expect)
        data = json.loads(run.out)
        assert isinstance(data, dict)
        return data

    # -- the manifest ------------------------------------------------------------------------

    def edit_manifest(self, message: str, **changes: Any) -> None:
        """Edit environments/<env>.yaml like a pull request would, and commit it."""
        doc = _yaml_load(self.box.manifest_path)
        for dotted, value in changes.items():
            node = doc
            *parents, leaf = dotted.split("__")
            for part in parents:
                node = node[int(part)] if isinstance(node, list) else node[part]
            if isinstance(node, list):
                node[int(leaf)] = value
            else:
                node[leaf] = value
        self.box.write_manifest(doc, commit=message)

    # -- a host, as an operator reads it -----------------------------------------------------

    def trust_dir(self, trust: str) -> Path:
        return self.box.flip_root(trust) / "trust"

    def kit_file(self, trust: str, code: str) -> Path:
        return self.trust_dir(trust) / f".env.{code}.development"

    def project(self, trust: str, project: str) -> dict[str, Any]:
        path = self.box.daemon_dir(trust) / "projects" / f"{project}.json"
        data = json.loads(path.read_text())
        assert isinstance(data, dict)
        return data

    def projects(self, trust: str) -> list[str]:
        d = self.box.daemon_dir(trust) / "projects"
        return sorted(p.stem for p in d.glob("*.json")
                      if json.loads(p.read_text()).get("containers"))

    def containers(self, trust: str, project: str) -> dict[str, dict[str, Any]]:
        return dict(self.project(trust, project)["containers"])

    def container_ids(self, trust: str, project: str) -> dict[str, str]:
        return {s: c["id"] for s, c in self.containers(trust, project).items()}

    def docker(self, trust: str, *args: str, cwd: Path | None = None,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """The host's container CLI (the stand-in), as the manifest names it."""
        argv = [*shlex.split(self.box.docker(trust)), *args]
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("AWS_", "FLIPGITOPS_"))}
        return subprocess.run(argv, cwd=cwd or self.trust_dir(trust), env={**base, **(env or {})},
                              capture_output=True, text=True, timeout=120, check=False)

    def logs(self, trust: str, project: str, service: str) -> str:
        proc = self.docker(trust, "compose", "-p", project, "logs", "--no-log-prefix", service)
        assert proc.returncode == 0, proc.stderr
        return proc.stdout + proc.stderr

    def wait_log(self, trust: str, project: str, service: str, text: str,
                 timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            out = self.logs(trust, project, service)
            if text in out:
                return out
            if time.monotonic() > deadline:
                raise AssertionError(f"{service} of {trust} never logged {text!r}:\n{out[-3000:]}")
            time.sleep(0.5)

    def flip_make(self, trust: str, code: str, action: str, *, number: int,
                  backend: str = "nvflare", kit: Path | None = None,
                  project: str | None = None) -> subprocess.CompletedProcess[str]:
        """trust/Makefile@0046dc28's up-trust / down-trust command line, run by hand in
        `<flip_root>/trust` with the host's container CLI (PROD, no GPU overlay, no
        Trust_1 override file in the checkout)."""
        values = kit_values(kit or self.kit_file(trust, code))
        env = {"TRUST_NETWORK_NAME": f"deploy_trust-network-{number}",
               "TRUST_NUMBER": str(number),
               "TRUST_NAME": values.get("TRUST_NAME") or values.get("FL_KIT_SLOT") or code,
               **BACKEND_EXPORTS[backend],
               "DOCKER_FL_REGISTRY": values.get("DOCKER_FL_REGISTRY",
                                                values.get("DOCKER_REGISTRY", "")),
               "DOCKER_GID": str(os.getgid())}
        args = ["compose", "--env-file", str(kit or self.kit_file(trust, code).name),
                "--project-directory", ".", "-f", "deploy/compose_trust.production.yml",
                "-f", f"deploy/compose_trust.production.{backend}.yml",
                "-p", project or f"trust{number}"]
        if action == "up":
            env["DEBUG"] = ""
            args += ["up", "-d"] + (["--pull", "always"] if env["DOCKER_FL_REGISTRY"] else [])
        else:
            args += ["down", "--remove-orphans"]
        return self.docker(trust, *args, env=env)

    # -- what secrets exist -------------------------------------------------------------------

    def minted_secrets(self, *extra: str) -> list[str]:
        """Every secret value of this world: the hub's (AES, internal service key, keys FLIP
        registered) and everything in flipgitops' escrow (trust keys, trust-local
        credentials), read from SSM as an operator with AWS access would."""
        seed = self.box.seed
        out = [*extra]
        if seed is not None:
            out += [seed.aes_key, seed.internal_service_key, seed.admin_token,
                    *seed.trust_keys.values()]
        ssm = boto3.client("ssm", endpoint_url=self.box.moto.url, region_name=REGION,
                           **_creds())
        pages = ssm.get_paginator("get_parameters_by_path").paginate(
            Path=f"/flipgitops/{self.box.env_name}/", Recursive=True, WithDecryption=True)
        for page in pages:
            for p in page["Parameters"]:
                data = json.loads(p["Value"])
                out += [v for k, v in _leaves(data) if k not in (
                    "trust_id", "trust_name", "fl_kit_slot", "fl_kit_slot_number")]
        return sorted({s for s in out if isinstance(s, str) and len(s) >= 12})

    def assert_no_leaks(self, secrets: Sequence[str], *, allowed: Iterable[Path] = ()) -> None:
        """No secret in any CLI output, in any file of the sandbox but the allowed 0600 kit
        files, in flipgitops' S3 state (journals, ledger, records), in any Ansible private
        dir left behind, or in any process's argument list."""
        assert secrets, "no secrets to look for"
        encoded = [s.encode() for s in secrets]
        for args, run in self.runs:
            shown = [s for s in secrets if s in run.text]
            assert not shown, f"flipgitops {' '.join(args)} printed a secret"
        allowed = {p.resolve() for p in allowed}
        for hit in grep_tree(self.box.root, secrets):
            path = Path(hit)
            assert path.resolve() in allowed, f"a secret is in {path}"
            assert path.stat().st_mode & 0o077 == 0, f"{path} holds a secret and is " \
                f"{oct(path.stat().st_mode & 0o777)}"
        s3 = boto3.client("s3", endpoint_url=self.box.moto.url, region_name=REGION, **_creds())
        bucket = f"flip-gitops-state-{self.box.env_name}"
        keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                for o in page.get("Contents", [])]
        assert keys, "flipgitops wrote no state"
        for key in keys:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert not any(n in body for n in encoded), f"a secret is in s3://{bucket}/{key}"
        # Ansible private dirs (other runs on this machine may be removing theirs).
        for d in Path("/tmp").glob("flipgitops-ansible-*"):
            hits = grep_tree(d, secrets)
            assert not hits, f"an Ansible private dir holds a secret: {hits[0]}"
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            assert not any(n in cmdline for n in encoded), f"pid {proc.name}'s argv holds a secret"

    def report_timings(self) -> str:
        total = time.monotonic() - self.started
        lines = [f"  {t:6.1f}s  flipgitops {what}" for what, t in self.timings]
        return f"wall {total:.0f}s, {len(self.timings)} CLI runs:\n" + "\n".join(lines)


def _creds() -> dict[str, str]:
    return {"aws_access_key_id": SANDBOX_ENV["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": SANDBOX_ENV["AWS_SECRET_ACCESS_KEY"]}


def _leaves(data: Any, key: str = "") -> Iterable[tuple[str, Any]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _leaves(v, str(k))
    elif isinstance(data, list):
        for v in data:
            yield from _leaves(v, key)
    else:
        yield key, data


def _yaml_load(path: Path) -> Any:
    from ruamel.yaml import YAML

    return json.loads(json.dumps(YAML(typ="safe", pure=True).load(path.read_text())))


# -- files ---------------------------------------------------------------------------------------


def kit_values(path: Path) -> dict[str, str]:
    """KEY=value lines of a kit file, as `make -include` and `--env-file` read them."""
    out: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and "=" in line:
            k, _, v = line.partition("=")
            out[k.strip()] = v.strip()
    return out


def set_kit_value(path: Path, key: str, value: str) -> None:
    """An operator's editor: replace one line, keep the file's mode."""
    lines = path.read_text().splitlines()
    hits = [i for i, line in enumerate(lines) if line.startswith(f"{key}=")]
    assert hits, f"{key} not in {path}"
    for i in hits:
        lines[i] = f"{key}={value}"
    path.write_text("\n".join(lines) + "\n")


def drop_kit_value(path: Path, key: str, target: Path) -> None:
    """A copy of the kit file without ``key`` (0600, like FLIP's)."""
    lines = [line for line in path.read_text().splitlines() if not line.startswith(f"{key}=")]
    target.write_text("\n".join(lines) + "\n")
    target.chmod(0o600)


def git_blob_sha(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def git_trust_tree(checkout: Path, ref: str) -> dict[str, tuple[str, str]]:
    """`git ls-tree -r <ref> -- trust/`: path (relative to trust/) -> (git mode, blob id)."""
    out = subprocess.run(["git", "ls-tree", "-r", ref, "--", "trust/"], cwd=checkout,
                         capture_output=True, text=True, check=True).stdout
    tree: dict[str, tuple[str, str]] = {}
    for line in out.splitlines():
        meta, path = line.split("\t", 1)
        mode, _kind, sha = meta.split()
        tree[path[len("trust/"):]] = (mode, sha)
    return tree


def host_tree(root: Path, *, skip: Iterable[str] = ()) -> dict[str, tuple[str, str]]:
    """The host's files under ``root`` in git's terms: path -> (git mode, blob id)."""
    skipped = set(skip)
    tree: dict[str, tuple[str, str]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if rel in skipped or path.is_dir():
            continue
        if path.is_symlink():
            tree[rel] = ("120000", git_blob_sha(os.readlink(path).encode()))
            continue
        mode = "100755" if path.stat().st_mode & 0o100 else "100644"
        tree[rel] = (mode, git_blob_sha(path.read_bytes()))
    return tree


def file_tree(root: Path) -> dict[str, tuple[str, int, bytes | None]]:
    """Everything under ``root``: path -> (kind, mode, bytes)."""
    out: dict[str, tuple[str, int, bytes | None]] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        mode = path.stat().st_mode & 0o7777
        out[rel] = ("d", mode, None) if path.is_dir() else ("f", mode, path.read_bytes())
    return out


def bucket_slice(moto_url: str, bucket: str, prefix: str) -> dict[str, bytes]:
    """The objects under ``prefix``, keyed relative to it (folder markers skipped)."""
    s3 = boto3.client("s3", endpoint_url=moto_url, region_name=REGION, **_creds())
    out: dict[str, bytes] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            if not o["Key"].endswith("/"):
                out[o["Key"][len(prefix):]] = s3.get_object(Bucket=bucket, Key=o["Key"])[
                    "Body"].read()
    return out
