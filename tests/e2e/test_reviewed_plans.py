"""Reviewed plans through the real CLI (issue 12): a reviewed plan still applies after volatile
facts move; a plan file that is not a plan is refused naming the action; a dry run changes
nothing anywhere (the moto world, the state bucket, the hosts, the repository)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from flipgitops.sandbox.environment import REGION, Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow

TRUSTS = (TrustSpec("Trust_1", "GSTT", "203.0.113.11"),
          TrustSpec("Trust_2", "KCH", "203.0.113.12", kind="tre"))


@pytest.fixture
def box(tmp_path: Path, moto: MotoServer) -> Iterator[Sandbox]:
    with sandbox(tmp_path / "sb", trusts=TRUSTS, moto=moto) as world:
        yield world


def _aws(service: str, box: Sandbox) -> Any:
    return boto3.client(service, endpoint_url=box.moto.url, region_name=REGION)


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with its content hash and mode (what a dry run must keep)."""
    out = {}
    for path in sorted(root.rglob("*")):
        # the stand-in docker daemon's own lock file (as /run/docker.pid): not a host change
        daemon_lock = path.name == "lock" and path.parent.name == "docker"
        if path.is_file() and ".git" not in path.parts and not daemon_lock:
            out[str(path.relative_to(root))] = (
                hashlib.sha256(path.read_bytes()).hexdigest() + oct(path.stat().st_mode))
    return out


def _aws_world(box: Sandbox) -> dict[str, Any]:
    """What flipgitops could change in AWS, read with plain boto3."""
    s3, ssm, ecs, ec2 = (_aws(s, box) for s in ("s3", "ssm", "ecs", "ec2"))
    objects = {}
    for bucket in s3.list_buckets()["Buckets"]:
        for obj in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", []):
            objects[f"{bucket['Name']}/{obj['Key']}"] = obj["ETag"]
    params = sorted(p["Name"] for p in ssm.describe_parameters()["Parameters"])
    tds = sorted(ecs.list_task_definitions()["taskDefinitionArns"])
    services = ecs.describe_services(cluster="flip-cluster", services=[
        "flip-api", "fl-api-net-1", "fl-server-net-1"])["services"]
    rules = sorted(json.dumps(g["IpPermissions"], sort_keys=True)
                   for g in ec2.describe_security_groups()["SecurityGroups"])
    # One-off tasks only: the stand-in's ECS scheduler starts a service's tasks on its own
    # clock (as ECS does), which a loaded machine can put inside the dry run.
    arns = ecs.list_tasks(cluster="flip-cluster")["taskArns"]
    described = ecs.describe_tasks(cluster="flip-cluster", tasks=arns)["tasks"] if arns else []
    tasks = sorted(t["taskArn"] for t in described
                   if not str(t.get("group", "")).startswith("service:"))
    return {"objects": objects, "params": params, "tds": tds, "tasks": tasks, "rules": rules,
            "services": sorted((s["serviceName"], s["taskDefinition"],
                                [d["id"] for d in s["deployments"]]) for s in services)}


def test_dry_run_changes_nothing_and_reviewed_plans_survive_volatile_facts(box: Sandbox) -> None:
    before_aws, before_files = _aws_world(box), _tree(box.root)
    dry = box.cli("apply", "--env", "dev", "--dry-run", "--format", "json")
    assert dry.code == 0, dry.text
    report = json.loads(dry.out)
    assert report["dry_run"] and report["completed"]
    assert _aws_world(box) == before_aws
    assert _tree(box.root) == before_files  # hosts, the repo, the world file: untouched

    plan_file = box.repo / "plan.json"
    planned = box.cli("plan", "--env", "dev", "--out", str(plan_file))
    assert planned.code == 2, planned.text
    # Volatile facts move: a new secret version (same content), the database stopped.
    sm = _aws("secretsmanager", box)
    value = sm.get_secret_value(SecretId="FLIP_API")["SecretString"]
    sm.put_secret_value(SecretId="FLIP_API", SecretString=value)
    applied = box.cli("apply", "--env", "dev", "--plan", str(plan_file), "--yes")
    assert applied.code == 0, applied.text
    assert "converged" in applied.text


def test_a_plan_file_that_is_not_a_plan_is_refused_naming_the_action(box: Sandbox) -> None:
    plan_file = box.repo / "plan.json"
    assert box.cli("plan", "--env", "dev", "--out", str(plan_file)).code == 2
    data = json.loads(plan_file.read_text())
    first = data["actions"][0]
    first["kind"] = "hub.deplyo_image"
    bad = box.repo / "bad.json"
    bad.write_text(json.dumps(data))
    run = box.cli("apply", "--env", "dev", "--plan", str(bad), "--yes")
    assert run.code == 1, run.text
    assert "hub.deplyo_image" in run.err and first["id"] in run.err
    assert "Traceback" not in run.text
    data = json.loads(plan_file.read_text())
    data["actions"][0]["params"].pop(next(iter(data["actions"][0]["params"])))
    bad.write_text(json.dumps(data))
    run = box.cli("apply", "--env", "dev", "--plan", str(bad), "--yes")
    assert run.code == 1 and data["actions"][0]["id"] in run.err, run.text
    binary = box.repo / "binary.json"
    binary.write_bytes(os.urandom(256))
    run = box.cli("apply", "--env", "dev", "--plan", str(binary), "--yes")
    assert run.code == 1 and "Traceback" not in run.text, run.text
    usage = box.cli("plan", "--env", "dev", "--format", "yaml")
    assert usage.code == 64, usage.text
