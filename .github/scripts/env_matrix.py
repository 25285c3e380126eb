"""Turn a list of environments into a CI matrix (a compact JSON array on stdout).

    env_matrix.py --changed-json changed.json   # output of `flipgitops changed --format json`
    env_matrix.py --all environments            # every environments/*.yaml (drift)

Names are checked because they end up in job names, artifact names and variable names
(FLIPGITOPS_ROLE_ARN_<ENV>), which allow letters, digits and underscores only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")


class MatrixError(ValueError):
    pass


def from_changed(data: Any) -> list[str]:
    """Accept `{"environments": [...]}` (flipgitops changed) or a bare list."""
    envs = data.get("environments") if isinstance(data, dict) else data
    if not isinstance(envs, list) or not all(isinstance(e, str) for e in envs):
        raise MatrixError("expected {\"environments\": [names]} from flipgitops changed")
    return checked(envs)


def from_dir(directory: Path) -> list[str]:
    return checked([p.stem for p in directory.glob("*.yaml")])


def checked(envs: list[str]) -> list[str]:
    bad = [e for e in envs if not NAME.match(e)]
    if bad:
        raise MatrixError(f"environment names must match {NAME.pattern}: {bad}")
    return sorted(set(envs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--changed-json", type=Path)
    group.add_argument("--all", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    try:
        if args.changed_json:
            envs = from_changed(json.loads(args.changed_json.read_text(encoding="utf-8")))
        else:
            envs = from_dir(args.all)
    except (MatrixError, ValueError) as exc:
        print(f"::error::{exc}", file=sys.stderr)
        return 1
    print(json.dumps(envs, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
