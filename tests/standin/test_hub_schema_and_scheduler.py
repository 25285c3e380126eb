"""The schema reset (played "python + PostgreSQL") and ECS's service scheduler."""

from __future__ import annotations

import json
from typing import Any

from hubworld import CLUSTER, http, log_lines, register_command, run_flip_task, wait_stopped

from flipgitops.sandbox.flip.world import StandinHub

RESET = ("import sys, psycopg\n"
         "with psycopg.connect() as db:\n"
         "    db.execute('DROP SCHEMA public CASCADE; CREATE SCHEMA public;')\n"
         "print('{\"flipgitops\": \"schema-reset\", ...}')\n")
EVIDENCE = {"flipgitops": "schema-reset", "status": "reset", "generation": 2}


def reset_command(script: str = RESET, generation: int = 2) -> list[str]:
    return ["uv", "run", "python", "-c", script, "--generation", str(generation)]


def boots(hub: StandinHub) -> list[Any]:
    return [e[1] for e in hub.state.events if e[0] == "boot"]


def redeploy(hub: StandinHub, ecs: Any, **changes: Any) -> None:
    ecs.update_service(cluster=CLUSTER, service="flip-api", forceNewDeployment=True, **changes)
    hub.worker.poke()


def test_schema_reset_drops_everything_until_flip_api_redeploys(
        hub: StandinHub, seed: Any, ecs: Any, logs: Any, ssm: Any) -> None:
    _, result = seed(existing=["Hospital-A"])
    key = {"Authorization": result.trust_keys["Hospital-A"]}
    arn = run_flip_task(ecs, reset_command(), started_by="flipgitops")
    wait_stopped(ecs, arn)

    assert [e for e in hub.state.events if e[0].startswith("schema")] == [
        ("schema_drop",), ("schema_create",)]
    assert json.loads(log_lines(logs, arn)[-1]) == EVIDENCE
    assert http("GET", f"{hub.api_url}/health")[0] == 200  # no database behind /health
    assert http("GET", f"{hub.api_url}/tasks/pending", key) == (500, "Internal Server Error")
    assert http("GET", f"{hub.api_url}/admin/trusts",
                {"Authorization": f"Bearer {hub.admin_token}"})[0] == 500
    registering = run_flip_task(ecs, register_command("Hospital-B", code="HB"))
    wait_stopped(ecs, registering)
    assert log_lines(logs, registering)[0] == "Traceback (most recent call last):"

    redeploy(hub, ecs)
    assert hub.state.wait_for(lambda: len(boots(hub)) == 2)
    assert hub.state.trusts() == []  # the rows are gone for good
    assert [s.slot_name for s in hub.state.slots()] == [f"Trust_{i}" for i in (1, 2, 3)]
    assert http("GET", f"{hub.api_url}/tasks/pending", key)[0] == 401


def test_a_reset_missing_create_schema_leaves_no_evidence_and_no_boot(
        hub: StandinHub, seed: Any, ecs: Any, logs: Any) -> None:
    seed()
    script = RESET.replace(" CREATE SCHEMA public;", "")
    arn = run_flip_task(ecs, reset_command(script), started_by="flipgitops")
    wait_stopped(ecs, arn)
    assert log_lines(logs, arn) == []
    assert [e for e in hub.state.events if e[0].startswith("schema")] == [("schema_drop",)]

    redeploy(hub, ecs)  # migrations cannot run without schema public
    assert hub.state.wait_for(lambda: any(e[0] == "boot_failed" for e in hub.state.events))
    assert len(boots(hub)) == 1
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=ecs.list_tasks(
        cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"])["tasks"]
    flip_api = [t for t in tasks if t["group"] == "service:flip-api"]
    assert len(flip_api) == 1  # the old deployment's task still serves
    assert log_lines(logs, flip_api[0]["taskArn"])[-2:] == [
        "Seeding database complete - starting FastAPI server",
        "🚢 Starting API in normal mode... "]
    stopped = ecs.describe_tasks(cluster=CLUSTER, tasks=ecs.list_tasks(
        cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"])["tasks"]
    [failed] = [t for t in stopped if t["group"] == "service:flip-api"]
    assert log_lines(logs, failed["taskArn"])[-1] == "Alembic migration failed - exiting"


def test_a_drop_alone_or_no_generation_prints_no_evidence(
        hub: StandinHub, seed: Any, ecs: Any, logs: Any) -> None:
    seed()
    arn = run_flip_task(ecs, ["uv", "run", "python", "-c", RESET], started_by="flipgitops")
    wait_stopped(ecs, arn)
    assert log_lines(logs, arn) == []
    assert [e[0] for e in hub.state.events if e[0].startswith("schema")] == [
        "schema_drop", "schema_create"]


def test_a_deployment_whose_image_is_missing_never_runs(
        hub: StandinHub, seed: Any, ecs: Any) -> None:
    _, result = seed()
    td = ecs.describe_task_definition(taskDefinition="flip-api")["taskDefinition"]
    container = td["containerDefinitions"][0]
    container["image"] = container["image"].replace(":v2.3.0", ":v9.9.9")
    bad = ecs.register_task_definition(
        family="flip-api", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="512", memory="1024", containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]
    redeploy(hub, ecs, taskDefinition=bad)
    hub.worker.settle()

    arns = ecs.list_tasks(cluster=CLUSTER)["taskArns"] + ecs.list_tasks(
        cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"]
    tasks = ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]
    new = [t for t in tasks if t["taskDefinitionArn"] == bad]
    assert new and all(t["lastStatus"] == "STOPPED" for t in new)
    assert new[0]["stoppedReason"].startswith("CannotPullContainerError:")
    assert "ghcr.io/londonaicentre/flip-api:v9.9.9: not found" in new[0]["stoppedReason"]
    assert new[0]["group"] == "service:flip-api"
    assert new[0]["startedBy"].startswith("ecs-svc/")
    old = [t for t in tasks if t["taskDefinitionArn"] == result.task_definition_arns["flip_api"]
           and t["group"] == "service:flip-api"]
    assert [t["lastStatus"] for t in old] == ["RUNNING"]
    assert boots(hub) == ["v2.3.0"]


def test_a_deployment_with_a_known_image_replaces_the_old_tasks(
        hub: StandinHub, seed: Any, ecs: Any) -> None:
    _, result = seed()
    hub.registry.add("londonaicentre/flip-api", "v2.4.0")
    td = ecs.describe_task_definition(taskDefinition="flip-api")["taskDefinition"]
    container = td["containerDefinitions"][0]
    container["image"] = container["image"].replace(":v2.3.0", ":v2.4.0")
    new_td = ecs.register_task_definition(
        family="flip-api", networkMode="awsvpc", requiresCompatibilities=["FARGATE"],
        cpu="512", memory="1024", containerDefinitions=[container],
    )["taskDefinition"]["taskDefinitionArn"]
    redeploy(hub, ecs, taskDefinition=new_td)
    assert hub.state.wait_for(lambda: boots(hub) == ["v2.3.0", "v2.4.0"])
    hub.worker.settle()  # the old task is drained after the new one is up

    deployment = ecs.describe_services(cluster=CLUSTER, services=["flip-api"])[
        "services"][0]["deployments"][0]["id"]
    running = ecs.describe_tasks(cluster=CLUSTER, tasks=ecs.list_tasks(
        cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"])["tasks"]
    flip_api = [t for t in running if t["group"] == "service:flip-api"]
    assert [(t["taskDefinitionArn"], t["startedBy"]) for t in flip_api] == [(new_td, deployment)]
    stopped = ecs.describe_tasks(cluster=CLUSTER, tasks=ecs.list_tasks(
        cluster=CLUSTER, desiredStatus="STOPPED")["taskArns"])["tasks"]
    assert any(t["taskDefinitionArn"] == result.task_definition_arns["flip_api"]
               and t["stoppedReason"].startswith("Scaling activity initiated by (deployment")
               for t in stopped)
    _, body = http("POST", f"{hub.api_url}/trust/heartbeat")
    assert body == {"detail": "Not authenticated: API key is missing."}


def test_every_seeded_service_runs_one_task_of_its_definition(
        hub: StandinHub, seed: Any, ecs: Any) -> None:
    _, result = seed()
    hub.worker.settle()
    running = ecs.describe_tasks(cluster=CLUSTER, tasks=ecs.list_tasks(
        cluster=CLUSTER, desiredStatus="RUNNING")["taskArns"])["tasks"]
    by_group = {t["group"]: t["taskDefinitionArn"] for t in running}
    assert by_group == {f"service:{result.services[r]}": result.task_definition_arns[r]
                        for r in ("flip_api", "fl_api", "fl_server")}
    services = ecs.describe_services(cluster=CLUSTER, services=list(
        result.services.values()))["services"]
    assert all(s["runningCount"] == s["desiredCount"] == 1 for s in services)
    # register-trusts.sh and deploy-centralhub wait for this before they act.
    ecs.get_waiter("services_stable").wait(cluster=CLUSTER, services=list(
        result.services.values()), WaiterConfig={"Delay": 1, "MaxAttempts": 2})
