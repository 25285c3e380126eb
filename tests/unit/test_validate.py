"""Every document rule of docs/architecture.md §3: one case where it fires, one where it
does not."""

from __future__ import annotations

import copy
import io
from typing import Any

import pytest
from ruamel.yaml import YAML

from flipgitops.core.parse import parse_manifest
from flipgitops.core.validate import (
    CODE_RE,
    NAME_RE,
    SCHEMA_COMMENT,
    check_document,
    check_manifest,
    dotted,
    flip_root_problem,
    is_secret_reference,
    looks_like_secret,
    manifest_stem,
    public_ip_problem,
    schema_comment_problem,
)
from flipgitops.errors import ManifestError, Problem
from flipgitops.model.flip import is_immutable_tag

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
        "flip": {"checkout": "../FLIP", "ref": "v2.3.0"},
        "hub": {
            "domain": "app.example.org",
            "images": {"hub_tag": "v2.3.0", "fl_tag": "v2.3.0"},
            "fl_kits": {"bucket": "flipprod-aicentre", "date": "2025-06-01"},
            "database": {"deletion_protection": True, "final_snapshot": True},
        },
        "trusts": [
            {"name": "Trust_1", "code": "GSTT", "region": "London", "kind": "on-prem",
             "public_ip": "203.0.113.10", "fl_kit_slot": "Trust_1",
             "host": {"address": "t1.example.org", "ssh_key": "env:TRUST_1_SSH_KEY"},
             "settings": {"NUM_AVAILABLE_GPUS": "1"}},
            {"name": "Trust_2", "code": "KCH", "kind": "aws", "public_ip": "198.51.100.20",
             "fl_kit_slot": "Trust_2",
             "host": {"address": "t2.example.org", "ssh_key": "ssm:/flip/prod/t2"}},
            {"name": "Trust_3", "code": "UCLH", "kind": "tre", "public_ip": "192.0.2.30",
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
    data["trusts"].append({"name": "Trust_4", "code": "BARTS", "kind": "tre",
                           "public_ip": "8.8.4.4", "fl_kit_slot": "Trust_4"})
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
    assert "holds what looks like a secret" in problem.message
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
    data["trusts"] = [None, 3, {"name": 5, "public_ip": ["x"], "code": 7, "settings": ["x"],
                                "credentials": "x", "host": "x", "kind": "aws"}, "x",
                      {"host": {"flip_root": 3, "address": None},
                       "settings": {1: 2, "NUM_AVAILABLE_GPUS": 3}}]
    data["hub"] = {"images": "latest", "database": [], "fl_server": "x", "domain": 5}
    data["flip"] = ["v1"]
    data["policy"] = "strict"
    assert check_document(data, stem="prod") == []
    assert check_document(["not", "a", "mapping"], stem=None) == []



# -- v2: whole-value patterns (a trailing newline is not part of a valid value) ----------------


@pytest.mark.parametrize("value", ["Trust_1\n", "Trust_1\r\n", "Trust_1 \n"])
def test_name_patterns_match_whole_values(value: str) -> None:
    assert NAME_RE.fullmatch(value) is None
    assert not is_immutable_tag("v2.3.0\n") and not is_immutable_tag("sha-1a2b3c4\n")
    assert CODE_RE.fullmatch("GSTT\n") is None


@pytest.mark.parametrize(
    ("path", "value"),
    [(("trusts", 0, "name"), "Trust_1\n"), (("trusts", 1, "fl_kit_slot"), "Trust_2\n"),
     (("trusts", 2, "code"), "UCLH\n"), (("hub", "images", "hub_tag"), "v2.3.0\n"),
     (("hub", "images", "fl_tag"), "sha-1a2b3c4\n"), (("environment",), "prod\n")],
)
def test_trailing_newline_is_refused_where_it_is(path: tuple[Any, ...], value: str) -> None:
    data = base()
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    problem = one(data, dotted(path))
    assert "line break (U+000A)" in problem.message
    assert dump(data).splitlines()[problem.line - 1].strip().split(":")[0] in (
        str(path[-1]), f"- {path[-1]}")


def test_trailing_newline_from_a_literal_block_is_refused() -> None:
    text = dump(base()).replace("code: KCH\n", "code: |\n    KCH\n")
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, "environments/prod.yaml")
    (problem,) = info.value.problems
    assert problem.location == "trusts[1].code" and "a `|` block" in problem.message


# -- v2: trust codes and slots ---------------------------------------------------------------


@pytest.mark.parametrize("code", ["gstt", "G", "A" * 17, "GS-TT", "GS/TT", "..", "GS TT", ""])
def test_invalid_codes_fire(code: str) -> None:
    data = base()
    data["trusts"][0]["code"] = code
    problem = one(data, "trusts[0].code")
    assert "not a valid trust code" in problem.message and "trust/.env.<CODE>" in problem.message


@pytest.mark.parametrize("code", ["GSTT", "RJ1", "A" * 16, "12"])
def test_valid_codes_pass(code: str) -> None:
    data = base()
    data["trusts"][0]["code"] = code
    assert run(data) == []


def test_duplicate_code_points_at_the_second() -> None:
    data = base()
    data["trusts"][2]["code"] = "GSTT"
    problem = one(data, "trusts[2].code")
    assert "trust code 'GSTT' is already used by trusts[0] (line " in problem.message


@pytest.mark.parametrize("slot", ["Trust_1/../x", "../Trust_1", "a/b", "Trust.1", "_x"])
def test_slots_cannot_carry_path_separators(slot: str) -> None:
    data = base()
    data["trusts"][0]["fl_kit_slot"] = slot
    assert "not a valid fl_kit_slot" in one(data, "trusts[0].fl_kit_slot").message


def test_slots_are_optional_with_the_database_registry_and_unique_when_given() -> None:
    data = base()
    for trust in data["trusts"]:
        del trust["fl_kit_slot"]
    assert run(data) == []
    data["trusts"][0]["fl_kit_slot"] = data["trusts"][2]["fl_kit_slot"] = "Trust_7"
    assert "already used by trusts[0]" in one(data, "trusts[2].fl_kit_slot").message


def test_secret_registry_requires_every_slot() -> None:
    data = base()
    data["hub"]["trust_registry"] = "secret"
    assert run(data) == []
    del data["trusts"][1]["fl_kit_slot"]
    problem = one(data, "trusts[1].fl_kit_slot")
    assert "required with hub.trust_registry: secret" in problem.message
    assert dump(data).splitlines()[problem.line - 1].strip() == "- name: Trust_2"


# -- v2: public IPs --------------------------------------------------------------------------


@pytest.mark.parametrize("ip", [" 203.0.113.99", "203.0.113.99 ", " 8.8.8.8 "])
def test_spaces_around_a_public_ip_are_refused(ip: str) -> None:
    assert "spaces around" in (public_ip_problem(ip) or "")
    data = base()
    data["trusts"][1]["public_ip"] = ip
    problem = one(data, "trusts[1].public_ip")
    assert "spaces around the address" in problem.message
    assert ip.strip() in problem.message


# -- v2: hosts: paths, addresses, collisions -------------------------------------------------


@pytest.mark.parametrize(
    ("root", "words"),
    [("/", "cannot be '/'"), ("///", "cannot be '/'"), ("opt/flip", "absolute path"),
     ("../flip", "absolute path"), ("/opt/../etc", "'..' component"), ("/opt/flip/..",
                                                                        "'..' component"),
     ("/opt/flip/", "not normalised"), ("//opt/flip", "not normalised"),
     ("/opt/./flip", "not normalised"), ("/opt//flip", "not normalised"),
     ("/opt/fl ip", "only letters"), ("/opt/$HOME", "only letters"), ("/opt/fl;ip", "only")],
)
def test_flip_root_traversal_and_odd_forms_are_refused(root: str, words: str) -> None:
    assert words in (flip_root_problem(root) or "")
    data = base()
    data["trusts"][0]["host"]["flip_root"] = root
    assert words in one(data, "trusts[0].host.flip_root").message


@pytest.mark.parametrize("root", ["/opt/flip", "/srv/flip-2", "/tmp/flipgitops-dev/Trust_1",
                                  "/home/flip_ops/flip.d"])
def test_normal_flip_roots_pass(root: str) -> None:
    assert flip_root_problem(root) is None
    data = base()
    data["trusts"][0]["host"]["flip_root"] = root
    assert run(data) == []


@pytest.mark.parametrize(("address", "root"), [("t1.example.org", "/opt/flip"),
                                               ("T1.Example.ORG.", "/opt/flip"),
                                               ("t1.example.org", "/opt/flip/trust")])
def test_two_trusts_sharing_a_hosts_flip_root_are_refused(address: str, root: str) -> None:
    data = base()
    data["trusts"][1]["host"] = {"address": address, "ssh_key": "env:K", "flip_root": root}
    problem = one(data, "trusts[1].host.flip_root")
    assert "trusts[0] (line " in problem.message and "would collide" in problem.message


def test_local_hosts_are_one_machine_whatever_their_address() -> None:
    data = base("dev")
    for index in (0, 1):
        data["trusts"][index]["host"] = {"connection": "local", "address": f"box{index}",
                                         "flip_root": "/tmp/flip"}
    assert "same flip_root" in one(data, "trusts[1].host.flip_root").message
    data["trusts"][1]["host"]["flip_root"] = "/tmp/flip2"
    assert run(data) == []


def test_same_flip_root_on_different_hosts_passes() -> None:
    data = base()
    assert data["trusts"][0]["host"]["address"] != data["trusts"][1]["host"]["address"]
    assert run(data) == []


def test_tre_trust_with_a_host_is_refused() -> None:
    data = base()
    data["trusts"][2]["host"] = {"connection": "local", "flip_root": "/tmp/x"}
    problem = one(data, "trusts[2].host")
    assert "tre trust has no host" in problem.message


@pytest.mark.parametrize(("address", "words"),
                         [("-oProxyCommand=touch_x", "must not start with '-'"),
                          ("ubuntu@t1.example.org", "put the login name in host.user"),
                          ("t1 example", "not a host name"), ("t1.example.org:99999", "port"),
                          ("t1.example.org:", "port")])
def test_host_addresses_are_names_not_options(address: str, words: str) -> None:
    data = base()
    data["trusts"][0]["host"]["address"] = address
    assert words in one(data, "trusts[0].host.address").message


@pytest.mark.parametrize("address", ["203.0.113.9", "t1.example.org:2222", "2001:db8::5",
                                     "bastion_trust1", "localhost"])
def test_host_address_forms_pass(address: str) -> None:
    data = base()
    data["trusts"][0]["host"]["address"] = address
    assert run(data) == []


@pytest.mark.parametrize("user", ["-oX", "a b", "", "root;id"])
def test_host_user_is_a_login_name(user: str) -> None:
    data = base()
    data["trusts"][0]["host"]["user"] = user
    assert "not a login name" in one(data, "trusts[0].host.user").message


# -- v2: manifest text is data, never code ---------------------------------------------------

TEMPLATED = "{{ lookup('pipe', 'id') }}"


@pytest.mark.parametrize(
    ("path", "value"),
    [(("trusts", 0, "host", "flip_root"), "/opt/{{ flip }}"),
     (("hub", "domain"), TEMPLATED),
     (("hub", "images", "registry"), "ghcr.io/{% raw %}x"),
     (("trusts", 0, "settings", "NUM_AVAILABLE_GPUS"), "{# 1 #}"),
     (("trusts", 0, "region"), TEMPLATED),
     (("hub", "fl_kits", "bucket"), TEMPLATED),
     (("state", "prefix"), "{{x}}"),
     (("trusts", 1, "host", "docker"), "{{ docker }}")],
)
def test_template_syntax_is_refused_in_every_string(path: tuple[Any, ...], value: str) -> None:
    data = base()
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    problem = one(data, dotted(path))
    assert "template syntax" in problem.message and "Jinja2" in problem.message
    assert "data, never code" in problem.message
    assert "lookup" not in problem.message
    line = dump(data).splitlines()[problem.line - 1]
    assert str(path[-1]) in line


def test_template_syntax_in_a_key_is_refused_at_the_key() -> None:
    data = base()
    data["hub"]["terraform"] = {"dir": "../FLIP", "backend_config": {"{{ k }}": "v"}}
    problem = one(data, "hub.terraform.backend_config.{{ k }}")
    assert problem.message.startswith("this key contains template syntax")


@pytest.mark.parametrize(("char", "words"), [("\t", "U+0009"), ("\u200b", "ZERO WIDTH SPACE"),
                                             ("\u202e", "RIGHT-TO-LEFT OVERRIDE"),
                                             ("\u00a0", "NO-BREAK SPACE"), ("\x1b", "U+001B")])
def test_invisible_characters_are_refused_and_named(char: str, words: str) -> None:
    data = base()
    data["trusts"][0]["region"] = f"Lon{char}don"
    problem = one(data, "trusts[0].region")
    assert words in problem.message and "one line of visible text" in problem.message
    assert char not in str(problem)


def test_a_pasted_key_is_one_problem_however_many_rules_it_breaks() -> None:
    data = base()
    data["trusts"][0]["host"]["user"] = PEM
    problem = one(data, "trusts[0].host.user")
    assert "looks like a key" in problem.message


# -- v2: environment ------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["<stdin>", "manifest", "-", "prod.json"])
def test_empty_environment_is_refused_without_a_yaml_file_name(name: str) -> None:
    data = base()
    data["environment"] = ""
    problem = one(data, "environment", filename=name)
    assert "environment is empty" in problem.message


def test_empty_environment_in_a_yaml_file_names_the_fix() -> None:
    data = base()
    data["environment"] = ""
    problem = one(data, "environment", filename="environments/stag.yaml")
    assert "environment is empty" in problem.message and "environment: stag" in problem.message


@pytest.mark.parametrize("env", ["../prod", "prod/x", "pr od", "1prod"])
def test_environment_must_be_a_name_even_without_a_file_stem(env: str) -> None:
    data = base()
    data["environment"] = env
    assert "not a valid environment name" in one(data, "environment", filename="<stdin>").message


# -- v2: settings, credentials, references -------------------------------------------------


@pytest.mark.parametrize(
    ("key", "words"),
    [("ORTHANC_PASSWORD", "is a trust-local credential"),
     ("TRUST_API_KEY", "kit credential the hub issues"),
     ("AES_KEY_BASE64", "hub-shared"), ("DOCKER_TAG", "hub-shared"),
     ("TRUST_AES_KEY_BASE64", "kit credential"),
     ("TRUST_NAME", "comes from the trust's name"), ("FL_KIT_DIR", "host.flip_root"),
     ("AICENTRE_BUCKET_NAME", "hub.fl_kits.bucket"),
     ("NUM_AVAILABLE_GPU", "did you mean 'NUM_AVAILABLE_GPUS'"),
     ("COLOUR", "not a setting of FLIP's host-local profile")],
)
def test_settings_take_only_known_non_secret_keys(key: str, words: str) -> None:
    data = base()
    data["trusts"][0]["settings"][key] = "hunter2"
    problem = one(data, f"trusts[0].settings.{key}")
    assert words in problem.message
    assert "hunter2" not in str(problem)
    assert dump(data).splitlines()[problem.line - 1].strip().startswith(f"{key}:")


@pytest.mark.parametrize("value", ["Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbA",
                                   "0123456789abcdef" * 2, PEM])
def test_secret_looking_settings_values_are_refused_without_echo(value: str) -> None:
    data = base()
    data["trusts"][0]["settings"]["OMOP_DB_TAG"] = value
    problem = one(data, "trusts[0].settings.OMOP_DB_TAG")
    assert "looks like a" in problem.message and value[:10] not in str(problem)
    del data["trusts"][0]["settings"]["OMOP_DB_TAG"]
    data["trusts"][0]["settings"]["TRUST_API_KEY"] = value
    problem = one(data, "trusts[0].settings.TRUST_API_KEY")
    assert "TRUST_API_KEY is a kit credential" in problem.message
    assert value[:10] not in str(problem)


def test_settings_ports_are_port_numbers() -> None:
    data = base()
    data["trusts"][0]["settings"]["PACS_UI_PORT"] = "99999"
    assert "port number" in one(data, "trusts[0].settings.PACS_UI_PORT").message
    data["trusts"][0]["settings"]["PACS_UI_PORT"] = "8042"
    assert run(data) == []


@pytest.mark.parametrize("value", ["./orthanc/orthanc-storage-trust1",
                                   "/data/orthanc/orthanc-storage-for-trust-number-12345",
                                   "flip-gitops-state-prod-123456789012", "INFO"])
def test_ordinary_values_do_not_look_like_secrets(value: str) -> None:
    assert not looks_like_secret(value)


def test_credentials_take_references_to_trust_local_keys() -> None:
    data = base()
    data["trusts"][0]["credentials"] = {"OMOP_POSTGRES_PASSWORD": "ssm:/t1/omop",
                                        "XNAT_ADMIN_PASSWORD": "env:T1_XNAT"}
    assert run(data) == []
    data["trusts"][0]["credentials"]["ORTHANC_PASSWORD"] = "hunter2"
    problem = one(data, "trusts[0].credentials.ORTHANC_PASSWORD")
    assert "is not a reference" in problem.message and "hunter2" not in str(problem)


@pytest.mark.parametrize(("key", "words"), [("TRUST_API_KEY", "issued by the hub"),
                                            ("ORTHANC_PASWORD", "did you mean"),
                                            ("NUM_AVAILABLE_GPUS", "not a trust-local")])
def test_credentials_refuse_other_keys(key: str, words: str) -> None:
    data = base()
    data["trusts"][0]["credentials"] = {key: "env:X"}
    assert words in one(data, f"trusts[0].credentials.{key}").message


@pytest.mark.parametrize("path", [("trusts", 0, "host", "become_password"),
                                  ("hub", "admin_token")])
def test_become_password_and_admin_token_are_references(path: tuple[Any, ...]) -> None:
    data = base()
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = "secretsmanager:flip/prod#token"
    assert run(data) == []
    parent[path[-1]] = "hunter2"
    problem = one(data, dotted(path))
    assert "is not a reference" in problem.message and "hunter2" not in str(problem)
    parent[path[-1]] = BLOB
    assert "looks like a secret" in one(data, dotted(path)).message


# -- v2: flip release, hub fields ------------------------------------------------------------


def test_flip_ref_must_be_immutable_where_tags_must() -> None:
    data = base()
    data["flip"]["ref"] = "main"
    assert "pin FLIP's trust/ directory" in one(data, "flip.ref").message
    for ref in ("v2.4.0-rc.1", "1a2b3c4", "0123456789abcdef0123456789abcdef01234567"):
        data["flip"]["ref"] = ref
        assert run(data) == [], ref
    dev = base("dev")
    dev["policy"]["immutable_tags"] = False
    dev["flip"]["ref"] = "main"
    assert run(dev) == []


@pytest.mark.parametrize("ref", ["--upload-pack=touch x", "-b", "a..b", "v1 2", "x.lock",
                                 "refs//x", "x@{1}"])
def test_flip_ref_is_a_git_ref_not_an_option(ref: str) -> None:
    data = base("dev")
    data["policy"]["immutable_tags"] = False
    data["flip"]["ref"] = ref
    assert "not a git ref" in one(data, "flip.ref").message


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [(("hub", "domain"), "https://app.example.org/", "not a domain name"),
     (("hub", "domain"), "app.example.org/api", "not a domain name"),
     (("hub", "fl_server"), {"hostname": "fl.example.org:8002"}, "not a host name"),
     (("hub", "images", "registry"), "GHCR.io/LondonAICentre", "registry and namespace"),
     (("hub", "images", "registry"), "ghcr.io/x y", "registry and namespace"),
     (("hub", "trust_api_key_header"), "X Trust Key", "HTTP header name")],
)
def test_hub_fields_have_their_plain_form(path: tuple[Any, ...], value: Any, words: str) -> None:
    data = base()
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    location = dotted(path) + (".hostname" if isinstance(value, dict) else "")
    assert words in one(data, location).message


def test_hub_field_forms_that_pass() -> None:
    data = base()
    data["hub"]["domain"] = "127.0.0.1:8443"
    data["hub"]["fl_server"] = {"hostname": "fl.app.example.org"}
    data["hub"]["images"]["registry"] = "localhost:5000/flip/"
    data["hub"]["trust_api_key_header"] = "X-Trust-Api-Key"
    assert run(data) == []
