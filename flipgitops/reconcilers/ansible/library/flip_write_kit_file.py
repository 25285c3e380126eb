#!/usr/bin/python
"""host.write_kit_file: FLIP's kit file trust/.env.<CODE>.<env token>, created 0600 before a
byte of it is written (scripts/trust_kit_lib.py's write_secure)."""

from __future__ import annotations

from ansible.module_utils.flipgitops_host import steps  # type: ignore[import-untyped]
from ansible.module_utils.flipgitops_host.runner import run_step  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: flip_write_kit_file
short_description: FLIP's kit file, 0600
description: Run only through flipgitops (adapters/hosts.py); arguments are built in Python.
options:
  spec: {type: dict, required: true}
  secret: {type: dict, required: true, no_log: true}
"""

if __name__ == "__main__":
    run_step(steps.write_kit_file, secret=True)
