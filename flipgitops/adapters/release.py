"""FLIP's `trust/` directory at a ref of `flip.checkout`, read with git (GitPython).

Only what git tracks at that commit: a checkout's work tree also holds live kit files,
data and notes (FLIP's .gitignore keeps `trust/.env.*` out), and none of that may reach a
host. The tree digest is the one hosts compute (flipgitops_host/tree.py), so a
deployed release is intact exactly when the digests agree.
"""

from __future__ import annotations

from pathlib import Path

import git
from git.exc import BadName, GitCommandError, InvalidGitRepositoryError, NoSuchPathError

from flipgitops.adapters import hosts_build
from flipgitops.engine.ports_hosts import ReleaseCandidate, ReleaseFile, ReleaseTree
from flipgitops.errors import GitError
from flipgitops.model.observed import ObservedFlipRelease
from flipgitops.reconcilers.ansible.flipgitops_host import tree as tree_digest

TRUST_DIR = "trust"
_KIND = {0o100644: tree_digest.KIND_FILE, 0o100755: tree_digest.KIND_EXEC,
         0o120000: tree_digest.KIND_LINK}


def _repo(checkout: Path) -> git.Repo:
    try:
        return git.Repo(checkout)
    except (InvalidGitRepositoryError, NoSuchPathError):
        raise GitError(f"flip.checkout {checkout} is not a git checkout of FLIP (clone "
                       "londonaicentre/FLIP there, or fix the path relative to the manifest)"
                       ) from None


def _commit(repo: git.Repo, ref: str, checkout: Path) -> git.Commit:
    try:
        return repo.commit(ref)
    except (BadName, ValueError, GitCommandError):
        raise GitError(f"flip.ref {ref!r} is not a tag, branch or commit of {checkout} "
                       "(fetch it first: git fetch --tags)") from None


def _files(commit: git.Commit, ref: str) -> list[ReleaseFile]:
    try:
        top = commit.tree / TRUST_DIR
    except KeyError:
        raise GitError(f"flip.ref {ref!r} has no trust/ directory: is flip.checkout FLIP?") \
            from None
    out: list[ReleaseFile] = []
    for item in top.traverse():
        if isinstance(item, git.Submodule):
            raise GitError(f"{item.path} at {ref} is a submodule; flipgitops deploys "
                           "tracked files only")
        if not isinstance(item, git.Blob):
            continue
        kind = _KIND.get(item.mode)
        if kind is None:
            raise GitError(f"{item.path} at {ref} has git mode {item.mode:o}")
        out.append(ReleaseFile(path=str(item.path)[len(TRUST_DIR) + 1:], kind=kind,
                               data=item.data_stream.read()))
    return sorted(out, key=lambda f: f.path)


def digest(files: list[ReleaseFile]) -> str:
    return tree_digest.tree_sha256(
        (f.path, f.kind, tree_digest.digest(f.data)) for f in files)


class GitRelease:
    """The ReleasePort: resolves refs and reads trees of FLIP checkouts (read-only)."""

    def __repr__(self) -> str:
        return "GitRelease()"

    def tree(self, checkout_path: Path, ref: str) -> ReleaseTree:
        repo = _repo(checkout_path)
        commit = _commit(repo, ref, checkout_path)
        files = _files(commit, ref)
        return ReleaseTree(ref=ref, commit=str(commit.hexsha), tree_sha256=digest(files),
                           files=tuple(files))

    def resolve(self, checkout_path: Path, ref: str) -> ObservedFlipRelease:
        return self.observe(checkout_path, ref)[0]

    def observe(self, checkout_path: Path, ref: str
                ) -> tuple[ObservedFlipRelease, ReleaseCandidate | None]:
        """The release as observed, and as a candidate hosts can recognise by its files."""
        try:
            tree = self.tree(checkout_path, ref)
        except GitError as exc:
            return ObservedFlipRelease(ref=ref, error=str(exc)), None
        pattern = hosts_build.PRODUCTION_COMPOSE_GLOB
        compose = tuple(f.path for f in tree.files if Path(f.path).match(pattern))
        return (ObservedFlipRelease(ref=ref, commit=tree.commit, tree_sha256=tree.tree_sha256,
                                    compose_files=compose), candidate(tree))

    def tags(self, checkout_path: Path) -> list[str]:
        """The checkout's tags, newest commit first (the releases a host may be running)."""
        repo = _repo(checkout_path)
        dated = []
        for tag in repo.tags:
            try:
                dated.append((tag.commit.committed_date, str(tag.name)))
            except (ValueError, GitCommandError):
                continue
        return [name for _, name in sorted(dated, key=lambda d: (-d[0], d[1]))]


def candidate(tree: ReleaseTree) -> ReleaseCandidate:
    return ReleaseCandidate(ref=tree.ref, commit=tree.commit, tree_sha256=tree.tree_sha256,
                            paths=tuple(f.path for f in tree.files))
