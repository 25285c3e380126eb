"""One reader for flipgitops' JSON-valued environment variables.

``FLIPGITOPS_ENDPOINTS`` and ``FLIPGITOPS_WAITS`` are both a JSON object whose keys we know.
A malformed value must stop the run with the variable's name and an example of a good value,
never fall back in silence (a test that silently talks to the real hub, a wait that silently
takes FLIP's 20 minutes). The steps are the same for every such variable, so they live here;
each caller checks its own values.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from flipgitops.errors import AdapterError


def json_object_env(name: str, text: str | None, known: Sequence[str], *, example: str,
                    unset_means: str, error: type[AdapterError] = AdapterError
                    ) -> dict[str, Any] | None:
    """The object ``text`` holds, or None when it is unset or blank.

    Raises ``error`` naming ``name`` when ``text`` is not JSON, not an object, or has a key
    outside ``known``. ``example`` is a good value; ``unset_means`` says what unsetting the
    variable gives (both end up in the message, so the fix is in the error)."""
    if text is None or not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise error(f"{name} is not valid JSON; expected an object such as {example}, "
                    f"or unset it for {unset_means}") from None
    if not isinstance(data, dict):
        raise error(f"{name} must be a JSON object, not {type(data).__name__}; e.g. {example}")
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise error(f"{name} has unknown keys {', '.join(map(repr, unknown))}; "
                    f"known: {', '.join(known)}")
    return data
