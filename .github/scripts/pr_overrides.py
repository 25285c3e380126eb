"""Guard overrides a pull request asks for, from its labels.

Overridable guards (FG007, FG008, ...) block a plan until a person overrides them; in CI that
person speaks through the pull request's labels, so the plan posted for review shows the
findings as overridden and the apply after the merge gives the very same overrides (flipgitops
refuses a reviewed plan applied with overrides its review did not show):

    flipgitops:allow-FG008     ->  --allow FG008
    flipgitops:fl-quiesced     ->  --fl-quiesced   (no FL training runs: FG007)

Any other ``flipgitops:`` label is an error naming the two forms; whether a guard may be
overridden at all is flipgitops' own check (`--allow` exits 64 for one that may not).

    pr_overrides.py --labels-json '[{"name": "flipgitops:allow-FG008"}]'

writes ``flags`` (the options, space-separated, one line) to $GITHUB_OUTPUT.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from typing import Any

from gh_api import write_outputs

PREFIX = "flipgitops:"
_ALLOW = re.compile(r"flipgitops:allow-(FG\d{3})")
QUIESCED = "flipgitops:fl-quiesced"


class LabelError(ValueError):
    """A ``flipgitops:`` label that names no override."""


def label_names(labels: Any) -> list[str]:
    """Names from GitHub's label objects (``[{"name": ...}]``) or plain strings."""
    if not isinstance(labels, list):
        raise LabelError("labels must be a JSON list")
    return [str(x.get("name", "")) if isinstance(x, dict) else str(x) for x in labels]


def overrides(names: list[str]) -> list[str]:
    """The flipgitops options the labels ask for, sorted and without repeats."""
    allow: set[str] = set()
    quiesced = False
    for name in names:
        if not name.startswith(PREFIX):
            continue
        match = _ALLOW.fullmatch(name)
        if match:
            allow.add(match.group(1))
        elif name == QUIESCED:
            quiesced = True
        else:
            raise LabelError(f"label {name!r} names no override: use {PREFIX}allow-FG0NN "
                             f"or {QUIESCED}")
    flags = [part for guard in sorted(allow) for part in ("--allow", guard)]
    return [*flags, "--fl-quiesced"] if quiesced else flags


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels-json", required=True)
    args = parser.parse_args(argv)
    try:
        flags = overrides(label_names(json.loads(args.labels_json)))
    except (ValueError, LabelError) as exc:
        print(f"::error::{exc}", file=sys.stderr)
        return 1
    write_outputs({"flags": " ".join(flags)})
    print(f"overrides from the labels: {' '.join(flags) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
