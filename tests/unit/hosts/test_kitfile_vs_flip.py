"""The rendered kit file against FLIP's own files, as the stand-in FLIP ships them:
trust/.env.example's order and headers, and every variable the production compose files
need without a default (the stand-in's compose reader refuses a blank one, as FLIP's
services would)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flipgitops.adapters import hosts_build
from flipgitops.core import kitfile
from flipgitops.engine.ports_hosts import HostTarget
from flipgitops.reconcilers.ansible.flipgitops_host import stack
from flipgitops.sandbox.flip import flip_files
from flipgitops.sandbox.flip.checkout import release_files
from flipgitops.sandbox.flip.compose import MissingVariables, load_project
from tests.unit.hosts.hostworld import make_aes, make_kit, make_local, make_manifest, trust_entry


def _render(backend: str = "nvflare", gpus: str = "0", kind: str = "on-prem") -> str:
    m = make_manifest([trust_entry(flip_root="/opt/flip", kind=kind,
                                   settings={"NUM_AVAILABLE_GPUS": gpus})], backend=backend)
    return kitfile.render(m, m.trusts[0], kit=make_kit().kit, local=make_local(),
                          aes_key=make_aes())


def _template_lines() -> list[str]:
    return flip_files.ENV_EXAMPLE.splitlines()


def test_keys_follow_the_templates_order() -> None:
    ours = list(kitfile.parse(_render()).keys)
    theirs = [k for k in kitfile.parse(flip_files.ENV_EXAMPLE).keys]
    positions = [ours.index(k) for k in theirs]  # every template key is set…
    assert positions == sorted(positions)  # …in the template's order
    assert ours[:2] == ["TRUST_NAME", "TRUST_CODE"]  # new_trust.py's identity block first


def test_section_headers_and_sentinel_are_flips_bytes() -> None:
    ours = _render().splitlines()
    headers = [line for line in _template_lines() if line.startswith("# ──")]
    assert len(headers) == 4
    assert [line for line in ours if line in headers] == headers
    sentinel = headers[2]
    assert sentinel == kitfile.HUB_SHARED_SENTINEL
    ours_after = ours[ours.index(sentinel) + 1:]
    theirs_after = _template_lines()[_template_lines().index(sentinel) + 1:]
    block = [line.split("=")[0] for line in theirs_after if "=" in line][:12]
    assert [line.split("=")[0] for line in ours_after[:12]] == block


def _write_release(root: Path, tag: str) -> Path:
    for rel, text in release_files(tag).items():
        if rel.startswith("trust/"):
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
    return root / "trust"


@pytest.mark.parametrize("tag", ["v2.3.0", "v2.4.0"])
@pytest.mark.parametrize(("backend", "gpus", "kind"), [
    ("nvflare", "0", "on-prem"), ("nvflare", "2", "on-prem"), ("flower", "0", "on-prem"),
    ("nvflare", "1", "aws"),
])
def test_every_variable_flips_compose_files_need_is_set(
        tmp_path: Path, tag: str, backend: str, gpus: str, kind: str) -> None:
    trust_dir = _write_release(tmp_path, tag)
    text = _render(backend, gpus, kind)
    kit = trust_dir / ".env.C1X.production"
    kit.write_text(text)
    m = make_manifest([trust_entry(flip_root="/opt/flip", code="C1X", kind=kind)],
                      backend=backend)
    recipe = hosts_build.stack_recipe(HostTarget.of(m, m.trusts[0]))
    recipe["kit_file"] = kit.name
    inv = stack.invocation(kitfile.parse(text).values, recipe, action="up",
                           override_present=False, docker_gid=0)
    argv = inv["argv"]
    files = [trust_dir / argv[i + 1] for i, a in enumerate(argv) if a == "-f"]
    assert (trust_dir / "deploy/compose_trust.production.gpu.yml" in files) == (
        gpus != "0" and kind == "on-prem")
    project = load_project(files, [kit], trust_dir, inv["project"], inv["env"])
    assert project.name == "trust1" and "fl-client-net-1" in project.services
    # The same check fails when the kit file lacks a value (so it can fail at all).
    kit.write_text(text.replace("POLL_INTERVAL_SECONDS=5\n", ""))
    with pytest.raises(MissingVariables, match="POLL_INTERVAL_SECONDS"):
        load_project(files, [kit], trust_dir, inv["project"], inv["env"])
