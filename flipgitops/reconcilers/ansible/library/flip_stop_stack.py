#!/usr/bin/python
"""host.stop_stack: trust/Makefile's down-trust (down --remove-orphans)."""

from __future__ import annotations

from ansible.module_utils.flipgitops_host import steps  # type: ignore[import-untyped]
from ansible.module_utils.flipgitops_host.runner import run_step  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: flip_stop_stack
short_description: FLIP's down-trust
description: Run only through flipgitops (adapters/hosts.py); arguments are built in Python.
options:
  spec: {type: dict, required: true}
"""

if __name__ == "__main__":
    run_step(steps.stop_stack)
