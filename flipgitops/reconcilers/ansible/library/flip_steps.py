#!/usr/bin/python
"""Several host steps of one trust host in one invocation (provision → … → verify), each
run only when the steps it depends on succeeded here, then (when asked) the host's facts
(module_utils runner.run_steps)."""

from __future__ import annotations

from ansible.module_utils.flipgitops_host import facts, steps  # type: ignore[import-untyped]
from ansible.module_utils.flipgitops_host.runner import run_steps  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: flip_steps
short_description: Several FLIP trust host steps in one go
description: Run only through flipgitops (adapters/hosts.py); arguments are built in Python.
options:
  steps: {type: list, elements: dict, required: true}
  secret: {type: dict, default: {}, no_log: true}
  facts: {type: dict, required: false}
"""

if __name__ == "__main__":
    run_steps(steps.STEPS, facts.gather)
