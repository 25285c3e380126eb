"""The other compose commands: ps, logs, config --hash, stop, down, version.

They act on the project's recorded containers by name (compose v2 needs no files for them),
except `config`, which reads the files to print each service's config hash — the value `up`
records as `com.docker.compose.config-hash`, so equal hashes mean the running container
carries the current kit file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flipgitops.sandbox.flip.cli_support import (
    COMPOSE_VERSION,
    Cli,
    CliError,
    ComposeArgs,
    container_row,
    flags,
    load_args,
    parse_options,
    print_rows,
    progress,
    project_of,
)
from flipgitops.sandbox.flip.daemon import LOG_FILE, parse_iso

_COMPOSE_GLOBAL = flags("-f|--file=", "-p|--project-name=", "--env-file=",
                         "--project-directory=", "--ansi=", "--progress=", "--profile=")


def compose(cli: Cli, args: list[str], env: dict[str, str]) -> int:
    opts, rest = parse_options(args, _COMPOSE_GLOBAL, "compose", stop_at_positional=True)
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


def _up(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    """`compose up`, whose module (mounts, ports, the trust-api poller) the read-only
    commands, most of a host's calls, need not import."""
    from flipgitops.sandbox.flip.compose_up import up

    return up(cli, args, env)


def _compose_version(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    opts, _ = parse_options(args.rest, flags("--short", "-f|--format="), "compose version")
    if opts.flag("short"):
        print(COMPOSE_VERSION)
    elif opts.value("format") == "json":
        print(json.dumps({"version": f"v{COMPOSE_VERSION}"}))
    else:
        print(f"Docker Compose version v{COMPOSE_VERSION}")
    return 0


# -- compose ps / logs / config / stop / down ------------------------------------------------


def _selected(record: dict[str, Any], services: list[str]) -> list[tuple[str, dict[str, Any]]]:
    containers = record.get("containers", {})
    unknown = [s for s in services if s not in containers]
    if unknown:
        raise CliError(f"no such service: {unknown[0]}")
    return [(s, containers[s]) for s in sorted(services or containers)]


def _ps(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    opts, _ = parse_options(args.rest, flags("-a|--all", "-q|--quiet", "--format=", "--services",
                                       "--status=", "--no-trunc", "--orphans"), "compose ps")
    name = project_of(args, env)
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
            rows.append(container_row(view, name))
    if opts.flag("services"):
        for row in rows:
            print(row["Service"])
        return 0
    print_rows(rows, opts.value("format"), opts.flag("quiet"), compose=True)
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
    opts, _ = parse_options(args.rest, flags("--no-color", "--since=", "--until=", "-n|--tail=",
                                       "-t|--timestamps", "--no-log-prefix", "-f|--follow"),
                     "compose logs")
    if opts.flag("follow"):
        raise CliError("the stand-in cannot follow logs (-f); poll with --since instead")
    name = project_of(args, env)
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
    opts, _ = parse_options(args.rest, flags("--hash=", "--services", "-q|--quiet"),
                            "compose config")
    project = load_args(args, env)
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
    opts, _ = parse_options(args.rest, flags("-t|--timeout="), "compose stop")
    name = project_of(args, env)
    with cli.daemon.lock():
        record = cli.daemon.project(name)
        for _, container in _selected(record, opts.args):
            if cli.daemon.observe(container)["state"] == "running":
                progress("Container", container["name"], "Stopping")
                cli.daemon.stop_process(container)
                progress("Container", container["name"], "Stopped")
            else:
                cli.daemon.stop_process(container)
        cli.daemon.save_project(name, record)
    return 0


def _down(cli: Cli, args: ComposeArgs, env: dict[str, str]) -> int:
    opts, _ = parse_options(args.rest, flags("--remove-orphans", "-v|--volumes", "-t|--timeout="),
                     "compose down")
    if opts.args:
        raise CliError("compose down takes no services (it removes the whole project)")
    from flipgitops.sandbox.flip.compose_up import remove_container

    name = project_of(args, env)
    with cli.daemon.lock():
        record = cli.daemon.project(name)
        for _, container in _selected(record, []):
            remove_container(cli, container)
        network = record.get("network")
        state = cli.daemon.state()
        if network == f"{name}_default" and network in state["networks"]:
            del state["networks"][network]
            cli.daemon.save_state(state)
            progress("Network", network, "Removed")
        record["containers"] = {}
        cli.daemon.save_project(name, record)
    return 0
