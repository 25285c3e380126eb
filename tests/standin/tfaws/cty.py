"""Terraform's value encoding in DynamicValue: cty's msgpack form.

Terraform's `docs/plugin-protocol/object-wire-format.md`: an object is a msgpack map keyed by
attribute name, lists and sets are arrays, maps are maps, null is nil, numbers are msgpack
ints or floats, and an *unknown* value (known only after apply) is a msgpack extension —
type 0 (or 12, cty's refined unknown, which carries refinements the stand-in ignores).
Every attribute of the schema must be present in an object, null or not.
"""

from __future__ import annotations

from typing import Any, Final

import msgpack  # type: ignore[import-untyped]


class _Unknown:
    """The one unknown value (cty does not distinguish unknowns for our purposes)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()
_UNKNOWN_EXT = 0
_REFINED_UNKNOWN_EXT = 12


class CtyError(ValueError):
    """The bytes are not a cty msgpack value."""


def _default(obj: object) -> object:
    if obj is UNKNOWN:
        return msgpack.ExtType(_UNKNOWN_EXT, b"")
    raise TypeError(f"cannot encode {type(obj).__name__} as a cty value")


def _ext(code: int, data: bytes) -> object:
    if code in (_UNKNOWN_EXT, _REFINED_UNKNOWN_EXT):
        return UNKNOWN
    raise CtyError(f"msgpack extension type {code} is not a cty value")


def dumps(value: Any) -> bytes:
    return msgpack.packb(value, default=_default, use_bin_type=True)  # type: ignore[no-any-return]


def loads(data: bytes) -> Any:
    if not data:
        return None
    try:
        return msgpack.unpackb(data, ext_hook=_ext, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise CtyError(f"not a msgpack value: {exc}") from None


def contains_unknown(value: Any) -> bool:
    if value is UNKNOWN:
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False
