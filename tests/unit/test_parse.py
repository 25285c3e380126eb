"""parse_manifest: YAML in, Manifest or one ManifestError with every located problem out."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from flipgitops.core.parse import MAX_MANIFEST_BYTES, locate, parse_manifest
from flipgitops.core.yamlpos import load_positioned
from flipgitops.errors import ManifestError, Problem
from flipgitops.model.manifest import Manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_FIXTURE = REPO_ROOT / "tests" / "fixtures" / "manifests" / "dev.yaml"

VALID = """\
version: 1
environment: dev
aws: {account_id: "123456789012", region: eu-west-2}
state: {bucket: flip-gitops-state-dev}
flip: {checkout: ../FLIP, ref: v2.3.0}
hub:
  domain: dev.example.org
  images: {hub_tag: v2.3.0, fl_tag: v2.3.0}
  fl_kits: {bucket: flipdev-aicentre, date: "2025-06-01"}
trusts:
  - name: Trust_1
    code: GSTT
    kind: tre
    public_ip: 203.0.113.10
    fl_kit_slot: Trust_1
  - name: Trust_2
    code: KCH
    kind: on-prem
    public_ip: 198.51.100.20
    fl_kit_slot: Trust_2
    host:
      connection: local
      flip_root: /tmp/flip/Trust_2
"""


def problems(text: str, filename: str = "environments/dev.yaml") -> list[Problem]:
    with pytest.raises(ManifestError) as info:
        parse_manifest(text, filename)
    assert info.value.problems, "a ManifestError always carries at least one problem"
    return info.value.problems


def only(text: str, filename: str = "environments/dev.yaml") -> Problem:
    found = problems(text, filename)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def test_valid_text_gives_a_manifest() -> None:
    manifest = parse_manifest(VALID, "environments/dev.yaml")
    assert isinstance(manifest, Manifest)
    assert [t.name for t in manifest.trusts] == ["Trust_1", "Trust_2"]
    assert manifest.trusts[1].host is not None
    assert manifest.trusts[1].host.flip_root == "/tmp/flip/Trust_2"


@pytest.mark.parametrize("env", ["stag", "prod"])
def test_shipped_environments_parse(env: str) -> None:
    path = REPO_ROOT / "environments" / f"{env}.yaml"
    manifest = parse_manifest(path.read_text(), f"environments/{env}.yaml")
    assert manifest.environment == env


def test_prod_has_three_kinds_of_trusts_on_documentation_ips() -> None:
    text = (REPO_ROOT / "environments" / "prod.yaml").read_text()
    manifest = parse_manifest(text, "environments/prod.yaml")
    assert {t.kind for t in manifest.trusts} == {"on-prem", "aws", "tre"}
    assert manifest.hub.database.deletion_protection and manifest.hub.database.final_snapshot


def test_stag_is_an_older_hub_and_prod_a_current_one() -> None:
    def load(env: str) -> Manifest:
        text = (REPO_ROOT / "environments" / f"{env}.yaml").read_text()
        return parse_manifest(text, f"environments/{env}.yaml")

    stag, prod = load("stag"), load("prod")
    assert stag.hub.trust_registry == "secret" and all(t.fl_kit_slot for t in stag.trusts)
    assert stag.hub.fl_server.allowlist == "terraform" and stag.hub.terraform is not None
    assert prod.hub.trust_registry == "database" and prod.hub.admin_token
    assert any(t.fl_kit_slot is None for t in prod.trusts)
    for manifest in (stag, prod):
        assert manifest.flip.checkout == "../FLIP"
        assert {t.state for t in manifest.trusts} >= {"active", "paused"}
        assert "tre" in {t.kind for t in manifest.trusts}


def test_the_dev_fixture_is_a_local_sandbox_manifest() -> None:
    text = DEV_FIXTURE.read_text()
    manifest = parse_manifest(text, "environments/dev.yaml")
    assert manifest.aws.account_id == "123456789012"
    assert manifest.hub.fl_server.allowlist == "aws-api"
    hosts = [t.host for t in manifest.trusts]
    assert 2 <= len(hosts) <= 3
    for trust, host in zip(manifest.trusts, hosts, strict=True):
        assert host is not None and host.connection == "local"
        assert host.docker == "flip-standin-docker"
        assert host.flip_root == f"/tmp/flipgitops-dev/{trust.name}"


def test_environments_holds_real_environments_only() -> None:
    assert sorted(p.name for p in (REPO_ROOT / "environments").glob("*.yaml")) == [
        "prod.yaml", "stag.yaml"]


def test_yaml_syntax_error_is_located() -> None:
    problem = only("version: 1\nenvironment: dev\naws: b: c\n")
    assert (problem.line, problem.col) == (3, 7)
    assert "YAML syntax error" in problem.message


def test_tab_indentation_is_a_syntax_error_on_its_line() -> None:
    problem = only("version: 1\n\tenvironment: dev\n")
    assert problem.line == 2 and "YAML syntax error" in problem.message


def test_duplicate_key_points_at_the_second_and_names_the_first() -> None:
    text = VALID.replace("  domain: dev.example.org\n",
                         "  domain: dev.example.org\n  domain: other.example.org\n")
    problem = only(text)
    assert (problem.line, problem.col) == (8, 3)
    assert problem.location == "hub.domain"
    assert "duplicate key 'domain'" in problem.message and "line 7" in problem.message


def test_duplicate_key_does_not_hide_other_problems() -> None:
    text = VALID.replace("version: 1\n", "version: 1\nversion: 1\n").replace(
        "public_ip: 203.0.113.10", "public_ip: 10.0.0.1")
    found = problems(text)
    assert len(found) == 2
    assert {p.location for p in found} == {"version", "trusts[0].public_ip"}


def test_unknown_key_suggests_the_closest_valid_key() -> None:
    text = VALID.replace("  images:", "  database: {deletion_protecton: true}\n  images:")
    problem = only(text)
    assert problem.location == "hub.database.deletion_protecton"
    assert problem.message == ("unknown key 'deletion_protecton'; "
                               "did you mean 'deletion_protection'?")
    assert (problem.line, problem.col) == (8, 14)


def test_unknown_key_without_a_close_match_lists_the_valid_keys() -> None:
    problem = only(VALID + "colour: blue\n")
    assert problem.location == "colour"
    assert "valid keys here: aws, environment, flip, hub, policy, state, trusts, version" in (
        problem.message)
    assert (problem.line, problem.col) == (24, 1)


def test_unknown_key_inside_a_list_item_uses_the_item_model() -> None:
    problem = only(VALID.replace("    kind: tre\n", "    kind: tre\n    publc_ip: 1\n"))
    assert problem.location == "trusts[0].publc_ip"
    assert "did you mean 'public_ip'?" in problem.message
    assert problem.line == 14


def test_missing_key_points_at_the_mapping_that_should_hold_it() -> None:
    problem = only(VALID.replace("    kind: on-prem\n", ""))
    assert problem.location == "trusts[1].kind"
    assert "required key 'kind' is missing" in problem.message
    assert (problem.line, problem.col) == (16, 5)


def test_wrong_type_says_how_to_fix_it_without_echoing_the_value() -> None:
    problem = only(VALID.replace('"123456789012"', "123456789012"))
    assert problem.location == "aws.account_id"
    assert "quote the value" in problem.message
    assert "123456789012" not in problem.message


def test_literal_error_names_the_allowed_values() -> None:
    problem = only(VALID.replace("kind: tre", "kind: onprem"))
    assert problem.location == "trusts[0].kind"
    assert "'on-prem'" in problem.message and "'onprem'" in problem.message


def test_section_that_is_not_a_mapping() -> None:
    problem = only(VALID.replace("state: {bucket: flip-gitops-state-dev}", "state: bucket"))
    assert problem.location == "state"
    assert "must be a mapping" in problem.message and (problem.line, problem.col) == (4, 8)


@pytest.mark.parametrize(
    ("text", "found"),
    [("", "an empty file"), ("- a\n- b\n", "a list"), ("just text", "a string"),
     ("42", "an integer"), ("null", "an empty file")],
)
def test_top_level_that_is_not_a_mapping_is_one_problem_at_1_1(text: str, found: str) -> None:
    problem = only(text)
    assert (problem.line, problem.col) == (1, 1)
    assert found in problem.message


def test_non_string_keys_are_problems() -> None:
    found = problems(VALID + "1: one\n")
    assert any("keys must be strings" in p.message and p.line == 24 for p in found)


def test_python_tags_are_never_constructed(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = VALID + f'policy: !!python/object/apply:os.system ["touch {marker}"]\n'
    found = problems(text)
    assert not marker.exists()
    assert any("YAML tag" in p.message and p.location == "policy" for p in found)


def test_unknown_tags_are_reported() -> None:
    found = problems(VALID.replace("domain: dev.example.org", "domain: !vault dev.example.org"))
    assert [p.location for p in found] == ["hub.domain"]
    assert "YAML tag '!vault'" in found[0].message


def test_explicit_str_tag_is_a_plain_string() -> None:
    manifest = parse_manifest(VALID.replace("hub_tag: v2.3.0", "hub_tag: !!str v2.3.0"),
                              "environments/dev.yaml")
    assert manifest.hub.images.hub_tag == "v2.3.0"


def test_anchors_and_aliases_are_data() -> None:
    text = VALID.replace("images: {hub_tag: v2.3.0, fl_tag: v2.3.0}",
                         "images: {hub_tag: &tag v2.3.0, fl_tag: *tag}")
    assert parse_manifest(text, "environments/dev.yaml").hub.images.fl_tag == "v2.3.0"


def test_billion_laughs_stays_small() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    found = problems("\n".join(lines) + "\n")
    assert all(p.line >= 1 for p in found)


def test_huge_int_is_a_problem_not_a_crash() -> None:
    found = problems("version: " + "9" * 5000 + "\n")
    (problem,) = [p for p in found if p.location == "version"]
    assert "too many digits" in problem.message and (problem.line, problem.col) == (1, 10)


def test_huge_int_in_a_bounded_field_is_located() -> None:
    problem = only(VALID.replace("  images:", "  fl_server: {port: " + "9" * 300 + "}\n  images:"))
    assert problem.location == "hub.fl_server.port" and problem.line == 8


def test_invalid_date_scalar_is_located() -> None:
    found = problems(VALID + "when: 2001-02-30\n")
    assert [(p.line, p.col, p.location) for p in found] == [(24, 7, "when")]
    assert "cannot read this value" in found[0].message


def test_control_characters_are_located() -> None:
    problem = only("version: 1\nenv\x00ironment: dev\n")
    assert (problem.line, problem.col) == (2, 4)


def test_deep_nesting_is_a_problem() -> None:
    found = problems("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert all(p.line >= 1 and p.col >= 1 for p in found)


def test_all_problems_of_a_file_are_collected_and_sorted() -> None:
    text = VALID.replace("public_ip: 198.51.100.20", "public_ip: 127.0.0.1").replace(
        "environment: dev", "environment: dev\nenviroment: dev").replace(
        "name: Trust_2", "name: Trust_1")
    found = problems(text)
    assert [p.location for p in found] == [
        "enviroment", "trusts[1].name", "trusts[1].public_ip"]
    assert found == sorted(found, key=lambda p: (p.line, p.col))


def test_problem_renders_as_file_line_col_location_message() -> None:
    problem = only(VALID.replace("203.0.113.10", "10.1.2.3"), "environments/dev.yaml")
    assert str(problem) == (
        "environments/dev.yaml:14:16: trusts[0].public_ip: 10.1.2.3 is a private (RFC 1918) "
        "address; the NLB allowlist needs the trust's public egress IP")


def test_locate_walks_maps_and_lists() -> None:
    doc = load_positioned(VALID)
    assert locate(doc, ("trusts", 1, "host", "flip_root")).position == (23, 18)
    assert locate(doc, ("trusts", 1, "host", "flip_root"), anchor="key").position == (23, 7)
    assert locate(doc, ("trusts", 1, "host")).position == (21, 5)
    assert locate(doc, ("trusts", 1)).position == (16, 5)
    missing = locate(doc, ("trusts", 0, "host"))
    assert not missing.exact and missing.position == (11, 5)
    assert locate(doc, ("nope", 3)).position == (1, 1)


def test_merge_keys_fill_in_what_the_mapping_does_not_say() -> None:
    text = VALID.replace("    host:\n      connection: local\n      flip_root: /tmp/flip/Trust_2\n",
                         "    host:\n      <<: *host\n      flip_root: /tmp/flip/Trust_2\n")
    text = text.replace("trusts:\n", "trusts:\n  - &first\n    name: Trust_0\n    code: ZERO\n"
                        "    kind: on-prem\n"
                        "    public_ip: 8.8.8.8\n    fl_kit_slot: Trust_0\n"
                        "    host: &host {connection: local, user: flip}\n")
    manifest = parse_manifest(text, "environments/dev.yaml")
    host = manifest.trusts[2].host
    assert host is not None
    assert (host.connection, host.user, host.flip_root) == ("local", "flip", "/tmp/flip/Trust_2")


def test_flow_mappings_with_colons_in_values_are_yaml_1_2() -> None:
    text = VALID.replace("      connection: local\n      flip_root: /tmp/flip/Trust_2\n", "")
    text = text.replace("    host:\n", "    host: {connection: ssh, ssh_key: env:TRUST_2_KEY}\n")
    manifest = parse_manifest(text, "environments/dev.yaml")
    assert manifest.trusts[1].host is not None
    assert manifest.trusts[1].host.ssh_key == "env:TRUST_2_KEY"


def test_more_than_one_document_is_refused() -> None:
    problem = only(VALID + "---\nversion: 1\n")
    assert problem.line == 24 and "more than one YAML document" in problem.message


def test_undefined_alias_is_located() -> None:
    problem = only(VALID.replace("fl_tag: v2.3.0", "fl_tag: *nope"))
    assert problem.line == 8 and "undefined alias" in problem.message


@pytest.mark.parametrize("text", ["- " * 100_000 + "a\n", "a: " + "[" * 100_000,
                                  "".join(" " * i + "k:\n" for i in range(200))])
def test_absurd_nesting_is_refused_quickly(text: str) -> None:
    problem = only(text)
    assert "levels of nesting" in problem.message and problem.line >= 1


def test_unknown_key_in_an_optional_section_uses_that_section_model() -> None:
    problem = only(VALID.replace("      connection: local\n", "      conection: local\n"))
    assert problem.location == "trusts[1].host.conection"
    assert "did you mean 'connection'?" in problem.message
    assert (problem.line, problem.col) == (22, 7)


# -- v2: strict types say how to write the value ---------------------------------------------


def test_quoted_version_says_to_drop_the_quotes() -> None:
    problem = only(VALID.replace("version: 1", 'version: "1"'))
    assert problem.location == "version" and (problem.line, problem.col) == (1, 10)
    assert problem.message == "version must be the number 1 (write `version: 1`, without quotes)"


def test_other_versions_name_the_only_one() -> None:
    problem = only(VALID.replace("version: 1", "version: 2"))
    assert problem.message == "version must be the number 1 (write `version: 1`)"


@pytest.mark.parametrize(("word", "fix"), [('"no"', "false"), ('"yes"', "true"),
                                           ("'off'", "false"), ("no", "false"), ("On", "true")])
def test_yes_and_no_are_not_booleans(word: str, fix: str) -> None:
    text = VALID.replace("  images:", f"  database: {{deletion_protection: {word}}}\n  images:")
    problem = only(text)
    assert problem.location == "hub.database.deletion_protection"
    assert problem.message.startswith("must be true or false (unquoted)")
    assert problem.message.endswith(f"write {fix}")
    assert "Input should be" not in problem.message


def test_a_quoted_number_says_to_drop_the_quotes() -> None:
    problem = only(VALID.replace("  images:", '  fl_server: {port: "8002"}\n  images:'))
    assert problem.location == "hub.fl_server.port"
    assert problem.message == ("must be a whole number (unquoted), found the string '8002'; "
                               "write 8002")


def test_a_number_for_a_string_says_to_quote_it() -> None:
    problem = only(VALID.replace('date: "2025-06-01"', "date: 2025-06-01"))
    assert problem.location == "hub.fl_kits.date"
    assert problem.message == "must be a string, found a date; quote the value in YAML"


@pytest.mark.parametrize(("old", "new", "location", "words"), [
    ('"123456789012"', '"12345678901"', "aws.account_id", "12-digit AWS account id"),
    ("region: eu-west-2", "region: eu-west-2x", "aws.region", "an AWS region"),
    ('"2025-06-01"', '"2025-6-1"', "hub.fl_kits.date", "YYYY-MM-DD"),
])
def test_pattern_errors_say_what_the_field_is(old: str, new: str, location: str,
                                              words: str) -> None:
    found = problems(VALID.replace(old, new))
    assert [p.location for p in found] == [location]
    assert words in found[0].message and "String should match" not in found[0].message


# -- v2: input that is not what we expect ------------------------------------------------------


def test_lone_surrogate_in_a_value_is_located_and_printable() -> None:
    problem = only(VALID.replace("domain: dev.example.org", 'domain: "dev\\ud800.example.org"'))
    assert problem.location == "hub.domain" and (problem.line, problem.col) == (7, 11)
    assert "lone surrogate" in problem.message
    str(problem).encode("utf-8")


def test_lone_surrogate_in_a_key_is_located_and_printable() -> None:
    found = problems(VALID.replace("  domain: dev.example.org\n",
                                   '  domain: dev.example.org\n  "\\udc80x": 1\n'))
    assert [(p.line, p.col) for p in found] == [(8, 3)]
    assert "lone surrogate" in found[0].message
    str(found[0]).encode("utf-8")


def test_alias_bomb_inside_a_real_field_is_refused_quickly() -> None:
    lines = ["x0: &x0 {NUM_AVAILABLE_GPUS: '1'}"]
    lines += [f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]" for i in range(1, 8)]
    text = "\n".join(lines) + "\n" + VALID.replace("trusts:\n", "trusts: *x7\nunused:\n")
    started = time.perf_counter()
    problem = only(text)
    assert time.perf_counter() - started < 1
    assert "alias bomb" in problem.message and problem.line == 6


def test_shared_settings_aliased_by_many_trusts_stay_cheap() -> None:
    trust = ("  - {{name: T{i}, code: C{i:03d}, kind: tre, public_ip: 8.8.{a}.{b}, "
             "settings: *s}}\n")
    body = "".join(trust.format(i=i, a=i // 200 + 1, b=i % 200 + 1) for i in range(300))
    text = VALID.split("trusts:\n")[0] + "x: &s {NUM_AVAILABLE_GPUS: '1'}\ntrusts:\n" + body
    found = problems(text)
    assert [p.location for p in found] == ["x"], "only the unknown key, the aliases are fine"


@pytest.mark.parametrize("text", ["trusts: &a [*a]\n", "hub: &h {images: *h}\n",
                                  "a: &a {b: [1, {c: *a}]}\n"])
def test_an_alias_inside_its_own_value_is_refused(text: str) -> None:
    problem = only(text)
    assert "used inside the value it names" in problem.message and problem.line == 1


def test_text_over_the_size_limit_is_refused_before_reading_it() -> None:
    text = VALID + "# padding\n" * (MAX_MANIFEST_BYTES // 10)
    started = time.perf_counter()
    problem = only(text)
    assert time.perf_counter() - started < 1
    assert (problem.line, problem.col) == (1, 1) and "larger than the 1 MiB" in problem.message


def test_text_just_under_the_size_limit_is_read() -> None:
    padding = "#" * 99 + "\n"
    text = VALID + padding * ((MAX_MANIFEST_BYTES - len(VALID)) // 100)
    assert len(text) <= MAX_MANIFEST_BYTES
    assert isinstance(parse_manifest(text, "environments/dev.yaml"), Manifest)


def test_a_bom_is_not_a_problem() -> None:
    assert isinstance(parse_manifest("\ufeff" + VALID, "environments/dev.yaml"), Manifest)
