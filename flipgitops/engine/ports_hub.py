"""Ports to the hub: AWS (ECS, FLIP_API, SSM, EC2, RDS), the hub's HTTP API, image
registries, the escrow and the hub's Terraform.

Each Protocol is split into what it *reads* and what it *writes*. Executors do every
read-only check first, and in a dry run return ``Outcome(True, True, "would …")`` before the
first write. The dry-run wrappers here (:func:`dry_run_hub`, :func:`dry_run_escrow`,
:func:`dry_run_terraform`) forward reads and raise :class:`DryRunWrite` on any write, so an
executor that forgets to stop cannot change anything: a dry run holds no writer.

Method names other helpers rely on: ``HubPort.read_aes_key``, ``EscrowPort.read_kit``,
``EscrowPort.read_local``, ``EscrowPort.write_local``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import SecretStr

from flipgitops.adapters.allowlist import Group
from flipgitops.adapters.ecs import Stability
from flipgitops.adapters.ecs_tasks import TaskInfo
from flipgitops.adapters.hub_api import Health
from flipgitops.adapters.hub_secret import Mutation, SecretView
from flipgitops.adapters.image_registry import ImageCheck
from flipgitops.adapters.terraform import TerraformResult
from flipgitops.errors import FlipGitopsError
from flipgitops.model.actions import TerraformParams
from flipgitops.model.flip import HubRole
from flipgitops.model.kit import EscrowedKit, LocalCredentials
from flipgitops.model.observed import ObservedDatabase

Progress = Callable[[str], None]
PlanGuard = Callable[[dict[str, Any]], list[str]]


class DryRunWrite(FlipGitopsError):
    """A write was attempted through a dry-run port: a bug in the executor, never a change."""

    def __init__(self, port: str, method: str) -> None:
        super().__init__(f"dry run: {port}.{method} would change the world; nothing was "
                         "written (an executor must return 'would …' before writing)")


# --- the hub ------------------------------------------------------------------------------


class HubReader(Protocol):
    # FLIP_API
    def read_aes_key(self) -> SecretStr:
        """The hub's AES key for trusts; an error when missing, empty or mistyped."""
        ...

    def read_secret(self) -> SecretView: ...

    # ECS services and revisions
    def service(self, role: HubRole) -> dict[str, Any] | None: ...

    def task_definition(self, arn: str) -> dict[str, Any] | None: ...

    def latest_revision(self, role: HubRole) -> str | None: ...

    def previous_revision(self, arn: str) -> str | None: ...

    def stability(self, roles: Sequence[HubRole]) -> dict[HubRole, Stability]: ...

    def wait_stable(self, roles: Sequence[HubRole], report: Progress
                    ) -> dict[HubRole, Stability]: ...

    # one-off tasks of the flip-api family
    def running_tasks(self, started_by: str) -> list[TaskInfo]: ...

    def wait_task(self, task: TaskInfo, what: str, report: Progress) -> TaskInfo: ...

    def task_log(self, task_id: str) -> list[str]: ...

    def read_parameter(self, name: str) -> str | None: ...

    # the NLB security group
    def group(self) -> Group: ...

    # RDS
    def database(self) -> ObservedDatabase: ...

    def snapshots(self, prefix: str) -> list[tuple[str, str]]: ...

    def wait_snapshot(self, snapshot_id: str, report: Progress) -> None: ...

    # HTTP
    def health(self) -> Health: ...

    def check_image(self, image: str) -> ImageCheck: ...


class HubWriter(Protocol):
    def update_secret(self, mutate: Mutation) -> bool: ...

    def run_task(self, command: Sequence[str], started_by: str) -> TaskInfo: ...

    def delete_parameter(self, name: str) -> None: ...

    def delete_task_log(self, task_id: str) -> None: ...

    def register_task_definition(self, task_def: Mapping[str, Any]) -> str: ...

    def update_service(self, role: HubRole, task_definition: str | None, *,
                       force: bool) -> None: ...

    def deregister_task_definition(self, arn: str) -> None: ...

    def authorize_rules(self, group_id: str, rules: Sequence[tuple[str, str]]) -> None: ...

    def relabel_rule(self, group_id: str, cidr: str, description: str) -> None: ...

    def revoke_rules(self, group_id: str, cidrs: Sequence[str]) -> None: ...

    def create_snapshot(self, snapshot_id: str, tags: Mapping[str, str]) -> None: ...

    def tag_database(self, generation: int) -> None: ...

    def enable_deletion_protection(self) -> None: ...


class HubPort(HubReader, HubWriter, Protocol):
    """Everything executors do to the hub."""


class _DryRunHub:
    """Reads go to the real hub; every write raises DryRunWrite."""

    def __init__(self, inner: HubPort) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return f"DryRun({self._inner!r})"

    # reads
    def read_aes_key(self) -> SecretStr:
        return self._inner.read_aes_key()

    def read_secret(self) -> SecretView:
        return self._inner.read_secret()

    def service(self, role: HubRole) -> dict[str, Any] | None:
        return self._inner.service(role)

    def task_definition(self, arn: str) -> dict[str, Any] | None:
        return self._inner.task_definition(arn)

    def latest_revision(self, role: HubRole) -> str | None:
        return self._inner.latest_revision(role)

    def previous_revision(self, arn: str) -> str | None:
        return self._inner.previous_revision(arn)

    def stability(self, roles: Sequence[HubRole]) -> dict[HubRole, Stability]:
        return self._inner.stability(roles)

    def wait_stable(self, roles: Sequence[HubRole], report: Progress
                    ) -> dict[HubRole, Stability]:
        return self._inner.wait_stable(roles, report)

    def running_tasks(self, started_by: str) -> list[TaskInfo]:
        return self._inner.running_tasks(started_by)

    def wait_task(self, task: TaskInfo, what: str, report: Progress) -> TaskInfo:
        return self._inner.wait_task(task, what, report)

    def task_log(self, task_id: str) -> list[str]:
        return self._inner.task_log(task_id)

    def read_parameter(self, name: str) -> str | None:
        return self._inner.read_parameter(name)

    def group(self) -> Group:
        return self._inner.group()

    def database(self) -> ObservedDatabase:
        return self._inner.database()

    def snapshots(self, prefix: str) -> list[tuple[str, str]]:
        return self._inner.snapshots(prefix)

    def wait_snapshot(self, snapshot_id: str, report: Progress) -> None:
        self._inner.wait_snapshot(snapshot_id, report)

    def health(self) -> Health:
        return self._inner.health()

    def check_image(self, image: str) -> ImageCheck:
        return self._inner.check_image(image)

    # writes
    def _write(self, method: str) -> DryRunWrite:
        return DryRunWrite("hub", method)

    def update_secret(self, mutate: Mutation) -> bool:
        raise self._write("update_secret")

    def run_task(self, command: Sequence[str], started_by: str) -> TaskInfo:
        raise self._write("run_task")

    def delete_parameter(self, name: str) -> None:
        raise self._write("delete_parameter")

    def delete_task_log(self, task_id: str) -> None:
        raise self._write("delete_task_log")

    def register_task_definition(self, task_def: Mapping[str, Any]) -> str:
        raise self._write("register_task_definition")

    def update_service(self, role: HubRole, task_definition: str | None, *,
                       force: bool) -> None:
        raise self._write("update_service")

    def deregister_task_definition(self, arn: str) -> None:
        raise self._write("deregister_task_definition")

    def authorize_rules(self, group_id: str, rules: Sequence[tuple[str, str]]) -> None:
        raise self._write("authorize_rules")

    def relabel_rule(self, group_id: str, cidr: str, description: str) -> None:
        raise self._write("relabel_rule")

    def revoke_rules(self, group_id: str, cidrs: Sequence[str]) -> None:
        raise self._write("revoke_rules")

    def create_snapshot(self, snapshot_id: str, tags: Mapping[str, str]) -> None:
        raise self._write("create_snapshot")

    def tag_database(self, generation: int) -> None:
        raise self._write("tag_database")

    def enable_deletion_protection(self) -> None:
        raise self._write("enable_deletion_protection")


def dry_run_hub(hub: HubPort) -> HubPort:
    return _DryRunHub(hub)


# --- the escrow ---------------------------------------------------------------------------


class EscrowReader(Protocol):
    def read_kit(self, trust: str) -> EscrowedKit | None:
        """The trust's escrowed kit; None when none; an error naming a malformed record."""
        ...

    def read_local(self, trust: str) -> LocalCredentials | None: ...

    def read_internal_key(self) -> tuple[int, SecretStr] | None: ...

    def read_legacy_api_key(self, trust: str) -> tuple[int, int, SecretStr] | None: ...


class EscrowWriter(Protocol):
    def write_kit(self, trust: str, kit: EscrowedKit) -> None: ...

    def delete_kit(self, trust: str) -> None: ...

    def write_local(self, trust: str, creds: LocalCredentials) -> None: ...

    def delete_local(self, trust: str) -> None: ...

    def write_internal_key(self, generation: int, key: SecretStr) -> None: ...


class EscrowPort(EscrowReader, EscrowWriter, Protocol):
    """Keys flipgitops holds (SSM SecureStrings under /flipgitops/<env>/)."""


class _DryRunEscrow:
    def __init__(self, inner: EscrowPort) -> None:
        self._inner = inner

    def __repr__(self) -> str:
        return f"DryRun({self._inner!r})"

    def read_kit(self, trust: str) -> EscrowedKit | None:
        return self._inner.read_kit(trust)

    def read_local(self, trust: str) -> LocalCredentials | None:
        return self._inner.read_local(trust)

    def read_internal_key(self) -> tuple[int, SecretStr] | None:
        return self._inner.read_internal_key()

    def read_legacy_api_key(self, trust: str) -> tuple[int, int, SecretStr] | None:
        return self._inner.read_legacy_api_key(trust)

    def write_kit(self, trust: str, kit: EscrowedKit) -> None:
        raise DryRunWrite("escrow", "write_kit")

    def delete_kit(self, trust: str) -> None:
        raise DryRunWrite("escrow", "delete_kit")

    def write_local(self, trust: str, creds: LocalCredentials) -> None:
        raise DryRunWrite("escrow", "write_local")

    def delete_local(self, trust: str) -> None:
        raise DryRunWrite("escrow", "delete_local")

    def write_internal_key(self, generation: int, key: SecretStr) -> None:
        raise DryRunWrite("escrow", "write_internal_key")


def dry_run_escrow(escrow: EscrowPort) -> EscrowPort:
    return _DryRunEscrow(escrow)


# --- the hub's Terraform ------------------------------------------------------------------


class TerraformPort(Protocol):
    def plan_readonly(self, inputs: TerraformParams) -> dict[str, Any]:
        """`terraform show -json` of a plan made in a temporary copy: the root is left
        byte-identical (plan time, dry runs)."""
        ...

    def apply(self, inputs: TerraformParams, guard: PlanGuard) -> TerraformResult:
        """Plan, check the saved plan with ``guard``, apply exactly that plan."""
        ...


class _DryRunTerraform:
    def __init__(self, inner: TerraformPort) -> None:
        self._inner = inner

    def plan_readonly(self, inputs: TerraformParams) -> dict[str, Any]:
        return self._inner.plan_readonly(inputs)

    def apply(self, inputs: TerraformParams, guard: PlanGuard) -> TerraformResult:
        raise DryRunWrite("terraform", "apply")


def dry_run_terraform(tf: TerraformPort) -> TerraformPort:
    return _DryRunTerraform(tf)
