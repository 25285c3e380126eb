"""FLIP's trust/ at a ref: read with git on the controller, deployed with FLIP's semantics."""

from __future__ import annotations

import subprocess
from pathlib import Path

import git
import pytest

from flipgitops.adapters.release import GitRelease
from flipgitops.engine.executors import load_executors
from flipgitops.engine.ports_hosts import HostTarget
from flipgitops.model.actions import ActionKind, DeployReleaseParams
from flipgitops.reconcilers.ansible.flipgitops_host import tree
from flipgitops.sandbox.flip.checkout import FlipCheckout, make_flip_checkout
from tests.integration.hosts.hostsandbox import act, bare_world, run_action


@pytest.fixture
def checkout(tmp_path: Path) -> FlipCheckout:
    return make_flip_checkout(tmp_path / "FLIP")


def test_the_release_is_trust_s_tracked_files_only(checkout: FlipCheckout) -> None:
    release = GitRelease()
    got = release.tree(checkout.root, "v2.3.0")
    paths = {f.path for f in got.files}
    listed = subprocess.run(["git", "-C", str(checkout.root), "ls-tree", "-r", "--name-only",
                             "v2.3.0", "trust/"], capture_output=True, text=True, check=True)
    assert paths == {p[len("trust/"):] for p in listed.stdout.split()}
    assert ".env.GSTT.production" not in paths and "operator-notes.txt" not in paths
    assert not any(p.startswith("data/") for p in paths)
    assert ".env.example" in paths
    assert got.commit == checkout.tags["v2.3.0"]
    on_disk = tree.tree_sha256((f.path, f.kind, tree.digest(f.data)) for f in got.files)
    assert got.tree_sha256 == on_disk
    observed = release.resolve(checkout.root, "v2.3.0")
    assert observed.commit == got.commit and observed.tree_sha256 == got.tree_sha256
    assert "deploy/compose_trust.production.yml" in observed.compose_files
    assert release.resolve(checkout.root, "v2.4.0").tree_sha256 != got.tree_sha256


def test_a_bad_ref_or_checkout_is_an_error_naming_it(checkout: FlipCheckout, tmp_path: Path
                                                     ) -> None:
    bad = GitRelease().resolve(checkout.root, "v9.9.9")
    assert bad.commit is None and "v9.9.9" in (bad.error or "")
    none = GitRelease().resolve(tmp_path / "nowhere", "v2.3.0")
    assert none.commit is None and "not a git checkout" in (none.error or "")


@pytest.mark.slow
def test_deploying_a_new_release_removes_what_it_dropped_and_keeps_untracked_files(
        tmp_path: Path, checkout: FlipCheckout) -> None:
    load_executors()
    world = bare_world(tmp_path)
    repo = git.Repo(checkout.root)
    repo.git.checkout("v2.4.0")
    repo.git.rm("trust/observability/loki/loki-config.yml")
    repo.git.commit("-m", "drop a file")
    repo.create_tag("v2.5.0-test")
    trust_dir = world.flip_root() / "trust"

    def deploy(ref: str) -> None:
        commit = repo.commit(ref).hexsha
        outcome = run_action(world, act(ActionKind.HOST_DEPLOY_RELEASE, "Trust_1",
                                        DeployReleaseParams(ref=ref, commit=commit)))
        assert outcome.ok and outcome.changed, outcome.message

    deploy("v2.3.0")
    (trust_dir / ".env.C1X.production").write_text("KEEP=1\n")
    (trust_dir / "data").mkdir()
    (trust_dir / "data" / "image.dcm").write_text("untracked data\n")
    assert (trust_dir / "observability/loki/loki-config.yml").is_file()
    deploy("v2.5.0-test")
    assert not (trust_dir / "observability/loki/loki-config.yml").exists()
    assert (trust_dir / ".env.C1X.production").read_text() == "KEEP=1\n"
    assert (trust_dir / "data" / "image.dcm").is_file()
    for rel in checkout.changed:
        blob = repo.commit("v2.5.0-test").tree / rel
        assert (world.flip_root() / rel).read_bytes() == blob.data_stream.read()

    facts = world.hosts.gather([HostTarget.of(world.manifest, world.manifest.trusts[0])])
    release = facts["Trust_1"].release
    assert release.ref == "v2.5.0-test" and release.intact is True
    (trust_dir / "deploy" / "compose_trust.production.yml").write_text("edited\n")
    facts = world.hosts.gather([HostTarget.of(world.manifest, world.manifest.trusts[0])])
    assert facts["Trust_1"].release.intact is False
