"""How often flipgitops' own processes run CPython's cyclic garbage collector.

A command is one short-lived process that builds a few hundred thousand objects once it
starts and keeps them to its exit: botocore's service models and client classes, pydantic's
schemas, the modules each command imports when it runs. CPython's default thresholds
(700, 10, 10) walked them in ~300 collections per command: 15-20 % of the start-up CPU on
this project's 2-core machine (those imports and ten AWS clients: 1.47-1.67 CPU-s with the
defaults, 1.16-1.33 with these). What a command makes holds few cycles, so it collects
rarely; the memory a cycle holds is freed at the next collection or at exit.

The CLI (`flipgitops.cli.main`), the host program's bootstrap (sent to it by
reconcilers/ansible/host_program.py), the tests' workers (tests/conftest.py) and the
sandbox's stand-in container-CLI server (before it forks) set them.
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (100_000, 50, 100)


def collect_rarely() -> None:
    """This process's collector runs after 100,000 net allocations, not 700."""
    gc.set_threshold(*GC_THRESHOLDS)
