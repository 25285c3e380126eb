#!/usr/bin/python
"""host.provision: Docker + compose (apt, ssh hosts only), FLIP's flip_root tree and owners
(flip_trust_dirs), swarm init and the trust's overlay network (create-networks)."""

from __future__ import annotations

from ansible.module_utils.flipgitops_host import steps  # type: ignore[import-untyped]
from ansible.module_utils.flipgitops_host.runner import run_step  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: flip_provision
short_description: FLIP trust host provisioning
description: Run only through flipgitops (adapters/hosts.py); arguments are built in Python.
options:
  spec: {type: dict, required: true}
"""

if __name__ == "__main__":
    run_step(steps.provision)
