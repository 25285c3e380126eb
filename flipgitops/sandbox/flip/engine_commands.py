"""The engine-level commands: version, info, swarm, network, ps, stop.

The ones trust/Makefile@0046dc28 (create-networks) and scripts/onboard_onprem_trust.py@4aa1635b
(`docker info --format {{.Swarm.LocalNodeState}}`) run, and a careful operator adds.

Refusals are worded as Docker words them: an overlay network needs an active swarm ("This
node is not a swarm manager..."), an absent network is "not found" (exit 1), a network with
running containers "has active endpoints".
"""

from __future__ import annotations

import json
import sys
from typing import Any

from flipgitops.sandbox.flip.cli_support import (
    ENGINE_VERSION,
    Cli,
    CliError,
    container_row,
    flags,
    parse_options,
    print_rows,
    render_template,
)
from flipgitops.sandbox.flip.daemon import new_id, now_iso, swarm_id, value_digest

BUILTIN_NETWORKS = {"bridge": "bridge", "host": "host", "none": "null"}


def _version_data() -> dict[str, Any]:
    return {
        "Client": {"Version": ENGINE_VERSION, "ApiVersion": "1.47", "Os": "linux",
                   "Platform": {"Name": "flip-standin-docker"}},
        "Server": {"Version": ENGINE_VERSION, "ApiVersion": "1.47", "Os": "linux",
                   "Platform": {"Name": "FLIP stand-in (no container engine)"}},
    }


def version(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    opts, _ = parse_options(args, flags("-f|--format="), "version")
    fmt = opts.value("format")
    data = _version_data()
    if fmt:
        print(render_template(fmt, data))
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


def info(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    opts, _ = parse_options(args, flags("-f|--format="), "info")
    with cli.daemon.lock():
        data = _info_data(cli)
    fmt = opts.value("format")
    if fmt:
        print(render_template(fmt, data))
        return 0
    print(f"Client:\n Version:    {ENGINE_VERSION}\n\nServer:\n Containers: {data['Containers']}\n"
          f"  Running: {data['ContainersRunning']}\n  Stopped: {data['ContainersStopped']}\n"
          f" Server Version: {ENGINE_VERSION}\n Swarm: {data['Swarm']['LocalNodeState']}\n"
          f" Operating System: FLIP stand-in (no container engine)\n"
          f" Docker Root Dir: {cli.daemon.root}")
    return 0


def swarm(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    if not args or args[0] not in ("init", "leave"):
        raise CliError("the stand-in plays `docker swarm init` and `docker swarm leave` only")
    with cli.daemon.lock():
        state = cli.daemon.state()
        swarm = state["swarm"]
        if args[0] == "init":
            opts, _ = parse_options(args[1:], flags("--advertise-addr=", "--listen-addr="),
                             "swarm init")
            if swarm["state"] == "active":
                raise CliError(
                    'Error response from daemon: This node is already part of a swarm. Use '
                    '"docker swarm leave" to leave this swarm and join another one.'
                )
            node = swarm_id()
            state["swarm"] = {"state": "active", "node_id": node,
                              "advertise_addr": opts.value("advertise-addr") or "127.0.0.1"}
            state["networks"].setdefault("ingress", network_record("ingress", "overlay", False))
            cli.daemon.save_state(state)
            print(f"Swarm initialized: current node ({node}) is now a manager.\n\n"
                  "To add a manager to this swarm, run 'docker swarm join-token manager' and "
                  "follow the instructions.\n")
            return 0
        opts, _ = parse_options(args[1:], flags("-f|--force"), "swarm leave")
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


def network_record(name: str, driver: str, attachable: bool) -> dict[str, Any]:
    return {"Name": name, "Id": new_id() if driver != "overlay" else swarm_id(),
            "Created": now_iso(), "Scope": "swarm" if driver == "overlay" else "local",
            "Driver": driver, "Attachable": attachable, "Internal": False, "Labels": {}}


def known_networks(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nets: dict[str, dict[str, Any]] = state["networks"]
    for name, driver in BUILTIN_NETWORKS.items():
        if name not in nets:
            nets[name] = network_record(name, driver, False)
    return nets


def _network_users(cli: Cli, name: str) -> list[dict[str, Any]]:
    return [r for _, _, r in cli.daemon.all_containers()
            if r.get("network") == name and cli.daemon.observe(r)["state"] == "running"]


def network(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    sub = args[0] if args else ""
    rest = args[1:]
    with cli.daemon.lock():
        state = cli.daemon.state()
        nets = known_networks(state)
        if sub == "create":
            opts, _ = parse_options(rest, flags("-d|--driver=", "--attachable", "--scope=",
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
            nets[name] = network_record(name, driver, opts.flag("attachable"))
            cli.daemon.save_state(state)
            print(nets[name]["Id"])
            return 0
        if sub == "inspect":
            opts, _ = parse_options(rest, flags("-f|--format="), "network inspect")
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
                    print(render_template(fmt, item))
            else:
                print(json.dumps(found, indent=4))
            for name in missing:
                print(f"Error response from daemon: network {name} not found", file=sys.stderr)
            return 1 if missing else 0
        if sub in ("rm", "remove"):
            opts, _ = parse_options(rest, flags("-f|--force"), "network rm")
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
            opts, _ = parse_options(rest, flags("-f|--format=", "-q|--quiet", "--filter="),
                             "network ls")
            rows = sorted(nets.values(), key=lambda n: n["Name"])
            fmt = opts.value("format")
            if opts.flag("quiet"):
                for row in rows:
                    print(row["Id"][:12])
            elif fmt:
                for row in rows:
                    print(render_template(fmt, {**row, "ID": row["Id"][:12]}))
            else:
                print(f"{'NETWORK ID':<15}{'NAME':<40}{'DRIVER':<10}SCOPE")
                for row in rows:
                    print(f"{row['Id'][:12]:<15}{row['Name']:<40}{row['Driver']:<10}"
                          f"{row['Scope']}")
            return 0
    raise CliError("the stand-in plays `docker network create|inspect|rm|ls` only")



def docker_ps(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    opts, _ = parse_options(args, flags("-a|--all", "-q|--quiet", "--format=", "-f|--filter=",
                                  "--no-trunc"), "ps")
    filters = opts.values.get("filter", [])
    with cli.daemon.lock():
        rows = []
        for project, _, record in cli.daemon.all_containers():
            view = cli.daemon.observe(record)
            if view["state"] != "running" and not opts.flag("all"):
                continue
            if all(_matches(f, view) for f in filters):
                rows.append(container_row(view, project))
    print_rows(rows, opts.value("format"), opts.flag("quiet"), compose=False)
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



def docker_stop(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    opts, _ = parse_options(args, flags("-t|--time=", "-s|--signal="), "stop")
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

