"""FLIP's kit file as its readers see it: the one reader, for the hosts and the controller.

`KEY=value` lines, an optional `export ` prefix, `#` comments, surrounding quotes dropped as
compose's env-file reader drops them; the last assignment wins. The sentinel line and the
placeholder prefix come from the controller (model/flip.py is their home).
"""

from __future__ import annotations


def env_file_value(raw: str) -> str:
    value = raw.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def parse(text: str, sentinel: str, placeholder_prefix: str
          ) -> tuple[dict[str, str], list[str], list[str], bool]:
    """(values, keys in order, placeholder keys, has sentinel)."""
    values: dict[str, str] = {}
    order: list[str] = []
    has_sentinel = False
    for raw in text.splitlines():
        line = raw.strip()
        if line == sentinel:
            has_sentinel = True
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export "):].strip()
        if key not in values:
            order.append(key)
        values[key] = env_file_value(value)
    placeholders = [k for k in order if values[k].startswith(placeholder_prefix)]
    return values, order, placeholders, has_sentinel
