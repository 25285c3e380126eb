"""One-off flip-api tasks, started through boto3 exactly as FLIP's scripts start them.

register-trusts.sh@03bb6813 (SSM handoff), the older CloudWatch handoff (@e38336d5) and
delete-trust.sh@05600a0d; semantics per register_trust.py@00e1b6b0 and delete_trust.py@3c9a08e0.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hubworld import (
    delete_command,
    describe,
    log_lines,
    register_command,
    run_flip_task,
    wait_stopped,
)

from flipgitops.sandbox.flip.hub import sha256_hex
from flipgitops.sandbox.flip.world import StandinHub

PARAM = "/flip/trust-kits/ephemeral/3f1c2d9e-0000-4000-8000-000000000001"
FULL_KEYS = {"trust_id", "trust_name", "trust_api_key", "trust_internal_service_key",
             "fl_kit_slot", "fl_kit_slot_number", "hub_shared"}


def kit_in(ssm: Any, name: str) -> Any:
    value = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert value["Type"] == "SecureString"
    return json.loads(value["Value"])


def param_exists(ssm: Any, name: str) -> bool:
    try:
        ssm.get_parameter(Name=name)
    except ssm.exceptions.ParameterNotFound:
        return False
    return True


def test_register_writes_flip_kit_to_ssm_and_only_the_name_to_the_log(
        hub: StandinHub, seed: Any, ecs: Any, ssm: Any, logs: Any) -> None:
    seed()
    arn = run_flip_task(ecs, register_command("Guy's and St Thomas'", code="GSTT",
                                              region="London", out=PARAM))
    wait_stopped(ecs, arn)

    [kit] = kit_in(ssm, PARAM)
    assert set(kit) == FULL_KEYS
    assert kit["trust_name"] == "Guy's and St Thomas'"
    assert (kit["fl_kit_slot"], kit["fl_kit_slot_number"]) == ("Trust_1", 1)
    # FLIP's Terraform puts these two hub-shared keys in flip-api's environment.
    assert kit["hub_shared"] == {"TRUST_API_KEY_HEADER": "Authorization", "FL_BACKEND": "nvflare"}
    row = hub.state.trust("Guy's and St Thomas'")
    assert row is not None and row.id == kit["trust_id"] and row.code == "GSTT"
    assert row.api_key_hash == sha256_hex(kit["trust_api_key"])  # only the hash is stored
    assert kit["trust_internal_service_key"] != kit["trust_api_key"]

    lines = log_lines(logs, arn)
    assert PARAM in lines
    assert not any(line.startswith(("[", "{")) for line in lines)
    joined = "\n".join(lines)
    assert kit["trust_api_key"] not in joined
    assert kit["trust_internal_service_key"] not in joined
    assert "Registered trust \"Guy's and St Thomas'\"" in joined


def test_second_registration_yields_the_metadata_only_kit(
        seed: Any, ecs: Any, ssm: Any, logs: Any) -> None:
    seed()
    first = run_flip_task(ecs, register_command("Hospital-A", code="HA", out=PARAM))
    wait_stopped(ecs, first)
    [full] = kit_in(ssm, PARAM)
    ssm.delete_parameter(Name=PARAM)

    again = run_flip_task(ecs, register_command("Hospital-A", out=PARAM))  # no --code needed
    wait_stopped(ecs, again)
    [meta] = kit_in(ssm, PARAM)
    assert "trust_api_key" not in meta and "trust_internal_service_key" not in meta
    assert set(meta) == FULL_KEYS - {"trust_api_key", "trust_internal_service_key"}
    assert (meta["trust_id"], meta["fl_kit_slot"]) == (full["trust_id"], full["fl_kit_slot"])
    assert "INFO - Trust 'Hospital-A' already registered — emitting hub-shared block only." \
        in log_lines(logs, again)


def test_the_task_stays_running_until_the_kit_exists(
        hub: StandinHub, seed: Any, ecs: Any, ssm: Any) -> None:
    seed()
    with hub.worker.paused():
        arn = run_flip_task(ecs, register_command("Hospital-A", code="HA", out=PARAM))
        assert describe(ecs, arn)["lastStatus"] == "RUNNING"
        assert not param_exists(ssm, PARAM)
    seen: list[str] = []
    while not seen or seen[-1] != "STOPPED":
        status = describe(ecs, arn)["lastStatus"]
        if status == "STOPPED":
            assert param_exists(ssm, PARAM), "STOPPED before the kit was written"
        seen.append(status)
    assert set(seen) <= {"RUNNING", "STOPPED"}
    task = describe(ecs, arn)
    assert task["stoppedReason"] == "Essential container in task exited"
    # moto reports exit code 0 whatever the process did; FLIP judges by the kit.
    assert task["containers"][0].get("exitCode") == 0


def test_delete_frees_the_slot_then_reports_not_found(
        hub: StandinHub, seed: Any, ecs: Any, logs: Any) -> None:
    seed(existing=["Hospital-A"])
    hub.state.add_dependent_rows("Hospital-A", "project_trust_intersect", 2)
    trust_id = hub.state.trust("Hospital-A").id  # type: ignore[union-attr]

    arn = run_flip_task(ecs, delete_command("Hospital-A"), started_by="delete-trust")
    wait_stopped(ecs, arn)
    result = json.loads([ln for ln in log_lines(logs, arn) if ln.startswith("{")][-1])
    assert result["status"] == "deleted"
    assert (result["trust_id"], result["name"], result["freed_fl_kit_slot"]) == (
        trust_id, "Hospital-A", "Trust_1")
    assert result["dependent_rows_deleted"]["project_trust_intersect"] == 2
    assert set(result["dependent_rows_deleted"]) == {
        "fl_job_trust", "fl_metrics", "fl_logs", "model_trust_intersect",
        "project_trust_intersect", "query_result", "trust_task", "xnat_project_status"}
    assert hub.state.trust("Hospital-A") is None
    assert next(s for s in hub.state.slots() if s.slot_name == "Trust_1").assigned_to_trust_id \
        is None

    again = run_flip_task(ecs, delete_command("Hospital-A"), started_by="delete-trust")
    wait_stopped(ecs, again)
    lines = log_lines(logs, again)
    assert json.loads(lines[-1]) == {"status": "not_found", "name": "Hospital-A"}
    assert "INFO - Trust 'Hospital-A' not found — nothing to delete." in lines


def test_require_existing_for_an_absent_trust_writes_nothing(
        hub: StandinHub, seed: Any, ecs: Any, ssm: Any, logs: Any) -> None:
    seed()
    arn = run_flip_task(ecs, register_command("Hospital-A", out=PARAM, require_existing=True))
    wait_stopped(ecs, arn)
    assert not param_exists(ssm, PARAM)
    lines = log_lines(logs, arn)
    assert PARAM not in lines
    assert any(ln.startswith("ERROR - Trust 'Hospital-A' has not been registered yet.")
               for ln in lines)
    assert hub.state.trust("Hospital-A") is None
    assert hub.state.events[-1][0] == "task" and hub.state.events[-1][2] == 1


@pytest.mark.parametrize("code", [None, "  "])
def test_a_new_trust_without_a_code_yields_an_empty_kit(
        hub: StandinHub, seed: Any, ecs: Any, ssm: Any, logs: Any, code: str | None) -> None:
    seed()
    cmd = register_command("Hospital-A", out=PARAM)
    if code is not None:
        cmd += ["--code", code]
    arn = run_flip_task(ecs, cmd)
    wait_stopped(ecs, arn)
    assert kit_in(ssm, PARAM) == []
    lines = log_lines(logs, arn)
    assert "ERROR - Failed to register trust 'Hospital-A': Trust code is required." in lines
    assert lines[-1] == PARAM
    assert hub.state.trust("Hospital-A") is None


def test_without_an_ssm_parameter_the_kit_goes_to_stdout(
        seed: Any, ecs: Any, logs: Any) -> None:
    """The older CloudWatch handoff (register-trusts.sh@e38336d5): last line starting `[`."""
    seed()
    arn = run_flip_task(ecs, register_command("Hospital-A", code="HA"))
    wait_stopped(ecs, arn)
    kit = json.loads([ln for ln in log_lines(logs, arn) if ln.startswith("[")][-1])
    assert set(kit[0]) == FULL_KEYS


def test_other_commands_are_refused(hub: StandinHub, seed: Any, ecs: Any, logs: Any) -> None:
    seed()
    for command in (["uv", "run", "python", "-m", "flip_api.scripts.drop_everything"],
                    ["python", "-m", "flip_api.scripts.register_trust", "--name", "x"],
                    ["uv", "run", "python", "-c", "print('hello')"]):
        arn = run_flip_task(ecs, command)
        assert wait_stopped(ecs, arn)["lastStatus"] == "STOPPED"
        assert log_lines(logs, arn) == ["ERROR - unknown command"]
    assert [e for e in hub.state.events if e[0] in ("register", "delete")] == []


def test_an_argument_error_is_argparse_usage(seed: Any, ecs: Any, logs: Any) -> None:
    seed()
    arn = run_flip_task(ecs, ["uv", "run", "python", "-m", "flip_api.scripts.register_trust"])
    wait_stopped(ecs, arn)
    lines = log_lines(logs, arn)
    assert lines[0].startswith("usage: register_trust.py")
    assert lines[-1] == ("register_trust.py: error: the following arguments are required: "
                         "--name")


def test_the_secret_era_image_has_no_registry_scripts(
        hub: StandinHub, seed: Any, ecs: Any, logs: Any) -> None:
    seed(era="secret")
    arn = run_flip_task(ecs, register_command("Hospital-C", code="HC", out=PARAM))
    wait_stopped(ecs, arn)
    assert log_lines(logs, arn) == [
        "/app/.venv/bin/python: No module named flip_api.scripts.register_trust"]
