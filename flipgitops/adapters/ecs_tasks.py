"""FLIP's one-off flip-api tasks: start one, find one already running, wait, read its log.

This is the mechanism FLIP's own scripts use to touch the hub database, because nothing else
can reach it: `register-trusts.sh` and `delete-trust.sh` (FLIP `deploy/providers/AWS/
scripts/`, @03bb6813 / @05600a0d) run `aws ecs run-task` on the flip-api task family with the
network configuration copied from the live flip-api service and a command override on the
`flip-api` container, wait for `tasks-stopped`, then read the result from SSM (register) or
from the task's CloudWatch stream `flip-api/flip-api/<task id>` in `/ecs/flip-api` (delete).
Fargate misreports one-off exit codes, so callers judge by what the task wrote, never by
``exitCode``; this module only reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from flipgitops.adapters.aws_session import Clients, call, must, redact
from flipgitops.adapters.ecs import describe_services, family_and_revision
from flipgitops.adapters.waiting import Waits, poll
from flipgitops.errors import AwsError
from flipgitops.model.flip import FLIP_API_LOG_GROUP, FLIP_API_LOG_STREAM

MAX_LOG_EVENTS = 10_000  # a one-off task prints a few lines; never page forever


@dataclass(frozen=True)
class TaskInfo:
    """A one-off task as ECS describes it (no secret: commands carry names and codes only,
    and the ephemeral parameter's *name*)."""

    arn: str
    status: str
    desired_status: str
    started_by: str | None = None
    command: tuple[str, ...] = ()
    exit_codes: dict[str, int | None] = field(default_factory=dict)
    stop_code: str | None = None
    stopped_reason: str | None = None

    @property
    def task_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    @property
    def stopped(self) -> bool:
        return self.status == "STOPPED"


def task_info(task: dict[str, Any]) -> TaskInfo:
    command: tuple[str, ...] = ()
    for override in task.get("overrides", {}).get("containerOverrides", []):
        if override.get("command"):
            command = tuple(str(c) for c in override["command"])
    return TaskInfo(
        arn=str(task["taskArn"]),
        status=str(task.get("lastStatus", "")),
        desired_status=str(task.get("desiredStatus", "")),
        started_by=task.get("startedBy"),
        command=command,
        exit_codes={str(c.get("name")): c.get("exitCode") for c in task.get("containers", [])},
        stop_code=task.get("stopCode"),
        stopped_reason=task.get("stoppedReason") or None,
    )


@dataclass(frozen=True)
class OneOffTarget:
    """Where FLIP runs its one-off tasks: the flip-api service's cluster, family, network."""

    cluster: str
    service: str
    family: str
    container: str
    network: dict[str, Any]


def one_off_target(clients: Clients, cluster: str, service: str) -> OneOffTarget:
    """The live flip-api service's task family and network configuration, as
    register-trusts.sh reads them (`describe-services … .networkConfiguration`)."""
    svc = describe_services(clients, cluster, [service]).get(service)
    vpc = (svc or {}).get("networkConfiguration", {}).get("awsvpcConfiguration", {})
    if svc is None or not vpc.get("subnets") or not vpc.get("securityGroups"):
        raise AwsError(
            f"could not read the network configuration of ECS service {service} in cluster "
            f"{cluster}: is the hub deployed? (FLIP's register-trusts.sh stops here too)"
        )
    family, _ = family_and_revision(str(svc.get("taskDefinition", "")))
    network = {"awsvpcConfiguration": {
        "subnets": list(vpc["subnets"]), "securityGroups": list(vpc["securityGroups"]),
        "assignPublicIp": vpc.get("assignPublicIp", "DISABLED")}}
    # FLIP: TASK_FAMILY=flip-api and the override names container "flip-api": family,
    # container and log stream prefix are one name.
    return OneOffTarget(cluster=cluster, service=service, family=family, container=family,
                        network=network)


def run_one_off(clients: Clients, target: OneOffTarget, command: Sequence[str],
                started_by: str) -> TaskInfo:
    """`aws ecs run-task --task-definition <family> --launch-type FARGATE --started-by …
    --network-configuration … --overrides {containerOverrides:[{name, command}]}`."""
    resp = must(
        lambda: clients.ecs.run_task(
            cluster=target.cluster, taskDefinition=target.family, launchType="FARGATE",
            count=1, startedBy=started_by, networkConfiguration=target.network,  # type: ignore[arg-type]
            overrides={"containerOverrides": [{"name": target.container,
                                               "command": list(command)}]},
        ),
        doing=f"starting a one-off {target.family} task ({started_by}) in {target.cluster}",
    )
    if resp.get("failures") or not resp.get("tasks"):
        reasons = ", ".join(str(f.get("reason")) for f in resp.get("failures", []))
        raise AwsError(f"the one-off {target.family} task ({started_by}) did not start: "
                       f"{reasons or 'ECS returned no task'}")
    return task_info(dict(resp["tasks"][0]))


def running_tasks(clients: Clients, cluster: str, started_by: str) -> list[TaskInfo]:
    """Tasks with this ``startedBy`` that ECS still means to run (PENDING or RUNNING)."""
    pages = must(
        lambda: list(clients.ecs.get_paginator("list_tasks").paginate(
            cluster=cluster, startedBy=started_by, desiredStatus="RUNNING")),
        doing=f"listing {started_by} tasks in {cluster}",
    )
    arns = [a for p in pages for a in p.get("taskArns", [])]
    out: list[TaskInfo] = []
    for i in range(0, len(arns), 100):
        batch = arns[i:i + 100]
        resp = must(lambda batch=batch: clients.ecs.describe_tasks(  # type: ignore[misc]
            cluster=cluster, tasks=batch), doing=f"describing {started_by} tasks in {cluster}")
        out += [task_info(dict(t)) for t in resp.get("tasks", [])]
    return [t for t in out if t.status != "STOPPED"]


def describe_task(clients: Clients, cluster: str, arn: str) -> TaskInfo:
    resp = must(lambda: clients.ecs.describe_tasks(cluster=cluster, tasks=[arn]),
                doing=f"describing task {arn}")
    tasks = resp.get("tasks", [])
    if not tasks:
        raise AwsError(f"ECS no longer knows task {arn} (stopped tasks are kept about an hour)")
    return task_info(dict(tasks[0]))


def wait_stopped(clients: Clients, cluster: str, arn: str, *, waits: Waits,
                 report: Callable[[str], None], what: str) -> TaskInfo:
    """`aws ecs wait tasks-stopped`, bounded, with a progress line when the status moves."""

    def look() -> tuple[TaskInfo | None, str]:
        info = describe_task(clients, cluster, arn)
        return (info if info.stopped else None), info.status.lower() or "unknown"

    return poll(look, what=f"waiting for {what} (task {arn.rsplit('/', 1)[-1]})",
                timeout=waits.task_timeout, waits=waits, report=report)


# --- CloudWatch log stream ----------------------------------------------------------------


def log_stream(task_id: str) -> str:
    return FLIP_API_LOG_STREAM.format(task_id=task_id)


def log_lines(clients: Clients, task_id: str) -> list[str]:
    """Every message of the task's stream, oldest first; [] when the stream does not exist
    (a task that never started writes none)."""
    stream = log_stream(task_id)
    lines: list[str] = []
    token: str | None = None
    while len(lines) < MAX_LOG_EVENTS:
        args: dict[str, Any] = {"logGroupName": FLIP_API_LOG_GROUP, "logStreamName": stream,
                                "startFromHead": True}
        if token:
            args["nextToken"] = token
        resp = call(lambda args=args: clients.logs.get_log_events(**args),  # type: ignore[misc]
                    doing=f"reading log stream {FLIP_API_LOG_GROUP}/{stream}",
                    missing=("ResourceNotFoundException",))
        if resp is None:
            return lines
        for event in resp.get("events", []):
            lines += str(event.get("message", "")).replace("\t", "\n").splitlines()
        nxt = resp.get("nextForwardToken")
        if not resp.get("events") or not nxt or nxt == token:
            return lines
        token = nxt
    return lines


def delete_log_stream(clients: Clients, task_id: str) -> None:
    """register-trusts.sh deletes the stream after reading it: it may hold the kit."""
    stream = log_stream(task_id)
    call(lambda: clients.logs.delete_log_stream(logGroupName=FLIP_API_LOG_GROUP,
                                                logStreamName=stream),
         doing=f"deleting log stream {FLIP_API_LOG_GROUP}/{stream}",
         missing=("ResourceNotFoundException",))


def problem_lines(lines: Sequence[str], limit: int = 40) -> list[str]:
    """register-trusts.sh: the ERROR/WARNING lines, else the last 40 lines; redacted, so a
    key a crashing script printed never reaches our output."""
    picked = [ln for ln in lines if "ERROR" in ln or "WARNING" in ln] or list(lines[-limit:])
    return [redact(ln)[:300] for ln in picked[-limit:]]


# --- SSM parameters (the ephemeral kit hand-off) ------------------------------------------


def read_parameter(clients: Clients, name: str) -> str | None:
    resp = call(lambda: clients.ssm.get_parameter(Name=name, WithDecryption=True),
                doing=f"reading SSM parameter {name}", missing=("ParameterNotFound",))
    return None if resp is None else str(resp["Parameter"].get("Value", ""))


def delete_parameter(clients: Clients, name: str) -> None:
    call(lambda: clients.ssm.delete_parameter(Name=name),
         doing=f"deleting SSM parameter {name}", missing=("ParameterNotFound",))
