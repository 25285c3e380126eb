"""apply end to end: the real CLI against a seeded hub on moto and local trust hosts run by
real ansible-runner, through a trust's whole life: onboard, move IP, rotate key, lockstep
upgrade, decommission. After every step a fresh `plan` must find nothing to do.

One test walks the whole life on purpose: each step starts from the converged result of the
previous one (as in production), and onboarding alone costs a minute of Ansible runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import builders
import pytest
from applyworld import World, trust_doc

from flipgitops.adapters.aws_actions import AwsActions
from flipgitops.engine.executors import ApplyContext, executor_for, terraform_guard
from flipgitops.model.plan import Action, ActionKind
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow


def sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def containers(w: World, trust: str) -> dict[str, dict[str, Any]]:
    """The stand-in container CLI's record (``.standin/<project>.json``): service -> container."""
    out: dict[str, dict[str, Any]] = {}
    for record in sorted(w.flip_root(trust).rglob(".standin/*.json")):
        out.update(json.loads(record.read_text()).get("containers", {}))
    return out


def running_tags(w: World, trust: str) -> dict[str, str]:
    tags = {}
    for service, c in containers(w, trust).items():
        state, image = str(c.get("state", "")), str(c.get("image", ""))
        if state == "running":
            tags[service] = image.rsplit(":", 1)[-1]
    return tags


def assert_converged(w: World, *plan_args: str) -> None:
    again = w.plan(*plan_args)
    assert again.code == 0, f"plan after apply is not empty:\n{again.text}"


def assert_keys_consistent(w: World, trust: str) -> str:
    """Host key hash == hub hash == escrowed key hash; returns the hash."""
    hub = w.secret()["trust_api_key_hashes"][trust]
    host_key = w.host_env(trust)["TRUST_API_KEY"]
    escrow = w.escrowed(trust)
    assert escrow is not None, f"no escrowed key for {trust}"
    assert sha(host_key) == hub, f"{trust}: host key does not match the hub hash"
    assert sha(escrow[1]) == hub, f"{trust}: escrowed key does not match the hub hash"
    return hub


def test_trust_lifecycle_converges_at_every_step(moto: MotoServer, tmp_path: Path) -> None:
    w = World(tmp_path)
    w.seed_hub(trusts=False)
    aes = w.secret()["aes_key"]

    # 1. onboard two trusts -------------------------------------------------------------
    run = w.apply()
    assert run.code == 0, run.text
    assert "[wave 1/" in run.out and "converged" in run.out
    assert_converged(w)
    assert w.rules() == [("203.0.113.11/32", "flipgitops:Trust_1"),
                         ("203.0.113.12/32", "flipgitops:Trust_2")]
    secret = w.secret()
    assert secret["trust_names"] == ["Trust_1", "Trust_2"]
    assert secret["aes_key"] == aes, "the hub's AES key must never be rewritten"
    first_hash = {t: assert_keys_consistent(w, t) for t in ("Trust_1", "Trust_2")}
    for t in ("Trust_1", "Trust_2"):
        env = w.host_env(t)
        assert env["TRUST_NAME"] == t
        assert env["AES_KEY_BASE64"] == aes
        assert env["CENTRAL_HUB_API_URL"] == "https://dev.flip.example.org/api"
        assert (w.flip_root(t) / "trust" / ".env").stat().st_mode & 0o777 == 0o600
        assert running_tags(w, t), f"{t}: no running containers recorded"
    applied = json.loads(w.state_objects()["flipgitops/applied/dev.json"])
    assert applied["commit"] == w.head()
    events = w.journal_events()
    starts = [e["action"] for e in events if e["event"] == "action.start"]
    finishes = [e["action"] for e in events if e["event"] == "action.finish"]
    assert starts and sorted(starts) == sorted(finishes)
    assert starts.index("credentials.escrow:Trust_1") < starts.index("hub_secret.update")
    ends = [e for e in events if e["event"] == "run.end"]
    assert len(ends) == 1 and ends[0]["converged"] is True and ends[0]["exit_code"] == 0
    assert w.lock() is None, "the lock must be released after a run"

    # 2. change one trust's IP: only its rule is replaced ------------------------------
    w.trust("Trust_2")["public_ip"] = "203.0.113.99"
    w.save("move Trust_2")
    run = w.apply()
    assert run.code == 0, run.text
    assert_converged(w)
    assert w.rules() == [("203.0.113.11/32", "flipgitops:Trust_1"),
                         ("203.0.113.99/32", "flipgitops:Trust_2")]

    # 3. rotate Trust_1's key ------------------------------------------------------------
    w.trust("Trust_1")["credentials_generation"] = 2
    w.save("rotate Trust_1")
    run = w.apply()
    assert run.code == 0, run.text
    assert_converged(w)
    new_hash = assert_keys_consistent(w, "Trust_1")
    assert new_hash != first_hash["Trust_1"]
    secret = w.secret()
    assert "Trust_1" not in (secret.get("trust_api_key_hashes_previous") or {}), \
        "the previous key hash must be dropped once the host has the new key"
    assert secret["flipgitops_credentials_generations"]["Trust_1"] == 2
    assert w.escrowed("Trust_1") is not None and w.escrowed("Trust_1")[0] == 2  # type: ignore[index]
    assert assert_keys_consistent(w, "Trust_2") == first_hash["Trust_2"], "Trust_2 untouched"

    # 4. lockstep image upgrade ----------------------------------------------------------
    w.doc["hub"]["images"].update(hub_tag="v2.4.0", fl_tag="v2.4.0")
    w.save("upgrade to v2.4.0")
    blocked = w.apply()
    assert blocked.code == 3, f"FL upgrade without --fl-quiesced must be blocked:\n{blocked.text}"
    assert "FG007" in blocked.text
    assert set(w.service_tags().values()) == {"v2.3.0"}, "a blocked apply changed the hub"
    run = w.apply("--fl-quiesced")
    assert run.code == 0, run.text
    assert_converged(w)
    assert w.service_tags() == {"flip-api": "v2.4.0", "fl-api-net-1": "v2.4.0",
                                "fl-server-net-1": "v2.4.0"}
    for t in ("Trust_1", "Trust_2"):
        tags = running_tags(w, t)
        assert tags and set(tags.values()) == {"v2.4.0"}, f"{t} containers: {tags}"
        assert w.host_env(t)["DOCKER_TAG"] == "v2.4.0"
        assert w.host_env(t)["DOCKER_FL_TAG"] == "v2.4.0"

    # 5. decommission Trust_2 -------------------------------------------------------------
    w.trust("Trust_2")["state"] = "decommissioned"
    w.save("decommission Trust_2")
    run = w.apply()
    assert run.code == 0, run.text
    assert_converged(w)
    assert w.rules() == [("203.0.113.11/32", "flipgitops:Trust_1")]
    secret = w.secret()
    assert secret["trust_names"] == ["Trust_1"]
    assert "Trust_2" not in secret["trust_api_key_hashes"]
    assert running_tags(w, "Trust_2") == {}, (
        "Trust_2's stack must be stopped (known cause: engine/observe.py gather_host_facts "
        "skips decommissioned trusts, so the planner never sees the running stack)")
    assert running_tags(w, "Trust_1"), "Trust_1 must keep running"
    assert w.lock() is None


def test_json_format_reports_the_run(moto: MotoServer, tmp_path: Path) -> None:
    w = World(tmp_path, trusts=("Trust_1",))
    w.seed_hub(trusts=False)
    run = w.apply("--format", "json")
    assert run.code == 0, run.text
    report = json.loads(run.out)
    assert report["format_version"] == "1"
    assert report["converged"] is True and report["exit_code"] == 0
    assert report["commit"] == w.head()
    assert "credentials.escrow:Trust_1" in report["completed"]
    assert report["failed"] == [] and report["remaining"] == []
    # progress lines go to stderr so stdout stays one JSON document
    assert "[wave 1/" in run.err


# --- terraform-owned allowlist -------------------------------------------------------------

TF_FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "terraform" / "flip_root"
needs_terraform = pytest.mark.skipif(shutil.which("terraform") is None,
                                     reason="terraform binary not on PATH")


def tf_rule(ip: str) -> tuple[str, str]:
    """A rule as the hub's Terraform writes it (`local_trust_fl_server_nlb`)."""
    return f"{ip}/32", f"FL Server/Admin NLB from on-prem Trust ({ip})"


def terraform_world(w: World, moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand the allowlist to the stand-in root (S3 backend on moto with `use_lockfile`).

    The root's provisioners write the rules into the security group named by
    ``TF_VAR_fl_server_security_group`` with ``python3`` and boto3, so this interpreter goes
    first on PATH.
    """
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TF_VAR_fl_server_security_group", "flip-fl-server-nlb")
    shutil.copytree(TF_FIXTURE, w.tmp_path / "flip_root")
    w.clients.s3.create_bucket(Bucket="flip-tfstate-dev", CreateBucketConfiguration={
        "LocationConstraint": "eu-west-2"})  # type: ignore[typeddict-item]
    w.doc["hub"]["fl_server"] = {"allowlist": "terraform"}
    w.doc["hub"]["terraform"] = {"dir": "../../flip_root", "backend_config": {
        "bucket": "flip-tfstate-dev", "key": "flip/terraform.tfstate", "region": "eu-west-2",
        "use_lockfile": "true", "endpoints": f'{{s3="{moto.url}"}}', "use_path_style": "true",
        "skip_credentials_validation": "true", "skip_requesting_account_id": "true",
        "skip_metadata_api_check": "true", "skip_region_validation": "true"}}
    w.save("terraform allowlist")


def tf_state(w: World) -> dict[str, Any]:
    state: dict[str, Any] = json.loads(w.clients.s3.get_object(
        Bucket="flip-tfstate-dev", Key="flip/terraform.tfstate")["Body"].read())
    return state


@needs_terraform
def test_terraform_allowlist_executor_runs_the_real_root(
        moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """terraform.apply renders FLIP's variables, plans, guards the plan JSON and applies it
    (the stand-in root's state lands in the S3 backend on moto); a dry run only plans."""
    w = World(tmp_path, trusts=("Trust_1", "Trust_2"), tre=True)
    w.seed_hub(trusts=False)
    terraform_world(w, moto, monkeypatch)
    manifest = w.manifest()
    action = Action(id="terraform.apply", kind=ActionKind.TERRAFORM_APPLY, target="flip_root",
                    params={"local_trust_public_ips": ["203.0.113.11", "203.0.113.12"],
                            "docker_image_tag": "v2.3.0", "flip_fl_image_tag": "v2.3.0",
                            "environment": "dev"})

    def ctx(dry_run: bool) -> ApplyContext:
        return ApplyContext(manifest=manifest, manifest_dir=w.path.parent,
                            aws=AwsActions(manifest, w.clients), echo=lambda *a, **k: None,
                            dry_run=dry_run)

    run = executor_for(ActionKind.TERRAFORM_APPLY).run
    dry = run(ctx(True), [action])["terraform.apply"]
    assert dry.ok and dry.message.startswith("terraform plan only"), dry
    assert "flip/terraform.tfstate" not in {
        o["Key"] for o in w.clients.s3.list_objects_v2(Bucket="flip-tfstate-dev")
        .get("Contents", [])}, "a dry run must not write Terraform state"
    assert w.rules() == [], "a dry run must not touch the security group"

    done = run(ctx(False), [action])["terraform.apply"]
    assert done.ok and done.changed, done
    assert 'local_trust_fl_server_nlb["203.0.113.12"]' in done.message
    assert tf_state(w)["outputs"]["fl_server_allowlist"]["value"] == [
        "203.0.113.11/32", "203.0.113.12/32"]
    assert w.rules() == [tf_rule("203.0.113.11"), tf_rule("203.0.113.12")]
    again = run(ctx(False), [action])["terraform.apply"]
    assert again.ok and not again.changed, again
    assert w.rules() == [tf_rule("203.0.113.11"), tf_rule("203.0.113.12")]


@needs_terraform
def test_trust_lifecycle_converges_with_a_terraform_allowlist(
        moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same life with `fl_server.allowlist: terraform`: every allowlist change goes through
    the hub's Terraform (real binary, state in S3 on moto) and `observe` sees the rules it
    wrote, so a fresh `plan` after each step finds nothing to do.

    Trust_1 has a host (real ansible-runner); Trust_2 is a hub-side-only TRE trust, which keeps
    the Ansible cost of this second walk down without losing any allowlist case.
    """
    w = World(tmp_path, trusts=("Trust_1", "Trust_2"))
    w.doc["trusts"][1] = trust_doc(tmp_path, "Trust_2", tre=True)
    w.seed_hub(trusts=False)
    terraform_world(w, moto, monkeypatch)
    outputs: list[str] = []
    keys: set[str] = set()

    def apply(*args: str) -> Any:
        done = w.apply(*args)
        outputs.append(done.text)
        keys.update(e[1] for t in ("Trust_1", "Trust_2") if (e := w.escrowed(t)) is not None)
        return done

    # 1. onboard both: one terraform apply writes both rules ---------------------------
    run = apply()
    assert run.code == 0, run.text
    assert "terraform.apply" in run.text
    assert_converged(w)
    assert w.rules() == [tf_rule("203.0.113.11"), tf_rule("203.0.113.12")]
    assert w.secret()["trust_names"] == ["Trust_1", "Trust_2"]
    assert_keys_consistent(w, "Trust_1")
    assert running_tags(w, "Trust_1"), "Trust_1: no running containers recorded"
    serial = tf_state(w)["serial"]

    # 2. move Trust_2: Terraform replaces exactly its rule ------------------------------
    w.trust("Trust_2")["public_ip"] = "203.0.113.99"
    w.save("move Trust_2")
    run = apply()
    assert run.code == 0, run.text
    assert_converged(w)
    assert w.rules() == [tf_rule("203.0.113.11"), tf_rule("203.0.113.99")]
    assert tf_state(w)["outputs"]["fl_server_allowlist"]["value"] == [
        "203.0.113.11/32", "203.0.113.99/32"]
    serial = tf_state(w)["serial"]

    # 3. rotate Trust_1's key: Terraform is not run -----------------------------------
    before = assert_keys_consistent(w, "Trust_1")
    w.trust("Trust_1")["credentials_generation"] = 2
    w.save("rotate Trust_1")
    run = apply()
    assert run.code == 0, run.text
    assert_converged(w)
    assert assert_keys_consistent(w, "Trust_1") != before
    assert tf_state(w)["serial"] == serial, "a key rotation must not run Terraform"

    # 4. upgrade in lockstep: ECS deploys, then Terraform's image variables follow ------
    w.doc["hub"]["images"].update(hub_tag="v2.4.0", fl_tag="v2.4.0")
    w.save("upgrade to v2.4.0")
    run = apply("--fl-quiesced")
    assert run.code == 0, run.text
    assert_converged(w)
    assert set(w.service_tags().values()) == {"v2.4.0"}
    assert set(running_tags(w, "Trust_1").values()) == {"v2.4.0"}
    tf_out = tf_state(w)["outputs"]
    assert (tf_out["docker_image_tag"]["value"], tf_out["flip_fl_image_tag"]["value"]) == (
        "v2.4.0", "v2.4.0"), "Terraform must not be left rendering the old tags"
    assert w.rules() == [tf_rule("203.0.113.11"), tf_rule("203.0.113.99")]

    # 5. decommission Trust_1: stack stopped first, then Terraform drops its rule -------
    w.trust("Trust_1")["state"] = "decommissioned"
    w.save("decommission Trust_1")
    run = apply()
    assert run.code == 0, run.text
    assert_converged(w)
    assert w.rules() == [tf_rule("203.0.113.99")]
    record = json.loads(w.state_objects()["flipgitops/allowlist/dev.json"])
    assert record["owners"] == {"203.0.113.99/32": "Trust_2"}
    assert w.secret()["trust_names"] == ["Trust_2"]
    assert running_tags(w, "Trust_1") == {}
    events = w.journal_events()
    last_run = events[max(i for i, e in enumerate(events) if e["event"] == "run.start"):]
    starts = [e["action"] for e in last_run if e["event"] == "action.start"]
    assert starts.index("host.stop_stack:Trust_1") < starts.index("terraform.apply")
    assert w.lock() is None

    # No minted key in any output, Terraform file (tfvars, .terraform) or S3 object.
    assert len(keys) == 3, "Trust_1 generations 1 and 2, Trust_2 generation 1"
    places = {f"apply output {i}": text for i, text in enumerate(outputs)}
    places.update({f"s3 {k}": v for k, v in w.state_objects().items()})
    places["terraform state"] = json.dumps(tf_state(w))
    places.update({str(p): p.read_text(errors="replace")
                   for p in (tmp_path / "flip_root").rglob("*") if p.is_file()})
    for key in keys:
        assert not [where for where, text in places.items() if key in text]


def test_terraform_guard_refuses_protected_deletes() -> None:
    """FG008 in every environment (overridable), FG002 on a prod database (never)."""
    replace_db = {"format_version": "1.2", "resource_changes": [
        {"address": "aws_db_instance.flip", "type": "aws_db_instance", "name": "flip",
         "change": {"actions": ["delete", "create"], "before": {}, "after": {}}},
        {"address": "terraform_data.x", "type": "terraform_data", "name": "x",
         "change": {"actions": ["update"]}}]}
    dev, prod = builders.manifest(environment="dev"), builders.manifest(environment="prod")
    assert any("FG008" in p for p in terraform_guard(dev, frozenset())(replace_db))
    assert terraform_guard(dev, frozenset({"FG008"}))(replace_db) == []
    prod_problems = terraform_guard(prod, frozenset({"FG008"}))(replace_db)
    assert prod_problems and all("FG002" in p for p in prod_problems)
    harmless = {"format_version": "1.2", "resource_changes": replace_db["resource_changes"][1:]}
    assert terraform_guard(prod, frozenset())(harmless) == []


def test_terraform_guard_refuses_rolling_the_fl_server_unless_quiesced() -> None:
    """FG007 on the Terraform plan: an allowlist run whose plan would also register a new
    fl-server task definition (its image variable moved) must not restart FL mid-training."""
    def change(address: str, actions: list[str]) -> dict[str, object]:
        rtype, name = address.split(".", 1)
        return {"address": address, "type": rtype, "name": name, "change": {"actions": actions}}

    rolls = {"format_version": "1.2", "resource_changes": [
        change("aws_ecs_task_definition.fl_server_net_1", ["delete", "create"]),
        change("aws_ecs_service.fl_api_net_1[0]", ["update"]),
        change("aws_ecs_service.flip_api[0]", ["update"]),
        change("aws_ecs_service.fl_server_net_1[0]", ["no-op"]),
        change('aws_security_group_rule.local_trust_fl_server_nlb["203.0.113.9"]', ["create"])]}
    dev = builders.manifest(environment="dev")
    problems = terraform_guard(dev, frozenset())(rolls)
    assert [p.split(":")[0] for p in problems] == ["FG007", "FG007"]
    assert "aws_ecs_service.fl_api_net_1[0]" in problems[0]
    assert "aws_ecs_task_definition.fl_server_net_1" in problems[1]
    assert terraform_guard(dev, frozenset(), fl_quiesced=True)(rolls) == []
