"""File I/O around the pure parser: find, read and validate manifests; write the schema.

The schema-comment rule lives here rather than in the parser: it is about how a file in the
repository's environments/ directory is set up for editors, not about what a manifest means,
so `validate` enforces it for files under environments/ while `plan`/`apply` (which go
through `load_manifest`) accept a manifest without it.

A manifest path comes from a command line or a pull request, so it may name anything: a
FIFO (reading it would wait forever for a writer), `/dev/zero` (endless), a file of many
megabytes, a directory or binary data. Files are opened without blocking, only regular
files are read, and never more than the parser's size limit.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flipgitops.core import schema as schema_core
from flipgitops.core.parse import MAX_MANIFEST_BYTES, parse_manifest, size_problem
from flipgitops.core.validate import schema_comment_problem
from flipgitops.errors import ManifestError, Problem
from flipgitops.model.manifest import Manifest

ENVIRONMENTS_DIR = Path("environments")

Echo = Callable[[str], Any]


def display_name(path: Path) -> str:
    """The path as printable text: bytes that are not UTF-8 are shown as escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


_FILE_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
               (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def read_manifest_text(path: Path) -> str:
    """The file's text, or a `ManifestError` naming the file when it cannot be read.

    Opened with O_NONBLOCK so a FIFO cannot hang the run, checked with fstat (no race with
    a path swapped between check and read), and read up to the size limit plus one byte.
    """
    name = display_name(path)

    def refuse(reason: str, line: int = 1, col: int = 1) -> ManifestError:
        return ManifestError([Problem(name, line, col, "", f"cannot read {name}: {reason}")])

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise refuse("no such file") from None
    except IsADirectoryError:
        raise refuse("it is a directory") from None
    except OSError as exc:
        raise refuse(exc.strerror or type(exc).__name__) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise refuse("it is a directory")
        for test, kind in _FILE_KINDS:
            if test(info.st_mode):
                raise refuse(f"it is {kind}, not a regular file; give the manifest file itself")
        if not stat.S_ISREG(info.st_mode):
            raise refuse("it is not a regular file; give the manifest file itself")
        too_big = size_problem(name, info.st_size)
        if too_big is not None:
            raise ManifestError([too_big])
        data = _read_at_most(fd, MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise refuse(exc.strerror or type(exc).__name__) from None
    finally:
        os.close(fd)
    too_big = size_problem(name, len(data))  # it grew after fstat
    if too_big is not None:
        raise ManifestError([too_big])
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        start = exc.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        line = data.count(b"\n", 0, start) + 1
        col = len(data[data.rfind(b"\n", 0, start) + 1:start].decode("utf-8", "replace")) + 1
        binary = b"\x00" in data[:8192]
        what = "it is a binary file, not YAML text" if binary else "it is not UTF-8 text"
        raise refuse(f"{what} (byte 0x{data[start]:02x} at line {line}, column {col}); "
                     "save the manifest as UTF-8", line, col) from None


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(65536, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def load_manifest(path: Path) -> Manifest:
    """Read and parse one manifest file; every problem is raised as one `ManifestError`."""
    return parse_manifest(read_manifest_text(path), display_name(path))


def resolve_env(name_or_path: str) -> Path:
    """`prod` -> environments/prod.yaml (relative to the CWD); a path is used as given."""
    looks_like_path = ("/" in name_or_path or "\\" in name_or_path
                       or name_or_path.endswith((".yaml", ".yml")))
    if looks_like_path:
        return Path(name_or_path)
    candidate = ENVIRONMENTS_DIR / f"{name_or_path}.yaml"
    if candidate.is_file():
        return candidate
    available = sorted(p.stem for p in ENVIRONMENTS_DIR.glob("*.yaml"))
    where = (f"available: {', '.join(available)}" if available else
             f"no environments/*.yaml under {Path.cwd()}; run from the repository root "
             "or pass a manifest path")
    raise ManifestError([Problem(str(candidate), 1, 1, "",
                                 f"unknown environment {name_or_path!r}; {where}")])


def load_env(name_or_path: str) -> tuple[Manifest, Path]:
    """The manifest named by `--env` and the path it came from."""
    path = resolve_env(name_or_path)
    return load_manifest(path), path


@dataclass(frozen=True)
class FileResult:
    path: str
    problems: tuple[Problem, ...]

    @property
    def valid(self) -> bool:
        return not self.problems


def validate_file(path: Path) -> FileResult:
    """Every problem of one file, including the environments/ schema-comment rule."""
    problems: list[Problem] = []
    name = display_name(path)
    try:
        text = read_manifest_text(path)
    except ManifestError as exc:
        return FileResult(name, tuple(exc.problems))
    if path.parent.name == ENVIRONMENTS_DIR.name:
        comment = schema_comment_problem(text, name)
        if comment is not None:
            problems.append(comment)
    try:
        parse_manifest(text, name)
    except ManifestError as exc:
        problems.extend(exc.problems)
    problems.sort(key=lambda p: (p.line, p.col, p.location))
    return FileResult(name, tuple(problems))


def validate_paths(paths: list[Path], fmt: str, echo: Echo) -> bool:
    """Validate files (default: every environments/*.yaml), report, return True if all valid."""
    targets = paths or sorted(ENVIRONMENTS_DIR.glob("*.yaml"))
    if not targets:
        echo(f"no manifests found: {ENVIRONMENTS_DIR}/*.yaml is empty under {Path.cwd()}; "
             "pass manifest paths or run from the repository root")
        return False
    results = [validate_file(p) for p in targets]
    render = {"json": _render_json, "markdown": _render_markdown}.get(fmt, _render_text)
    echo(render(results))
    return all(r.valid for r in results)


def _summary(results: list[FileResult]) -> str:
    valid = sum(r.valid for r in results)
    problems = sum(len(r.problems) for r in results)
    return (f"{valid} file(s) valid, {len(results) - valid} invalid, "
            f"{problems} problem(s)")


def _render_text(results: list[FileResult]) -> str:
    lines = [str(p) for r in results for p in r.problems]
    return "\n".join([*lines, _summary(results)])


def _render_json(results: list[FileResult]) -> str:
    doc = {
        "format_version": "1",
        "files": [
            {
                "path": r.path,
                "valid": r.valid,
                "problems": [
                    {"line": p.line, "col": p.col, "location": p.location, "message": p.message}
                    for p in r.problems
                ],
            }
            for r in results
        ],
    }
    return json.dumps(doc, indent=2)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _render_markdown(results: list[FileResult]) -> str:
    lines = ["### flipgitops validate", "", _summary(results), "",
             "| File | Line:Col | Location | Problem |", "|---|---|---|---|"]
    for r in results:
        if r.valid:
            lines.append(f"| `{_cell(r.path)}` | | | valid |")
        for p in r.problems:
            lines.append(f"| `{_cell(r.path)}` | {p.line}:{p.col} | `{_cell(p.location)}` "
                         f"| {_cell(p.message)} |")
    return "\n".join(lines)


def write_or_check_schema(path: Path, check: bool) -> tuple[bool, str]:
    """Write the generated schema, or with `check` report whether the file at `path` is stale."""
    text = schema_core.render_schema(schema_core.manifest_json_schema())
    if check:
        try:
            current = path.read_text(encoding="utf-8")
        except OSError:
            return False, f"{path} is missing; run `flipgitops schema` and commit it"
        if current != text:
            return False, (f"{path} is stale (the manifest models changed); run "
                           "`flipgitops schema` and commit the result")
        return True, f"{path} is up to date"
    try:
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return True, f"{path} is already up to date"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        return False, f"cannot write {path}: {exc.strerror or type(exc).__name__}"
    return True, f"wrote {path}"
