#!/usr/bin/python
"""host.verify: wait (bounded) until trust-api logs FLIP's 'Authenticated to hub as trust'
line for this trust since its start; fail with its 401 / heartbeat lines otherwise."""

from __future__ import annotations

from ansible.module_utils.flipgitops_host import steps  # type: ignore[import-untyped]
from ansible.module_utils.flipgitops_host.runner import run_step  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: flip_verify
short_description: trust-api authenticated
description: Run only through flipgitops (adapters/hosts.py); arguments are built in Python.
options:
  spec: {type: dict, required: true}
"""

if __name__ == "__main__":
    run_step(steps.verify)
