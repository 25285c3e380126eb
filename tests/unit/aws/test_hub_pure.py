"""Pure parts of the hub adapters and executors: parsing what FLIP and other hands wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flipgitops.adapters.aws_session import Clients, must
from flipgitops.adapters.ecs import judge_stability, parse_trust_names, with_trust_names
from flipgitops.adapters.endpoints import EndpointsError, parse_endpoints
from flipgitops.adapters.hub_secret import encode_trust_hashes, trust_hashes
from flipgitops.adapters.image_registry import split_image
from flipgitops.adapters.kit_listing import slices
from flipgitops.adapters.schema_reset import evidence, is_reset_of, reset_command
from flipgitops.adapters.state_store import shown
from flipgitops.adapters.terraform import missing_inputs, root_variables
from flipgitops.engine.hub_executors import delete_status, parse_ephemeral
from flipgitops.errors import AdapterError, AwsError
from flipgitops.model.flip import slot_number

# --- FLIPGITOPS_ENDPOINTS -----------------------------------------------------------------


def test_endpoints_unset_is_production() -> None:
    ep = parse_endpoints(None)
    assert ep.hub_url("app.flip.org", "/api/health") == "https://app.flip.org/api/health"
    assert ep.registry_url("ghcr.io") == "https://ghcr.io"


def test_endpoints_override_hub_and_registries() -> None:
    ep = parse_endpoints(json.dumps({"hub": "http://127.0.0.1:8080/",
                                     "registries": {"ghcr.io": "http://127.0.0.1:5000"},
                                     "resolve": {"fl.x:8002": "127.0.0.1:9"}}))
    assert ep.hub_url("app.flip.org", "/api/health") == "http://127.0.0.1:8080/api/health"
    assert ep.registry_url("ghcr.io") == "http://127.0.0.1:5000"
    assert ep.resolve == {"fl.x:8002": "127.0.0.1:9"}


@pytest.mark.parametrize(("text", "says"), [
    ("{", "not valid JSON"),
    ("[]", "must be a JSON object"),
    ('{"hub": "ftp://x"}', "hub is not an http(s) URL"),
    ('{"hub": 5}', "hub must be a URL string"),
    ('{"registries": {"ghcr.io": ""}}', "registries.ghcr.io must be a non-empty string"),
    ('{"hubb": "http://x"}', "unknown keys 'hubb'"),
])
def test_malformed_endpoints_are_clear_errors(text: str, says: str) -> None:
    with pytest.raises(EndpointsError, match="FLIPGITOPS_ENDPOINTS") as err:
        parse_endpoints(text)
    assert says in str(err.value)


# --- bad AWS settings on this machine ----------------------------------------------------


def test_nonexistent_profile_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")
    with pytest.raises(AwsError, match="AWS profile 'no-such-profile' does not exist"):
        Clients(region="eu-west-2")


def test_malformed_config_file_is_named(monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Path) -> None:
    bad = tmp_path / "config"
    bad.write_text("[default\nregion = eu-west-2\n")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(bad))
    with pytest.raises(AwsError, match="cannot be parsed") as err:
        Clients(region="eu-west-2")
    assert str(bad) in str(err.value)


def test_invalid_endpoint_url_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "not a url")
    with pytest.raises(AwsError, match="AWS_ENDPOINT_URL='not a url' is not a valid"):
        must(lambda: Clients(region="eu-west-2").sts.get_caller_identity(), doing="testing")


def test_unreachable_endpoint_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    clients = Clients(region="eu-west-2", max_attempts=1)
    with pytest.raises(AdapterError,
                       match=r"could not reach the AWS endpoint 'http://127\.0\.0\.1:9"):
        must(lambda: clients.sts.get_caller_identity(), doing="identifying the account")


# --- FLIP_API's registry ------------------------------------------------------------------


def test_trust_hashes_keep_their_stored_form() -> None:
    hashes, form, problem = trust_hashes({"trust_api_key_hashes": '{"A": "1"}'})
    assert (hashes, form, problem) == ({"A": "1"}, "string", None)
    assert encode_trust_hashes({"A": "1"}, "string") == '{"A": "1"}'
    assert encode_trust_hashes({"A": "1"}, "object") == {"A": "1"}
    assert encode_trust_hashes({"A": "1"}, None) == '{"A": "1"}'  # Terraform's form
    assert trust_hashes({}) == (None, None, None)
    assert trust_hashes({"trust_api_key_hashes": ""})[2] is not None


# --- ECS ----------------------------------------------------------------------------------


def test_trust_names_parse_like_pydantic_settings() -> None:
    assert parse_trust_names('["a", "b"]') == (("a", "b"), False)
    assert parse_trust_names(None) == (None, False)
    assert parse_trust_names("a,b") == (None, True)
    assert parse_trust_names("[1]") == (None, True)


def test_only_trust_names_change_in_the_revision() -> None:
    td = {"family": "flip-api", "containerDefinitions": [
        {"name": "flip-api", "image": "x:1", "environment": [
            {"name": "A", "value": "1"}, {"name": "TRUST_NAMES", "value": '["a"]'}]},
        {"name": "sidecar", "environment": [{"name": "TRUST_NAMES", "value": "keep"}]}]}
    new = with_trust_names(td, "flip-api", ["a", "b"])
    api, side = new["containerDefinitions"]
    assert api["environment"] == [{"name": "A", "value": "1"},
                                  {"name": "TRUST_NAMES", "value": '["a", "b"]'}]
    assert side == td["containerDefinitions"][1] and api["image"] == "x:1"


def _svc(deployments: int = 1, desired: int = 1, rollout: str = "COMPLETED") -> dict[str, object]:
    return {"desiredCount": desired, "taskDefinition": "td:2", "deployments": [
        {"id": f"ecs-svc/{i}", "status": "PRIMARY" if i == 0 else "ACTIVE",
         "taskDefinition": "td:2", "rolloutState": rollout} for i in range(deployments)]}


def test_stability_is_judged_on_the_tasks() -> None:
    running = [{"lastStatus": "RUNNING", "taskDefinitionArn": "td:2"}]
    assert judge_stability(_svc(), running).stable
    assert not judge_stability(_svc(), []).stable
    assert not judge_stability(_svc(), [{"lastStatus": "RUNNING",
                                         "taskDefinitionArn": "td:1"}]).stable
    assert not judge_stability(_svc(deployments=2), running).stable
    assert not judge_stability(_svc(rollout="FAILED"), running).stable
    assert judge_stability(_svc(desired=0), []).stable


# --- one-off task results -----------------------------------------------------------------


def test_ephemeral_kit_as_register_trusts_reads_it() -> None:
    assert parse_ephemeral(None) is None
    assert parse_ephemeral("None") == [] and parse_ephemeral("") == []
    assert parse_ephemeral("[]") == []
    kits = parse_ephemeral(json.dumps([{"trust_id": "1", "trust_name": "T"}]))
    assert isinstance(kits, list) and not kits[0].has_credentials
    assert parse_ephemeral("{") == "is not JSON"
    assert parse_ephemeral('[{"trust_id": 1, "trust_name": "T"}]') == "has malformed trust_id"


def test_delete_status_is_the_last_json_object_line() -> None:
    lines = ["INFO - x", '{"status": "deleted", "name": "T"}', "INFO - {not json",
             '{"status": "not_found", "name": "T"}', "WARNING - done"]
    assert delete_status(lines) == {"status": "not_found", "name": "T"}
    assert delete_status(["Traceback", "boom"]) is None


def test_schema_reset_evidence_is_the_scripts_line_for_this_generation() -> None:
    line = json.dumps({"flipgitops": "schema-reset", "status": "reset", "generation": 3})
    assert evidence(["INFO - start", line], 3)
    assert not evidence([line], 2)
    assert not evidence(["exit 0"], 3)
    assert is_reset_of(reset_command(3), 3) and not is_reset_of(reset_command(3), 4)
    assert reset_command(3)[:5] == ["uv", "run", "python", "-c", reset_command(3)[4]]
    assert "DROP SCHEMA public CASCADE;" in reset_command(3)[4]


# --- FL kits, images, Terraform, advice --------------------------------------------------


def test_nvflare_slices_per_slot_directory() -> None:
    base = "fl-flare-participant-kits/2025-06-01/net-1/services/"
    objects = [{"Key": base + k, "ETag": '"e"', "Size": 1}
               for k in ("Trust_1/startup/fed_client.json", "Trust_2/startup/client.key",
                         "Trust_2/local/resources.json.default")]
    found, shared = slices("nvflare", "2025-06-01", objects, [])
    assert sorted(found) == ["Trust_1", "Trust_2"] and shared is None
    assert found["Trust_2"].keys == ("net-1/services/Trust_2/local/resources.json.default",
                                     "net-1/services/Trust_2/startup/client.key")
    assert slot_number("Trust_007") == 7 and slot_number("Trust_K8s") == 10_000


def test_image_references_split_like_a_registry_sees_them() -> None:
    assert split_image("ghcr.io/londonaicentre/flip-api:v2") == (
        "ghcr.io", "londonaicentre/flip-api", "v2")
    assert split_image("localhost:5000/x:1") == ("localhost:5000", "x", "1")
    assert split_image("nginx:1") == ("registry-1.docker.io", "library/nginx", "1")


def test_root_variables_without_defaults(tmp_path: Path) -> None:
    (tmp_path / "variables.tf").write_text('''
variable "A" {
  type = string
  # default = "commented out"
}
variable "B" {
  type    = list(string)
  default = []
}
variable "C" {
  description = "a { brace in a string"
  validation {
    condition     = var.C != ""
    error_message = "default = inside a block"
  }
}
''')
    found = root_variables(tmp_path)
    assert {n: v.has_default for n, v in found.items()} == {"A": False, "B": True, "C": False}
    assert missing_inputs(found, {"C": "x"}, {}) == ["A"]
    assert missing_inputs(found, {}, {"TF_VAR_A": "1", "TF_VAR_C": "2"}) == []


def test_untrusted_text_is_shown_on_one_bounded_quoted_line() -> None:
    assert shown("plain-token_1", quote=False) == "plain-token_1"
    hostile = shown("a\nb; rm -rf / #" + "x" * 500)
    assert "\n" not in hostile and hostile.startswith("'a\\nb; rm") and len(hostile) < 160
