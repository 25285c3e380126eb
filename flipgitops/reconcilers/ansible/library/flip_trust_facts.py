#!/usr/bin/python
"""Facts of one FLIP trust host (ObservedHost's shape), secrets only as sha256 hex.

One invocation per host per observation: the flip_root tree, the deployed release marker and
whether the files still hash to it, the kit file (mode, owner, non-secret values, hashes of
its secrets, placeholders, sentinel, other kit files), the FL kit under <FL_KIT_DIR>/net-1,
compose project trust<N> (containers, expected config hashes), trust-api's own log lines
since its start, and the egress IP / reachability of the hub and the FL server.
"""

from __future__ import annotations

from ansible.module_utils.flipgitops_host import facts  # type: ignore[import-untyped]
from ansible.module_utils.flipgitops_host.runner import run_facts  # type: ignore[import-untyped]

DOCUMENTATION = r"""
module: flip_trust_facts
short_description: Facts about a FLIP trust host (hashes only, never secret values)
description: Run only through flipgitops (adapters/hosts.py); arguments are built in Python.
options:
  spec: {type: dict, required: true}
"""

if __name__ == "__main__":
    run_facts(facts.gather)
