"""`docker compose up -d`: refuse what Docker (or FLIP's boot) would, then record and start.

Every check runs before anything is recorded, so a refused `up` leaves the host as it was.
A service whose config hash is unchanged keeps its container (`Running`, or `Started` again
if it had exited); a changed one is recreated; `--remove-orphans` removes services no longer
in the files. The trust-api image's container runs the stand-in poller (trust_api.py).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flipgitops.sandbox.flip.cli_support import (
    COMPOSE_VERSION,
    Cli,
    CliError,
    ComposeArgs,
    Options,
    flags,
    load_args,
    parse_options,
    progress,
)
from flipgitops.sandbox.flip.compose import Project
from flipgitops.sandbox.flip.daemon import EXIT_FILE, new_id, now_iso, value_digest
from flipgitops.sandbox.flip.engine_commands import known_networks, network_record
from flipgitops.sandbox.flip.world import read_world

# The image whose containers run the stand-in poller (compose_trust.production.yml@f6e3db11:
# `trust-api: image: ghcr.io/londonaicentre/trust-api:${DOCKER_TAG}`).
TRUST_API_IMAGE = "trust-api"
# FL kit mounts: FLIP's overlays mount these from ${FL_KIT_DIR} (nvflare@0a13d3f9 and
# @99ce8714: /app/{local,startup,transfer}; flower@fb46e134: /certs, /keys).
FL_KIT_TARGETS = frozenset({"/app/local", "/app/startup", "/app/transfer", "/certs", "/keys"})
# Files inside FLIP's observability images that the base compose file mounts over
# (compose_trust.production.yml@f6e3db11): Docker cannot mount a missing source (it would
# create a directory) onto a file.
FILE_TARGETS = frozenset({"/etc/loki/loki-config.yml", "/etc/alloy/config.alloy"})
DAEMON_SOCKET = "/var/run/docker.sock"


def up(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    opts, _ = parse_options(args.rest, flags(
        "-d|--detach", "--pull=", "--remove-orphans", "--no-deps", "--force-recreate",
        "--no-recreate", "--wait", "--quiet-pull", "--no-build", "--build", "--no-color",
        "--wait-timeout=", "-t|--timeout="), "compose up")
    if not opts.flag("detach"):
        raise CliError("the stand-in cannot attach to containers: run `compose up -d`")
    if opts.flag("build"):
        raise CliError("the stand-in cannot build images (FLIP's production stack pulls them); "
                       "drop --build")
    pull = opts.value("pull")
    if pull not in (None, "always", "missing", "never", "build"):
        raise CliError(f'invalid --pull option "{pull}"')
    project = load_args(args, env)
    if cli.world is not None:
        read_world(cli.world)
    unknown = [s for s in opts.args if s not in project.services]
    if unknown:
        raise CliError(f"no such service: {unknown[0]}")
    with cli.daemon.lock():
        state = cli.daemon.state()
        nets = known_networks(state)
        network, external = project.default_network()
        if external and network not in nets:
            raise CliError(f"network {network} declared as external, but could not be found")
        targets = _with_dependencies(project, opts.args or sorted(project.services),
                                     not opts.flag("no-deps"))
        record = cli.daemon.project(project.name)
        containers: dict[str, Any] = record.setdefault("containers", {})
        for service in targets:
            _check_mounts(project, service)
            _check_devices(project, service, int(state.get("gpus", 0)))
        _check_ports(cli, project, targets)
        if not external and network not in nets:
            nets[network] = network_record(network, "bridge", False)
            cli.daemon.save_state(state)
            progress("Network", network, "Created")
        record.update({"name": project.name, "network": network,
                       "working_dir": str(project.directory)})
        for service in targets:
            _up_service(cli, project, service, containers, opts)
        for service in sorted(set(containers) - set(project.services)):
            orphan = containers[service]
            if opts.flag("remove-orphans"):
                remove_container(cli, orphan)
                del containers[service]
            else:
                print(f"WARN[0000] Found orphan containers ([{orphan['name']}]) for this "
                      "project. If you removed or renamed this service in your compose file, "
                      "you can run this command with the --remove-orphans flag to clean it up.",
                      file=sys.stderr)
        cli.daemon.save_project(project.name, record)
    return 0


def _with_dependencies(project: Project, wanted: Iterable[str], follow: bool) -> list[str]:
    """Services in start order: each after what it depends on (compose's order)."""
    order: list[str] = []

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if name in order:
            return
        if name in trail:
            raise CliError(f"dependency cycle detected: {' -> '.join((*trail, name))}")
        if follow:
            for dep in project.dependencies(name):
                visit(dep, (*trail, name))
        order.append(name)

    for name in wanted:
        visit(name, ())
    return order


def _check_mounts(project: Project, service: str) -> None:
    for mount in project.services[service].get("volumes") or []:
        if mount.get("type") != "bind":
            continue
        source = project.host_path(str(mount["source"]))
        target = str(mount["target"])
        if str(source) == DAEMON_SOCKET:
            continue  # the stand-in is the daemon: its socket always exists
        if target in FL_KIT_TARGETS and not source.is_dir():
            raise CliError(
                'Error response from daemon: invalid mount config for type "bind": bind source '
                f"path does not exist: {source}\n(service {service} mounts the FL participant "
                f"kit at {target}; put the kit under FL_KIT_DIR first. The stand-in refuses "
                "where Docker would create an empty root-owned dir and the FL client would "
                "crash at start.)"
            )
        if target in FILE_TARGETS and not source.is_file():
            raise CliError(
                "Error response from daemon: failed to create task for container: failed to "
                f'create shim task: OCI runtime create failed: error mounting "{source}" to '
                f'rootfs at "{target}": not a directory: Are you trying to mount a directory '
                "onto a file (or vice-versa)? Check if the specified host path exists and is "
                f"the expected type\n(service {service}: {source} is missing; FLIP's "
                "flip_observability_config role copies trust/observability there, and "
                "OBSERVABILITY_CONFIG_DIR moves it.)"
            )


def _check_devices(project: Project, service: str, gpus: int) -> None:
    deploy = project.services[service].get("deploy") or {}
    devices = ((deploy.get("resources") or {}).get("reservations") or {}).get("devices") or []
    for device in devices:
        caps = [str(c) for c in device.get("capabilities") or []]
        if "gpu" in caps and gpus == 0:
            driver = device.get("driver", "")
            raise CliError(
                f'Error response from daemon: could not select device driver "{driver}" with '
                f"capabilities: [[{' '.join(caps)}]]"
            )


def _published(project: Project, service: str) -> list[dict[str, str]]:
    ports = []
    for spec in project.services[service].get("ports") or []:
        parts = str(spec).split(":")
        if len(parts) >= 2:
            ports.append({"host": parts[-2], "container": parts[-1].split("/")[0]})
    return ports


def _check_ports(cli: Cli, project: Project, targets: list[str]) -> None:
    taken: dict[str, str] = {}
    for owner, service, record in cli.daemon.all_containers():
        if owner == project.name and service in targets:
            continue
        if cli.daemon.observe(record)["state"] == "running":
            for port in record.get("ports", []):
                taken[port["host"]] = record["name"]
    for service in targets:
        name = _container_name(project, service)
        for port in _published(project, service):
            if port["host"] in taken:
                raise CliError(
                    "Error response from daemon: driver failed programming external "
                    f"connectivity on endpoint {name}: Bind for 0.0.0.0:{port['host']} "
                    f"failed: port is already allocated (held by {taken[port['host']]})"
                )
            taken[port["host"]] = name


def _container_name(project: Project, service: str) -> str:
    return str(project.services[service].get("container_name")
               or f"{project.name}-{service}-1")


def _runs_poller(image: str) -> bool:
    repository = image.split("@", 1)[0].rsplit("/", 1)[-1].split(":", 1)[0]
    return repository == TRUST_API_IMAGE


def _up_service(cli: Cli, project: Project, service: str, containers: dict[str, Any],
                opts: Options) -> None:
    config_hash = project.config_hash(service)
    current = containers.get(service)
    if current is not None:
        view = cli.daemon.observe(current)
        same = current["labels"]["com.docker.compose.config-hash"] == config_hash
        if (same and not opts.flag("force-recreate")) or opts.flag("no-recreate"):
            if view["state"] == "running":
                progress("Container", current["name"], "Running")
                return
            progress("Container", current["name"], "Starting")
            _start(cli, project, service, current)
            progress("Container", current["name"], "Started")
            return
        progress("Container", current["name"], "Recreate")
        cli.daemon.stop_process(current)
        cli.daemon.remove_container_dir(current["id"])
        fresh = _create(cli, project, service, config_hash)
        progress("Container", fresh["name"], "Recreated")
    else:
        fresh = _create(cli, project, service, config_hash)
        progress("Container", fresh["name"], "Creating")
        progress("Container", fresh["name"], "Created")
    containers[service] = fresh
    progress("Container", fresh["name"], "Starting")
    _start(cli, project, service, fresh)
    progress("Container", fresh["name"], "Started")


def _create(cli: Cli, project: Project, service: str, config_hash: str) -> dict[str, Any]:
    spec = project.services[service]
    container_id = new_id()
    cli.daemon.make_container_dir(container_id)
    labels = {str(k): str(v) for k, v in (spec.get("labels") or {}).items()}
    labels.update({
        "com.docker.compose.project": project.name,
        "com.docker.compose.service": service,
        "com.docker.compose.config-hash": config_hash,
        "com.docker.compose.container-number": "1",
        "com.docker.compose.oneoff": "False",
        "com.docker.compose.project.working_dir": str(project.directory),
        "com.docker.compose.project.config_files": ",".join(str(f) for f in project.files),
        "com.docker.compose.project.environment_file": ",".join(
            str(f) for f in project.env_files),
        "com.docker.compose.version": COMPOSE_VERSION,
    })
    env = project.container_env(service)
    return {
        "id": container_id, "name": _container_name(project, service), "service": service,
        "image": spec["image"], "state": "created", "exit_code": 0, "created": now_iso(),
        "started": now_iso(), "finished": None, "labels": labels,
        "environment": {key: value_digest(value) for key, value in sorted(env.items())},
        "mounts": [
            {"type": m["type"], "source": str(project.host_path(str(m["source"])))
             if m["type"] == "bind" else str(m.get("source", "")),
             "target": str(m["target"]), "read_only": bool(m.get("read_only"))}
            for m in spec.get("volumes") or []
        ],
        "ports": _published(project, service), "network": project.default_network()[0],
        "process": None, "world": None,
    }


def _start(cli: Cli, project: Project, service: str, record: dict[str, Any]) -> None:
    record.update({"state": "running", "exit_code": 0, "started": now_iso(), "finished": None})
    if not _runs_poller(record["image"]):
        return
    exit_file = cli.daemon.container_dir(record["id"]) / EXIT_FILE
    exit_file.unlink(missing_ok=True)
    world = cli.world or (Path(record["world"]) if record.get("world") else None)
    record["world"] = str(world) if world else None
    from flipgitops.sandbox.flip import trust_api  # only `up` of trust-api's image runs it

    record["process"] = trust_api.spawn(cli.daemon.root, record["id"],
                                        project.container_env(service), world)


def remove_container(cli: Cli, record: dict[str, Any]) -> None:
    progress("Container", record["name"], "Stopping")
    cli.daemon.stop_process(record)
    progress("Container", record["name"], "Stopped")
    progress("Container", record["name"], "Removing")
    cli.daemon.remove_container_dir(record["id"])
    progress("Container", record["name"], "Removed")

