"""``flipgitops changed``: which environments a commit range touches (a CI matrix input).

An environment is "changed" when ``environments/<env>.yaml`` differs between the commits,
including when it was added or deleted: a deleted prod manifest must not pass unnoticed.
It is also changed when what its ``flip.ref`` names moved without the manifest changing:
a ``flip.checkout`` kept inside this repository (a git submodule of FLIP, or a vendored
copy) whose commit or files the range changed. Hosts run FLIP's ``trust/`` from that
checkout, so a bumped submodule is a change to plan and apply like an edited manifest.

The JSON output keeps ``environments`` (what the workflows' matrix reads) and adds, per
environment, why it is listed (text output stays one name per line).
"""

from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

from flipgitops.adapters import git as git_adapter
from flipgitops.core.parse import parse_manifest
from flipgitops.engine.output import Echo
from flipgitops.errors import GitError, ManifestError
from flipgitops.model.manifest import Manifest
from flipgitops.model.plan import FORMAT_VERSION

_ENV_FILE = re.compile(r"^environments/([^/]+)\.ya?ml$")
ENVIRONMENTS = "environments"


def changed_environments(paths: list[str]) -> list[str]:
    return sorted({m.group(1) for p in paths if (m := _ENV_FILE.match(p))})


def _manifest_at(root: Path, rev: str, rel: str) -> Manifest | None:
    """The manifest at ``rev``, or None when absent or not valid there (it still counts as
    changed through its file)."""
    try:
        text = git_adapter.read_file_at(root, rev, rel)
        return None if text is None else parse_manifest(text, f"{rel}@{rev}")
    except (ManifestError, GitError):
        return None


def checkout_in_repo(manifest_rel: str, checkout: str) -> str | None:
    """``flip.checkout`` as a repository path (posix, from the root), or None when it lies
    outside the repository (the usual sibling clone, `../FLIP` from the repo root)."""
    if posixpath.isabs(checkout):
        return None
    path = posixpath.normpath(posixpath.join(posixpath.dirname(manifest_rel), checkout))
    return None if path == "." or path.startswith("../") or path == ".." else path


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root + "/")


def changes(root: Path, base: str, head: str) -> dict[str, list[str]]:
    """Environment -> why it is listed (in a stable order)."""
    files = git_adapter.changed_files(root, base, head)
    since = git_adapter.fork_point(root, base, head)
    out: dict[str, list[str]] = {}
    for rel, env in _env_files(files):
        before = git_adapter.read_file_at(root, since, rel)
        after = git_adapter.read_file_at(root, head, rel)
        reasons = ["manifest added" if before is None else
                   "manifest removed" if after is None else "manifest changed"]
        old, new = _manifest_at(root, since, rel), _manifest_at(root, head, rel)
        if old is not None and new is not None and old.flip.ref != new.flip.ref:
            reasons.append(f"flip.ref {old.flip.ref} -> {new.flip.ref}")
        out.setdefault(env, []).extend(reasons)
    listed = git_adapter.list_files(root, head, ENVIRONMENTS)
    for rel, env in _env_files(listed):
        new = _manifest_at(root, head, rel)
        where = checkout_in_repo(rel, new.flip.checkout) if new is not None else None
        if new is not None and where is not None and any(_under(p, where) for p in files):
            out.setdefault(env, []).append(
                f"flip.checkout {where} changed: what flip.ref {new.flip.ref} names may have "
                "moved")
    return dict(sorted(out.items()))


def _env_files(paths: list[str]) -> list[tuple[str, str]]:
    return sorted((p, m.group(1)) for p in paths if (m := _ENV_FILE.match(p)))


def run_changed(base: str, head: str, fmt: str, echo: Echo, repo_dir: Path | None = None) -> int:
    root = git_adapter.repo_root(repo_dir or Path.cwd())
    found = changes(root, base, head)
    if fmt == "json":
        echo(json.dumps({"format_version": FORMAT_VERSION, "environments": list(found),
                         "reasons": found}, sort_keys=True))
    else:
        for env in found:
            echo(env)
    return 0
