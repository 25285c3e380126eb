"""How FLIP's trust/Makefile (@0046dc28) turns a kit file into a docker compose command.

The one home of that logic: the host program's steps (facts, start/stop/verify) call it
with the host's kit file values, and the controller imports it for plans and tests. FLIP's
names (compose files, fl_backend.mk's exports, the project and network patterns) arrive in
``recipe`` from the controller (`adapters/hosts_build.stack_recipe`, from `model/flip.py`).

up-trust (on-prem, PROD=true), cwd trust/:
  TRUST_NETWORK_NAME=deploy_trust-network-<N> TRUST_NUMBER=<N> TRUST_NAME=<name> DEBUG= \
  docker compose --env-file .env.<KIT>.<ENV> --project-directory . \
    -f deploy/compose_trust.production.yml -f deploy/compose_trust.production.<backend>.yml \
    [-f deploy/compose_trust.production.gpu.yml]  (NUM_AVAILABLE_GPUS not 0)
    [-f deploy/compose_trust-1_override.yml]     (FL_KIT_SLOT=Trust_1)
    -p trust<N> up -d [--pull always]            (DOCKER_FL_REGISTRY non-empty)
up-trust-ec2 (aws trusts): the same prefix with NUM_AVAILABLE_GPUS=0, no GPU overlay, no
Trust_1 override, `up -d --pull always`.
down-trust: the prefix with the Trust_1 override only, `down --remove-orphans`.
The environment also carries fl_backend.mk's exports and DOCKER_GID (`id -g`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping


class StackError(Exception):
    """The kit file cannot start FLIP's stack (message names the key, never a value)."""


def slot_number(values: Mapping[str, str]) -> int:
    raw = values.get("FL_KIT_SLOT_NUMBER", "").strip()
    if not raw.isdigit():
        raise StackError("the kit file has no usable FL_KIT_SLOT_NUMBER (trust/Makefile's "
                         "TRUST_NUM): write the kit file first")
    return int(raw)


def backend(values: Mapping[str, str], recipe: Mapping[str, Any]) -> str:
    """fl_backend.mk: `FL_BACKEND ?= nvflare`, then it must be a valid backend."""
    name = values.get("FL_BACKEND") or "nvflare"
    if name not in recipe["backend_exports"]:
        raise StackError("Invalid FL_BACKEND in the kit file. Must be one of: "
                         + " ".join(sorted(recipe["backend_exports"])))
    return name


def _gpus(values: Mapping[str, str]) -> bool:
    """`$(filter-out 0,$(strip $(NUM_AVAILABLE_GPUS)))` is non-empty."""
    return any(word != "0" for word in values.get("NUM_AVAILABLE_GPUS", "").split())


def invocation(
    values: Mapping[str, str],
    recipe: Mapping[str, Any],
    *,
    action: str,
    override_present: bool,
    docker_gid: int | None = None,
) -> dict[str, Any]:
    """`{"project", "network", "argv", "env"}` for action `up`, `down` or `inspect` (the
    prefix of `up`, for ps/config/logs, so config hashes match what `up` made)."""
    n = slot_number(values)
    fl_backend = backend(values, recipe)
    ec2 = bool(recipe.get("ec2"))
    project = recipe["project"].format(n=n)
    network = recipe["network"].format(n=n)
    argv = [
        *recipe["docker"], "compose", "--env-file", recipe["kit_file"], "--project-directory", ".",
        "-f", recipe["common_file"], "-f", recipe["backend_file"].format(backend=fl_backend),
    ]
    trust1 = (not ec2 or action == "down") and override_present and \
        values.get("FL_KIT_SLOT") == recipe["trust1_override"]["slot"]
    if action in ("up", "inspect") and not ec2 and _gpus(values):
        argv += ["-f", recipe["gpu_file"]]
    if trust1:
        argv += ["-f", recipe["trust1_override"]["file"]]
    argv += ["-p", project]
    env = {
        "TRUST_NETWORK_NAME": network,
        "TRUST_NUMBER": str(n),
        "TRUST_NAME": values.get("TRUST_NAME") or values.get("FL_KIT_SLOT")
        or recipe["kit_code"],
    }
    if action != "down":
        env["DEBUG"] = ""
    if ec2 and action != "down":
        env["NUM_AVAILABLE_GPUS"] = "0"
    exports = dict(recipe["backend_exports"][fl_backend])
    # `DOCKER_FL_REGISTRY ?= $(DOCKER_REGISTRY)`: the kit's value when the kit sets it.
    registry = values["DOCKER_FL_REGISTRY"] if "DOCKER_FL_REGISTRY" in values else \
        values.get("DOCKER_REGISTRY", "")
    exports["DOCKER_FL_REGISTRY"] = registry
    env.update(exports)
    if docker_gid is not None:
        env["DOCKER_GID"] = str(docker_gid)
    if action == "up":
        argv += ["up", "-d"]
        if ec2 or registry:
            argv += ["--pull", "always"]
    elif action == "down":
        argv += ["down", "--remove-orphans"]
    elif action != "inspect":
        raise StackError("unknown stack action " + action)
    return {"project": project, "network": network, "argv": argv, "env": env}


def require_kit_file(values: Mapping[str, str] | None, placeholders: list[str],
                     kit_file: str) -> None:
    """trust/Makefile's require_kit_file guard."""
    if values is None:
        raise StackError("Kit file trust/" + kit_file + " is missing: write it first "
                         "(host.write_kit_file)")
    if placeholders:
        raise StackError(f"Kit file trust/{kit_file} still has {len(placeholders)} unfilled "
                         f"<run-make-…> placeholder(s): {', '.join(placeholders)}")
