"""`flip-standin-docker`: the container CLI a sandbox trust host runs instead of `docker`.

    flip-standin-docker --daemon-dir DIR [--world FILE] <docker args…>

DIR holds one host's daemon state (daemon.py). The commands are exactly those FLIP's
trust/Makefile@0046dc28 and a careful operator run (trust.md §0):

    version · info [--format T] · swarm init|leave · network create|inspect|rm|ls
    ps · stop NAME… · compose [--env-file F]… [--project-directory D] -f A [-f B…] -p P
        up -d [--pull P] [--remove-orphans] [--no-deps] [--force-recreate] [SERVICE…]
        ps [--format json] [-a] [-q] [--services] [SERVICE…]
        logs [--no-color] [--since X] [--until X] [--tail N] [-t] [--no-log-prefix] [SERVICE…]
        config --hash '*'|SERVICE[,…] | --services | -q
        stop [SERVICE…] · down [--remove-orphans] [-v] · version [--short]

`compose up` reads the files as compose v2 does (compose.py) and refuses, with nothing
recorded, what Docker would refuse (an external network that does not exist, a file mount
whose source is missing, a GPU reservation on a host without GPUs, a host port already
taken), plus two refusals of its own, on purpose: a variable with no default that is unset or
empty (compose would blank it; FLIP's services crash on blank values), and an FL kit mount
whose source is missing (Docker would create an empty root-owned dir and the client would
crash-loop). The `trust-api` image runs as a real process (trust_api.py); every other
container is recorded as running without one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flipgitops.sandbox.flip import trust_api
from flipgitops.sandbox.flip.compose import ComposeError, Project, load_project, project_name
from flipgitops.sandbox.flip.daemon import (
    EXIT_FILE,
    LOG_FILE,
    Daemon,
    new_id,
    now_iso,
    parse_iso,
    value_digest,
)
from flipgitops.sandbox.flip.world import WorldError, read_world

ENGINE_VERSION = "27.3.1"
COMPOSE_VERSION = "2.29.7"
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
BUILTIN_NETWORKS = {"bridge": "bridge", "host": "host", "none": "null"}


class CliError(Exception):
    """Printed on stderr as is; the command exits 1 (Docker's status for every refusal)."""


def main(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ if environ is None else environ)
    try:
        cli, rest = _global_options(args)
        return _dispatch(cli, rest, env)
    except (CliError, ComposeError, WorldError) as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except BrokenPipeError:  # `… | head`: the reader left; say nothing more
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


@dataclass
class Cli:
    daemon: Daemon
    world: Path | None


def _global_options(args: list[str]) -> tuple[Cli, list[str]]:
    daemon_dir: str | None = None
    world: str | None = None
    while args and args[0].startswith("--"):
        flag, eq, value = args[0].partition("=")
        if flag not in ("--daemon-dir", "--world"):
            break
        if not eq:
            if len(args) < 2:
                raise CliError(f"flag needs an argument: {flag}")
            value = args[1]
            args = args[2:]
        else:
            args = args[1:]
        if flag == "--daemon-dir":
            daemon_dir = value
        else:
            world = value
    if not daemon_dir:
        raise CliError(
            "flip-standin-docker needs --daemon-dir DIR (one host's daemon state) before the "
            "docker arguments, e.g. flip-standin-docker --daemon-dir /tmp/x/host1/docker ps"
        )
    world_path = Path(world).expanduser().resolve() if world else None
    return Cli(Daemon(Path(daemon_dir)), world_path), args


def _dispatch(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(__doc__)
        return 0
    commands: dict[str, Callable[[Cli, list[str], dict[str, str]], int]] = {
        "version": _version, "info": _info, "swarm": _swarm, "network": _network,
        "ps": _docker_ps, "stop": _docker_stop, "compose": _compose,
    }
    handler = commands.get(args[0])
    if handler is None:
        raise CliError(
            f"docker: '{args[0]}' is not a docker command the stand-in plays "
            f"(it plays: {', '.join(commands)})."
        )
    return handler(cli, args[1:], env)


# -- option parsing (cobra's rules: -x V, --xx V, --xx=V; unknown flags refused) -------------


@dataclass
class Options:
    values: dict[str, Any] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)

    def flag(self, name: str) -> bool:
        return bool(self.values.get(name))

    def value(self, name: str) -> str | None:
        got = self.values.get(name)
        return got[-1] if isinstance(got, list) else None


def _parse(args: list[str], spec: dict[str, tuple[str, bool]], command: str,
           stop_at_positional: bool = False) -> tuple[Options, list[str]]:
    """spec: flag spelling -> (canonical name, takes a value). Returns options and the rest."""
    opts = Options()
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            opts.args.extend(args[i + 1:])
            return opts, []
        if arg.startswith("-") and arg != "-":
            flag, eq, inline = arg.partition("=")
            if flag not in spec:
                raise CliError(f"unknown flag: {flag}\nSee 'docker {command} --help'.")
            name, takes = spec[flag]
            if takes:
                if eq:
                    value = inline
                elif i + 1 < len(args):
                    i += 1
                    value = args[i]
                else:
                    raise CliError(f"flag needs an argument: {flag}")
                opts.values.setdefault(name, []).append(value)
            else:
                opts.values[name] = inline.lower() != "false" if eq else True
        elif stop_at_positional:
            return opts, args[i:]
        else:
            opts.args.append(arg)
        i += 1
    return opts, []


def _flags(*entries: str) -> dict[str, tuple[str, bool]]:
    """`"-a|--all"` (boolean) or `"--since="` (takes a value) -> parse spec."""
    spec: dict[str, tuple[str, bool]] = {}
    for entry in entries:
        takes = entry.endswith("=")
        spellings = entry.rstrip("=").split("|")
        for spelling in spellings:
            spec[spelling] = (spellings[-1].lstrip("-"), takes)
    return spec


# -- Go templates, the few forms operators pass to --format ----------------------------------


def _template(fmt: str, data: Any) -> str:
    def field_of(path: str) -> Any:
        node = data
        for part in [p for p in path.split(".") if p]:
            if not isinstance(node, dict) or part not in node:
                raise CliError(
                    f'template: :1: executing "" at <{path}>: map has no entry for key "{part}"'
                )
            node = node[part]
        return node

    def render(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr.startswith("json "):
            return json.dumps(field_of(expr[5:].strip()), separators=(",", ":"))
        if expr.startswith("."):
            value = field_of(expr)
            if isinstance(value, bool):
                return "true" if value else "false"
            if isinstance(value, dict | list):
                return json.dumps(value)
            return str(value)
        raise CliError(f"template parsing error: template: :1: function {expr!r} not defined")

    return re.sub(r"\{\{(.*?)\}\}", render, fmt).replace("\\n", "\n")


# -- version, info, swarm --------------------------------------------------------------------


def _version_data() -> dict[str, Any]:
    return {
        "Client": {"Version": ENGINE_VERSION, "ApiVersion": "1.47", "Os": "linux",
                   "Platform": {"Name": "flip-standin-docker"}},
        "Server": {"Version": ENGINE_VERSION, "ApiVersion": "1.47", "Os": "linux",
                   "Platform": {"Name": "FLIP stand-in (no container engine)"}},
    }


def _version(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    opts, _ = _parse(args, _flags("-f|--format="), "version")
    fmt = opts.value("format")
    data = _version_data()
    if fmt:
        print(_template(fmt, data))
        return 0
    print(f"Client:\n Version:           {ENGINE_VERSION}\n API version:       1.47\n"
          f" OS/Arch:           linux\n\nServer: FLIP stand-in (no container engine)\n"
          f" Engine:\n  Version:          {ENGINE_VERSION}\n  API version:      1.47")
    return 0


def _info_data(cli: Cli) -> dict[str, Any]:
    state = cli.daemon.state()
    records = [cli.daemon.observe(r) for _, _, r in cli.daemon.all_containers()]
    running = sum(1 for r in records if r["state"] == "running")
    swarm = state["swarm"]
    return {
        "ID": value_digest(str(cli.daemon.root))[:36],
        "Containers": len(records), "ContainersRunning": running,
        "ContainersPaused": 0, "ContainersStopped": len(records) - running,
        "ServerVersion": ENGINE_VERSION, "OperatingSystem": "FLIP stand-in",
        "DockerRootDir": str(cli.daemon.root),
        "Swarm": {"LocalNodeState": swarm["state"], "NodeID": swarm.get("node_id", ""),
                  "ControlAvailable": swarm["state"] == "active",
                  "NodeAddr": swarm.get("advertise_addr", "")},
        "Runtimes": {"runc": {"path": "runc"}}, "GPUs": state.get("gpus", 0),
    }


def _info(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    opts, _ = _parse(args, _flags("-f|--format="), "info")
    with cli.daemon.lock():
        data = _info_data(cli)
    fmt = opts.value("format")
    if fmt:
        print(_template(fmt, data))
        return 0
    print(f"Client:\n Version:    {ENGINE_VERSION}\n\nServer:\n Containers: {data['Containers']}\n"
          f"  Running: {data['ContainersRunning']}\n  Stopped: {data['ContainersStopped']}\n"
          f" Server Version: {ENGINE_VERSION}\n Swarm: {data['Swarm']['LocalNodeState']}\n"
          f" Operating System: FLIP stand-in (no container engine)\n"
          f" Docker Root Dir: {cli.daemon.root}")
    return 0


def _swarm(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    if not args or args[0] not in ("init", "leave"):
        raise CliError("the stand-in plays `docker swarm init` and `docker swarm leave` only")
    with cli.daemon.lock():
        state = cli.daemon.state()
        swarm = state["swarm"]
        if args[0] == "init":
            opts, _ = _parse(args[1:], _flags("--advertise-addr=", "--listen-addr="),
                             "swarm init")
            if swarm["state"] == "active":
                raise CliError(
                    'Error response from daemon: This node is already part of a swarm. Use '
                    '"docker swarm leave" to leave this swarm and join another one.'
                )
            node = secrets.token_hex(13)[:25]
            state["swarm"] = {"state": "active", "node_id": node,
                              "advertise_addr": opts.value("advertise-addr") or "127.0.0.1"}
            state["networks"].setdefault("ingress", _network_record("ingress", "overlay", False))
            cli.daemon.save_state(state)
            print(f"Swarm initialized: current node ({node}) is now a manager.\n\n"
                  "To add a manager to this swarm, run 'docker swarm join-token manager' and "
                  "follow the instructions.\n")
            return 0
        opts, _ = _parse(args[1:], _flags("-f|--force"), "swarm leave")
        if swarm["state"] != "active":
            raise CliError("Error response from daemon: This node is not part of a swarm")
        if not opts.flag("force"):
            raise CliError(
                "Error response from daemon: You are attempting to leave the swarm on a node "
                "that is participating as a manager. Removing the last manager erases all "
                "current state of the swarm. Use `--force` to ignore this message."
            )
        state["swarm"] = {"state": "inactive"}
        state["networks"] = {k: v for k, v in state["networks"].items()
                             if v["Driver"] != "overlay"}
        cli.daemon.save_state(state)
        print("Node left the swarm.")
        return 0


# -- networks --------------------------------------------------------------------------------


def _network_record(name: str, driver: str, attachable: bool) -> dict[str, Any]:
    return {"Name": name, "Id": new_id() if driver != "overlay" else secrets.token_hex(13)[:25],
            "Created": now_iso(), "Scope": "swarm" if driver == "overlay" else "local",
            "Driver": driver, "Attachable": attachable, "Internal": False, "Labels": {}}


def _networks(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nets: dict[str, dict[str, Any]] = state["networks"]
    for name, driver in BUILTIN_NETWORKS.items():
        if name not in nets:
            nets[name] = _network_record(name, driver, False)
    return nets


def _network_users(cli: Cli, name: str) -> list[dict[str, Any]]:
    return [r for _, _, r in cli.daemon.all_containers()
            if r.get("network") == name and cli.daemon.observe(r)["state"] == "running"]


def _network(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    sub = args[0] if args else ""
    rest = args[1:]
    with cli.daemon.lock():
        state = cli.daemon.state()
        nets = _networks(state)
        if sub == "create":
            opts, _ = _parse(rest, _flags("-d|--driver=", "--attachable", "--scope=",
                                          "--label="), "network create")
            if len(opts.args) != 1:
                raise CliError('"docker network create" requires exactly 1 argument.')
            name = opts.args[0]
            driver = opts.value("driver") or "bridge"
            if name in nets:
                raise CliError(
                    f"Error response from daemon: network with name {name} already exists")
            if driver not in ("bridge", "overlay"):
                raise CliError(f'Error response from daemon: plugin "{driver}" not found')
            if driver == "overlay" and state["swarm"]["state"] != "active":
                raise CliError(
                    "Error response from daemon: This node is not a swarm manager. Use "
                    '"docker swarm init" or "docker swarm join" to connect this node to swarm '
                    "and try again."
                )
            nets[name] = _network_record(name, driver, opts.flag("attachable"))
            cli.daemon.save_state(state)
            print(nets[name]["Id"])
            return 0
        if sub == "inspect":
            opts, _ = _parse(rest, _flags("-f|--format="), "network inspect")
            if not opts.args:
                raise CliError('"docker network inspect" requires at least 1 argument.')
            found, missing = [], []
            for name in opts.args:
                if name in nets:
                    users = _network_users(cli, name)
                    found.append({**nets[name], "Containers": {
                        r["id"]: {"Name": r["name"]} for r in users}})
                else:
                    missing.append(name)
            fmt = opts.value("format")
            if fmt:
                for item in found:
                    print(_template(fmt, item))
            else:
                print(json.dumps(found, indent=4))
            for name in missing:
                print(f"Error response from daemon: network {name} not found", file=sys.stderr)
            return 1 if missing else 0
        if sub in ("rm", "remove"):
            opts, _ = _parse(rest, _flags("-f|--force"), "network rm")
            failed = False
            for name in opts.args:
                if name not in nets:
                    print(f"Error response from daemon: network {name} not found",
                          file=sys.stderr)
                    failed = True
                elif name in BUILTIN_NETWORKS:
                    print(f"Error response from daemon: {name} is a pre-defined network and "
                          "cannot be removed", file=sys.stderr)
                    failed = True
                elif _network_users(cli, name):
                    print(f"Error response from daemon: error while removing network: network "
                          f"{name} id {nets[name]['Id']} has active endpoints", file=sys.stderr)
                    failed = True
                else:
                    del nets[name]
                    print(name)
            cli.daemon.save_state(state)
            return 1 if failed else 0
        if sub == "ls":
            opts, _ = _parse(rest, _flags("-f|--format=", "-q|--quiet", "--filter="),
                             "network ls")
            rows = sorted(nets.values(), key=lambda n: n["Name"])
            fmt = opts.value("format")
            if opts.flag("quiet"):
                for row in rows:
                    print(row["Id"][:12])
            elif fmt:
                for row in rows:
                    print(_template(fmt, {**row, "ID": row["Id"][:12]}))
            else:
                print(f"{'NETWORK ID':<15}{'NAME':<40}{'DRIVER':<10}SCOPE")
                for row in rows:
                    print(f"{row['Id'][:12]:<15}{row['Name']:<40}{row['Driver']:<10}"
                          f"{row['Scope']}")
            return 0
    raise CliError("the stand-in plays `docker network create|inspect|rm|ls` only")


# -- containers, as docker ps / docker stop see them -----------------------------------------


def _human(delta: timedelta) -> str:
    """go-units HumanDuration, which docker uses in Status and RunningFor."""
    seconds = int(delta.total_seconds())
    minutes, hours = seconds // 60, delta.total_seconds() / 3600
    if seconds < 1:
        return "Less than a second"
    if seconds == 1:
        return "1 second"
    if seconds < 60:
        return f"{seconds} seconds"
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    if round(hours) == 1:
        return "About an hour"
    if hours < 48:
        return f"{int(hours)} hours"
    if hours < 24 * 7 * 2:
        return f"{int(hours // 24)} days"
    return f"{int(hours // (24 * 7))} weeks"


def _row(view: dict[str, Any], project: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    created = parse_iso(view["created"])
    if view["state"] == "running":
        status = f"Up {_human(now - parse_iso(view['started']))}"
    else:
        ended = parse_iso(view.get("finished") or view["started"])
        status = f"Exited ({view.get('exit_code', 0)}) {_human(now - ended)} ago"
    labels = ",".join(f"{k}={v}" for k, v in sorted(view["labels"].items()))
    ports = ", ".join(f"0.0.0.0:{p['host']}->{p['container']}/tcp" for p in view["ports"])
    return {
        "Command": '"/entrypoint"', "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
        "ExitCode": 0 if view["state"] == "running" else int(view.get("exit_code", 0)),
        "Health": "", "ID": view["id"][:12], "Image": view["image"], "Labels": labels,
        "LocalVolumes": str(sum(1 for m in view["mounts"] if m["type"] == "volume")),
        "Mounts": ",".join(m["source"] for m in view["mounts"]), "Name": view["name"],
        "Names": view["name"], "Networks": view.get("network", ""), "Ports": ports,
        "Project": project, "Publishers": [
            {"URL": "0.0.0.0", "TargetPort": p["container"], "PublishedPort": p["host"],
             "Protocol": "tcp"} for p in view["ports"]],
        "RunningFor": f"{_human(now - created)} ago", "Service": view["service"],
        "Size": "0B", "State": view["state"], "Status": status,
    }


def _docker_ps(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    opts, _ = _parse(args, _flags("-a|--all", "-q|--quiet", "--format=", "-f|--filter=",
                                  "--no-trunc"), "ps")
    filters = opts.values.get("filter", [])
    with cli.daemon.lock():
        rows = []
        for project, _, record in cli.daemon.all_containers():
            view = cli.daemon.observe(record)
            if view["state"] != "running" and not opts.flag("all"):
                continue
            if all(_matches(f, view) for f in filters):
                rows.append(_row(view, project))
    _print_rows(rows, opts.value("format"), opts.flag("quiet"), compose=False)
    return 0


def _matches(expr: str, view: dict[str, Any]) -> bool:
    key, _, want = expr.partition("=")
    if key == "label":
        label, eq, value = want.partition("=")
        return label in view["labels"] and (not eq or str(view["labels"][label]) == value)
    if key == "name":
        return want in str(view["name"])
    if key == "status":
        return str(view["state"]) == want
    raise CliError(f"Error response from daemon: invalid filter '{key}'")


def _print_rows(rows: list[dict[str, Any]], fmt: str | None, quiet: bool, compose: bool) -> None:
    if quiet:
        for row in rows:
            print(row["ID"])
    elif fmt == "json":
        for row in rows:
            print(json.dumps(row, separators=(",", ":")))
    elif fmt and fmt != "table":
        for row in rows:
            print(_template(fmt, row))
    elif compose:
        print(f"{'NAME':<30}{'IMAGE':<55}{'SERVICE':<18}{'STATUS':<24}PORTS")
        for row in rows:
            print(f"{row['Name']:<30}{row['Image']:<55}{row['Service']:<18}{row['Status']:<24}"
                  f"{row['Ports']}")
    else:
        print(f"{'CONTAINER ID':<15}{'IMAGE':<55}{'STATUS':<24}NAMES")
        for row in rows:
            print(f"{row['ID']:<15}{row['Image']:<55}{row['Status']:<24}{row['Names']}")


def _docker_stop(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    opts, _ = _parse(args, _flags("-t|--time=", "-s|--signal="), "stop")
    if not opts.args:
        raise CliError('"docker stop" requires at least 1 argument.')
    failed = False
    with cli.daemon.lock():
        for wanted in opts.args:
            hit = None
            for project, service, record in cli.daemon.all_containers():
                if wanted in (record["name"], record["id"]) or (
                        len(wanted) >= 4 and record["id"].startswith(wanted)):
                    hit = (project, service)
            if hit is None:
                print(f"Error response from daemon: No such container: {wanted}",
                      file=sys.stderr)
                failed = True
                continue
            data = cli.daemon.project(hit[0])
            cli.daemon.stop_process(data["containers"][hit[1]])
            cli.daemon.save_project(hit[0], data)
            print(wanted)
    return 1 if failed else 0


# -- compose ---------------------------------------------------------------------------------


@dataclass
class ComposeArgs:
    files: list[Path]
    env_files: list[Path]
    project_dir: Path | None
    project: str | None
    command: str
    rest: list[str]


_COMPOSE_GLOBAL = _flags("-f|--file=", "-p|--project-name=", "--env-file=",
                         "--project-directory=", "--ansi=", "--progress=", "--profile=")


def _compose(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    opts, rest = _parse(args, _COMPOSE_GLOBAL, "compose", stop_at_positional=True)
    if opts.values.get("profile"):
        raise CliError("the stand-in does not play compose profiles (FLIP's files use none)")
    if not rest:
        raise CliError("docker compose needs a command (up, ps, logs, config, stop, down)")
    project_dir = opts.value("project-directory")
    parsed = ComposeArgs(
        files=[Path(f).expanduser().resolve() for f in opts.values.get("file", [])],
        env_files=[Path(f).expanduser().resolve() for f in opts.values.get("env-file", [])],
        project_dir=Path(project_dir).expanduser().resolve() if project_dir else None,
        project=opts.value("project-name"), command=rest[0], rest=rest[1:],
    )
    commands: dict[str, Callable[[Cli, ComposeArgs, dict[str, str]], int]] = {
        "up": _up, "ps": _ps, "logs": _logs, "config": _config, "stop": _stop,
        "down": _down, "version": _compose_version,
    }
    handler = commands.get(parsed.command)
    if handler is None:
        raise CliError(f"unknown docker command: \"compose {parsed.command}\" (the stand-in "
                       f"plays compose {', '.join(commands)})")
    return handler(cli, parsed, env)


def _compose_version(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    opts, _ = _parse(args.rest, _flags("--short", "-f|--format="), "compose version")
    if opts.flag("short"):
        print(COMPOSE_VERSION)
    elif opts.value("format") == "json":
        print(json.dumps({"version": f"v{COMPOSE_VERSION}"}))
    else:
        print(f"Docker Compose version v{COMPOSE_VERSION}")
    return 0


def _load(args: ComposeArgs, env: dict[str, str]) -> Project:
    return load_project(args.files, args.env_files, args.project_dir, args.project, env)


def _project_only(args: ComposeArgs, env: dict[str, str]) -> str:
    """The project name for commands that act on recorded containers (compose needs no files)."""
    directory = args.project_dir or (args.files[0].parent if args.files else Path.cwd())
    return project_name(args.project, env, directory)


def _progress(kind: str, name: str, status: str) -> None:
    print(f" {kind} {name}  {status}", file=sys.stderr)


# -- compose up ------------------------------------------------------------------------------


def _up(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    opts, _ = _parse(args.rest, _flags(
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
    project = _load(args, env)
    if cli.world is not None:
        read_world(cli.world)
    unknown = [s for s in opts.args if s not in project.services]
    if unknown:
        raise CliError(f"no such service: {unknown[0]}")
    with cli.daemon.lock():
        state = cli.daemon.state()
        nets = _networks(state)
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
            nets[network] = _network_record(network, "bridge", False)
            cli.daemon.save_state(state)
            _progress("Network", network, "Created")
        record.update({"name": project.name, "network": network,
                       "working_dir": str(project.directory)})
        for service in targets:
            _up_service(cli, project, service, containers, opts)
        for service in sorted(set(containers) - set(project.services)):
            orphan = containers[service]
            if opts.flag("remove-orphans"):
                _remove(cli, orphan)
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
                _progress("Container", current["name"], "Running")
                return
            _progress("Container", current["name"], "Starting")
            _start(cli, project, service, current)
            _progress("Container", current["name"], "Started")
            return
        _progress("Container", current["name"], "Recreate")
        cli.daemon.stop_process(current)
        cli.daemon.remove_container_dir(current["id"])
        fresh = _create(cli, project, service, config_hash)
        _progress("Container", fresh["name"], "Recreated")
    else:
        fresh = _create(cli, project, service, config_hash)
        _progress("Container", fresh["name"], "Creating")
        _progress("Container", fresh["name"], "Created")
    containers[service] = fresh
    _progress("Container", fresh["name"], "Starting")
    _start(cli, project, service, fresh)
    _progress("Container", fresh["name"], "Started")


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
    record["process"] = trust_api.spawn(cli.daemon.root, record["id"],
                                        project.container_env(service), world)


def _remove(cli: Cli, record: dict[str, Any]) -> None:
    _progress("Container", record["name"], "Stopping")
    cli.daemon.stop_process(record)
    _progress("Container", record["name"], "Stopped")
    _progress("Container", record["name"], "Removing")
    cli.daemon.remove_container_dir(record["id"])
    _progress("Container", record["name"], "Removed")


# -- compose ps / logs / config / stop / down ------------------------------------------------


def _selected(record: dict[str, Any], services: list[str]) -> list[tuple[str, dict[str, Any]]]:
    containers = record.get("containers", {})
    unknown = [s for s in services if s not in containers]
    if unknown:
        raise CliError(f"no such service: {unknown[0]}")
    return [(s, containers[s]) for s in sorted(services or containers)]


def _ps(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    opts, _ = _parse(args.rest, _flags("-a|--all", "-q|--quiet", "--format=", "--services",
                                       "--status=", "--no-trunc", "--orphans"), "compose ps")
    name = _project_only(args, env)
    with cli.daemon.lock():
        record = cli.daemon.project(name)
        rows = []
        for _, container in _selected(record, opts.args):
            view = cli.daemon.observe(container)
            if view["state"] != "running" and not opts.flag("all"):
                continue
            status = opts.value("status")
            if status and view["state"] != status:
                continue
            rows.append(_row(view, name))
    if opts.flag("services"):
        for row in rows:
            print(row["Service"])
        return 0
    _print_rows(rows, opts.value("format"), opts.flag("quiet"), compose=True)
    return 0


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|ms|s|m|h)")
_UNITS = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def _point_in_time(value: str, now: datetime) -> datetime:
    """--since/--until: a Go duration (`10m`, `1h30m`), RFC 3339, or Unix seconds."""
    if re.fullmatch(r"(?:\d+(?:\.\d+)?(?:ns|us|ms|s|m|h))+", value):
        seconds = sum(float(n) * _UNITS[u] for n, u in _DURATION.findall(value))
        return now - timedelta(seconds=seconds)
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return datetime.fromtimestamp(float(value), UTC)
    try:
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(f'invalid value for "--since"/"--until": {value!r} (use 10m, 1h, '
                       "2024-01-02T15:04:05Z or Unix seconds)") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


def _read_log(cli: Cli, record: dict[str, Any]) -> list[tuple[datetime, str]]:
    path = cli.daemon.container_dir(record["id"]) / LOG_FILE
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    lines = []
    for text in raw.splitlines():
        try:
            entry = json.loads(text)
            stamp = parse_iso(entry["time"])
        except (ValueError, KeyError):
            continue
        lines.append((stamp, str(entry.get("log", "")).rstrip("\n")))
    return lines


def _logs(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    opts, _ = _parse(args.rest, _flags("--no-color", "--since=", "--until=", "-n|--tail=",
                                       "-t|--timestamps", "--no-log-prefix", "-f|--follow"),
                     "compose logs")
    if opts.flag("follow"):
        raise CliError("the stand-in cannot follow logs (-f); poll with --since instead")
    name = _project_only(args, env)
    now = datetime.now(UTC)
    since = _point_in_time(v, now) if (v := opts.value("since")) else None
    until = _point_in_time(v, now) if (v := opts.value("until")) else None
    tail = opts.value("tail") or "all"
    if tail != "all" and not tail.isdigit():
        raise CliError(f'invalid value for "--tail": {tail!r} (a number or "all")')
    with cli.daemon.lock():
        record = cli.daemon.project(name)
        chosen = _selected(record, opts.args)
        entries: list[tuple[datetime, int, str, str]] = []
        width = max((len(c["name"].removeprefix(f"{name}-")) for _, c in chosen), default=0)
        for order, (_, container) in enumerate(chosen):
            short = container["name"].removeprefix(f"{name}-")
            lines = [(t, m) for t, m in _read_log(cli, container)
                     if (since is None or t >= since) and (until is None or t <= until)]
            if tail != "all":
                lines = lines[len(lines) - int(tail):] if int(tail) else []
            entries.extend((t, order, short, m) for t, m in lines)
    for stamp, _, short, message in sorted(entries, key=lambda e: (e[0], e[1])):
        prefix = "" if opts.flag("no-log-prefix") else f"{short:<{width + 1}} | "
        when = stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ") + " " if opts.flag("timestamps") else ""
        print(f"{prefix}{when}{message}")
    return 0


def _config(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    opts, _ = _parse(args.rest, _flags("--hash=", "--services", "-q|--quiet"), "compose config")
    project = _load(args, env)
    wanted = opts.value("hash")
    if wanted is not None:
        names = sorted(project.services) if wanted == "*" else wanted.split(",")
        for service in names:
            if service not in project.services:
                raise CliError(f"no such service: {service}")
            print(f"{service} {project.config_hash(service)}")
        return 0
    if opts.flag("services"):
        for service in sorted(project.services):
            print(service)
        return 0
    if opts.flag("quiet"):
        return 0
    raise CliError("the stand-in plays `compose config --hash '*'|SERVICE`, `--services` and "
                   "`-q` only (the full model would print the kit's secrets)")


def _stop(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    opts, _ = _parse(args.rest, _flags("-t|--timeout="), "compose stop")
    name = _project_only(args, env)
    with cli.daemon.lock():
        record = cli.daemon.project(name)
        for _, container in _selected(record, opts.args):
            if cli.daemon.observe(container)["state"] == "running":
                _progress("Container", container["name"], "Stopping")
                cli.daemon.stop_process(container)
                _progress("Container", container["name"], "Stopped")
            else:
                cli.daemon.stop_process(container)
        cli.daemon.save_project(name, record)
    return 0


def _down(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    opts, _ = _parse(args.rest, _flags("--remove-orphans", "-v|--volumes", "-t|--timeout="),
                     "compose down")
    if opts.args:
        raise CliError("compose down takes no services (it removes the whole project)")
    name = _project_only(args, env)
    with cli.daemon.lock():
        record = cli.daemon.project(name)
        for _, container in _selected(record, []):
            _remove(cli, container)
        network = record.get("network")
        state = cli.daemon.state()
        if network == f"{name}_default" and network in state["networks"]:
            del state["networks"][network]
            cli.daemon.save_state(state)
            _progress("Network", network, "Removed")
        record["containers"] = {}
        cli.daemon.save_project(name, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
