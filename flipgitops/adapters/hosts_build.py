"""Pure builders for the hosts adapter: the inventory, and each step's module arguments.

Everything a host module needs is decided here, in Python, from the manifest's HostTarget
and the step's typed input, and handed to the module over the run's channel: no Jinja ever
sees a manifest value. The inventory holds connection facts only, each marked `!unsafe`
(never templated), and no secret.

FLIP facts used here that `model/flip.py` does not (yet) hold, with their sources:
- fl_backend.mk@2941e84d's exports (`DOCKER_FL_API_NAME`, … `FL_JOBS_DIR`);
- trust/Makefile@0046dc28's Trust_1 override file;
- trust-api task_poller.py@03dc1c54's start line (each process run begins with it);
- flip_trust_dirs/tasks/main.yml@83e67f0e's owners (XNAT 1001, loki 10001, grafana 472, the
  Flower client's group 49999), flip_base_packages@6d8d2c69, azure.yml@b53f1aa2's
  `docker swarm init --advertise-addr 127.0.0.1`;
- flip_observability_config's five files (defaults@ec238414);
- what FLIP's NVFLARE client writes into its kit at start (entrypoint.sh@2f567b3c): local/'s
  resources.json, log_config.json, privacy.json, and transfer/.
"""

from __future__ import annotations

import base64
import posixpath
import shlex
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from flipgitops.engine.ports_hosts import (
    FlKitInput,
    HostTarget,
    KitFileInput,
    ProvisionInput,
    ReleaseInput,
    StackInput,
    StepInput,
    VerifyInput,
)
from flipgitops.model.actions import KINDS, ActionKind
from flipgitops.model.flip import (
    COMMON_COMPOSE_FILE,
    FL_CLIENT_SERVICE,
    FL_KIT_OWNER_UID,
    FL_KIT_SUBDIR,
    GPU_COMPOSE_FILE,
    HUB_SHARED_SENTINEL,
    LOG_AUTHENTICATED,
    LOG_HEARTBEAT_REJECTED,
    LOG_UNAUTHORIZED,
    PLACEHOLDER_PREFIX,
    TRUST_API_SERVICE,
    compose_project,
    fl_client_image_name,
    trust_network,
)
from flipgitops.model.kit import SECRET_KIT_KEYS

# fl_backend.mk@2941e84d: the names it exports for each backend (DOCKER_FL_REGISTRY is
# added from the kit file by flipgitops_host/stack.py).
FL_BACKEND_EXPORTS: dict[str, dict[str, str]] = {
    "nvflare": {"DOCKER_FL_API_NAME": "flare-fl-api", "DOCKER_FL_SERVER_NAME": "flare-fl-server",
                "DOCKER_FL_CLIENT_NAME": fl_client_image_name("nvflare"),
                "FL_PROVISIONED_DIR": "fl-services/nvflare/provision/workspace-dev",
                "FL_JOBS_DIR": "jobs"},
    "flower": {"DOCKER_FL_API_NAME": "flower-fl-api",
               "DOCKER_FL_SERVER_NAME": "flower-superlink",
               "DOCKER_FL_CLIENT_NAME": fl_client_image_name("flower"),
               "FL_PROVISIONED_DIR": "fl-services/flower/provision/creds",
               "FL_JOBS_DIR": "jobs"},
}
TRUST1_OVERRIDE = {"slot": "Trust_1", "file": "deploy/compose_trust-1_override.yml"}
LOG_STARTING = "Starting task poller"
PRODUCTION_COMPOSE_GLOB = "deploy/compose_trust.production*.yml"
XNAT_UID, LOKI_UID, GRAFANA_UID, FLOWER_CLIENT_GID = 1001, 10001, 472, 49999
BASE_PACKAGES = ("curl", "unzip", "tar", "openssl", "docker.io", "docker-compose-v2")
SWARM_ADVERTISE_ADDR = "127.0.0.1"
OBSERVABILITY_FILES = (
    "alloy/config.alloy",
    "loki/loki-config.yml",
    "grafana/provisioning/datasources/loki.yml",
    "grafana/provisioning/dashboards/dashboards.yml",
    "grafana/provisioning/dashboards/trust-apis.json",
)
FL_RUNTIME_PATHS = (
    "services/*/local/resources.json",
    "services/*/local/log_config.json",
    "services/*/local/privacy.json",
    "services/*/transfer/*",
)
# The slot's own paths under net-1 (what deliver writes; anything else is stray).
FL_KIT_LAYOUT: dict[str, list[str]] = {
    "nvflare": ["services/{slot}"],
    "flower": ["certificates/ca.crt", "keys/supernode_credentials_{n}"],
}
STATE_SUBDIR = ".flipgitops"  # flipgitops' markers on the host, outside FLIP's trees
DEFAULT_EGRESS_PROBE = "https://checkip.amazonaws.com"
VERIFY_INTERVAL_SECONDS = 2.0

FACTS_STEP = "facts"
# adopt: the host -> controller direction of secrets (read_kit_secrets.yml, no_log).
READ_SECRETS_STEP = "read_kit_secrets"
# Several steps of one host in one program run (AnsibleHosts.run_steps).
STEPS_STEP = "steps"


class BuildError(ValueError):
    """A host task that cannot be turned into module arguments (names the trust)."""


# --- paths of a target -----------------------------------------------------------------------


def anchor(path: str, base_dir: Path) -> str:
    p = Path(path).expanduser()
    return str(p if p.is_absolute() else (base_dir / p).resolve())


def flip_root(target: HostTarget) -> str:
    """The host's flip_root, absolute: the kit file names paths under it, which compose and
    Make read from `<flip_root>/trust`, so a relative root would mean another place."""
    root = target.host.flip_root
    if not root.startswith("/"):
        raise BuildError(f"{target.trust}: host.flip_root {root!r} must be an absolute path")
    return root.rstrip("/") or "/"


def host_path(root: str, value: str) -> str:
    """A kit-file path as compose and Make read it: relative ones are relative to the
    project directory `<flip_root>/trust` (FLIP's template ships `./data/trust`)."""
    return posixpath.normpath(posixpath.join(f"{root}/trust", value))


def docker_argv(target: HostTarget) -> list[str]:
    try:
        words = shlex.split(target.host.docker)
    except ValueError:
        raise BuildError(f"{target.trust}: host.docker is not a command line") from None
    if not words:
        raise BuildError(f"{target.trust}: host.docker is empty")
    if target.host.connection == "local" and "/" in words[0] and not words[0].startswith("/"):
        words[0] = anchor(words[0], target.base_dir)
    return words


def app_owner(target: HostTarget) -> str | None:
    """The owner of FLIP's app dirs (flip_owner): the ssh user; local hosts keep theirs."""
    return target.host.user if target.host.connection == "ssh" else None


# --- recipe and common spec ------------------------------------------------------------------


def stack_recipe(target: HostTarget) -> dict[str, Any]:
    """FLIP's names that flipgitops_host/stack.py turns into the command."""
    return {
        "docker": docker_argv(target),
        "kit_file": target.kit_file,
        "kit_code": target.code,
        "ec2": target.ec2,
        "common_file": COMMON_COMPOSE_FILE,
        "backend_file": "deploy/compose_trust.production.{backend}.yml",
        "gpu_file": GPU_COMPOSE_FILE,
        "trust1_override": dict(TRUST1_OVERRIDE),
        "backend_exports": {k: dict(v) for k, v in FL_BACKEND_EXPORTS.items()},
        "project": compose_project(0).replace("0", "{n}"),
        "network": trust_network(0).replace("0", "{n}"),
    }


def kitfile_cfg() -> dict[str, Any]:
    return {"sentinel": HUB_SHARED_SENTINEL, "placeholder_prefix": PLACEHOLDER_PREFIX,
            "secret_keys": sorted(SECRET_KIT_KEYS)}


def log_lines() -> dict[str, str]:
    return {"starting": LOG_STARTING, "authenticated": LOG_AUTHENTICATED,
            "unauthorized": LOG_UNAUTHORIZED, "heartbeat_rejected": LOG_HEARTBEAT_REJECTED}


def base_spec(target: HostTarget) -> dict[str, Any]:
    root = flip_root(target)
    return {
        "flip_root": root,
        "trust_dir": f"{root}/trust",
        "state_dir": f"{root}/{STATE_SUBDIR}",
        "kit_file": target.kit_file,
        "docker": docker_argv(target),
        "recipe": stack_recipe(target),
        "kitfile": kitfile_cfg(),
        "app_owner": app_owner(target),
        "trust_api_service": TRUST_API_SERVICE,
        "fl_client_service": FL_CLIENT_SERVICE,
    }


# --- facts -------------------------------------------------------------------------------------


def facts_spec(target: HostTarget, endpoints: Mapping[str, Any]) -> dict[str, Any]:
    """``endpoints``: `resolve` ("host:port" or "host" -> address) and `egress_probe`
    (a URL template with `{trust}`; None for the production default)."""
    spec = base_spec(target)
    spec.update(
        trust=target.trust,
        compose_glob=PRODUCTION_COMPOSE_GLOB,
        log_lines=log_lines(),
        fl_kit={"default_dir": f"{spec['flip_root']}/{FL_KIT_SUBDIR}",
                "runtime": list(FL_RUNTIME_PATHS), "layout": FL_KIT_LAYOUT,
                "listing": list(target.fl_kit_keys) if target.fl_kit_keys else None},
        release_candidates=[[c.ref, c.commit, c.tree_sha256, list(c.paths)]
                            for c in target.release_candidates],
        endpoints={
            "hub": target.hub_endpoint, "fl": target.fl_endpoint,
            "resolve": dict(endpoints.get("resolve") or {}),
            "egress_probe": endpoints.get("egress_probe") or DEFAULT_EGRESS_PROBE,
        },
    )
    return spec


def read_secrets_spec(target: HostTarget, keys: Sequence[str]) -> dict[str, Any]:
    """What read_kit_secrets needs: where the kit file is, how to read it, which keys."""
    root = flip_root(target)
    return {"trust_dir": f"{root}/trust", "kit_file": target.kit_file,
            "kitfile": kitfile_cfg(), "keys": list(keys)}


# --- steps -------------------------------------------------------------------------------------


def provision_dirs(root: str, profile: Mapping[str, str], backend: str,
                   owner: str | None) -> list[list[Any]]:
    """[path, mode, owner, group] in creation order: FLIP's flip_trust_dirs and the
    flip_fl_kit precreate of FL_KIT_DIR, rebased on flip_root and the kit file's dirs."""
    fl = str(FL_KIT_OWNER_UID)
    # An empty value is an absent one (FLIP's compose defaults are `${VAR:-…}`): an adopted
    # `settings: {OBSERVABILITY_CONFIG_DIR: ""}` means compose's default, not a dir "".
    profile = {k: host_path(root, v) if k.endswith(("_DIR", "_VOLUME")) and "/" in v else v
               for k, v in profile.items() if v != ""}
    dirs: list[list[Any]] = [
        [root, "0755", owner, None],
        [f"{root}/trust", "0755", owner, None],
        [f"{root}/{STATE_SUBDIR}", "0700", None, None],
        [profile.get("OBSERVABILITY_CONFIG_DIR", f"{root}/config/observability"), "0755",
         owner, None],
    ]
    images = profile.get("BASE_IMAGES_DOWNLOAD_DIR")
    if images:
        dirs.append([images, "0755", fl, None])
        for net in ("net-1", "net-2"):  # flip_net_ids
            if backend == "flower":
                dirs.append([f"{images}/{net}", "0775", fl, str(FLOWER_CLIENT_GID)])
            else:
                dirs.append([f"{images}/{net}", "0755", fl, None])
    dirs.append([profile.get("FL_KIT_DIR", f"{root}/{FL_KIT_SUBDIR}"), "0755", fl, None])
    xnat = profile.get("XNAT_DATA_DIR", f"{root}/xnat")
    for sub in ("", "/xnat-data/tomcat_logs", "/xnat-data/archive", "/xnat-data/build",
                "/xnat-data/cache", "/xnat-db-data"):
        dirs.append([xnat + sub, "0755", str(XNAT_UID), None])
    for key, uid in (("LOKI_DATA_VOLUME", LOKI_UID), ("GRAFANA_DATA_VOLUME", GRAFANA_UID)):
        path = profile.get(key, "")
        if path.startswith("/"):  # a bind dir, not a named volume
            dirs.append([path, "0755", str(uid), None])
    for key in ("ORTHANC_STORAGE_DIR",):
        if profile.get(key, "").startswith("/"):
            dirs.append([profile[key], "0755", None, None])
    omop = profile.get("OMOP_DATA_DIR", "")
    if omop.startswith("/"):
        dirs.append([str(Path(omop).parent), "0755", None, None])
    return dirs


def _pack(data: bytes) -> str:
    return base64.b64encode(zlib.compress(data, 6)).decode("ascii")


def host_call(kind: ActionKind, target: HostTarget, step: StepInput
                ) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
    """(entry, spec, secret) of one host's step; ``secret`` is None for steps without keys."""
    entry = KINDS[kind].host_step  # the host program's entry: the step's own name
    if entry is None:
        raise BuildError(f"{kind} is not a host step")
    spec = base_spec(target)
    secret: dict[str, Any] | None = None
    if kind == ActionKind.HOST_PROVISION and isinstance(step, ProvisionInput):
        spec.update(
            install_docker=target.host.connection == "ssh",
            packages=list(BASE_PACKAGES),
            dirs=provision_dirs(spec["flip_root"], step.profile, target.backend,
                                spec["app_owner"]),
            swarm_advertise_addr=SWARM_ADVERTISE_ADDR,
            network=trust_network(step.slot_number) if step.slot_number is not None else None,
        )
    elif kind == ActionKind.HOST_DEPLOY_RELEASE and isinstance(step, ReleaseInput):
        tree = step.tree
        spec.update(
            ref=tree.ref, commit=tree.commit, tree_sha256=tree.tree_sha256,
            files=[[f.path, f.kind, _pack(f.data)] for f in tree.files],
            observability={"src": "observability",
                           "dest": f"{spec['flip_root']}/config/observability",
                           "files": list(OBSERVABILITY_FILES)},
        )
    elif kind == ActionKind.HOST_WRITE_KIT_FILE and isinstance(step, KitFileInput):
        secret = {"content": step.content.get_secret_value()}
    elif kind == ActionKind.HOST_DELIVER_FL_KIT and isinstance(step, FlKitInput):
        kit = step.kit
        group = str(FLOWER_CLIENT_GID) if kit.backend == "flower" else None
        spec.update(
            fl_kit_dir=host_path(spec["flip_root"], step.fl_kit_dir),
            runtime=list(FL_RUNTIME_PATHS),
            owner=str(FL_KIT_OWNER_UID), group=group, dirs=list(kit.dirs),
            record={"date": kit.date, "slot": kit.slot, "slot_number": kit.slot_number,
                    "backend": kit.backend, "source_fingerprint": kit.fingerprint,
                    "source": kit.source, "files": sorted(f.path for f in kit.files)},
            fqsn={"slot": kit.slot, "slot_dir": f"services/{kit.slot}"}
            if kit.backend == "nvflare" else None,
        )
        secret = {"files": [[f.path, f"{f.mode:04o}", base64.b64encode(f.data).decode()]
                            for f in kit.files]}
    elif kind in (ActionKind.HOST_START_STACK, ActionKind.HOST_STOP_STACK) and isinstance(
            step, StackInput):
        spec["project"] = step.project
    elif kind == ActionKind.HOST_VERIFY and isinstance(step, VerifyInput):
        spec.update(expect_trust=step.expect_trust, timeout_seconds=step.timeout_seconds,
                    interval_seconds=VERIFY_INTERVAL_SECONDS, log_lines=log_lines())
    else:
        raise BuildError(f"{target.trust}: {kind} was given a {type(step).__name__}")
    return entry, spec, secret


# --- inventory ---------------------------------------------------------------------------------


SSH_CONNECT_TIMEOUT_SECONDS = 10


def split_address(address: str) -> tuple[str, int | None]:
    """`host`, `host:port`, `[v6]:port`."""
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    if address.count(":") == 1:
        host, _, port = address.partition(":")
        if port.isdigit():
            return host, int(port)
    return address, None


def host_vars(target: HostTarget, *, python: str, known_hosts: str | None,
              key_file: str | None) -> dict[str, Any]:
    """Connection facts of one host (nothing secret: a key is a path to an in-memory file)."""
    host = target.host
    if host.connection == "local":
        return {"ansible_connection": "local", "ansible_python_interpreter": python}
    address, port = split_address(host.address)
    args = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=accept-new",
            "-o", f"ConnectTimeout={SSH_CONNECT_TIMEOUT_SECONDS}"]
    if known_hosts:
        args += ["-o", f"UserKnownHostsFile={known_hosts}"]
    hv: dict[str, Any] = {
        "ansible_connection": "ssh", "ansible_host": address, "ansible_user": host.user,
        "ansible_ssh_common_args": shlex.join(args), "ansible_become": True,
        "ansible_python_interpreter": "auto_silent",
    }
    if port is not None:
        hv["ansible_port"] = port
    if key_file:
        hv["ansible_ssh_private_key_file"] = key_file
    return hv


def inventory(hosts: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {"all": {"hosts": {name: dict(v) for name, v in hosts.items()}}}


def _yaml_scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return '!unsafe "' + "".join(
        c if c.isprintable() else f"\\x{ord(c):02x}" for c in text) + '"'


def inventory_yaml(inv: Mapping[str, Any]) -> str:
    """YAML with every string tagged `!unsafe`: Ansible never templates an inventory value."""
    lines = ["all:", "  hosts:"]
    for name, hv in inv["all"]["hosts"].items():
        lines.append(f"    {_yaml_scalar(name).removeprefix('!unsafe ')}:")
        for key, value in hv.items():
            lines.append(f"      {key}: {_yaml_scalar(value)}")
    return "\n".join(lines) + "\n"


def names_ok(names: Sequence[str]) -> bool:
    """Inventory host names are trust names (the manifest validates their pattern)."""
    return all(n and n.replace("_", "").replace("-", "").isalnum() for n in names)
