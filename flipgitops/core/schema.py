"""The JSON Schema editors use to validate manifests while they are being written.

Generated from the pydantic models so it can never disagree with the parser; a test and
`flipgitops schema --check` fail when the committed copy is stale. The document rules of
`core/validate.py` that are about one value's form (trust names and codes, references,
the settings and credentials keys) are added as editor hints from the same compiled
patterns and key lists, so an editor flags them while typing; the parser stays the judge.
"""

from __future__ import annotations

import json
import re
from typing import Any

from flipgitops.core import validate
from flipgitops.model import flip
from flipgitops.model.kit import LOCAL_CREDENTIAL_KEYS
from flipgitops.model.manifest import Manifest

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:flipgitops:schema:flip-environment:1"  # no hosted URL exists to point at
SCHEMA_TITLE = "FLIP environment manifest (flipgitops)"


def manifest_json_schema() -> dict[str, Any]:
    """The manifest model's JSON Schema with the identifying keys editors expect."""
    body = Manifest.model_json_schema(mode="validation")
    body.pop("title", None)
    _add_editor_hints(body)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": SCHEMA_TITLE,
        **body,
    }


def _whole(*patterns: re.Pattern[str]) -> str:
    """Full-match patterns as one JSON Schema pattern. `(?![\\s\\S])` ends the value in
    both ECMAScript and Python's re (validators written in Python let `$` match before a
    trailing newline, and a trailing newline is not part of a valid name)."""
    return "^(?:" + "|".join(p.pattern for p in patterns) + ")(?![\\s\\S])"


def _string_hint(prop: dict[str, Any], **hint: Any) -> None:
    """Add `hint` to a string property, or to the string branch of an optional one."""
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == "string":
            branch.update(hint)


def _add_editor_hints(body: dict[str, Any]) -> None:
    defs = body["$defs"]
    trust, host, hub = (defs[n]["properties"] for n in ("Trust", "Host", "Hub"))
    reference = _whole(*validate.REFERENCE_RES)
    _string_hint(body["properties"]["environment"], pattern=_whole(validate.NAME_RE))
    _string_hint(trust["name"], pattern=_whole(validate.NAME_RE))
    _string_hint(trust["fl_kit_slot"], pattern=_whole(validate.NAME_RE))
    _string_hint(trust["code"], pattern=_whole(validate.CODE_RE))
    for prop in (host["ssh_key"], host["become_password"], hub["admin_token"]):
        _string_hint(prop, pattern=reference)
    trust["settings"]["propertyNames"] = {"enum": sorted(flip.KIT_FILE_SETTINGS_KEYS)}
    trust["credentials"]["propertyNames"] = {"enum": list(LOCAL_CREDENTIAL_KEYS)}
    trust["credentials"]["additionalProperties"] = {"type": "string", "pattern": reference}


def render_schema(schema: dict[str, Any]) -> str:
    """Byte-stable text (sorted keys, indent 2, trailing newline) so diffs are meaningful."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
