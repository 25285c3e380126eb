"""The JSON Schema editors use to validate manifests while they are being written.

Generated from the pydantic models so it can never disagree with the parser; a test and
`flipgitops schema --check` fail when the committed copy is stale.
"""

from __future__ import annotations

import json
from typing import Any

from flipgitops.model.manifest import Manifest

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:flipgitops:schema:flip-environment:1"  # no hosted URL exists to point at
SCHEMA_TITLE = "FLIP environment manifest (flipgitops)"


def manifest_json_schema() -> dict[str, Any]:
    """The manifest model's JSON Schema with the identifying keys editors expect."""
    body = Manifest.model_json_schema(mode="validation")
    body.pop("title", None)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": SCHEMA_TITLE,
        **body,
    }


def render_schema(schema: dict[str, Any]) -> str:
    """Byte-stable text (sorted keys, indent 2, trailing newline) so diffs are meaningful."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
