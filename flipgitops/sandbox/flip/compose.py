"""How `docker compose` v2 reads a project: env files, interpolation, merging, one service's config.

The trust stack is FLIP's compose files plus a kit file (`--env-file`), started by
trust/Makefile@0046dc28 as
`docker compose --env-file <kit> --project-directory . -f <base> -f <backend> [-f <gpu>] -p trustN`.
This module reproduces what compose v2 does with those arguments, and nothing of Docker:

- the interpolation environment: the process environment wins over the `--env-file` files
  (later files win over earlier ones), which win over `<project dir>/.env`; as in compose,
  `<project dir>/.env` is read only when no `--env-file` is given;
- interpolation of every string value: `$V`, `${V}`, `${V:-d}`, `${V-d}`, `${V:?e}`, `${V?e}`,
  `${V:+r}`, `${V+r}`, `$$`, with defaults that nest (`${A:-/x-${B}}`) and are evaluated only
  when used;
- merging: later files override or extend services the way compose merges them;
- a service's resolved config and its hash (the `com.docker.compose.config-hash` label).

One deliberate difference: compose replaces a variable that has no default and is unset with
a blank string and only warns. FLIP's services crash at boot on blank values (the comment on
the kit-file include in trust/Makefile@0046dc28), so `load_project` collects every such
variable and raises `MissingVariables` naming all of them, and the stand-in refuses `up`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flipgitops.sandbox.flip.compose_names import ComposeError, project_name

__all__ = ["ComposeError", "Project", "load_project", "project_name"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_REFERENCE = re.compile(
    r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?::\d+)?(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[\w][\w.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
# Keys whose lists compose appends (without duplicates) when a later file names them again.
_APPENDED = frozenset({"ports", "expose", "cap_add", "cap_drop", "security_opt", "dns",
                       "dns_search", "extra_hosts", "devices", "group_add", "external_links"})
_REPLACED = frozenset({"command", "entrypoint", "healthcheck"})


@dataclass(frozen=True)
class Missing:
    """A variable with no default that is unset or empty, and where the files use it."""

    name: str
    where: str
    message: str = ""


class MissingVariables(ComposeError):
    """Every variable `up` would have blanked, in first-use order, with the services using it."""

    def __init__(self, missing: list[Missing]) -> None:
        self.missing = missing
        users: dict[str, list[str]] = {}
        for item in missing:
            spot = users.setdefault(item.name, [])
            owner = _owner(item.where)
            if owner not in spot:
                spot.append(owner)
        self.names = list(users)
        lines = [f"  {name}: used by {', '.join(where)}" for name, where in users.items()]
        super().__init__(
            f"{len(users)} variable(s) have no default in the compose files and are unset or "
            f"empty: {', '.join(users)}. Compose would start the services with a blank value, "
            "which FLIP's services cannot boot with (trust/Makefile), so the stand-in refuses. "
            "Set each one in the kit file given with --env-file, or in the environment.\n"
            + "\n".join(lines)
        )


def _owner(where: str) -> str:
    parts = where.split(".")
    if parts[0] == "services" and len(parts) > 1:
        return parts[1]
    return where


# -- env files -------------------------------------------------------------------------------


def read_env_file(path: Path, lookup: Mapping[str, str] | None = None) -> dict[str, str]:
    """Parse an env file the way compose v2 does.

    `KEY=VALUE` lines, `#` comments, an optional `export ` prefix; a single-quoted value is
    literal, a double-quoted one takes `\\n`/`\\"`/`\\\\` escapes and is interpolated, an
    unquoted one loses a trailing ` # comment` and is interpolated (from the keys above it,
    then `lookup`). A bare `KEY` takes its value from `lookup` when set there.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ComposeError(f"couldn't find env file: {path}") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
        raise ComposeError(f"couldn't read env file {path}: {exc.__class__.__name__}") from None
    outer = dict(lookup or {})
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not _ENV_KEY.fullmatch(key):
            raise ComposeError(
                f"failed to read {path}: line {number}: unexpected character in variable name "
                f"{key[:40]!r}"
            )
        if not sep:
            if key in outer:
                values[key] = outer[key]
            continue
        values[key] = _env_value(rest.strip(), {**outer, **values}, f"{path}:{number}")
    return values


def _env_value(rest: str, known: Mapping[str, str], where: str) -> str:
    if rest.startswith("'"):
        end = rest.find("'", 1)
        if end < 0:
            raise ComposeError(f"{where}: unterminated single-quoted value")
        return rest[1:end]
    if rest.startswith('"'):
        out: list[str] = []
        i = 1
        while i < len(rest):
            ch = rest[i]
            if ch == "\\" and i + 1 < len(rest):
                nxt = rest[i + 1]
                out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                i += 2
                continue
            if ch == '"':
                return _lenient("".join(out), known, where)
            out.append(ch)
            i += 1
        raise ComposeError(f"{where}: unterminated double-quoted value")
    comment = re.search(r"\s#", rest)
    if comment:
        rest = rest[: comment.start()]
    return _lenient(rest.strip(), known, where)


def _lenient(text: str, known: Mapping[str, str], where: str) -> str:
    """Interpolation inside env files: compose blanks what is unset there (no refusal)."""
    return Interpolator(known, strict=False).render(text, where)


def interpolation_environment(
    environ: Mapping[str, str], env_files: list[Path], project_dir: Path
) -> dict[str, str]:
    """The variables compose interpolates with: environ > --env-file files > project .env."""
    env: dict[str, str] = {}
    files = list(env_files)
    default = project_dir / ".env"
    if not files and default.is_file():
        files = [default]
    for file in files:
        env.update(read_env_file(file, {**env, **environ}))
    env.update(environ)
    return env


# -- interpolation ---------------------------------------------------------------------------


class Interpolator:
    """compose-go's template rules; in strict mode every blanked variable is collected."""

    def __init__(self, env: Mapping[str, str], strict: bool = True) -> None:
        self.env = env
        self.strict = strict
        self.missing: list[Missing] = []

    def render(self, text: str, where: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if ch != "$":
                out.append(ch)
                i += 1
                continue
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt == "$":
                out.append("$")
                i += 2
            elif nxt == "{":
                end = _closing_brace(text, i + 2)
                if end < 0:
                    raise _invalid(where, text)
                out.append(self._braced(text[i + 2:end], where, text))
                i = end + 1
            else:
                match = _NAME.match(text, i + 1)
                if not match:
                    raise _invalid(where, text)
                out.append(self._plain(match.group(0), where))
                i = match.end()
        return "".join(out)

    def _plain(self, name: str, where: str) -> str:
        value = self.env.get(name)
        if not value:
            if self.strict:
                self.missing.append(Missing(name, where))
            return ""
        return value

    def _braced(self, expr: str, where: str, whole: str) -> str:
        match = _NAME.match(expr)
        if not match:
            raise _invalid(where, whole)
        name = match.group(0)
        rest = expr[match.end():]
        if not rest:
            return self._plain(name, where)
        colon = rest.startswith(":")
        op = rest[1:2] if colon else rest[:1]
        word = rest[2:] if colon else rest[1:]
        if op not in ("-", "?", "+"):
            raise _invalid(where, whole)
        value = self.env.get(name)
        unset = value is None or (colon and value == "")
        if op == "-":
            return self.render(word, where) if unset else str(value)
        if op == "+":
            return "" if unset else self.render(word, where)
        if unset:
            message = self.render(word, where)
            if not self.strict:
                raise ComposeError(f"required variable {name} is missing a value: {message}")
            self.missing.append(Missing(name, where, message))
            return ""
        return str(value)


def _closing_brace(text: str, start: int) -> int:
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _invalid(where: str, text: str) -> ComposeError:
    return ComposeError(
        f'invalid interpolation format for {where}: "{text}"; '
        "you may need to escape any $ with another $"
    )


def _interpolate_tree(node: Any, interp: Interpolator, where: str) -> Any:
    if isinstance(node, str):
        return interp.render(node, where)
    if isinstance(node, dict):
        return {str(k): _interpolate_tree(v, interp, f"{where}.{k}" if where else str(k))
                for k, v in node.items()}
    if isinstance(node, list):
        out = []
        for index, item in enumerate(node):
            label = f"[{index}]"
            if isinstance(item, str) and "=" in item and where.endswith(".environment"):
                label = "." + item.split("=", 1)[0]
            out.append(_interpolate_tree(item, interp, f"{where}{label}"))
        return out
    return node


# -- normalising and merging -----------------------------------------------------------------


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _environment(raw: Any, where: str) -> dict[str, str | None]:
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return {str(k): None if v is None else _scalar(v) for k, v in raw.items()}
    if isinstance(raw, list):
        env: dict[str, str | None] = {}
        for item in raw:
            key, sep, value = str(item).partition("=")
            env[key] = value if sep else None
        return env
    raise ComposeError(f"{where}.environment must be a mapping or a list")


def _volume(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        spec = {str(k): v for k, v in raw.items()}
        if "target" not in spec:
            raise ComposeError(f"{where}: a volume needs a target")
        spec.setdefault("type", "volume")
        return spec
    parts = str(raw).split(":")
    if len(parts) == 1:
        return {"type": "volume", "source": "", "target": parts[0], "read_only": False}
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise ComposeError(f"{where}: invalid volume specification: {raw!r}")
    source, target = parts[0], parts[1]
    mode = parts[2] if len(parts) == 3 else ""
    kind = "bind" if source.startswith(("/", ".", "~")) else "volume"
    return {"type": kind, "source": source, "target": target,
            "read_only": "ro" in mode.split(",")}


def _normalise(name: str, raw: Any) -> dict[str, Any]:
    where = f"services.{name}"
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ComposeError(f"{where} must be a mapping")
    spec: dict[str, Any] = {str(k): v for k, v in raw.items()}
    if "environment" in spec:
        spec["environment"] = _environment(spec["environment"], where)
    if "volumes" in spec:
        spec["volumes"] = [_volume(v, f"{where}.volumes") for v in spec["volumes"] or []]
    if "ports" in spec:
        spec["ports"] = [_scalar(p) for p in spec["ports"] or []]
    if "depends_on" in spec:
        deps = spec["depends_on"] or []
        spec["depends_on"] = (
            {str(d): {"condition": "service_started"} for d in deps}
            if isinstance(deps, list) else {str(k): v for k, v in deps.items()}
        )
    return spec


def _deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for key, value in over.items():
            merged[key] = _deep_merge(base[key], value) if key in base else value
        return merged
    return over


def _merge_service(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if key not in base or key in _REPLACED:
            merged[key] = value
        elif key in ("environment", "labels", "depends_on"):
            merged[key] = {**base[key], **value}
        elif key == "volumes":
            by_target = {v["target"]: v for v in base[key]}
            for volume in value:
                by_target[volume["target"]] = volume
            merged[key] = list(by_target.values())
        elif key in _APPENDED and isinstance(value, list):
            merged[key] = base[key] + [v for v in value if v not in base[key]]
        else:
            merged[key] = _deep_merge(base[key], value)
    return merged


# -- the project -----------------------------------------------------------------------------


@dataclass
class Project:
    """A loaded compose project: resolved services, top-level networks and volumes."""

    name: str
    directory: Path
    files: list[Path]
    env_files: list[Path]
    env: dict[str, str] = field(repr=False)
    services: dict[str, dict[str, Any]] = field(repr=False)
    networks: dict[str, dict[str, Any]]
    volumes: dict[str, dict[str, Any]]

    def default_network(self) -> tuple[str, bool]:
        """The name of the network services join by default, and whether it is external."""
        spec = self.networks.get("default") or {}
        external = bool(spec.get("external"))
        return str(spec.get("name") or f"{self.name}_default"), external

    def resolved(self, service: str) -> dict[str, Any]:
        spec = dict(self.services[service])
        spec["environment"] = self.container_env(service)
        spec["network"] = self.default_network()[0]
        return spec

    def config_hash(self, service: str) -> str:
        """sha256 of the service's resolved config: what compose compares to recreate."""
        blob = json.dumps(self.resolved(service), sort_keys=True, separators=(",", ":"),
                          default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def container_env(self, service: str) -> dict[str, str]:
        """The environment the container gets: its env_file entries, then `environment:`."""
        spec = self.services[service]
        env: dict[str, str] = {}
        files = spec.get("env_file") or []
        for entry in files if isinstance(files, list) else [files]:
            rel = entry.get("path") if isinstance(entry, dict) else entry
            path = self.host_path(str(rel))
            if path.is_file():
                env.update(read_env_file(path, self.env))
            elif not (isinstance(entry, dict) and entry.get("required") is False):
                raise ComposeError(f"env file {path} not found")
        for key, value in (spec.get("environment") or {}).items():
            if value is not None:
                env[key] = value
            elif key in self.env:
                env[key] = self.env[key]
        return env

    def host_path(self, source: str) -> Path:
        """A bind source as Docker sees it: `~` expanded, relative to the project dir."""
        path = Path(os.path.expanduser(source))
        return path if path.is_absolute() else (self.directory / path).resolve()

    def dependencies(self, service: str) -> list[str]:
        return list((self.services[service].get("depends_on") or {}).keys())


def load_project(
    files: list[Path],
    env_files: list[Path],
    project_dir: Path | None,
    name: str | None,
    environ: Mapping[str, str],
) -> Project:
    """Read, interpolate (strictly), normalise and merge the files; validate like compose."""
    if not files:
        raise ComposeError("no configuration file provided: not found (the stand-in needs -f)")
    directory = (project_dir or files[0].parent).resolve()
    env = interpolation_environment(environ, env_files, directory)
    interp = Interpolator(env, strict=True)
    services: dict[str, dict[str, Any]] = {}
    networks: dict[str, dict[str, Any]] = {}
    volumes: dict[str, dict[str, Any]] = {}
    for file in files:
        doc = _read_yaml(file)
        doc = _interpolate_tree(doc, interp, "")
        for key, value in (doc.get("services") or {}).items():
            spec = _normalise(key, value)
            services[key] = _merge_service(services[key], spec) if key in services else spec
        for key, value in (doc.get("networks") or {}).items():
            networks[key] = _deep_merge(networks.get(key, {}), dict(value or {}))
        for key, value in (doc.get("volumes") or {}).items():
            volumes[key] = _deep_merge(volumes.get(key, {}), dict(value or {}))
    if interp.missing:
        raise MissingVariables(interp.missing)
    project = Project(
        name=project_name(name, environ, directory), directory=directory, files=files,
        env_files=env_files, env=env, services=services, networks=networks, volumes=volumes,
    )
    _validate(project)
    return project


def _read_yaml(file: Path) -> dict[str, Any]:
    # Imported here: most stand-in `docker` calls (version, info, network, ps) read no file.
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError

    try:
        doc = YAML(typ="safe").load(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ComposeError(f"open {file}: no such file or directory") from None
    except (YAMLError, UnicodeDecodeError) as exc:
        raise ComposeError(f"{file}: invalid compose file ({exc.__class__.__name__})") from None
    if not isinstance(doc, dict):
        raise ComposeError(f"{file}: top-level object must be a mapping")
    if not isinstance(doc.get("services", {}), dict):
        raise ComposeError(f"{file}: services must be a mapping")
    return {str(k): v for k, v in doc.items()}


def _validate(project: Project) -> None:
    if not project.services:
        raise ComposeError("no service selected: the compose files define no services")
    for name, spec in project.services.items():
        image = spec.get("image")
        if not isinstance(image, str) or not _REFERENCE.match(image):
            raise ComposeError(f"service {name!r}: invalid reference format: {image!r}")
        for volume in spec.get("volumes") or []:
            source = volume.get("source")
            if volume.get("type") == "volume" and source and source not in project.volumes:
                raise ComposeError(
                    f'service "{name}" refers to undefined volume {source}: '
                    "invalid compose project"
                )
        for dep in project.dependencies(name):
            if dep not in project.services:
                raise ComposeError(
                    f'service "{name}" depends on undefined service "{dep}": '
                    "invalid compose project"
                )
