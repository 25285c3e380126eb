"""``flipgitops plan``: load the manifest, observe, plan, render; optionally show the PR's
manifest change (``--base``) and write the JSON artifact ``apply --plan`` consumes (``--out``).

The report goes to stdout and status lines to stderr, so ``plan --format markdown > c.md``
captures only the comment.
"""

from __future__ import annotations

from pathlib import Path

from flipgitops.adapters import git as git_adapter
from flipgitops.core.manifest_change import manifest_change
from flipgitops.core.render import render_plan
from flipgitops.engine._output import Echo, write_atomic
from flipgitops.errors import ManifestError
from flipgitops.model.manifest import Manifest
from flipgitops.model.plan import Change, Plan, PlanOptions


def exit_code(plan: Plan) -> int:
    """0 no changes, 2 changes, 3 blocked by a guard (DESIGN §7)."""
    if plan.blocked:
        return 3
    return 0 if plan.is_empty else 2


def base_change(manifest: Manifest, manifest_path: Path, base: str,
                echo: Echo) -> tuple[Change, ...]:
    """The manifest change since the working tree's history left ``base`` (an add when the
    file is new), so a ``main`` that moved on meanwhile does not show up reversed."""
    from flipgitops.core.parse import parse_manifest

    root = git_adapter.repo_root(manifest_path)
    rel = git_adapter.relative_path(root, manifest_path)
    text = git_adapter.read_file_at(root, git_adapter.fork_point(root, base), rel)
    if text is None:
        echo(f"{rel} does not exist at {base}: new environment", err=True)
        return manifest_change(None, manifest)
    try:
        old = parse_manifest(text, f"{rel}@{base}")
    except ManifestError as exc:
        # The reviewed file is the working tree; a broken base must not hide its plan.
        echo(f"warning: {rel} at {base} is not a valid manifest ({len(exc.problems)} "
             "problem(s)); showing it as a new environment", err=True)
        return manifest_change(None, manifest)
    return manifest_change(old, manifest)


def run_plan(env: str, *, fmt: str, base: str | None, out: Path | None, prune: bool,
             allow: frozenset[str], fl_quiesced: bool, color: bool, echo: Echo) -> int:
    from flipgitops.core.planner import plan as make_plan
    from flipgitops.engine.manifests import load_env
    from flipgitops.engine.observe import observe

    manifest, path = load_env(env)
    change = base_change(manifest, path, base, echo) if base else None
    echo(f"observing {manifest.environment} (account {manifest.aws.account_id}, "
         f"{manifest.aws.region})...", err=True)
    observed = observe(manifest, manifest_path=path)
    options = PlanOptions(prune=prune, allow=allow, fl_quiesced=fl_quiesced)
    result = make_plan(manifest, observed, options)
    artifact = out.name if out else "plan.json"
    echo(render_plan(result, fmt, color=color, manifest_change=change, artifact_name=artifact))
    if out:
        write_atomic(out, render_plan(result, "json", manifest_change=change))
        echo(f"plan written to {out}", err=True)
    return exit_code(result)
