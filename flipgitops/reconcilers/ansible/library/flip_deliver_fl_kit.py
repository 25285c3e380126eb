#!/usr/bin/python
"""host.deliver_fl_kit: flip_fl_kit/tasks/s3.yml's semantics: net-1 wiped, the slot's slice
written (owner uid 1000, keys private), local/ and transfer/ recreated, then flipgitops'
delivery record (outside the kit tree)."""

from __future__ import annotations

from ansible.module_utils.flipgitops_host import steps  # type: ignore[import-untyped]
from ansible.module_utils.flipgitops_host.runner import run_step  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: flip_deliver_fl_kit
short_description: the slot's FL participant kit
description: Run only through flipgitops (adapters/hosts.py); arguments are built in Python.
options:
  spec: {type: dict, required: true}
  secret: {type: dict, required: true, no_log: true}
"""

if __name__ == "__main__":
    run_step(steps.deliver_fl_kit, secret=True)
