#!/usr/bin/python
"""host.deploy_release: FLIP's tracked trust/ files at flip.ref into <flip_root>/trust, the files
of the previous release that this one dropped removed, untracked files left alone; the
release marker; observability config copied (flip_observability_config)."""

from __future__ import annotations

from ansible.module_utils.flipgitops_host import steps  # type: ignore[import-untyped]
from ansible.module_utils.flipgitops_host.runner import run_step  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: flip_deploy_release
short_description: FLIP's trust/ at a ref
description: Run only through flipgitops (adapters/hosts.py); arguments are built in Python.
options:
  spec: {type: dict, required: true}
"""

if __name__ == "__main__":
    run_step(steps.deploy_release)
