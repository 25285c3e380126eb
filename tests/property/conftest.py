"""Hypothesis profiles: `dev` (default, quick) and `ci` (thorough, still about a minute).

Select with HYPOTHESIS_PROFILE=ci. Fuzz tests read `FUZZ_EXAMPLES` so one knob scales them.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}

settings.register_profile("ci", max_examples=2000, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("dev", max_examples=200, **_COMMON)  # type: ignore[arg-type]
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
