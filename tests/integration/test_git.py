"""The git adapter and the commands built on it, against real repositories in tmp dirs."""

from __future__ import annotations

import json
from pathlib import Path

import git
import pytest
from click.testing import CliRunner

from flipgitops.adapters.git import (
    changed_files,
    fork_point,
    head_commit,
    read_file_at,
    relative_path,
    repo_root,
)
from flipgitops.cli import cli as main
from flipgitops.engine.gitops import changed_environments
from flipgitops.engine.planning import base_change
from flipgitops.errors import GitError


def manifest_yaml(env: str, ip: str = "203.0.113.10", hub_tag: str = "v2.3.0") -> str:
    return f"""\
# yaml-language-server: $schema=../schemas/flip-environment.schema.json
version: 1
environment: {env}
aws:
  account_id: "123456789012"
  region: eu-west-2
state:
  bucket: flip-gitops-state-{env}
flip:
  checkout: ../FLIP
  ref: v2.3.0
hub:
  domain: app.example.org
  fl_kits:
    bucket: flip{env}-aicentre
    date: "2025-06-01"
  images:
    hub_tag: {hub_tag}
    fl_tag: v2.3.0
trusts:
  - name: Trust_1
    code: GSTT
    kind: tre
    public_ip: {ip}
    fl_kit_slot: Trust_1
"""


class Repo:
    """A scratch repository with helpers that commit like a developer would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.repo = git.Repo.init(root, initial_branch="main")
        with self.repo.config_writer() as cw:
            cw.set_value("user", "name", "Test")
            cw.set_value("user", "email", "test@example.org")

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def commit(self, message: str, files: dict[str, str]) -> str:
        for rel, text in files.items():
            self.write(rel, text)
            self.repo.index.add([rel])
        return str(self.repo.index.commit(message).hexsha)

    def remove(self, rel: str) -> str:
        self.repo.index.remove([rel], working_tree=True)
        return str(self.repo.index.commit(f"remove {rel}").hexsha)


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo")
    r.commit("initial", {"environments/dev.yaml": "x", "environments/prod.yaml": "x",
                         "README.md": "hi"})
    return r


def test_changed_files_one_environment(repo: Repo) -> None:
    base = head_commit(repo.root)
    assert base is not None
    head = repo.commit("prod ip", {"environments/prod.yaml": manifest_yaml("prod")})
    assert changed_files(repo.root, base, head) == ["environments/prod.yaml"]
    assert changed_environments(changed_files(repo.root, base, head)) == ["prod"]


def test_changed_files_two_environments_and_other_files(repo: Repo) -> None:
    base = head_commit(repo.root)
    assert base is not None
    repo.commit("dev", {"environments/dev.yaml": manifest_yaml("dev"), "README.md": "more"})
    head = repo.commit("stag", {"environments/stag.yaml": manifest_yaml("stag")})
    files = changed_files(repo.root, base, head)
    assert files == ["README.md", "environments/dev.yaml", "environments/stag.yaml"]
    assert changed_environments(files) == ["dev", "stag"]


def test_changed_files_no_environment(repo: Repo) -> None:
    base = head_commit(repo.root)
    assert base is not None
    head = repo.commit("docs", {"README.md": "docs only",
                                "docs/environments.yaml": "not an env"})
    assert changed_environments(changed_files(repo.root, base, head)) == []


def test_changed_files_are_the_branch_changes_only(repo: Repo) -> None:
    """main moved on (prod, and dev's hub_tag) after the branch left it: only the branch's own
    change counts, for `changed` and for the manifest change `plan --base main` shows (a
    direct comparison would also show main's hub_tag upgrade, reversed)."""
    from flipgitops.core.parse import parse_manifest

    repo.commit("dev", {"environments/dev.yaml": manifest_yaml("dev")})
    fork = head_commit(repo.root)
    assert fork is not None
    repo.repo.create_head("feature")
    main_tip = repo.commit("prod and a dev upgrade on main", {
        "environments/prod.yaml": manifest_yaml("prod"),
        "environments/dev.yaml": manifest_yaml("dev", hub_tag="v2.4.0")})
    repo.repo.heads.feature.checkout()
    head = repo.commit("dev on the branch",
                       {"environments/dev.yaml": manifest_yaml("dev", ip="198.51.100.7")})
    assert fork_point(repo.root, main_tip, head) == fork
    assert changed_files(repo.root, main_tip, head) == ["environments/dev.yaml"]
    assert changed_files(repo.root, "main", "feature") == ["environments/dev.yaml"]
    path = repo.root / "environments" / "dev.yaml"
    change = base_change(parse_manifest(path.read_text(), str(path)), path, "main",
                         _echo_sink([]))
    assert [(c.path, c.before, c.after) for c in change] == [
        ("trusts.Trust_1.public_ip", "203.0.113.10", "198.51.100.7")]


def test_deleted_environment_is_changed(repo: Repo) -> None:
    base = head_commit(repo.root)
    assert base is not None
    head = repo.remove("environments/dev.yaml")
    assert changed_environments(changed_files(repo.root, base, head)) == ["dev"]


def test_changed_command_text_and_json(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    base = head_commit(repo.root)
    assert base is not None
    repo.commit("both", {"environments/dev.yaml": "y", "environments/prod.yaml": "y"})
    monkeypatch.chdir(repo.root / "environments")  # works from a subdirectory too
    runner = CliRunner()
    out = runner.invoke(main, ["changed", "--base", base])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines() == ["dev", "prod"]
    out = runner.invoke(main, ["changed", "--base", base, "--head", "HEAD", "--format", "json"])
    assert out.exit_code == 0
    assert json.loads(out.output)["environments"] == ["dev", "prod"]
    out = runner.invoke(main, ["changed", "--base", "HEAD", "--format", "json"])
    assert json.loads(out.output)["environments"] == []


def test_changed_command_unknown_revision_exits_1(repo: Repo,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo.root)
    out = CliRunner().invoke(main, ["changed", "--base", "origin/mian"])
    assert out.exit_code == 1
    assert "unknown revision 'origin/mian'" in out.output
    assert "Traceback" not in out.output


def test_read_file_at(repo: Repo) -> None:
    first = head_commit(repo.root)
    assert first is not None
    repo.commit("new env", {"environments/stag.yaml": "stag v1"})
    second = repo.commit("edit", {"environments/stag.yaml": "stag v2"})
    assert read_file_at(repo.root, second, "environments/stag.yaml") == "stag v2"
    assert read_file_at(repo.root, "HEAD~1", "environments/stag.yaml") == "stag v1"
    assert read_file_at(repo.root, first, "environments/stag.yaml") is None
    assert read_file_at(repo.root, first, "nope/deeper/x.yaml") is None
    with pytest.raises(GitError, match="not a file"):
        read_file_at(repo.root, second, "environments")


def test_unknown_revision_is_a_git_error(repo: Repo) -> None:
    with pytest.raises(GitError, match="unknown revision 'deadbeef'"):
        read_file_at(repo.root, "deadbeef", "README.md")
    with pytest.raises(GitError, match="unknown revision 'no-such-branch'"):
        changed_files(repo.root, "no-such-branch", "HEAD")


def test_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitError, match="not inside a git repository"):
        changed_files(plain, "HEAD~1", "HEAD")
    with pytest.raises(GitError, match="not inside a git repository"):
        read_file_at(plain, "HEAD", "x")
    assert head_commit(plain) is None


def test_head_commit_of_empty_repo_is_none(tmp_path: Path) -> None:
    Repo(tmp_path / "empty")
    assert head_commit(tmp_path / "empty") is None


def test_repo_root_and_relative_path(repo: Repo) -> None:
    manifest = repo.root / "environments" / "prod.yaml"
    assert repo_root(manifest) == repo.root
    assert relative_path(repo.root, manifest) == "environments/prod.yaml"
    with pytest.raises(GitError, match="not inside the repository"):
        relative_path(repo.root, repo.root.parent / "elsewhere.yaml")


def _echo_sink(lines: list[str]) -> object:
    def echo(message: str = "", err: bool = False) -> None:
        lines.append(message)
    return echo


def test_base_change_shows_the_manifest_change(repo: Repo) -> None:
    from flipgitops.core.parse import parse_manifest

    base = repo.commit("prod", {"environments/prod.yaml": manifest_yaml("prod")})
    repo.write("environments/prod.yaml", manifest_yaml("prod", ip="198.51.100.7"))
    path = repo.root / "environments" / "prod.yaml"
    current = parse_manifest(path.read_text(), str(path))
    lines: list[str] = []
    change = base_change(current, path, base, _echo_sink(lines))
    assert [(c.op, c.path, c.before, c.after) for c in change] == [
        ("change", "trusts.Trust_1.public_ip", "203.0.113.10", "198.51.100.7")]


def test_base_change_new_environment(repo: Repo) -> None:
    from flipgitops.core.parse import parse_manifest

    base = head_commit(repo.root)
    assert base is not None
    repo.write("environments/stag.yaml", manifest_yaml("stag"))
    path = repo.root / "environments" / "stag.yaml"
    lines: list[str] = []
    change = base_change(parse_manifest(path.read_text(), str(path)), path, base,
                         _echo_sink(lines))
    assert [(c.op, c.path, c.after) for c in change] == [("add", "environment", "stag")]
    assert any("new environment" in line for line in lines)


# --- changed: flip.ref and an in-repository FLIP checkout ------------------------------------

SHIPPED_DEV = (Path(__file__).resolve().parents[1] / "fixtures" / "dev.yaml").read_text()


def dev_manifest(ref: str = "v2.3.0", checkout: str = "../FLIP") -> str:
    """The shipped dev manifest at another flip ref/checkout (a branch ref needs
    immutable_tags off, as a non-prod environment may)."""
    text = SHIPPED_DEV.replace("ref: v2.3.0", f"ref: {ref}")
    text = text.replace("immutable_tags: true", "immutable_tags: false")
    return text.replace("checkout: ../FLIP", f"checkout: {checkout}")


def _changed_json(root: Path, base: str) -> dict[str, object]:
    lines: list[str] = []
    from flipgitops.engine.gitops import run_changed

    assert run_changed(base=base, head="HEAD", fmt="json", echo=lines.append,
                       repo_dir=root) == 0
    data = json.loads(lines[0])
    assert isinstance(data, dict)
    return data


def test_changed_names_a_flip_ref_move(repo: Repo) -> None:
    base = repo.commit("dev", {"environments/dev.yaml": dev_manifest()})
    repo.commit("bump FLIP", {"environments/dev.yaml": dev_manifest(ref="v2.4.0")})
    data = _changed_json(repo.root, base)
    assert data["environments"] == ["dev"]
    assert data["reasons"] == {"dev": ["manifest changed", "flip.ref v2.3.0 -> v2.4.0"]}


def test_changed_lists_an_environment_whose_in_repo_checkout_moved(repo: Repo,
                                                                   tmp_path: Path) -> None:
    """FLIP as a git submodule at FLIP/ (flip.checkout ../FLIP from environments/): a
    submodule bump moves what the unchanged flip.ref deploys, so the environment is listed;
    an environment whose checkout lies outside the repository is not."""
    flip = git.Repo.init(tmp_path / "flip-upstream", initial_branch="main")
    with flip.config_writer() as cw:
        cw.set_value("user", "name", "Test")
        cw.set_value("user", "email", "test@example.org")
    (tmp_path / "flip-upstream" / "README").write_text("one\n")
    flip.index.add(["README"])
    first = flip.index.commit("one").hexsha
    (tmp_path / "flip-upstream" / "README").write_text("two\n")
    flip.index.add(["README"])
    second = flip.index.commit("two").hexsha
    # A gitlink at FLIP (what `git submodule add` records), pinned to `first`.
    repo.commit("envs", {"environments/dev.yaml": dev_manifest(ref="main"),
                         "environments/prod.yaml": dev_manifest(checkout="../../FLIP")
                         .replace("environment: dev", "environment: prod")})
    repo.repo.git.update_index("--add", "--cacheinfo", f"160000,{first},FLIP")
    base = str(repo.repo.index.commit("pin FLIP").hexsha)
    repo.repo.git.update_index("--cacheinfo", f"160000,{second},FLIP")
    repo.repo.index.update()
    repo.repo.git.commit("-m", "bump FLIP")
    assert changed_files(repo.root, base, "HEAD") == ["FLIP"]
    data = _changed_json(repo.root, base)
    assert data["environments"] == ["dev"]
    assert data["reasons"] == {
        "dev": ["flip.checkout FLIP changed: what flip.ref main names may have moved"]}


def test_checkout_in_repo() -> None:
    from flipgitops.engine.gitops import checkout_in_repo

    assert checkout_in_repo("environments/dev.yaml", "../FLIP") == "FLIP"
    assert checkout_in_repo("environments/dev.yaml", "../vendor/FLIP/") == "vendor/FLIP"
    assert checkout_in_repo("environments/dev.yaml", "../../FLIP") is None
    assert checkout_in_repo("environments/dev.yaml", "..") is None
    assert checkout_in_repo("environments/dev.yaml", "/srv/FLIP") is None
