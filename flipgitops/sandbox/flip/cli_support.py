"""What every stand-in docker command shares: option parsing, --format, progress, views.

Options follow cobra's rules as the docker CLI does (`-x V`, `--xx V`, `--xx=V`, unknown flags
refused); `--format` takes the few Go-template forms operators pass (`{{.A.B}}`,
`{{json .A}}`); container rows carry the fields `docker ps`/`docker compose ps --format json`
print, with go-units' human durations in Status.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flipgitops.sandbox.flip.daemon import Daemon, parse_iso

if TYPE_CHECKING:  # the compose reader is imported by the commands that read files only
    from flipgitops.sandbox.flip.compose import Project

ENGINE_VERSION = "27.3.1"
COMPOSE_VERSION = "2.29.7"


class CliError(Exception):
    """Printed on stderr as is; the command exits 1 (Docker's status for every refusal)."""



# Plain classes, not dataclasses: importing dataclasses (and inspect) costs about a third
# of a stand-in command's start, and each host step runs about twenty commands.
class Cli:
    """One command's daemon (a host's state) and the world file (where the hub listens)."""

    __slots__ = ("daemon", "world")

    def __init__(self, daemon: Daemon, world: Path | None) -> None:
        self.daemon = daemon
        self.world = world



# -- option parsing (cobra's rules: -x V, --xx V, --xx=V; unknown flags refused) -------------


class Options:
    """Parsed flags (canonical name -> True or the values given) and positional args."""

    __slots__ = ("args", "values")

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.args: list[str] = []

    def flag(self, name: str) -> bool:
        return bool(self.values.get(name))

    def value(self, name: str) -> str | None:
        got = self.values.get(name)
        return got[-1] if isinstance(got, list) else None


def parse_options(args: list[str], spec: dict[str, tuple[str, bool]], command: str,
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


def flags(*entries: str) -> dict[str, tuple[str, bool]]:
    """`"-a|--all"` (boolean) or `"--since="` (takes a value) -> parse spec."""
    spec: dict[str, tuple[str, bool]] = {}
    for entry in entries:
        takes = entry.endswith("=")
        spellings = entry.rstrip("=").split("|")
        for spelling in spellings:
            spec[spelling] = (spellings[-1].lstrip("-"), takes)
    return spec


# -- Go templates, the few forms operators pass to --format ----------------------------------


def render_template(fmt: str, data: Any) -> str:
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


def container_row(view: dict[str, Any], project: str) -> dict[str, Any]:
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



def print_rows(rows: list[dict[str, Any]], fmt: str | None, quiet: bool, compose: bool) -> None:
    if quiet:
        for row in rows:
            print(row["ID"])
    elif fmt == "json":
        for row in rows:
            print(json.dumps(row, separators=(",", ":")))
    elif fmt and fmt != "table":
        for row in rows:
            print(render_template(fmt, row))
    elif compose:
        print(f"{'NAME':<30}{'IMAGE':<55}{'SERVICE':<18}{'STATUS':<24}PORTS")
        for row in rows:
            print(f"{row['Name']:<30}{row['Image']:<55}{row['Service']:<18}{row['Status']:<24}"
                  f"{row['Ports']}")
    else:
        print(f"{'CONTAINER ID':<15}{'IMAGE':<55}{'STATUS':<24}NAMES")
        for row in rows:
            print(f"{row['ID']:<15}{row['Image']:<55}{row['Status']:<24}{row['Names']}")



# -- compose arguments -----------------------------------------------------------------------


class ComposeArgs:
    """`docker compose`'s global options and the subcommand with its arguments."""

    __slots__ = ("command", "env_files", "files", "project", "project_dir", "rest")

    def __init__(self, *, files: list[Path], env_files: list[Path], project_dir: Path | None,
                 project: str | None, command: str, rest: list[str]) -> None:
        self.files, self.env_files, self.project_dir = files, env_files, project_dir
        self.project, self.command, self.rest = project, command, rest


def load_args(args: ComposeArgs, env: dict[str, str]) -> Project:
    from flipgitops.sandbox.flip.compose import load_project

    return load_project(args.files, args.env_files, args.project_dir, args.project, env)


def project_of(args: ComposeArgs, env: dict[str, str]) -> str:
    """The project name for commands that act on recorded containers (compose needs no files)."""
    from flipgitops.sandbox.flip.compose_names import project_name

    directory = args.project_dir or (args.files[0].parent if args.files else Path.cwd())
    return project_name(args.project, env, directory)


def progress(kind: str, name: str, status: str) -> None:
    print(f" {kind} {name}  {status}", file=sys.stderr)
