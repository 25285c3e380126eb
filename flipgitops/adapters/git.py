"""Git, read side only: the one module that touches repositories (through GitPython).

flipgitops never writes to a repository; it reads a manifest as it was at a revision (for
``plan --base``), lists what changed between two commits (for CI matrices) and records which
commit an apply came from. Every failure becomes a GitError that names the revision or path,
so a CI log says "unknown revision origin/mian", not a GitPython traceback.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import git
from git.exc import BadName, GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from flipgitops.errors import GitError


def _repo(repo_dir: str | Path) -> git.Repo:
    try:
        return git.Repo(repo_dir, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        raise GitError(f"{repo_dir} is not inside a git repository") from None


def _commit(repo: git.Repo, rev: str) -> git.Commit:
    try:
        return repo.commit(rev)
    except (BadName, ValueError, GitCommandError):
        raise GitError(
            f"unknown revision {rev!r} in {repo.working_dir} (fetch it first? in CI use "
            "fetch-depth: 0)"
        ) from None


def repo_root(path: str | Path) -> Path:
    """The working-tree root of the repository holding ``path``."""
    start = Path(path)
    repo = _repo(start if start.is_dir() else start.parent)
    if repo.working_tree_dir is None:
        raise GitError(f"{path} is in a bare repository; flipgitops needs a working tree")
    return Path(repo.working_tree_dir)


def relative_path(repo_dir: str | Path, path: str | Path) -> str:
    """``path`` as git names it inside the repository (posix, relative to the root)."""
    root = repo_root(repo_dir).resolve()
    full = Path(path).resolve()
    try:
        return PurePosixPath(full.relative_to(root)).as_posix()
    except ValueError:
        raise GitError(f"{path} is not inside the repository at {root}") from None


def read_file_at(repo_dir: str | Path, rev: str, path: str) -> str | None:
    """The text of ``path`` (relative to the repository root) at ``rev``; None if absent."""
    repo = _repo(repo_dir)
    commit = _commit(repo, rev)
    try:
        blob = commit.tree / PurePosixPath(path).as_posix()
    except KeyError:
        return None
    if blob.type != "blob":
        raise GitError(f"{path} at {rev} is a {blob.type}, not a file")
    data: bytes = blob.data_stream.read()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise GitError(f"{path} at {rev} is not UTF-8 text") from None


def fork_point(repo_dir: str | Path, base: str, head: str = "HEAD") -> str:
    """Where ``head`` left ``base`` (their merge base), like ``git diff base...head``.

    A branch compared with a ``main`` that moved on since would otherwise show main's newer
    commits, reversed, as if the branch had made them. In CI the head is GitHub's test merge
    of the pull request, whose first parent is the base, so the answer is the base itself.
    With no common history (a shallow clone) the base is used as given.
    """
    repo = _repo(repo_dir)
    a, b = _commit(repo, base), _commit(repo, head)
    try:
        bases = repo.merge_base(a, b)
    except GitCommandError:
        bases = []
    found = next((c for c in bases if isinstance(c, git.Commit)), None)
    return str(found.hexsha) if found is not None else str(a.hexsha)


def changed_files(repo_dir: str | Path, base: str, head: str) -> list[str]:
    """Paths ``head`` changed since it left ``base`` (both sides of a rename), sorted."""
    repo = _repo(repo_dir)
    a, b = _commit(repo, fork_point(repo_dir, base, head)), _commit(repo, head)
    paths: set[str] = set()
    for d in a.diff(b):
        paths.update(p for p in (d.a_path, d.b_path) if p)
    return sorted(paths)


def list_files(repo_dir: str | Path, rev: str, directory: str) -> list[str]:
    """Paths of the blobs under ``directory`` (relative to the root) at ``rev``, sorted;
    empty when it does not exist there."""
    repo = _repo(repo_dir)
    commit = _commit(repo, rev)
    try:
        tree = commit.tree / PurePosixPath(directory).as_posix()
    except KeyError:
        return []
    if tree.type != "tree":
        return []
    return sorted(str(item.path) for item in tree.traverse() if isinstance(item, git.Blob))


def head_commit(repo_dir: str | Path) -> str | None:
    """The checked-out commit; None outside a repository or before the first commit."""
    try:
        repo = git.Repo(repo_dir, search_parent_directories=True)
    except (InvalidGitRepositoryError, NoSuchPathError):
        return None
    try:
        return str(repo.head.commit.hexsha)
    except ValueError:
        return None
