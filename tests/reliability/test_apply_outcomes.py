"""Issue 19, "wrong results" and "a bad day": plan, apply and drift agree on one world, and
apply reports a run whose journal cannot be written instead of escaping the wave loop.

The real engine (`engine/apply.execute`), the real planner, drift and executors run; the
world is a hand-built observation (tests/builders.py) whose trust hosts are an in-memory
HostPort that plays what a host step does (`simulate_apply`). The journal is the real S3
journal (`adapters/state_store.Journal`) on the moto server, and the state bucket really is
deleted mid-run.
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from flipgitops.adapters.aws_session import Clients
from flipgitops.adapters.state_store import StateStore
from flipgitops.core.drift import drift_report
from flipgitops.core.planner import plan
from flipgitops.engine.apply import EXIT_DRIFT, EXIT_FAILED, EXIT_OK, execute
from flipgitops.engine.executors import load_executors
from flipgitops.engine.planning import exit_code
from flipgitops.errors import AwsError
from flipgitops.model.actions import ActionKind
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Plan
from flipgitops.sandbox.moto_server import MotoServer
from flipgitops.ui.report import print_apply_result
from tests.builders import (
    manifest,
    observed_matching,
    with_allowlist,
    with_service,
    with_stack_stopped,
)
from tests.reliability.engineworld import ListJournal, World

REGION: Any = "eu-west-2"


@pytest.fixture(autouse=True)
def _executors() -> None:
    load_executors()


def _no_sg(o: ObservedState) -> ObservedState:
    return with_allowlist(o, exists=False, group_id=None, rules=())


# --- plan, apply and drift agree ---------------------------------------------------------------


@pytest.mark.parametrize(("what", "breaks", "says"), [
    ("security group", _no_sg, "security group flip-fl-server-nlb not found"),
    ("ECS service", lambda o: with_service(o, "fl_server", exists=False),
     "ECS service fl-server-net-1 not found"),
    ("task definition", lambda o: with_service(o, "flip_api", task_definition_exists=False),
     "the task definition of flip-api was deleted"),
])
def test_a_missing_hub_resource_is_drift_to_plan_apply_and_drift(
        what: str, breaks: Any, says: str) -> None:
    m = manifest(trusts=1)
    world = World(m, breaks(observed_matching(m)))
    p = plan(m, world.observed)
    assert p.is_empty and not p.in_sync  # nothing flipgitops can do; something to report
    assert exit_code(p) == EXIT_DRIFT
    report = drift_report(m, world.observed)
    assert not report.in_sync and any(says in f.message for f in report.findings)
    result = execute(world.make_run())
    assert result.exit_code == EXIT_DRIFT and not result.converged, result.message
    assert result.message.startswith("nothing to apply, but live state is not in sync")
    assert says in result.message
    assert world.recorded == []  # never recorded as applied while drift reports drift


def test_an_apply_that_leaves_an_advisory_behind_does_not_claim_convergence() -> None:
    m = manifest(trusts=1)
    world = World(m, with_stack_stopped(_no_sg(observed_matching(m)), "Trust_1"))
    journal = ListJournal()
    p = plan(m, world.observed)
    assert [a.kind for a in p.actions] == [ActionKind.HOST_START_STACK, ActionKind.HOST_VERIFY]
    result = execute(world.make_run(journal))
    assert world.host_runs == ["host.start_stack", "host.verify"]
    assert result.completed == ["host.start_stack:Trust_1", "host.verify:Trust_1"]
    assert result.exit_code == EXIT_DRIFT and not result.converged, result.message
    assert result.message.startswith("applied 2 action(s), but live state is not in sync")
    assert world.recorded == []
    assert journal.lines[-1]["event"] == "run.end" and journal.lines[-1]["exit_code"] == 2
    lines: list[str] = []
    print_apply_result(result, "text", lambda s="", err=False: lines.append(s))
    assert lines[-1].startswith("not in sync: applied 2 action(s)")


def test_in_sync_is_exit_0_and_recorded_once() -> None:
    m = manifest(trusts=1)
    world = World(m, with_stack_stopped(observed_matching(m), "Trust_1"))
    result = execute(world.make_run())
    assert result.exit_code == EXIT_OK and result.converged, result.message
    assert len(world.recorded) == 1
    assert exit_code(plan(m, world.observed)) == EXIT_OK
    assert drift_report(m, world.observed).in_sync


def test_an_applied_record_that_cannot_be_written_is_a_failure_not_a_traceback() -> None:
    m = manifest(trusts=1)
    world = World(m, observed_matching(m))

    def broken(_o: ObservedState, _p: Plan) -> str:
        raise AwsError("writing s3://flip-gitops-state-dev/flipgitops/applied/dev.json: "
                       "NoSuchBucket")

    run = world.make_run()
    run.record_converged = broken
    result = execute(run)
    assert result.exit_code == EXIT_FAILED and not result.converged
    assert "the applied record could not be written" in result.message
    assert "NoSuchBucket" in result.message


# --- an interrupt while observing ----------------------------------------------------------------


@pytest.mark.parametrize("busy", [False, True])
def test_a_signal_during_observation_is_an_interrupted_run_whatever_the_plan(
        busy: bool) -> None:
    m = manifest(trusts=1)
    o = observed_matching(m)
    world = World(m, with_stack_stopped(o, "Trust_1") if busy else o)
    journal = ListJournal()
    first = world.observe_and_plan

    def observe_then_sigterm() -> tuple[ObservedState, Plan]:
        world.interrupt.set(15)
        return first()

    run = world.make_run(journal)
    run.observe_and_plan = observe_then_sigterm
    result = execute(run)
    assert result.exit_code == 143 and result.interrupted and not result.converged
    assert world.host_runs == [] and world.recorded == []
    events = [line["event"] for line in journal.lines]
    assert events[0] == "run.start" and events[-1] == "run.end"
    assert journal.lines[-1]["interrupted"] is True
    assert events.count("action.not_run") == len(result.not_run) == (2 if busy else 0)


# --- the state bucket deleted mid-apply ----------------------------------------------------------


def _delete_bucket(s3: Any, bucket: str) -> None:
    for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
        s3.delete_object(Bucket=bucket, Key=obj["Key"])
    s3.delete_bucket(Bucket=bucket)


def test_the_state_bucket_deleted_mid_apply_stops_the_run_and_reports_it(
        moto: MotoServer) -> None:
    m = manifest(trusts=2)
    o = observed_matching(m)
    world = World(m, with_stack_stopped(with_stack_stopped(o, "Trust_1"), "Trust_2"))
    p = plan(m, world.observed)  # start_stack for both, then verify for both
    assert len(p.actions) >= 2, p.actions
    bucket = m.state.bucket
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto.url)
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    store = StateStore(Clients(boto3.Session(region_name=REGION)), bucket, m.state.prefix)
    journal = store.journal(m.environment, "20260101T000000Z-0badda7a")
    deleted: list[str] = []

    def delete_once(kind: str) -> None:
        if not deleted:
            deleted.append(kind)
            _delete_bucket(s3, bucket)

    world.on_host_run = delete_once

    result = execute(world.make_run(journal))

    # start_stack and verify are consecutive host waves: one host run (one boundary), so
    # both finish; the unwritable journal then ends the run instead of converging it.
    assert world.host_runs == ["host.start_stack", "host.verify"]
    assert result.exit_code == EXIT_FAILED and not result.converged
    assert sorted(result.completed) == sorted(a.id for a in p.actions)
    assert result.message.startswith("stopped: the run's journal could not be written")
    assert f"s3://{bucket}" in result.message and "NoSuchBucket" in result.message
    assert result.journal_error is not None and world.recorded == []
    out: list[tuple[str, bool]] = []
    print_apply_result(result, "text", lambda s="", err=False: out.append((s, err)))
    text = "\n".join(s for s, _ in out)
    assert "host.start_stack:Trust_1, host.start_stack:Trust_2" in text
    assert text.splitlines()[-1].startswith("error: stopped: the run's journal could not")
    data = result.to_json()
    assert data["journal_error"] and data["exit_code"] == 1
