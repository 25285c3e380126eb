"""`AwsHub`: the HubPort of one environment, on boto3 clients (moto in tests) and urllib.

A thin object over the modules that hold each part (`hub_secret`, `ecs`, `ecs_tasks`,
`allowlist`, `image_registry`, `hub_api`); procedures — the order things happen in — live in
the executors (`engine/hub_executors.py`), so a dry run can reuse every read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from flipgitops.adapters import allowlist, ecs, ecs_tasks, hub_secret
from flipgitops.adapters.aws import GENERATION_TAG, database_from, describe_db
from flipgitops.adapters.aws_session import Clients, must
from flipgitops.adapters.ecs import Stability
from flipgitops.adapters.ecs_tasks import TaskInfo
from flipgitops.adapters.endpoints import Endpoints, endpoints_from_env
from flipgitops.adapters.escrow import SsmEscrow
from flipgitops.adapters.hub_api import Health, health
from flipgitops.adapters.image_registry import ImageCheck, check_image
from flipgitops.adapters.state_store import S3State
from flipgitops.adapters.terraform import HubTerraform
from flipgitops.adapters.waiting import Waits, WaitTimeout, poll, waits_from_env
from flipgitops.errors import AwsError
from flipgitops.model.flip import HubRole
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedDatabase

Progress = Callable[[str], None]


class AwsHub:
    """Everything executors do to one environment's hub."""

    def __init__(self, manifest: Manifest, clients: Clients, *,
                 endpoints: Endpoints | None = None, waits: Waits | None = None) -> None:
        self.manifest = manifest
        self.clients = clients
        self.endpoints = endpoints if endpoints is not None else endpoints_from_env()
        self.waits = waits or waits_from_env()
        self.cluster = manifest.hub.ecs.cluster
        self.names = ecs.service_names(manifest)
        self._target: ecs_tasks.OneOffTarget | None = None

    def __repr__(self) -> str:
        return f"AwsHub(env={self.manifest.environment!r}, cluster={self.cluster!r})"

    # --- FLIP_API ---------------------------------------------------------------------------

    @property
    def _secret_name(self) -> str:
        return self.manifest.hub.secret

    def read_aes_key(self) -> SecretStr:
        return hub_secret.aes_key(hub_secret.read_document(self.clients, self._secret_name),
                                  self._secret_name)

    def read_secret(self) -> hub_secret.SecretView:
        return hub_secret.view(hub_secret.read_document(self.clients, self._secret_name),
                               self._secret_name)

    def update_secret(self, mutate: hub_secret.Mutation) -> bool:
        return hub_secret.read_modify_write(self.clients, self._secret_name, mutate)

    # --- ECS services -----------------------------------------------------------------------

    def service(self, role: HubRole) -> dict[str, Any] | None:
        name = self.names[role]
        return ecs.describe_services(self.clients, self.cluster, [name]).get(name)

    def _service(self, role: HubRole) -> dict[str, Any]:
        svc = self.service(role)
        if svc is None:
            raise AwsError(f"ECS service {self.names[role]} not found in cluster "
                           f"{self.cluster}: deploy the hub first or fix hub.ecs")
        return svc

    def task_definition(self, arn: str) -> dict[str, Any] | None:
        return ecs.describe_task_definition(self.clients, arn, tags=True)

    def latest_revision(self, role: HubRole) -> str | None:
        """The family's highest ACTIVE revision: what FLIP's Terraform points the service at
        (`ecs_services.tf`@65f052ba: `family:max(resource, data source revision)`)."""
        svc = self._service(role)
        family, _ = ecs.family_and_revision(str(svc.get("taskDefinition", "")))
        found = ecs.active_revisions(self.clients, family)
        return found[0][1] if found else None

    def previous_revision(self, arn: str) -> str | None:
        return ecs.previous_active_revision(self.clients, arn)

    def register_task_definition(self, task_def: Mapping[str, Any]) -> str:
        args = ecs.registration_input(self.clients, task_def)
        resp = must(lambda: self.clients.ecs.register_task_definition(**args),
                    doing=f"registering a revision of task definition {args.get('family')}")
        return str(resp["taskDefinition"]["taskDefinitionArn"])

    def update_service(self, role: HubRole, task_definition: str | None, *,
                       force: bool) -> None:
        args: dict[str, Any] = {"cluster": self.cluster, "service": self.names[role],
                                "forceNewDeployment": force}
        if task_definition:
            args["taskDefinition"] = task_definition
        must(lambda: self.clients.ecs.update_service(**args),
             doing=f"updating ECS service {self.names[role]}")

    def deregister_task_definition(self, arn: str) -> None:
        must(lambda: self.clients.ecs.deregister_task_definition(taskDefinition=arn),
             doing=f"deregistering task definition {arn}")

    def stability(self, roles: Sequence[HubRole]) -> dict[HubRole, Stability]:
        names = [self.names[r] for r in roles]
        live = ecs.describe_services(self.clients, self.cluster, names)
        found = {r: live[self.names[r]] for r in roles if self.names[r] in live}
        judged = ecs.stabilities(self.clients, self.cluster, found)
        return {r: judged.get(r, Stability(False, "service not found")) for r in roles}

    def wait_stable(self, roles: Sequence[HubRole], report: Progress
                    ) -> dict[HubRole, Stability]:
        """Until every service is stable or the bound passes; returns the last judgement
        (the caller decides what an unstable service means: a rollback, a failure)."""
        last: dict[HubRole, Stability] = {}

        def look() -> tuple[dict[HubRole, Stability] | None, str]:
            nonlocal last
            last = self.stability(roles)
            seen = "; ".join(f"{self.names[r]} {s.detail}" for r, s in last.items())
            return (last if all(s.stable for s in last.values()) else None), seen

        try:
            return poll(look, what="waiting for " + ", ".join(self.names[r] for r in roles)
                        + " to become stable", timeout=self.waits.stable_timeout,
                        waits=self.waits, report=report)
        except WaitTimeout as exc:  # the last judgement is the answer
            report(str(exc))
            return last

    # --- one-off tasks ----------------------------------------------------------------------

    def _one_off(self) -> ecs_tasks.OneOffTarget:
        if self._target is None:
            self._target = ecs_tasks.one_off_target(self.clients, self.cluster,
                                                    self.names["flip_api"])
        return self._target

    def run_task(self, command: Sequence[str], started_by: str) -> TaskInfo:
        return ecs_tasks.run_one_off(self.clients, self._one_off(), command, started_by)

    def running_tasks(self, started_by: str) -> list[TaskInfo]:
        return ecs_tasks.running_tasks(self.clients, self.cluster, started_by)

    def wait_task(self, task: TaskInfo, what: str, report: Progress) -> TaskInfo:
        return ecs_tasks.wait_stopped(self.clients, self.cluster, task.arn, waits=self.waits,
                                      report=report, what=what)

    def task_log(self, task_id: str) -> list[str]:
        return ecs_tasks.log_lines(self.clients, task_id)

    def delete_task_log(self, task_id: str) -> None:
        ecs_tasks.delete_log_stream(self.clients, task_id)

    def read_parameter(self, name: str) -> str | None:
        return ecs_tasks.read_parameter(self.clients, name)

    def delete_parameter(self, name: str) -> None:
        ecs_tasks.delete_parameter(self.clients, name)

    # --- the NLB security group -------------------------------------------------------------

    def group(self) -> allowlist.Group:
        fl = self.manifest.hub.fl_server
        return allowlist.the_group(self.clients, fl.security_group, fl.port, fl.rule_quota)

    def authorize_rules(self, group_id: str, rules: Sequence[tuple[str, str]]) -> None:
        allowlist.authorize(self.clients, group_id, self.manifest.hub.fl_server.port, rules)

    def relabel_rule(self, group_id: str, cidr: str, description: str) -> None:
        allowlist.describe_rule(self.clients, group_id, self.manifest.hub.fl_server.port,
                                cidr, description)

    def revoke_rules(self, group_id: str, cidrs: Sequence[str]) -> None:
        allowlist.revoke(self.clients, group_id, self.manifest.hub.fl_server.port, cidrs)

    # --- RDS --------------------------------------------------------------------------------

    @property
    def _db_id(self) -> str:
        return self.manifest.hub.database.identifier

    def database(self) -> ObservedDatabase:
        return database_from(self.clients, self._db_id, describe_db(self.clients, self._db_id))

    def snapshots(self, prefix: str) -> list[tuple[str, str]]:
        pages = must(lambda: list(self.clients.rds.get_paginator("describe_db_snapshots")
                                  .paginate(DBInstanceIdentifier=self._db_id,
                                            SnapshotType="manual")),
                     doing=f"listing manual snapshots of RDS instance {self._db_id}")
        return sorted((str(s["DBSnapshotIdentifier"]), str(s.get("Status", "")))
                      for p in pages for s in p.get("DBSnapshots", [])
                      if str(s.get("DBSnapshotIdentifier", "")).startswith(prefix))

    def create_snapshot(self, snapshot_id: str, tags: Mapping[str, str]) -> None:
        must(lambda: self.clients.rds.create_db_snapshot(
            DBSnapshotIdentifier=snapshot_id, DBInstanceIdentifier=self._db_id,
            Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())]),
            doing=f"creating snapshot {snapshot_id} of RDS instance {self._db_id}")

    def wait_snapshot(self, snapshot_id: str, report: Progress) -> None:
        def look() -> tuple[bool | None, str]:
            resp = must(lambda: self.clients.rds.describe_db_snapshots(
                DBSnapshotIdentifier=snapshot_id), doing=f"reading snapshot {snapshot_id}")
            snaps = resp.get("DBSnapshots", [])
            status = str(snaps[0].get("Status", "")) if snaps else "missing"
            if status in ("failed", "missing", "deleted"):
                raise AwsError(f"snapshot {snapshot_id} is {status}")
            return (True if status == "available" else None), status

        poll(look, what=f"waiting for snapshot {snapshot_id}",
             timeout=self.waits.snapshot_timeout, waits=self.waits, report=report)

    def _db_arn(self) -> str:
        db = self.database()
        if not db.exists or not db.arn:
            raise AwsError(f"RDS instance {self._db_id} not found: flipgitops does not create "
                           "the database; deploy the hub first or fix hub.database.identifier")
        return db.arn

    def tag_database(self, generation: int) -> None:
        arn = self._db_arn()
        must(lambda: self.clients.rds.add_tags_to_resource(
            ResourceName=arn, Tags=[{"Key": GENERATION_TAG, "Value": str(generation)}]),
            doing=f"tagging RDS instance {self._db_id} with generation {generation}")

    def enable_deletion_protection(self) -> None:
        self._db_arn()
        must(lambda: self.clients.rds.modify_db_instance(
            DBInstanceIdentifier=self._db_id, DeletionProtection=True, ApplyImmediately=True),
            doing=f"turning deletion protection on for RDS instance {self._db_id}")

    # --- HTTP -------------------------------------------------------------------------------

    def health(self) -> Health:
        return health(self.endpoints, self.manifest.hub.domain)

    def check_image(self, image: str) -> ImageCheck:
        return check_image(image, self.endpoints, self.clients)


def snapshot_prefix(env: str, generation: int) -> str:
    """`flipgitops-<env>-gen<N>-`: RDS identifiers take letters, digits and hyphens."""
    safe = re.sub(r"[^a-z0-9-]+", "-", env.lower()).strip("-") or "env"
    return f"flipgitops-{safe}-gen{generation}-"



@dataclass(frozen=True)
class HubSide:
    """The real hub-side ports of one environment, for the engine to put into `Ports`
    (wrap them with `engine.ports_hub.dry_run_*` / `ports_state.dry_run_state` for --dry-run).
    """

    hub: AwsHub
    escrow: SsmEscrow
    state: S3State
    terraform: HubTerraform | None


def hub_side(manifest: Manifest, clients: Clients, manifest_dir: Path, *,
             endpoints: Endpoints | None = None, waits: Waits | None = None) -> HubSide:
    tf = manifest.hub.terraform
    return HubSide(
        hub=AwsHub(manifest, clients, endpoints=endpoints, waits=waits),
        escrow=SsmEscrow(clients, manifest.environment),
        state=S3State.for_manifest(manifest, clients),
        terraform=(HubTerraform((manifest_dir / tf.dir).resolve(), tf.backend_config)
                   if tf is not None else None),
    )
