#!/usr/bin/python
"""adopt: the secret values of FLIP's kit file trust/.env.<CODE>.<env token> that flipgitops
escrows (the trust's keys and its trust-local credentials), for the controller only.

The values leave this module in its result under `secrets`; the `flipgitops_step` action
plugin passes that key to the flipgitops process over the run's in-memory channel and never
returns it to Ansible (the task is also `no_log`). The module changes nothing on the host.
"""

from __future__ import annotations

from ansible.module_utils.flipgitops_host import steps  # type: ignore[import-untyped]
from ansible.module_utils.flipgitops_host.runner import run_read  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: flip_read_kit_secrets
short_description: Read the kit file's secret values for the controller (adopt)
description: Run only through flipgitops (adapters/hosts.py); arguments are built in Python.
options:
  spec: {type: dict, required: true}
"""

if __name__ == "__main__":
    run_read(steps.read_kit_secrets)
