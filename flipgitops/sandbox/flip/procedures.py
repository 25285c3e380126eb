"""A trust host set up by FLIP's own procedures, done the way FLIP's files do them.

What an operator following FLIP's guides leaves on a host, with no flipgitops anywhere (the
world `flipgitops adopt` takes over). Each step names the FLIP file it follows
(repository `londonaicentre/FLIP`):

1. a checkout of FLIP at a release tag (the on-prem guide runs `make up-onprem-trust` from a
   FLIP clone; package-onprem-trust-kit.sh@43910fb5 prints those steps);
2. the kit file `trust/.env.<CODE>.<ENV>`: scripts/new_trust.py@17ae2fae's identity block and
   trust/.env.example, then `make register-trust`'s distribute_trust_kits.py (the kit's
   credentials and metadata upserted in place, trust_kit_lib.py@17ae2fae), `make
   sync-trust-kit` (the hub-shared block from the hub's env file, sync_trust_kit.py@0f9d7800),
   `make generate-xnat-credentials` (the XNAT passwords, `secrets.token_urlsafe(32)`), and the
   operator's own host-local edits; written 0600 (write_secure);
3. the FL participant kit: flip_fl_kit/tasks/s3.yml@83e67f0e (wipe `net-1`, sync the slot's
   prefix, `mkdir -p local transfer`, assert `client.fqsn`);
4. the observability config: flip_observability_config (defaults@ec238414: five files);
5. swarm and networks: azure.yml@b53f1aa2's `docker swarm init --advertise-addr 127.0.0.1`,
   trust/Makefile@0046dc28's create-networks (`deploy_trust-network-1` and `-2`; a host
   whose slot number is above 2 needs its network made by hand, which is done here too);
6. the stack: trust/Makefile@0046dc28 `up-trust` (on-prem) or `up-trust-ec2` (aws), the
   same environment, files, project and flags, with the stand-in container CLI.

Independent of flipgitops on purpose (no import of its model, core, adapters or engine):
the FLIP names used here are copied from FLIP's files, so a mistake in flipgitops' copy
shows as a difference between what this module started and what flipgitops observes.

Not played: the Makefile's `update-omop-data` / `update-orthanc-data` prerequisites (data
restores), `check_omop_data_dir` (the stand-in runs no database), XNAT's swarm stack, and
trust/Makefile's Trust_1 override file, which the stand-in checkout does not ship (the
Makefile would pass `-f deploy/compose_trust-1_override.yml` for FL_KIT_SLOT=Trust_1; it is
passed here only when the file exists).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flipgitops.sandbox.flip.checkout import render_kit, write_kit

# deploy/env_mode.mk@82d7ede5 / trust/Makefile@0046dc28: PROD=true -> ENV production,
# PROD=stag -> ENV stag (both use the production compose files). PROD unset means the
# development compose files, which the stand-in checkout does not have.
ENV_TOKENS = {"prod": "production", "stag": "stag"}
# deploy/fl_backend.mk@2941e84d
FL_BACKEND_EXPORTS = {
    "nvflare": {"DOCKER_FL_API_NAME": "flare-fl-api", "DOCKER_FL_SERVER_NAME": "flare-fl-server",
                "DOCKER_FL_CLIENT_NAME": "flare-fl-client",
                "FL_PROVISIONED_DIR": "fl-services/nvflare/provision/workspace-dev",
                "FL_JOBS_DIR": "jobs"},
    "flower": {"DOCKER_FL_API_NAME": "flower-fl-api", "DOCKER_FL_SERVER_NAME": "flower-superlink",
               "DOCKER_FL_CLIENT_NAME": "flower-supernode",
               "FL_PROVISIONED_DIR": "fl-services/flower/provision/creds", "FL_JOBS_DIR": "jobs"},
}
# generate_xnat_credentials (PASSWORD_VARS)
XNAT_PASSWORD_VARS = ("XNAT_DATASOURCE_PASSWORD", "XNAT_DATASOURCE_ADMIN_PASSWORD",
                      "XNAT_ACTIVEMQ_PASSWORD")
# scripts/trust_kit_lib.py@17ae2fae field map (kit JSON -> kit file)
KIT_FIELDS = (("TRUST_API_KEY", "trust_api_key"),
              ("TRUST_INTERNAL_SERVICE_KEY", "trust_internal_service_key"),
              ("EXPECTED_TRUST_ID", "trust_id"), ("FL_KIT_SLOT", "fl_kit_slot"),
              ("FL_KIT_SLOT_NUMBER", "fl_kit_slot_number"))
# flip_observability_config/defaults@ec238414
OBSERVABILITY_FILES = ("alloy/config.alloy", "loki/loki-config.yml",
                       "grafana/provisioning/datasources/loki.yml",
                       "grafana/provisioning/dashboards/dashboards.yml",
                       "grafana/provisioning/dashboards/trust-apis.json")
TRUST1_OVERRIDE = "deploy/compose_trust-1_override.yml"
LOG_AUTHENTICATED = "Authenticated to hub as trust"  # task_poller.py@03dc1c54
LOG_UNAUTHORIZED = "Unexpected status 401 polling for tasks"


class ProcedureError(Exception):
    """A FLIP procedure failed here (the message names the step and the command)."""


def _run(argv: Sequence[str], *, cwd: Path | None = None,
         env: Mapping[str, str] | None = None, timeout: float = 120) -> str:
    proc = subprocess.run(list(argv), cwd=cwd, env=dict(env) if env is not None else None,
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ProcedureError(f"`{' '.join(argv[:4])} …` failed ({proc.returncode}): {last}")
    return proc.stdout


# --- 1. FLIP at a release ------------------------------------------------------------------


def clone_release(checkout: Path, dest: Path, ref: str) -> Path:
    """`git clone <FLIP> <dest> && git checkout <ref>`; the trust directory is dest/trust."""
    if dest.exists() and any(dest.iterdir()):
        raise ProcedureError(f"{dest} is not empty")
    dest.parent.mkdir(parents=True, exist_ok=True)
    _run(["git", "clone", "--quiet", str(checkout), str(dest)])
    _run(["git", "-c", "advice.detachedHead=false", "checkout", "--quiet", ref], cwd=dest)
    return dest / "trust"


# --- 2. the kit file -------------------------------------------------------------------------


def kit_values(kit: Mapping[str, Any], hub_shared: Mapping[str, str],
               local: Mapping[str, str], edits: Mapping[str, str]) -> dict[str, str]:
    """What register-trust, sync-trust-kit, generate-xnat-credentials and the operator set,
    in that order (later ones win, as later upserts do)."""
    values = {key: str(kit[field]) for key, field in KIT_FIELDS if kit.get(field) is not None}
    values.update(hub_shared)
    values.update(local)
    values.update(edits)
    return values


def write_kit_file(trust_dir: Path, code: str, environment: str, *, name: str,
                   region: str | None, values: Mapping[str, str]) -> Path:
    """new_trust.py's identity block + the release's trust/.env.example, the values upserted
    in place (new keys appended), written 0600."""
    token = ENV_TOKENS.get(environment)
    if token is None:
        raise ProcedureError(f"environment {environment!r}: FLIP's production compose files "
                             f"are used for {', '.join(sorted(ENV_TOKENS))} only")
    template = (trust_dir / ".env.example").read_text(encoding="utf-8")
    text = render_kit(values, name=name, code=code, region=region, template=template)
    return write_kit(trust_dir / f".env.{code}.{token}", text)


def read_kit(path: Path) -> dict[str, str]:
    """The kit file as Make's `-include` reads it (`KEY=value`, comments skipped)."""
    out: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


# --- 3. the FL kit (flip_fl_kit/tasks/s3.yml@83e67f0e) ------------------------------------


def sync_fl_kit(s3: Any, bucket: str, date: str, backend: str, slot: str, number: int,
                fl_kit_dir: Path) -> None:
    net1 = fl_kit_dir / "net-1"
    net1.mkdir(parents=True, exist_ok=True)
    for child in net1.iterdir():  # find net-1 -mindepth 1 -delete
        shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    if backend == "nvflare":
        prefix = f"fl-flare-participant-kits/{date}/net-1/services/{slot}/"
        dest = net1 / "services" / slot
        keys = _keys(s3, bucket, prefix)
    else:
        prefix = f"fl-flower-participant-kits/{date}/net-1/"
        dest = net1
        wanted = ("certificates/ca.crt", f"keys/supernode_credentials_{number}")
        keys = [k for k in _keys(s3, bucket, prefix) if k[len(prefix):] in wanted]
    dest.mkdir(parents=True, exist_ok=True)
    for key in keys:
        target = dest / key[len(prefix):]
        if key.endswith("/"):
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    if backend == "nvflare":
        (dest / "local").mkdir(exist_ok=True)
        (dest / "transfer").mkdir(exist_ok=True)
        fed = dest / "startup" / "fed_client.json"
        if not fed.is_file() or json.loads(fed.read_text()).get("client", {}).get("fqsn") != slot:
            raise ProcedureError(f"{fed} does not name client.fqsn {slot}")
    elif len(keys) != 2:
        raise ProcedureError(f"the Flower kit of slot {number} is incomplete in s3://{bucket}")


def _keys(s3: Any, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(str(o["Key"]) for p in pages for o in p.get("Contents", []))


# --- 4. observability config --------------------------------------------------------------


def copy_observability(trust_dir: Path, dest: Path) -> None:
    for rel in OBSERVABILITY_FILES:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(trust_dir / "observability" / rel, target)
        target.chmod(0o644)


# --- 5. swarm and networks ------------------------------------------------------------------


def init_swarm_and_networks(docker: Sequence[str], number: int) -> None:
    state = _run([*docker, "info", "--format", "{{.Swarm.LocalNodeState}}"]).strip()
    if state != "active":
        _run([*docker, "swarm", "init", "--advertise-addr", "127.0.0.1"])
    for name in ("central-hub-trust-apis-network", "deploy_shared-net-1", "deploy_shared-net-2"):
        _ensure_network(docker, name, ["--driver", "bridge"])
    for n in sorted({1, 2, number}):
        _ensure_network(docker, f"deploy_trust-network-{n}",
                        ["--driver", "overlay", "--attachable"])


def _ensure_network(docker: Sequence[str], name: str, how: list[str]) -> None:
    try:
        _run([*docker, "network", "inspect", name])
    except ProcedureError:
        _run([*docker, "network", "create", *how, name])


# --- 6. the stack (trust/Makefile@0046dc28) -------------------------------------------------


def make_invocation(docker: Sequence[str], trust_dir: Path, kit_file: Path, *, code: str,
                    ec2: bool) -> tuple[list[str], dict[str, str]]:
    """`$(TRUST_VARS) DEBUG=… $(DOCKER_COMPOSE_CMD) [GPU] [TRUST_OVERRIDE] -p trust<N>`, and
    the environment Make gives compose (its own environment plus its exports)."""
    kit = read_kit(kit_file)
    number = kit["FL_KIT_SLOT_NUMBER"]
    backend = kit.get("FL_BACKEND") or "nvflare"
    argv = [*docker, "compose", "--env-file", kit_file.name, "--project-directory", ".",
            "-f", "deploy/compose_trust.production.yml",
            "-f", f"deploy/compose_trust.production.{backend}.yml"]
    if not ec2:
        if any(w != "0" for w in kit.get("NUM_AVAILABLE_GPUS", "").split()):
            argv += ["-f", "deploy/compose_trust.production.gpu.yml"]
        if kit.get("FL_KIT_SLOT") == "Trust_1" and (trust_dir / TRUST1_OVERRIDE).is_file():
            argv += ["-f", TRUST1_OVERRIDE]
    argv += ["-p", f"trust{number}"]
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update({"TRUST_NETWORK_NAME": f"deploy_trust-network-{number}", "TRUST_NUMBER": number,
                "TRUST_NAME": kit.get("TRUST_NAME") or kit.get("FL_KIT_SLOT") or code,
                "DEBUG": ""})
    if ec2:
        env["NUM_AVAILABLE_GPUS"] = "0"
    env.update(FL_BACKEND_EXPORTS[backend])
    env["DOCKER_FL_REGISTRY"] = kit.get("DOCKER_FL_REGISTRY", kit.get("DOCKER_REGISTRY", ""))
    env["DOCKER_GID"] = str(os.getgid())
    return argv, env


def up_trust(docker: Sequence[str], trust_dir: Path, kit_file: Path, *, code: str,
             ec2: bool) -> None:
    kit = read_kit(kit_file)
    if any(v.startswith("<run-make-") for v in kit.values()):
        raise ProcedureError(f"Kit file trust/{kit_file.name} still has unfilled placeholders")
    images = trust_dir / (kit.get("BASE_IMAGES_DOWNLOAD_DIR") or f"data/{code}")
    images.mkdir(parents=True, exist_ok=True)
    argv, env = make_invocation(docker, trust_dir, kit_file, code=code, ec2=ec2)
    pull = ["--pull", "always"] if ec2 or env["DOCKER_FL_REGISTRY"] else []
    _run([*argv, "up", "-d", *pull], cwd=trust_dir, env=env, timeout=300)


def wait_for_trust_api(docker: Sequence[str], trust_dir: Path, kit_file: Path, *, code: str,
                       ec2: bool, timeout: float = 60.0) -> str:
    """trust-api's first verdict in its log: its authenticated line, or a 401."""
    argv, env = make_invocation(docker, trust_dir, kit_file, code=code, ec2=ec2)
    deadline = time.monotonic() + timeout
    while True:
        out = _run([*argv, "logs", "--no-color", "--no-log-prefix", "trust-api"], cwd=trust_dir,
                   env=env)
        for line in out.splitlines():
            if LOG_AUTHENTICATED in line or LOG_UNAUTHORIZED in line:
                return line
        if time.monotonic() > deadline:
            raise ProcedureError(f"trust-api in {trust_dir} logged no verdict in {timeout:.0f}s")
        time.sleep(0.5)
