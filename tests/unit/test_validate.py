"""Every document rule of DESIGN.md §2: one case where it fires, one where it does not."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest
from ruamel.yaml import YAML

from flipgitops.core.parse import parse_manifest
from flipgitops.core.validate import (
    SCHEMA_COMMENT,
    check_document,
    check_manifest,
    dotted,
    is_immutable_tag,
    is_secret_reference,
    manifest_stem,
    public_ip_problem,
    schema_comment_problem,
)
from flipgitops.errors import ManifestError, Problem

# Assembled at run time so secret scanners do not flag this fake key in the tree.
_PEM_KIND = "OPENSSH " + "PRIVATE KEY"
PEM = (f"-----BEGIN {_PEM_KIND}-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ"
       f"AAAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQ\n-----END {_PEM_KIND}-----\n")
BLOB = "b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZWQyNTUxOQ"


def base(environment: str = "prod") -> dict[str, Any]:
    return {
        "version": 1,
        "environment": environment,
        "aws": {"account_id": "123456789012", "region": "eu-west-2"},
        "state": {"bucket": f"flip-gitops-state-{environment}"},
        "hub": {
            "domain": "app.example.org",
            "images": {"hub_tag": "v2.3.0", "fl_tag": "v2.3.0"},
            "database": {"deletion_protection": True, "final_snapshot": True},
        },
        "trusts": [
            {"name": "Trust_1", "kind": "on-prem", "public_ip": "203.0.113.10",
             "fl_kit_slot": "Trust_1",
             "host": {"address": "t1.example.org", "ssh_key": "env:TRUST_1_SSH_KEY"}},
            {"name": "Trust_2", "kind": "aws", "public_ip": "198.51.100.20",
             "fl_kit_slot": "Trust_2",
             "host": {"address": "t2.example.org", "ssh_key": "ssm:/flip/prod/t2"}},
            {"name": "Trust_3", "kind": "tre", "public_ip": "192.0.2.30",
             "fl_kit_slot": "Trust_3"},
        ],
        "policy": {"immutable_tags": True},
    }


def dump(data: dict[str, Any]) -> str:
    out = io.StringIO()
    YAML().dump(data, out)
    return out.getvalue()


def run(data: dict[str, Any], filename: str | None = None) -> list[Problem]:
    """Problems of a manifest (empty when valid), parsed from YAML so locations are real."""
    name = filename or f"environments/{data.get('environment', 'x')}.yaml"
    try:
        parse_manifest(dump(data), name)
    except ManifestError as exc:
        return exc.problems
    return []


def one(data: dict[str, Any], location: str, filename: str | None = None) -> Problem:
    found = run(data, filename)
    assert [p.location for p in found] == [location], "\n".join(map(str, found))
    return found[0]


def test_base_is_valid() -> None:
    assert run(base()) == []
    assert run(base("dev")) == []


# -- uniqueness -----------------------------------------------------------------------------


def test_duplicate_trust_name_points_at_the_second_and_names_the_first() -> None:
    data = base()
    data["trusts"][2]["name"] = "Trust_1"
    problem = one(data, "trusts[2].name")
    assert "duplicate trust name 'Trust_1', already used by trusts[0] (line " in problem.message
    text = dump(data).splitlines()
    assert text[problem.line - 1].strip() == "- name: Trust_1"
    assert problem.line > 20


def test_duplicate_fl_kit_slot() -> None:
    data = base()
    data["trusts"][1]["fl_kit_slot"] = "Trust_1"
    problem = one(data, "trusts[1].fl_kit_slot")
    assert "already used by trusts[0]" in problem.message


def test_duplicate_public_ip() -> None:
    data = base()
    data["trusts"][2]["public_ip"] = "203.0.113.10"
    problem = one(data, "trusts[2].public_ip")
    assert "'203.0.113.10' is already used by trusts[0]" in problem.message


def test_distinct_names_slots_and_ips_pass() -> None:
    data = base()
    data["trusts"].append({"name": "Trust_4", "kind": "tre", "public_ip": "8.8.4.4",
                           "fl_kit_slot": "Trust_4"})
    assert run(data) == []


# -- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["1Trust", "Trust 1", "_x", "a" * 64, "Trüst", "../etc", ""])
def test_invalid_names_fire(name: str) -> None:
    data = base()
    data["trusts"][0]["name"] = name
    problem = one(data, "trusts[0].name")
    assert "start with a letter" in problem.message


@pytest.mark.parametrize("name", ["T", "Trust_1", "guys-and-st-thomas", "a" * 63])
def test_valid_names_pass(name: str) -> None:
    data = base()
    data["trusts"][0]["name"] = name
    assert run(data) == []


def test_fl_kit_slot_uses_the_name_rule() -> None:
    data = base()
    data["trusts"][0]["fl_kit_slot"] = "../../root"
    assert "not a valid fl_kit_slot" in one(data, "trusts[0].fl_kit_slot").message


# -- public IPs -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ip", "words"),
    [
        ("10.1.2.3", "private (RFC 1918)"),
        ("172.16.0.1", "private (RFC 1918)"),
        ("192.168.1.1", "private (RFC 1918)"),
        ("127.0.0.1", "loopback"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.254", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("198.18.0.1", "reserved"),
        ("2001:db8::1", "IPv6"),
        ("203.0.113.0/24", "a network"),
        ("not-an-ip", "not an IPv4 address"),
        ("203.0.113.300", "not an IPv4 address"),
        ("010.1.2.3", "not an IPv4 address"),
    ],
)
def test_unroutable_public_ips_fire(ip: str, words: str) -> None:
    assert words in (public_ip_problem(ip) or "")
    data = base()
    data["trusts"][1]["public_ip"] = ip
    assert words in one(data, "trusts[1].public_ip").message


@pytest.mark.parametrize(
    "ip", ["192.0.2.1", "198.51.100.254", "203.0.113.99", "8.8.8.8", "81.2.69.160",
           "100.63.255.255", "100.128.0.1"])
def test_routable_and_documentation_ips_pass(ip: str) -> None:
    assert public_ip_problem(ip) is None
    data = base()
    data["trusts"][1]["public_ip"] = ip
    assert run(data) == []


def test_private_ip_message_matches_the_contract() -> None:
    data = base()
    data["trusts"][1]["public_ip"] = "10.1.2.3"
    problem = one(data, "trusts[1].public_ip")
    assert str(problem).endswith(
        ": trusts[1].public_ip: 10.1.2.3 is a private (RFC 1918) address; "
        "the NLB allowlist needs the trust's public egress IP")


# -- tags (FG005) ---------------------------------------------------------------------------


@pytest.mark.parametrize("tag", ["latest", "prod", "stag", "main", "stable"])
def test_floating_tags_fire_in_prod(tag: str) -> None:
    data = base()
    data["hub"]["images"]["hub_tag"] = tag
    problem = one(data, "hub.images.hub_tag")
    assert "floating tag" in problem.message and "FG005" in problem.message
    assert "v2.3.0" in problem.message and "sha-" in problem.message


def test_other_mutable_tags_fire_in_prod() -> None:
    data = base()
    data["hub"]["images"]["fl_tag"] = "2.3"
    assert "not an immutable tag" in one(data, "hub.images.fl_tag").message


@pytest.mark.parametrize("tag", ["v2.3.0", "v10.0.1-rc.1", "v1.2.3-beta", "sha-1a2b3c4"])
def test_immutable_tags_pass(tag: str) -> None:
    assert is_immutable_tag(tag)
    data = base()
    data["hub"]["images"]["hub_tag"] = data["hub"]["images"]["fl_tag"] = tag
    assert run(data) == []


@pytest.mark.parametrize("tag", ["v2.3", "2.3.0", "sha-1a2b3c", "sha-XYZ1234", "v01.2.3",
                                 "sha-0123456789abcdef0123456789abcdef01234567"])
def test_near_misses_are_not_immutable(tag: str) -> None:
    assert not is_immutable_tag(tag)


def test_immutable_tags_default_on_outside_prod() -> None:
    data = base("dev")
    data.pop("policy")
    data["hub"]["images"]["hub_tag"] = "latest"
    assert "policy.immutable_tags is on" in one(data, "hub.images.hub_tag").message


def test_floating_tags_allowed_when_policy_turns_them_off_outside_prod() -> None:
    data = base("dev")
    data["policy"]["immutable_tags"] = False
    data["hub"]["images"]["hub_tag"] = "latest"
    data["hub"]["images"]["fl_tag"] = "dev"
    assert run(data) == []


def test_malformed_tag_fires_even_when_floating_is_allowed() -> None:
    data = base("dev")
    data["policy"]["immutable_tags"] = False
    data["hub"]["images"]["hub_tag"] = "has space"
    assert "not a valid image tag" in one(data, "hub.images.hub_tag").message


# -- prod (FG002) ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["deletion_protection", "final_snapshot"])
def test_prod_database_protection_must_be_on(key: str) -> None:
    data = base()
    data["hub"]["database"][key] = False
    problem = one(data, f"hub.database.{key}")
    assert "must be true in prod" in problem.message and "FG002" in problem.message


@pytest.mark.parametrize("key", ["deletion_protection", "final_snapshot"])
def test_non_prod_database_protection_may_be_off(key: str) -> None:
    data = base("stag")
    data["hub"]["database"][key] = False
    assert run(data) == []


def test_prod_protection_rule_sees_yaml_spellings_of_false() -> None:
    text = dump(base()).replace("deletion_protection: true", 'deletion_protection: "off"')
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, "environments/prod.yaml")
    assert [p.location for p in info.value.problems] == ["hub.database.deletion_protection"]


def test_prod_cannot_turn_immutable_tags_off() -> None:
    data = base()
    data["policy"]["immutable_tags"] = False
    assert "prod always uses immutable image tags" in one(data, "policy.immutable_tags").message


def test_prod_tags_checked_even_with_policy_off() -> None:
    data = base()
    data["policy"]["immutable_tags"] = False
    data["hub"]["images"]["hub_tag"] = "latest"
    found = run(data)
    assert {p.location for p in found} == {"policy.immutable_tags", "hub.images.hub_tag"}


# -- secrets --------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [PEM, BLOB, "0123456789abcdef" * 4,
                                   "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMq user@host"])
def test_key_material_in_ssh_key_is_rejected_without_echo(value: str) -> None:
    data = base()
    data["trusts"][0]["host"]["ssh_key"] = value
    problem = one(data, "trusts[0].host.ssh_key")
    assert "looks like a key" in problem.message
    assert "env:NAME" in problem.message
    for fragment in (value[:12], value[-12:].strip(), "b3BlbnNzaC1"):
        assert fragment not in str(problem)


def test_non_reference_ssh_key_is_rejected_without_echo() -> None:
    data = base()
    data["trusts"][0]["host"]["ssh_key"] = "~/.ssh/id_ed25519"
    problem = one(data, "trusts[0].host.ssh_key")
    assert "is not a reference" in problem.message and "id_ed25519" not in problem.message


@pytest.mark.parametrize("ref", ["env:TRUST_1_SSH_KEY", "ssm:/flipgitops/prod/trusts/t1/ssh",
                                 "secretsmanager:flip/prod/ssh#Trust_1"])
def test_references_pass(ref: str) -> None:
    assert is_secret_reference(ref)
    data = base()
    data["trusts"][0]["host"]["ssh_key"] = ref
    assert run(data) == []


@pytest.mark.parametrize("ref", ["env:", "env:1X", "ssm:path", "secretsmanager:name",
                                 "vault:/x"])
def test_malformed_references_are_not_references(ref: str) -> None:
    assert not is_secret_reference(ref)


def test_key_pasted_into_any_other_field_is_rejected_without_echo() -> None:
    data = base()
    data["hub"]["domain"] = PEM
    problem = one(data, "hub.domain")
    assert "looks like a key" in problem.message and "BEGIN" not in str(problem)


def test_no_secret_appears_in_any_message_of_a_broken_file() -> None:
    data = base()
    data["trusts"][0]["host"]["ssh_key"] = PEM
    data["trusts"][0]["host"]["user"] = PEM
    data["trusts"][1]["host"]["colour"] = PEM
    with pytest.raises(ManifestError) as info:
        parse_manifest(dump(data), "environments/prod.yaml")
    assert "OPENSSH" not in str(info.value) and "b3Bl" not in str(info.value)


# -- environment, terraform, host -----------------------------------------------------------


def test_environment_must_equal_the_file_stem() -> None:
    problem = one(base("prod"), "environment", filename="environments/stag.yaml")
    assert "file is stag.yaml" in problem.message and "environment: stag" in problem.message


def test_environment_matching_the_stem_passes() -> None:
    assert run(base("stag"), filename="/abs/path/stag.yml") == []


@pytest.mark.parametrize("name", ["<stdin>", "-", "manifest", ""])
def test_stem_rule_is_skipped_without_a_yaml_file_name(name: str) -> None:
    assert manifest_stem(name) is None
    assert run(base("prod"), filename=name) == []


def test_terraform_allowlist_requires_hub_terraform() -> None:
    data = base()
    data["hub"]["fl_server"] = {"allowlist": "terraform"}
    problem = one(data, "hub.terraform")
    assert "hub.terraform is required" in problem.message
    assert dump(data).splitlines()[problem.line - 1].startswith("hub:")


def test_terraform_allowlist_with_terraform_section_passes() -> None:
    data = base()
    data["hub"]["fl_server"] = {"allowlist": "terraform"}
    data["hub"]["terraform"] = {"dir": "../FLIP/deploy/providers/AWS"}
    assert run(data) == []


@pytest.mark.parametrize("index", [0, 1])
def test_on_prem_and_aws_trusts_need_a_host(index: int) -> None:
    data = base()
    del data["trusts"][index]["host"]
    problem = one(data, f"trusts[{index}].host")
    assert "needs a host section" in problem.message


def test_tre_trust_may_omit_host() -> None:
    data = base()
    assert "host" not in data["trusts"][2]
    assert run(data) == []


# -- schema comment, helpers ----------------------------------------------------------------


def test_schema_comment_missing_fires() -> None:
    problem = schema_comment_problem("version: 1\n", "environments/dev.yaml")
    assert problem is not None and (problem.line, problem.col) == (1, 1)
    assert SCHEMA_COMMENT in problem.message


def test_schema_comment_present_passes() -> None:
    assert schema_comment_problem(SCHEMA_COMMENT + "\r\nversion: 1\n", "x.yaml") is None


def test_dotted() -> None:
    assert dotted(("trusts", 1, "public_ip")) == "trusts[1].public_ip"
    assert dotted(("hub", "images", "fl_tag")) == "hub.images.fl_tag"
    assert dotted(()) == ""


def test_check_manifest_runs_the_rules_on_a_model() -> None:
    manifest = parse_manifest(dump(base()), "environments/prod.yaml")
    assert check_manifest(manifest, "environments/prod.yaml") == []
    assert [i.path for i in check_manifest(manifest, "environments/dev.yaml")] == [
        ("environment",)]


def test_rules_tolerate_raw_data_of_the_wrong_shape() -> None:
    data: dict[str, Any] = copy.deepcopy(base())
    data["trusts"] = [None, 3, {"name": 5, "public_ip": ["x"]}, "x"]
    data["hub"] = {"images": "latest", "database": []}
    data["policy"] = "strict"
    assert check_document(data, stem="prod") == []
    assert check_document(["not", "a", "mapping"], stem=None) == []
