"""Where, and at which ref, a workflow checks out FLIP for one environment.

    uv run --no-sync python .github/scripts/flip_checkout.py --env prod

Hosts run FLIP's `trust/` from `flip.checkout` at `flip.ref`, so plan, apply and drift need
that checkout on the runner, exactly at the manifest's ref. This writes two outputs to
$GITHUB_OUTPUT (or prints them): `path`, flip.checkout resolved from the manifest's
directory and made relative to the workspace (where actions/checkout must put it: it
refuses paths outside the workspace), and `ref`, flip.ref as written.

Unlike the other scripts here it runs in the project's environment (after `uv sync`): the
manifest is read with flipgitops' own loader, so it means the same here as in `plan`.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from gh_api import write_outputs

# What actions/checkout's `ref` input and a GITHUB_OUTPUT line can carry safely; the
# manifest's validator already holds flip.ref to git's own ref rules.
SAFE_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")


class CheckoutError(ValueError):
    pass


def checkout_of(env: str, workspace: Path) -> dict[str, str]:
    """{"path": …, "ref": …} for ``env`` (a name or a manifest path)."""
    from flipgitops.engine.manifests import load_env
    from flipgitops.errors import FlipGitopsError

    try:
        manifest, path = load_env(env)
    except FlipGitopsError as exc:
        raise CheckoutError(f"cannot read the manifest of {env}: {exc}") from None
    ref = manifest.flip.ref
    if not SAFE_REF.match(ref) or ".." in ref:
        raise CheckoutError(f"flip.ref {ref!r} of {env} cannot be checked out by the workflow")
    where = (path.resolve().parent / manifest.flip.checkout).resolve()
    root = workspace.resolve()
    try:
        rel = where.relative_to(root)
    except ValueError:
        raise CheckoutError(
            f"flip.checkout {manifest.flip.checkout!r} of {env} resolves to {where}, outside "
            f"the workspace {root}: actions/checkout can only check FLIP out inside it (e.g. "
            "checkout: ../FLIP from environments/)") from None
    if not rel.parts or rel.parts[0] == ".git":
        raise CheckoutError(f"flip.checkout {manifest.flip.checkout!r} of {env} names the "
                            "repository itself: give FLIP its own directory")
    return {"path": rel.as_posix(), "ref": ref}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True, help="environment name or manifest path")
    args = parser.parse_args(argv)
    workspace = Path(os.environ.get("GITHUB_WORKSPACE") or Path.cwd())
    try:
        outputs = checkout_of(args.env, workspace)
    except CheckoutError as exc:
        print(f"::error::{exc}", file=sys.stderr)
        return 1
    write_outputs(outputs)
    print(f"FLIP for {args.env}: londonaicentre/FLIP at {outputs['ref']} in {outputs['path']}",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
