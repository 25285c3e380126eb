"""Masking secret values in what a host program returns (what AnsibleModule's ``no_log``
did), scrubbing them from a message, and walking a value's string leaves; the controller's
masking (adapters/hosts.py `_mask`) uses the last two too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

MASK = "********"
# Result keys that go to the controller over the channel only, never masked (they ARE the
# secret values a step read for it) and never back to Ansible (the action plugin).
CHANNEL_ONLY = ("secrets",)
# Shorter leaves are not masked (the controller's rule too, adapters/hosts.py `_mask`).
MIN_MASKED = 4
SCRUBBED = "****"


def secret_values(secret: Any) -> list[str]:
    """The strings to mask: the leaves of ``secret``, as AnsibleModule's ``no_log`` did (a
    `steps` run's parts are one JSON string each, so one step's non-secret leaves, an FL
    kit file's mode, never blank another step's message)."""
    return sorted({s for s in leaves(secret) if len(s) >= MIN_MASKED}, key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret value in it replaced, the longest first (so a value that
    contains another is replaced whole); values shorter than `MIN_MASKED` are left."""
    for value in sorted({s for s in secrets if len(s) >= MIN_MASKED}, key=len, reverse=True):
        text = text.replace(value, SCRUBBED)
    return text


def mask(value: Any, secrets: list[str]) -> Any:
    """``value`` with every occurrence of each of ``secrets`` in its strings replaced."""
    if not secrets:
        return value
    if isinstance(value, str):
        for s in secrets:
            value = value.replace(s, MASK)
        return value
    if isinstance(value, dict):
        return {k: mask(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask(v, secrets) for v in value]
    return value


def leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from leaves(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from leaves(v)
