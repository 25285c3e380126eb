"""The generated JSON Schema, its committed copy, and write/check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from flipgitops.core import schema as schema_core
from flipgitops.core.schema import manifest_json_schema, render_schema
from flipgitops.engine.manifests import write_or_check_schema
from flipgitops.model.manifest import Manifest

REPO_ROOT = Path(__file__).resolve().parents[2]
COMMITTED = REPO_ROOT / "schemas" / "flip-environment.schema.json"


def test_schema_identifies_itself() -> None:
    schema = manifest_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] and schema["title"]
    assert list(schema)[:3] == ["$schema", "$id", "title"]


def test_schema_is_strict_like_the_parser() -> None:
    schema = manifest_json_schema()
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"version", "environment", "aws", "state", "flip", "hub"}
    for name, definition in schema["$defs"].items():
        if definition.get("type") == "object" and "properties" in definition:
            assert definition.get("additionalProperties") is False, name


def test_rendering_is_stable_and_sorted() -> None:
    text = render_schema(manifest_json_schema())
    assert text == render_schema(manifest_json_schema())
    assert text.endswith("}\n") and not text.endswith("\n\n")
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def test_committed_schema_is_current() -> None:
    assert COMMITTED.read_text() == render_schema(manifest_json_schema()), (
        "schemas/flip-environment.schema.json is stale: run `flipgitops schema`")


def test_check_passes_on_the_committed_file() -> None:
    ok, message = write_or_check_schema(COMMITTED, check=True)
    assert ok, message


def test_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "schema.json"
    schema = manifest_json_schema()
    schema["properties"].pop("policy")
    stale.write_text(render_schema(schema))
    ok, message = write_or_check_schema(stale, check=True)
    assert not ok and "stale" in message and "flipgitops schema" in message


def test_check_fails_on_a_missing_file(tmp_path: Path) -> None:
    ok, message = write_or_check_schema(tmp_path / "nope.json", check=True)
    assert not ok and "missing" in message


def test_check_fails_when_the_model_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    class Changed(Manifest):
        owner: str = "someone"

    monkeypatch.setattr(schema_core, "Manifest", Changed)
    ok, message = write_or_check_schema(COMMITTED, check=True)
    assert not ok and "stale" in message


def test_write_then_check(tmp_path: Path) -> None:
    target = tmp_path / "schemas" / "flip-environment.schema.json"
    ok, message = write_or_check_schema(target, check=False)
    assert ok and message == f"wrote {target}"
    assert write_or_check_schema(target, check=True)[0]
    ok, message = write_or_check_schema(target, check=False)
    assert ok and "already up to date" in message


def test_write_reports_an_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    ok, message = write_or_check_schema(blocker / "schema.json", check=False)
    assert not ok and message.startswith("cannot write")


@pytest.mark.parametrize("path", ["environments/stag.yaml", "environments/prod.yaml",
                                  "tests/fixtures/dev.yaml"])
def test_shipped_environments_satisfy_the_schema(path: str) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = YAML(typ="safe").load((REPO_ROOT / path).read_text())
    jsonschema.Draft202012Validator(manifest_json_schema()).validate(data)


def test_schema_rejects_a_misspelled_key() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = YAML(typ="safe").load((REPO_ROOT / "environments" / "prod.yaml").read_text())
    data["hub"]["database"]["deletion_protecton"] = True
    validator = jsonschema.Draft202012Validator(manifest_json_schema())
    assert not validator.is_valid(data)


def _prod() -> dict[str, Any]:
    data: dict[str, Any] = YAML(typ="safe").load(
        (REPO_ROOT / "environments" / "prod.yaml").read_text())
    return data


@pytest.mark.parametrize(
    ("path", "value"),
    [(("trusts", 0, "name"), "Trust_1\n"), (("trusts", 0, "name"), "1Trust"),
     (("trusts", 0, "code"), "GSTT\n"), (("trusts", 0, "code"), "gstt"),
     (("trusts", 0, "fl_kit_slot"), "../x"), (("environment",), "prod\n"),
     (("trusts", 0, "host", "ssh_key"), "~/.ssh/id_ed25519"),
     (("trusts", 0, "host", "become_password"), "hunter2"), (("hub", "admin_token"), "t0ken"),
     (("trusts", 0, "settings", "TRUST_API_KEY"), "x"),
     (("trusts", 1, "credentials", "XNAT_ADMIN_PASSWORD"), "hunter2"),
     (("trusts", 1, "credentials", "TRUST_API_KEY"), "env:X")],
)
def test_editor_hints_flag_what_the_parser_refuses(path: tuple[Any, ...], value: str) -> None:
    """The schema's patterns and key lists come from core/validate.py and model/flip.py;
    a Python validator's `$` matches before a trailing newline, so these must not rely on it."""
    jsonschema = pytest.importorskip("jsonschema")
    data = _prod()
    validator = jsonschema.Draft202012Validator(manifest_json_schema())
    assert validator.is_valid(data)
    parent: Any = data
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    assert not validator.is_valid(data)
