"""Helpers for the stand-in hub's tests: manifests, FLIP's task invocations, HTTP calls.

`run_flip_task` starts a one-off task exactly as FLIP's register-trusts.sh@03bb6813 and
delete-trust.sh@05600a0d do: network configuration read from the live flip-api service,
``--task-definition flip-api`` (the family), ``--launch-type FARGATE``, the script's
``--started-by``, and the command as a container override named ``flip-api``.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import boto3

from flipgitops.model.manifest import Manifest

REGION = "eu-west-2"
CLUSTER = "flip-cluster"
LOG_GROUP = "/ecs/flip-api"


def make_manifest(*, era: str = "database", backend: str = "nvflare", trusts: int = 2,
                  hub_tag: str = "v2.3.0", fl_tag: str = "v2.3.0",
                  header: str = "Authorization") -> Manifest:
    doc: dict[str, Any] = {
        "version": 1, "environment": "dev",
        "aws": {"account_id": "123456789012", "region": REGION},
        "state": {"bucket": "flip-gitops-state-dev"},
        "flip": {"checkout": "../FLIP", "ref": "v2.3.0"},
        "hub": {
            "domain": "dev.flip.example.org", "fl_backend": backend, "trust_registry": era,
            "trust_api_key_header": header,
            "images": {"hub_tag": hub_tag, "fl_tag": fl_tag},
            "fl_kits": {"bucket": "flipdev-aicentre", "date": "2025-06-01"},
        },
        "trusts": [
            {"name": f"Hospital-{chr(65 + i)}", "code": f"H{chr(65 + i)}", "kind": "on-prem",
             "public_ip": f"203.0.113.{10 + i}", "region": "London",
             **({"fl_kit_slot": f"Trust_{i + 1}"} if era == "secret" else {})}
            for i in range(trusts)
        ],
    }
    return Manifest.model_validate(doc)


def aws(service: str, moto_url: str) -> Any:
    return boto3.client(service, endpoint_url=moto_url, region_name=REGION)  # type: ignore[call-overload]


def run_flip_task(ecs: Any, command: list[str], started_by: str = "register-trusts") -> str:
    """register-trusts.sh's run-task: the live service's network config, family name."""
    svc = ecs.describe_services(cluster=CLUSTER, services=["flip-api"])["services"][0]
    vpc = svc["networkConfiguration"]["awsvpcConfiguration"]
    net = {"awsvpcConfiguration": {"subnets": vpc["subnets"],
                                   "securityGroups": vpc["securityGroups"],
                                   "assignPublicIp": vpc.get("assignPublicIp", "DISABLED")}}
    task = ecs.run_task(
        cluster=CLUSTER, taskDefinition="flip-api", launchType="FARGATE",
        startedBy=started_by, networkConfiguration=net,
        overrides={"containerOverrides": [{"name": "flip-api", "command": command}]},
    )["tasks"][0]
    return str(task["taskArn"])


def register_command(name: str, *, code: str | None = None, region: str | None = None,
                     out: str | None = None, require_existing: bool = False) -> list[str]:
    """register-trusts.sh@03bb6813's cmd_args (name, out, then code and region if set)."""
    cmd = ["uv", "run", "python", "-m", "flip_api.scripts.register_trust", "--name", name]
    if out:
        cmd += ["--out-ssm-parameter", out]
    if code:
        cmd += ["--code", code]
    if region:
        cmd += ["--region", region]
    if require_existing:
        cmd += ["--require-existing"]
    return cmd


def delete_command(name: str) -> list[str]:
    return ["uv", "run", "python", "-m", "flip_api.scripts.delete_trust", "--name", name]


def describe(ecs: Any, arn: str) -> dict[str, Any]:
    return dict(ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0])


def wait_stopped(ecs: Any, arn: str, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task = describe(ecs, arn)
        if task["lastStatus"] == "STOPPED":
            return task
        if time.monotonic() > deadline:
            raise AssertionError(f"task {arn} still {task['lastStatus']} after {timeout}s")
        time.sleep(0.05)


def log_lines(logs: Any, task_arn: str) -> list[str]:
    """The task's awslogs stream, read the way register-trusts.sh reads it on failure."""
    task_id = task_arn.rsplit("/", 1)[-1]
    events = logs.get_log_events(logGroupName=LOG_GROUP,
                                 logStreamName=f"flip-api/flip-api/{task_id}",
                                 startFromHead=True)["events"]
    return [e["message"] for e in events]


def http(method: str, url: str, headers: dict[str, str] | None = None,
         body: Any = None) -> tuple[int, Any]:
    """(status, parsed JSON or text) of one request; errors are answers, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={
        **({"Content-Type": "application/json"} if data else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
    except urllib.error.HTTPError as e:
        status, raw, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
    if "json" in ctype and raw:
        return status, json.loads(raw)
    return status, raw.decode()


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout}s")
        time.sleep(0.05)
