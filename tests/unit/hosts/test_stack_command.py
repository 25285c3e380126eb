"""FLIP's trust/Makefile invocation (flipgitops_host/stack.py), built from a kit
file's values and the recipe the controller sends (adapters/hosts_build.stack_recipe)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flipgitops.adapters import hosts_build
from flipgitops.core import kitfile
from flipgitops.engine.ports_hosts import HostTarget
from flipgitops.reconcilers.ansible.flipgitops_host import stack
from tests.unit.hosts.hostworld import make_manifest, trust_entry

BASE = ["docker", "compose", "--env-file", ".env.GSTT.production", "--project-directory", ".",
        "-f", "deploy/compose_trust.production.yml"]


def _setup(kind: str = "on-prem", backend: str = "nvflare", gpus: str = "0",
           slot: str = "Trust_3", number: int = 3) -> tuple[dict[str, str], dict[str, object]]:
    m = make_manifest([trust_entry(slot, flip_root="/opt/flip", kind=kind,
                                   settings={"NUM_AVAILABLE_GPUS": gpus})], backend=backend)
    trust = m.trusts[0]
    values = kitfile.public_values(m, trust, slot=slot, slot_number=number, trust_id="t-id")
    recipe = hosts_build.stack_recipe(HostTarget.of(m, trust, Path("/")))
    return values, recipe


def test_up_trust_on_prem_without_gpus() -> None:
    values, recipe = _setup()
    inv = stack.invocation(values, recipe, action="up", override_present=True, docker_gid=999)
    assert inv["argv"] == [*BASE, "-f", "deploy/compose_trust.production.nvflare.yml",
                           "-p", "trust3", "up", "-d", "--pull", "always"]
    assert inv["project"] == "trust3" and inv["network"] == "deploy_trust-network-3"
    env = inv["env"]
    assert env["TRUST_NETWORK_NAME"] == "deploy_trust-network-3"
    assert env["TRUST_NUMBER"] == "3" and env["TRUST_NAME"] == "Trust_3"
    assert env["DEBUG"] == "" and env["DOCKER_GID"] == "999"
    assert env["DOCKER_FL_CLIENT_NAME"] == "flare-fl-client"
    assert env["DOCKER_FL_SERVER_NAME"] == "flare-fl-server"
    assert env["DOCKER_FL_REGISTRY"] == "ghcr.io/londonaicentre/"
    assert "NUM_AVAILABLE_GPUS" not in env
    assert not {"TRUST_API_KEY", "AES_KEY_BASE64", "TRUST_INTERNAL_SERVICE_KEY"} & set(env)


def test_gpu_overlay_on_prem_only() -> None:
    values, recipe = _setup(gpus="1")
    argv = stack.invocation(values, recipe, action="up", override_present=False)["argv"]
    assert argv[argv.index("-p") - 2:argv.index("-p")] == [
        "-f", "deploy/compose_trust.production.gpu.yml"]
    values, recipe = _setup(kind="aws", gpus="1")
    inv = stack.invocation(values, recipe, action="up", override_present=False)
    assert "deploy/compose_trust.production.gpu.yml" not in inv["argv"]
    assert inv["env"]["NUM_AVAILABLE_GPUS"] == "0"
    assert inv["argv"][-4:] == ["up", "-d", "--pull", "always"]


def test_the_trust_1_override_follows_flips_makefile() -> None:
    values, recipe = _setup(slot="Trust_1", number=1, gpus="2")
    argv = stack.invocation(values, recipe, action="up", override_present=True)["argv"]
    gpu, override = (argv.index("deploy/compose_trust.production.gpu.yml"),
                     argv.index("deploy/compose_trust-1_override.yml"))
    assert gpu < override < argv.index("-p")
    # Not when the release does not ship the file (compose would fail on a missing -f).
    argv = stack.invocation(values, recipe, action="up", override_present=False)["argv"]
    assert "deploy/compose_trust-1_override.yml" not in argv
    # up-trust-ec2 has no TRUST_OVERRIDE; down-trust has.
    values, recipe = _setup(kind="aws", slot="Trust_1", number=1)
    assert "deploy/compose_trust-1_override.yml" not in stack.invocation(
        values, recipe, action="up", override_present=True)["argv"]
    assert "deploy/compose_trust-1_override.yml" in stack.invocation(
        values, recipe, action="down", override_present=True)["argv"]


def test_down_trust() -> None:
    values, recipe = _setup(gpus="4")
    inv = stack.invocation(values, recipe, action="down", override_present=False)
    assert inv["argv"] == [*BASE, "-f", "deploy/compose_trust.production.nvflare.yml",
                           "-p", "trust3", "down", "--remove-orphans"]
    assert "DEBUG" not in inv["env"]


def test_pull_only_with_an_fl_registry() -> None:
    values, recipe = _setup()
    values["DOCKER_FL_REGISTRY"] = ""
    argv = stack.invocation(values, recipe, action="up", override_present=False)["argv"]
    assert argv[-2:] == ["up", "-d"]
    del values["DOCKER_FL_REGISTRY"]  # `DOCKER_FL_REGISTRY ?= $(DOCKER_REGISTRY)`
    inv = stack.invocation(values, recipe, action="up", override_present=False)
    assert inv["argv"][-2:] == ["--pull", "always"]
    assert inv["env"]["DOCKER_FL_REGISTRY"] == "ghcr.io/londonaicentre/"


def test_flower_names() -> None:
    values, recipe = _setup(backend="flower")
    inv = stack.invocation(values, recipe, action="up", override_present=False)
    assert "deploy/compose_trust.production.flower.yml" in inv["argv"]
    assert inv["env"]["DOCKER_FL_CLIENT_NAME"] == "flower-supernode"
    assert inv["env"]["DOCKER_FL_SERVER_NAME"] == "flower-superlink"


def test_trust_name_falls_back_like_the_makefile() -> None:
    values, recipe = _setup()
    del values["TRUST_NAME"]
    assert stack.invocation(values, recipe, action="up",
                            override_present=False)["env"]["TRUST_NAME"] == "Trust_3"
    del values["FL_KIT_SLOT"]
    assert stack.invocation(values, recipe, action="up",
                            override_present=False)["env"]["TRUST_NAME"] == "GSTT"


def test_refusals_name_the_key() -> None:
    values, recipe = _setup()
    with pytest.raises(stack.StackError, match="FL_BACKEND"):
        stack.invocation({**values, "FL_BACKEND": "pysyft"}, recipe, action="up",
                         override_present=False)
    with pytest.raises(stack.StackError, match="FL_KIT_SLOT_NUMBER"):
        stack.invocation({**values, "FL_KIT_SLOT_NUMBER": "<run-make-register-trust>"},
                         recipe, action="up", override_present=False)
    with pytest.raises(stack.StackError, match="2 unfilled"):
        stack.require_kit_file(values, ["TRUST_API_KEY", "EXPECTED_TRUST_ID"],
                               ".env.GSTT.production")
    with pytest.raises(stack.StackError, match="missing"):
        stack.require_kit_file(None, [], ".env.GSTT.production")
