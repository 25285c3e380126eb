"""The hub's ECS services: their task definitions, images, stability, and revisions.

FLIP names each service's app container like the service (`ecs_tasks.tf`: family, container
and service are `flip-api`, `fl-api-net-1`, `fl-server-net-1`), and its Makefile reads and
swaps exactly that container's image (`deploy-centralhub`). A service is *stable* when ECS's
scheduler has finished: one deployment (the PRIMARY), and as many tasks RUNNING on the
service's current revision, started by that deployment (ECS sets a service task's
``startedBy`` to its deployment id), as the service wants. That is what
``aws ecs wait services-stable`` waits for, checked on the tasks themselves.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from flipgitops.adapters.aws_session import Clients, call, error_code, must, translate
from flipgitops.errors import AwsError
from flipgitops.model.flip import HUB_ROLES, TASK_ENV_TRUST_NAMES, HubRole, image_tag
from flipgitops.model.manifest import Manifest

# FLIP's deploy-centralhub jq drops these before register-task-definition (they are read-only
# fields of a described revision); tags are kept when there are any.
READ_ONLY_FIELDS = ("taskDefinitionArn", "revision", "status", "requiresAttributes",
                    "compatibilities", "registeredAt", "registeredBy", "deregisteredAt")
DESCRIBE_TASKS_BATCH = 100  # DescribeTasks takes at most 100 tasks
K = TypeVar("K", bound=str)


def service_names(manifest: Manifest) -> dict[HubRole, str]:
    services = manifest.hub.ecs.services
    return {role: str(getattr(services, role)) for role in HUB_ROLES}


def describe_services(clients: Clients, cluster: str, names: Sequence[str]
                      ) -> dict[str, dict[str, Any]]:
    """Live (non-INACTIVE) services by name, in one call; absent ones are left out."""
    resp = call(
        lambda: clients.ecs.describe_services(cluster=cluster, services=list(names)),
        doing=f"describing ECS services {', '.join(names)} in cluster {cluster}",
        missing=("ClusterNotFoundException",),
    )
    found: dict[str, dict[str, Any]] = {}
    for svc in resp["services"] if resp else []:
        if svc.get("status") != "INACTIVE" and svc.get("serviceName"):
            found[svc["serviceName"]] = dict(svc)
    return found


def describe_task_definition(clients: Clients, arn: str, *, tags: bool = False
                             ) -> dict[str, Any] | None:
    """A revision (with its tags in ``tags`` when asked); None when ECS no longer has it.

    A deleted revision answers ``ClientException: Unable to describe task definition``; a
    service pointing at one is a fact to report, not an opaque failure.
    """
    doing = f"reading task definition {arn}"
    try:
        resp = (clients.ecs.describe_task_definition(taskDefinition=arn, include=["TAGS"])
                if tags else clients.ecs.describe_task_definition(taskDefinition=arn))
    except ClientError as exc:
        if error_code(exc) in ("ClientException", "InvalidParameterException"):
            return None
        raise translate(exc, doing=doing) from None
    except BotoCoreError as exc:
        raise translate(exc, doing=doing) from None
    task_def = dict(resp["taskDefinition"])
    if tags and resp.get("tags"):
        task_def["tags"] = list(resp["tags"])
    return task_def


def app_container(task_def: Mapping[str, Any], service_name: str) -> dict[str, Any] | None:
    """The container named like the service (FLIP: container == family == service)."""
    for c in task_def.get("containerDefinitions", []):
        if c.get("name") == service_name:
            return dict(c)
    return None


def env_value(container: Mapping[str, Any], key: str) -> str | None:
    for item in container.get("environment", []):
        if item.get("name") == key:
            value = item.get("value")
            return value if isinstance(value, str) else None
    return None


def parse_trust_names(value: str | None) -> tuple[tuple[str, ...] | None, bool]:
    """(names, malformed) of flip-api's ``TRUST_NAMES``: pydantic-settings reads a
    ``list[str]`` setting as a JSON list, so anything else breaks the E2 hub at start."""
    if value is None:
        return None, False
    try:
        data = json.loads(value)
    except ValueError:
        return None, True
    if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
        return None, True
    return tuple(data), False


def with_trust_names(task_def: Mapping[str, Any], container: str, names: Sequence[str]
                     ) -> dict[str, Any]:
    """The revision with only ``TRUST_NAMES`` of ``container`` set to ``names``."""
    encoded = json.dumps(list(names))

    def env(c: Mapping[str, Any]) -> list[dict[str, Any]]:
        items = [dict(i) for i in c.get("environment", [])]
        for item in items:
            if item.get("name") == TASK_ENV_TRUST_NAMES:
                item["value"] = encoded
                return items
        return [*items, {"name": TASK_ENV_TRUST_NAMES, "value": encoded}]

    containers = [
        {**c, "environment": env(c)} if c.get("name") == container else dict(c)
        for c in task_def.get("containerDefinitions", [])
    ]
    return {**task_def, "containerDefinitions": containers}


def with_image(task_def: Mapping[str, Any], container: str, image: str) -> dict[str, Any]:
    """FLIP's jq: ``containerDefinitions |= map(if .name == $name then .image = $image)``."""
    containers = [
        {**c, "image": image} if c.get("name") == container else dict(c)
        for c in task_def.get("containerDefinitions", [])
    ]
    return {**task_def, "containerDefinitions": containers}


def registration_input(clients: Clients, task_def: Mapping[str, Any]) -> dict[str, Any]:
    """A described revision as register_task_definition input: FLIP's jq drops the read-only
    fields and keeps tags when there are any; anything else the API does not take (a field
    a newer ECS added to the description) is dropped by the operation's own input shape."""
    shape = clients.ecs.meta.service_model.operation_model("RegisterTaskDefinition").input_shape
    accepted = set(shape.members) if shape is not None else set()
    out = {k: v for k, v in task_def.items() if k not in READ_ONLY_FIELDS and k in accepted}
    if not out.get("tags"):
        out.pop("tags", None)
    return out


def family_and_revision(arn: str) -> tuple[str, int]:
    """`…:task-definition/flip-api:7` -> ("flip-api", 7), as rollback-centralhub parses it."""
    family_rev = arn.rsplit("/", 1)[-1]
    family, _, rev = family_rev.rpartition(":")
    if not family or not rev.isdigit():
        raise AwsError(f"task definition {arn} is not family:revision")
    return family, int(rev)


def previous_active_revision(clients: Clients, current_arn: str) -> str | None:
    """rollback-centralhub: the highest ACTIVE revision of the family below the current."""
    family, rev = family_and_revision(current_arn)
    pages = must(
        lambda: list(clients.ecs.get_paginator("list_task_definitions").paginate(
            familyPrefix=family, status="ACTIVE", sort="DESC")),
        doing=f"listing ACTIVE revisions of task definition family {family}",
    )
    for page in pages:
        for arn in page.get("taskDefinitionArns", []):
            try:
                fam, number = family_and_revision(arn)
            except AwsError:
                continue
            if fam == family and number < rev:
                return str(arn)
    return None


# --- stability ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Stability:
    """Whether ECS's scheduler is done with one service, and why not (for progress lines)."""

    stable: bool
    detail: str
    primary_id: str | None = None
    primary_created: datetime | None = None
    running_current: int = 0
    desired: int = 0


def primary_deployment(svc: Mapping[str, Any]) -> dict[str, Any] | None:
    for d in svc.get("deployments", []):
        if d.get("status") == "PRIMARY":
            return dict(d)
    return None


def service_tasks(clients: Clients, cluster: str, deployment_ids: Iterable[str]
                  ) -> dict[str, list[dict[str, Any]]]:
    """RUNNING tasks started by each deployment: one list per deployment, one describe for
    all of them (batches of 100); the count grows with services, never with trusts."""
    by_deployment: dict[str, list[str]] = {}
    for dep in deployment_ids:
        pages = must(
            lambda dep=dep: list(clients.ecs.get_paginator("list_tasks").paginate(  # type: ignore[misc]
                cluster=cluster, startedBy=dep, desiredStatus="RUNNING")),
            doing=f"listing the tasks of ECS deployment {dep} in cluster {cluster}",
        )
        by_deployment[dep] = [a for p in pages for a in p.get("taskArns", [])]
    arns = [a for arns in by_deployment.values() for a in arns]
    described: dict[str, dict[str, Any]] = {}
    for i in range(0, len(arns), DESCRIBE_TASKS_BATCH):
        batch = arns[i:i + DESCRIBE_TASKS_BATCH]
        resp = must(lambda batch=batch: clients.ecs.describe_tasks(  # type: ignore[misc]
            cluster=cluster, tasks=batch), doing=f"describing service tasks in {cluster}")
        described.update({t["taskArn"]: dict(t) for t in resp.get("tasks", [])})
    return {dep: [described[a] for a in arns if a in described]
            for dep, arns in by_deployment.items()}


def judge_stability(svc: Mapping[str, Any], tasks: Sequence[Mapping[str, Any]]) -> Stability:
    deployments = list(svc.get("deployments", []))
    primary = primary_deployment(svc)
    desired = int(svc.get("desiredCount", 0))
    if primary is None:
        return Stability(False, "no PRIMARY deployment", desired=desired)
    created = primary.get("createdAt")
    created = created if isinstance(created, datetime) else None
    current = svc.get("taskDefinition")
    running = sum(1 for t in tasks
                  if t.get("lastStatus") == "RUNNING" and t.get("taskDefinitionArn") == current)
    def judged(stable: bool, detail: str) -> Stability:
        return Stability(stable, detail[:200], primary_id=primary.get("id") if primary else None,
                         primary_created=created, running_current=running, desired=desired)

    if primary.get("rolloutState") == "FAILED":
        return judged(False, f"rollout FAILED: {primary.get('rolloutStateReason', '')}")
    if len(deployments) != 1:
        return judged(False, f"{len(deployments)} deployments (old tasks still draining)")
    if primary.get("taskDefinition") != current:
        return judged(False, "the primary deployment is not on the current revision")
    if running != desired:
        return judged(False, f"{running}/{desired} tasks running on the current revision")
    return judged(True, f"{running}/{desired} running")


def stabilities(clients: Clients, cluster: str, services: Mapping[K, Mapping[str, Any]]
                ) -> dict[K, Stability]:
    """Stability of each described service (keyed like ``services``)."""
    primaries = {key: primary_deployment(svc) for key, svc in services.items()}
    ids = [str(p["id"]) for p in primaries.values() if p and p.get("id")]
    tasks = service_tasks(clients, cluster, ids)
    return {
        key: judge_stability(svc, tasks.get(str((primaries[key] or {}).get("id")), []))
        for key, svc in services.items()
    }


def tag_of(container: Mapping[str, Any] | None) -> str | None:
    return image_tag(container.get("image")) if container else None
