"""A stand-in for the ``docker`` CLI on machines with no container engine (DESIGN §4).

The trust-host playbooks always run the real commands (``<docker> compose … up -d``,
``ps --format json``, ``logs``, ``down``). In the sandbox and the tests there is no container
engine, so a host's ``docker`` setting names this command instead. It accepts the same argument
shapes the playbooks use, resolves the compose file with the env file the way compose does, and
records the project's containers in ``<compose dir>/.standin/<project>.json`` so later ``ps`` and
``logs`` calls answer from what was "started". It never prints an env-file value.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

VERSION = "27.0.0-flipgitops-standin"
_VAR = re.compile(r"\$(?:\$|\{(?P<braced>[^}]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")
_REFERENCE = re.compile(
    r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*(?::\d+)?(?:/[a-z0-9._-]+)*(?::[\w][\w.-]{0,127})?$"
)


class StandinError(Exception):
    """A usage or compose error; printed to stderr, exit 1 (like docker)."""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(args)
    except StandinError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        print("Usage: flipgitops-docker-standin version|info|compose ...")
        return 0
    if args[0] == "version":
        print(f"Client:\n Version: {VERSION}\n\nServer: flipgitops stand-in (no container engine)")
        return 0
    if args[0] == "info":
        print("Server:\n Containers: recorded per compose project\n Engine: flipgitops stand-in")
        return 0
    if args[0] == "compose":
        return _compose(args[1:])
    raise StandinError(f"unsupported command {args[0]!r} (the stand-in only does compose)")


# -- compose command line --------------------------------------------------------------------


@dataclass
class Invocation:
    project: str | None = None
    files: list[Path] = field(default_factory=list)
    env_file: Path | None = None
    command: str = ""
    options: dict[str, str | bool] = field(default_factory=dict)
    services: list[str] = field(default_factory=list)


_VALUE_OPTIONS = {"--format", "--since", "--until", "--tail", "-n", "--timeout", "-t"}


def _parse(args: list[str]) -> Invocation:
    inv = Invocation()
    it = iter(args)
    for arg in it:
        if arg in ("-p", "--project-name"):
            inv.project = next(it, None)
        elif arg in ("-f", "--file"):
            inv.files.append(Path(next(it, "")))
        elif arg == "--env-file":
            inv.env_file = Path(next(it, ""))
        elif arg == "--project-directory":
            next(it, None)
        elif arg.startswith("-"):
            raise StandinError(f"unknown compose flag {arg!r}")
        else:
            inv.command = arg
            break
    if not inv.command:
        raise StandinError("no compose command given")
    rest = list(it)
    i = 0
    while i < len(rest):
        arg = rest[i]
        if "=" in arg and arg.startswith("--"):
            key, value = arg.split("=", 1)
            inv.options[key] = value
        elif arg in _VALUE_OPTIONS and not (inv.command == "logs" and arg == "-t"):
            if i + 1 >= len(rest):
                raise StandinError(f"flag {arg} needs a value")
            inv.options[arg] = rest[i + 1]
            i += 1
        elif arg.startswith("-"):
            inv.options[arg] = True
        else:
            inv.services.append(arg)
        i += 1
    return inv


def _compose(args: list[str]) -> int:
    inv = _parse(args)
    if not inv.files:
        raise StandinError("the stand-in needs -f <compose file>")
    if inv.project is None:
        inv.project = inv.files[0].resolve().parent.name
    store = Store(inv.files[0].resolve().parent / ".standin" / f"{inv.project}.json")
    handlers = {
        "up": _up,
        "down": _down,
        "ps": _ps,
        "logs": _logs,
        "restart": _restart,
        "stop": _stop,
        "start": _restart,
    }
    handler = handlers.get(inv.command)
    if handler is None:
        raise StandinError(f"unsupported compose command {inv.command!r}")
    return handler(inv, store)


# -- compose file + env ----------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a compose env file (KEY=VALUE, comments, optional quotes, `export` prefix)."""
    values: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip().removeprefix("export ").strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def _interpolate(text: str, env: dict[str, str]) -> str:
    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        expr = match.group("braced") if match.group("braced") is not None else match.group("bare")
        for op in (":-", "-", ":?", "?"):
            if op in expr:
                name, default = expr.split(op, 1)
                value = env.get(name)
                if op.endswith("?"):
                    if value is None or (op == ":?" and value == ""):
                        raise StandinError(f"required variable {name} is missing a value")
                    return value
                if value is None or (op == ":-" and value == ""):
                    return default
                return value
        return env.get(expr, "")

    return _VAR.sub(sub, text)


def _resolve(value: Any, env: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _interpolate(value, env)
    if isinstance(value, dict):
        return {k: _resolve(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, env) for v in value]
    return value


def load_project(inv: Invocation) -> dict[str, dict[str, Any]]:
    """Services of the project after interpolation, keyed by service name."""
    env: dict[str, str] = {}
    if inv.env_file is not None:
        if not inv.env_file.is_file():
            raise StandinError(f"couldn't find env file: {inv.env_file}")
        env.update(read_env_file(inv.env_file))
    env.update(os.environ)  # compose: the shell environment wins over the env file
    services: dict[str, dict[str, Any]] = {}
    for file in inv.files:
        try:
            doc = YAML(typ="safe").load(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StandinError(f"open {file}: no such file or directory") from None
        except YAMLError as exc:
            raise StandinError(f"{file}: invalid compose file ({exc.__class__.__name__})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("services"), dict):
            raise StandinError(f"{file}: no services defined")
        for name, spec in doc["services"].items():
            merged = {**services.get(name, {}), **_resolve(dict(spec or {}), env)}
            services[str(name)] = merged
    base = inv.files[0].resolve().parent
    for name, spec in services.items():
        image = spec.get("image")
        if not isinstance(image, str) or not _REFERENCE.match(image):
            raise StandinError(f"service {name!r}: invalid reference format: {image!r}")
        spec["_env_digest"] = _env_digest(spec, base)
    return services


def _env_digest(spec: dict[str, Any], base: Path) -> str:
    """Hash of the container's env_file contents: changed keys mean a recreate, like compose.

    Only the hash is kept; the trust env file holds secrets the stand-in must never record.
    """
    files = spec.get("env_file") or []
    if isinstance(files, str | dict):
        files = [files]
    digest = hashlib.sha256()
    for entry in files:
        rel = entry.get("path") if isinstance(entry, dict) else entry
        path = (base / str(rel)).resolve()
        if path.is_file():
            digest.update(path.read_bytes())
        elif not (isinstance(entry, dict) and entry.get("required") is False):
            raise StandinError(f"env file {path} not found")
    return digest.hexdigest()


def _container_env(spec: dict[str, Any], base: Path) -> dict[str, str]:
    env: dict[str, str] = {}
    files = spec.get("env_file") or []
    if isinstance(files, str | dict):
        files = [files]
    for entry in files:
        rel = entry.get("path") if isinstance(entry, dict) else entry
        path = (base / str(rel)).resolve()
        if path.is_file():
            env.update(read_env_file(path))
    declared = spec.get("environment") or {}
    if isinstance(declared, list):
        declared = dict(item.split("=", 1) for item in declared if "=" in item)
    env.update({str(k): str(v) for k, v in declared.items() if v is not None})
    return env


def _config_hash(spec: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


# -- recorded state --------------------------------------------------------------------------


@dataclass
class Store:
    path: Path

    def load(self) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"containers": {}}
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2, sort_keys=True)
            os.replace(tmp, self.path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%f000Z")


def _progress(name: str, status: str) -> None:
    print(f" Container {name}  {status}", file=sys.stderr)


def _record(inv: Invocation, name: str, spec: dict[str, Any], now: datetime) -> dict[str, Any]:
    """What a started container looks like: non-secret facts about its environment only."""
    env = _container_env(spec, inv.files[0].resolve().parent)
    return {
        "name": str(spec.get("container_name") or f"{inv.project}-{name}-1"),
        "image": spec["image"],
        "state": "running",
        "created_at": _iso(now),
        "started_at": _iso(now),
        "config_hash": _config_hash(spec),
        "has_trust_api_key": bool(env.get("TRUST_API_KEY")),
        "hub_url": env.get("CENTRAL_HUB_API_URL", ""),
        "trust_name": env.get("TRUST_NAME", ""),
    }


def _up(inv: Invocation, store: Store) -> int:
    services = load_project(inv)
    unknown = [s for s in inv.services if s not in services]
    if unknown:
        raise StandinError(f"no such service: {unknown[0]}")
    targets = inv.services or list(services)
    state = store.load()
    containers: dict[str, Any] = state.setdefault("containers", {})
    state["project"] = inv.project
    now = _now()
    for name in sorted(targets):
        spec = services[name]
        current = containers.get(name)
        wanted = _record(inv, name, spec, now)
        if current is None:
            containers[name] = wanted
            _progress(wanted["name"], "Created")
            _progress(wanted["name"], "Started")
        elif current["config_hash"] != wanted["config_hash"] or inv.options.get("--force-recreate"):
            containers[name] = wanted
            _progress(wanted["name"], "Recreated")
            _progress(wanted["name"], "Started")
        elif current["state"] != "running":
            current["state"] = "running"
            current["started_at"] = _iso(now)
            _progress(current["name"], "Started")
        else:
            _progress(current["name"], "Running")
    orphans = sorted(set(containers) - set(services))
    for name in orphans:
        if inv.options.get("--remove-orphans"):
            _progress(containers.pop(name)["name"], "Removed")
        else:
            print(f"WARN Found orphan containers ([{containers[name]['name']}])", file=sys.stderr)
    store.save(state)
    return 0


def _down(inv: Invocation, store: Store) -> int:
    state = store.load()
    for name in sorted(state.get("containers", {})):
        container = state["containers"][name]
        _progress(container["name"], "Stopped")
        _progress(container["name"], "Removed")
    state["containers"] = {}
    store.save(state)
    return 0


def _selected(inv: Invocation, state: dict[str, Any]) -> list[str]:
    containers = state.get("containers", {})
    unknown = [s for s in inv.services if s not in containers]
    if unknown:
        raise StandinError(f"no container found for service {unknown[0]!r}")
    return sorted(inv.services or containers)


def _restart(inv: Invocation, store: Store) -> int:
    state = store.load()
    now = _now()
    for name in _selected(inv, state):
        container = state["containers"][name]
        container["state"] = "running"
        container["started_at"] = _iso(now)
        _progress(container["name"], "Restarting" if inv.command == "restart" else "Starting")
        _progress(container["name"], "Started")
    store.save(state)
    return 0


def _stop(inv: Invocation, store: Store) -> int:
    state = store.load()
    for name in _selected(inv, state):
        container = state["containers"][name]
        container["state"] = "exited"
        _progress(container["name"], "Stopped")
    store.save(state)
    return 0


def _ps(inv: Invocation, store: Store) -> int:
    state = store.load()
    show_all = bool(inv.options.get("-a") or inv.options.get("--all"))
    rows = []
    for name in sorted(state.get("containers", {})):
        c = state["containers"][name]
        if inv.services and name not in inv.services:
            continue
        if c["state"] != "running" and not show_all:
            continue
        rows.append(
            {
                "Command": '"/entrypoint"',
                "CreatedAt": c["created_at"],
                "ExitCode": 0,
                "Health": "",
                "ID": hashlib.sha256(f"{c['name']}{c['created_at']}".encode()).hexdigest()[:12],
                "Image": c["image"],
                "Labels": f"com.docker.compose.project={inv.project},"
                f"com.docker.compose.service={name}",
                "Name": c["name"],
                "Names": c["name"],
                "Project": inv.project,
                "Publishers": [],
                "Service": name,
                "State": c["state"],
                "Status": "Up" if c["state"] == "running" else "Exited (0)",
            }
        )
    fmt = inv.options.get("--format", "table")
    if fmt == "json":
        for row in rows:
            print(json.dumps(row))
    else:
        print(f"{'NAME':<32}{'IMAGE':<60}{'SERVICE':<20}STATUS")
        for row in rows:
            print(f"{row['Name']:<32}{row['Image']:<60}{row['Service']:<20}{row['Status']}")
    return 0


def _since(value: str, now: datetime) -> datetime:
    match = re.fullmatch(r"(\d+)([smh])", value)
    if match:
        unit = {"s": "seconds", "m": "minutes", "h": "hours"}[match.group(2)]
        return now - timedelta(**{unit: int(match.group(1))})
    if value.isdigit():
        return datetime.fromtimestamp(int(value), UTC)
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise StandinError(f"invalid value for --since: {value!r}") from None


def _log_lines(name: str, c: dict[str, Any], now: datetime) -> list[tuple[datetime, str]]:
    started = datetime.fromisoformat(c["started_at"][:26] + "+00:00")
    lines = [(started, f"INFO {name}: started from image {c['image']}")]
    if c["state"] != "running" or name != "trust-api":
        return lines
    if not c.get("has_trust_api_key"):
        lines.append((now, "ERROR trust-api: TRUST_API_KEY is not set; not polling"))
        return lines
    url = c.get("hub_url", "").rstrip("/")
    trust = c.get("trust_name", "")
    lines.append(
        (now, f"INFO trust-api: polled central hub {url}/tasks/{trust}/pending: 200 OK (no tasks)")
    )
    return lines


def _logs(inv: Invocation, store: Store) -> int:
    if inv.options.get("-f") or inv.options.get("--follow"):
        raise StandinError("the stand-in cannot follow logs")
    state = store.load()
    now = _now()
    since_opt = inv.options.get("--since")
    since = _since(since_opt, now) if isinstance(since_opt, str) else None
    stamps = bool(inv.options.get("-t") or inv.options.get("--timestamps"))
    bare = bool(inv.options.get("--no-log-prefix"))
    for name in _selected(inv, state):
        c = state["containers"][name]
        for ts, text in _log_lines(name, c, now):
            if since is not None and ts < since:
                continue
            prefix = "" if bare else f"{c['name']}  | "
            stamp = f"{_iso(ts)} " if stamps else ""
            print(f"{prefix}{stamp}{ts.strftime('%Y-%m-%d %H:%M:%S')} {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
