"""The stand-in flip-api: FLIP's routes, bodies and authentication in both registry eras.

main.py@00e1b6b0, private_services/trust_tasks.py@160f4bf2, auth/access_manager.py@3ba224eb,
the E2 access_manager (hashes cached for the process lifetime), admin_get_trusts.py@812a7ed3.
"""

from __future__ import annotations

import json
from typing import Any

from hubworld import http, register_command, run_flip_task, wait_stopped

from flipgitops.sandbox.flip.hub import sha256_hex
from flipgitops.sandbox.flip.world import StandinHub

PARAM = "/flip/trust-kits/ephemeral/k"


def test_health_and_root_bodies_are_flips(hub: StandinHub, seed: Any) -> None:
    seed()
    assert http("GET", f"{hub.api_url}/health") == (
        200, {"status": "ok", "message": "flip is running"})
    assert http("GET", hub.api_url) == (200, {"message": "Welcome to flip"})
    assert http("GET", f"{hub.hub_url}/nope")[0] == 404


def test_nothing_answers_before_flip_api_boots(hub: StandinHub) -> None:
    assert http("GET", f"{hub.api_url}/health")[0] == 503


def test_database_era_key_works_right_after_register(
        hub: StandinHub, seed: Any, ecs: Any, ssm: Any) -> None:
    seed()
    arn = run_flip_task(ecs, register_command("Hospital-A", code="HA", out=PARAM))
    wait_stopped(ecs, arn)
    [kit] = json.loads(ssm.get_parameter(Name=PARAM, WithDecryption=True)["Parameter"]["Value"])
    key = kit["trust_api_key"]

    status, body = http("POST", f"{hub.api_url}/trust/heartbeat", {"Authorization": key})
    assert status == 200
    assert body == {"trust_id": kit["trust_id"], "trust_name": "Hospital-A",
                    "message": "Heartbeat recorded", "hub_version": "v2.3.0",
                    "aes_key_fingerprint": body["aes_key_fingerprint"]}
    assert len(body["aes_key_fingerprint"]) == 12
    assert hub.state.trust("Hospital-A").last_heartbeat is not None  # type: ignore[union-attr]
    assert http("GET", f"{hub.api_url}/tasks/pending", {"Authorization": key}) == (
        200, {"trust_id": kit["trust_id"], "trust_name": "Hospital-A", "tasks": []})

    assert http("GET", f"{hub.api_url}/tasks/pending", {"Authorization": key + "x"}) == (
        401, {"detail": "Invalid API Key."})
    assert http("GET", f"{hub.api_url}/tasks/pending") == (
        401, {"detail": "Not authenticated: API key is missing."})
    # The raw value is hashed as-is: a "Bearer " prefix is a different key.
    assert http("GET", f"{hub.api_url}/tasks/pending", {"Authorization": f"Bearer {key}"})[0] \
        == 401


def test_the_header_is_flip_apis_setting(hub: StandinHub, seed: Any) -> None:
    from hubworld import make_manifest
    _, result = seed(manifest=make_manifest(header="X-Trust-API-Key"), existing=["Hospital-A"])
    key = result.trust_keys["Hospital-A"]
    assert http("GET", f"{hub.api_url}/tasks/pending", {"X-Trust-API-Key": key})[0] == 200
    assert http("GET", f"{hub.api_url}/tasks/pending", {"Authorization": key})[0] == 401


def test_tasks_are_handed_out_once_and_results_recorded(hub: StandinHub, seed: Any) -> None:
    _, result = seed(existing=["Hospital-A", "Hospital-B"])
    a, b = ({"Authorization": result.trust_keys[n]} for n in ("Hospital-A", "Hospital-B"))
    task_id = hub.state.enqueue_task("Hospital-A", "COHORT_QUERY", "ciphertext")
    status, body = http("GET", f"{hub.api_url}/tasks/pending", a)
    assert status == 200 and [t["id"] for t in body["tasks"]] == [task_id]
    assert http("GET", f"{hub.api_url}/tasks/pending", a)[1]["tasks"] == []
    url = f"{hub.api_url}/tasks/{task_id}/result"
    assert http("POST", url, b, {"success": True, "result": {}})[0] == 403
    assert http("POST", url, a, {"success": True, "result": {"n": 3}}) == (
        200, {"trust_id": result.trust_ids["Hospital-A"], "trust_name": "Hospital-A",
              "message": f"Task {task_id} result recorded"})
    assert http("POST", url, a, {"success": True, "result": {}})[0] == 409
    assert http("POST", f"{hub.api_url}/tasks/nope/result", a, {"success": True})[0] == 404


def test_admin_trusts_needs_an_admin_bearer_token(hub: StandinHub, seed: Any) -> None:
    _, result = seed(existing=["Hospital-A"])
    hub.state.add_dependent_rows("Hospital-A", "project_trust_intersect", 3)
    url = f"{hub.api_url}/admin/trusts"
    status, body = http("GET", url, {"Authorization": f"Bearer {result.admin_token}"})
    assert status == 200
    assert [(t["name"], t["code"], t["region"], t["project_count"]) for t in body] == [
        ("Hospital-A", "HA", "London", 3)]
    assert set(body[0]) == {"id", "name", "code", "region", "created_at", "disabled_at",
                            "last_heartbeat", "project_count"}
    assert body[0]["created_at"].endswith("Z") and body[0]["last_heartbeat"] is None
    assert http("GET", url)[0] == 401
    assert http("GET", url, {"Authorization": "Bearer not-a-token"})[0] == 401
    hub.state.add_token("researcher", admin=False)
    assert http("GET", url, {"Authorization": "Bearer researcher"}) == (
        403, {"detail": "Admin permission required to list trusts."})


def test_secret_era_needs_a_redeploy_to_see_a_new_hash(
        hub: StandinHub, seed: Any, ecs: Any, secretsmanager: Any) -> None:
    _, result = seed(era="secret", existing=["Hospital-A"])
    old = {"Authorization": result.trust_keys["Hospital-A"]}
    status, body = http("GET", f"{hub.api_url}/tasks/pending", old)
    assert status == 200 and body["trust_name"] == "Hospital-A"

    # Add Hospital-B's hash to FLIP_API (and the rotated key of Hospital-A), no redeploy.
    new_key, rotated = "new-key-for-hospital-b", "rotated-key-for-hospital-a"
    doc = json.loads(secretsmanager.get_secret_value(SecretId="FLIP_API")["SecretString"])
    assert isinstance(doc["trust_api_key_hashes"], str)  # FLIP's Terraform jsonencodes it
    doc["trust_api_key_hashes"] = json.dumps({"Hospital-A": sha256_hex(rotated),
                                              "Hospital-B": sha256_hex(new_key)})
    secretsmanager.put_secret_value(SecretId="FLIP_API", SecretString=json.dumps(doc))
    hub.worker.settle()
    new = {"Authorization": new_key}
    assert http("GET", f"{hub.api_url}/tasks/pending", new) == (
        401, {"detail": "Invalid API Key."})
    assert http("GET", f"{hub.api_url}/tasks/pending", old)[0] == 200  # still the old cache

    ecs.update_service(cluster="flip-cluster", service="flip-api", forceNewDeployment=True)
    hub.worker.poke()
    assert hub.state.wait_for(lambda: [e[0] for e in hub.state.events].count("boot") == 2)
    status, body = http("GET", f"{hub.api_url}/tasks/pending", new)
    assert (status, body["trust_name"]) == (200, "Hospital-B")
    assert http("GET", f"{hub.api_url}/tasks/pending", old)[0] == 401  # one hash per trust


def test_secret_era_accepts_the_hashes_as_an_object(
        hub: StandinHub, seed: Any, ecs: Any, secretsmanager: Any) -> None:
    seed(era="secret")
    doc = json.loads(secretsmanager.get_secret_value(SecretId="FLIP_API")["SecretString"])
    doc["trust_api_key_hashes"] = {"Hospital-A": sha256_hex("k1")}
    secretsmanager.put_secret_value(SecretId="FLIP_API", SecretString=json.dumps(doc))
    ecs.update_service(cluster="flip-cluster", service="flip-api", forceNewDeployment=True)
    hub.worker.poke()
    assert hub.state.wait_for(lambda: [e[0] for e in hub.state.events].count("boot") == 2)
    assert http("GET", f"{hub.api_url}/tasks/pending", {"Authorization": "k1"})[0] == 200


def test_egress_probe_plays_the_internets_view(hub: StandinHub) -> None:
    url = hub.endpoints["egress_probe"].format(trust="Hospital-A")
    assert http("GET", url)[0] == 404
    hub.set_egress("Hospital-A", "203.0.113.10")
    assert http("GET", url) == (200, "203.0.113.10")
