#!/usr/bin/python
"""host.start_stack: trust/Makefile's up-trust (or up-trust-ec2) invocation, run in
<flip_root>/trust with the kit file."""

from __future__ import annotations

from ansible.module_utils.flipgitops_host import steps  # type: ignore[import-untyped]
from ansible.module_utils.flipgitops_host.runner import run_step  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: flip_start_stack
short_description: FLIP's up-trust
description: Run only through flipgitops (adapters/hosts.py); arguments are built in Python.
options:
  spec: {type: dict, required: true}
"""

if __name__ == "__main__":
    run_step(steps.start_stack)
