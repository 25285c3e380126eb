"""The read-and-decide commands (plan, drift, unlock) and apply's run, as results.

Every command that compares desired with live starts from `Wiring.observe()`; in terraform
mode `plan` (and apply's fresh plan) also runs the hub's `terraform plan` read-only so the
Terraform-plan guards judge the change before anything runs. Nothing here prints: the CLI
renders what these functions return (status lines go through the ``status`` callback).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flipgitops.core.drift import DriftReport, drift_report
from flipgitops.core.manifest_change import manifest_change
from flipgitops.core.planner import plan as make_plan
from flipgitops.engine.apply import (
    EXIT_BLOCKED,
    EXIT_DRIFT,
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    ApplyResult,
    Interrupt,
    Progress,
    Run,
    execute,
)
from flipgitops.engine.manifests import load_env
from flipgitops.engine.wiring import Wiring
from flipgitops.errors import LockHeld, ManifestError, PlanMismatch
from flipgitops.model.actions import ActionKind, TerraformParams
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Change, Plan, PlanOptions

Status = Callable[[str], None]


def exit_code(plan: Plan) -> int:
    """3 blocked by a guard; 0 in sync (nothing to do *and* nothing to report); 2 otherwise.

    A plan with no action but findings flipgitops never acts on (an advisory such as a
    missing security group or ECS service, an unmanaged trust, an unreachable host) exits 2,
    like `drift` on the same world and like `apply`, which does nothing and exits 2: none of
    the three says "no changes" while another reports drift (`Plan.in_sync` is the one rule).
    """
    if plan.blocked:
        return EXIT_BLOCKED
    return EXIT_OK if plan.in_sync else EXIT_DRIFT


@dataclass
class PlanResult:
    plan: Plan
    observed: ObservedState
    change: tuple[Change, ...] | None = None


def base_change(manifest: Manifest, manifest_path: Path, base: str,
                status: Status) -> tuple[Change, ...]:
    """The manifest change since the working tree's history left ``base`` (an add when the
    file is new), so a ``main`` that moved on meanwhile does not show up reversed."""
    from flipgitops.adapters import git as git_adapter
    from flipgitops.core.parse import parse_manifest

    root = git_adapter.repo_root(manifest_path)
    rel = git_adapter.relative_path(root, manifest_path)
    text = git_adapter.read_file_at(root, git_adapter.fork_point(root, base), rel)
    if text is None:
        status(f"{rel} does not exist at {base}: new environment")
        return manifest_change(None, manifest)
    try:
        old = parse_manifest(text, f"{rel}@{base}")
    except ManifestError as exc:
        # The reviewed file is the working tree; a broken base must not hide its plan.
        status(f"warning: {rel} at {base} is not a valid manifest ({len(exc.problems)} "
               "problem(s)); showing it as a new environment")
        return manifest_change(None, manifest)
    return manifest_change(old, manifest)


def plan_with_terraform(wiring: Wiring, observed: ObservedState, options: PlanOptions,
                        status: Status) -> Plan:
    """The plan; in terraform mode judged again with the hub Terraform's own read-only plan
    of the inputs this plan would apply."""
    first = make_plan(wiring.manifest, observed, options)
    tf = [a for a in first.actions if a.kind == ActionKind.TERRAFORM_APPLY]
    if not tf or options.terraform_plan is not None:
        return first
    status("running the hub's terraform plan (read-only, in a temporary copy of the root)...")
    plan_json = wiring.terraform_plan(tf[-1].typed(TerraformParams))
    return make_plan(wiring.manifest, observed,
                     options.model_copy(update={"terraform_plan": plan_json}))


def run_plan(env: str, *, base: str | None, prune: bool, allow: frozenset[str],
             fl_quiesced: bool, status: Status) -> PlanResult:
    manifest, path = load_env(env)
    change = base_change(manifest, path, base, status) if base else None
    wiring = Wiring.for_manifest(manifest, path)
    status(f"observing {manifest.environment} (account {manifest.aws.account_id}, "
           f"{manifest.aws.region})...")
    observed = wiring.observe(status=status)
    options = PlanOptions(prune=prune, allow=allow, fl_quiesced=fl_quiesced)
    return PlanResult(plan_with_terraform(wiring, observed, options, status), observed, change)


def run_drift(env: str, *, status: Status) -> DriftReport:
    manifest, path = load_env(env)
    wiring = Wiring.for_manifest(manifest, path)
    status(f"observing {manifest.environment}...")
    return drift_report(manifest, wiring.observe(status=status))


def run_unlock(env: str, *, lock_id: str) -> tuple[bool, str]:
    manifest, path = load_env(env)
    wiring = Wiring.for_manifest(manifest, path)
    if wiring.force_unlock(lock_id):
        return True, f"released lock {lock_id} of {manifest.environment}"
    return False, (f"lock {lock_id} is not the lock held on {manifest.environment} (already "
                   "released, or another run holds it): nothing changed")


def run_apply(env: str, *, plan_file: Path | None, allow: frozenset[str], fl_quiesced: bool,
              dry_run: bool, prune: bool, fmt: str, color: bool, interrupt: Interrupt,
              confirm: Callable[[Plan], bool] | None, echo: Callable[..., None],
              progress: Progress) -> ApplyResult:
    """Load, lock (not for a dry run), and execute; the CLI prints the result (and gives
    the progress display: the engine never decides how a person sees it)."""
    manifest, path = load_env(env)
    reviewed: tuple[Plan, Path] | None = None
    if plan_file is not None:
        reviewed = (load_reviewed(plan_file), plan_file)
    wiring = Wiring.for_manifest(manifest, path)
    options = PlanOptions(prune=prune, allow=allow, fl_quiesced=fl_quiesced)

    def status(text: str) -> None:
        echo(text, err=True)

    def observe_and_plan() -> tuple[ObservedState, Plan]:
        observed = wiring.observe(status=status)
        return observed, plan_with_terraform(wiring, observed, options, status)

    def shown(plan: Plan) -> bool:
        if fmt == "text":
            from flipgitops.core.render import render_plan

            echo(render_plan(plan, "text", color=color))
        return confirm(plan) if confirm is not None else True

    run_id: str | None = None
    try:
        if not dry_run:
            run_id = wiring.acquire_lock()
        run = Run(manifest=manifest, manifest_path=path, options=options,
                  observe_and_plan=observe_and_plan,
                  context=lambda observed, plan: wiring.context(
                      observed, plan, dry_run=dry_run, options=options, run_id=run_id,
                      interrupt=interrupt, report=progress.line),
                  journal=None if dry_run else wiring.journal(run_id),
                  progress=progress, interrupt=interrupt,
                  record_converged=wiring.record_converged, dry_run=dry_run, run_id=run_id,
                  facts_targets=None if dry_run else wiring.facts_targets,
                  remember_facts=wiring.remember_facts)
        result = execute(run, reviewed=reviewed, confirm=shown)
    except LockHeld as exc:
        return ApplyResult(manifest.environment, EXIT_LOCKED, str(exc))
    except PlanMismatch as exc:
        result = ApplyResult(manifest.environment, EXIT_FAILED, str(exc), run_id=run_id)
    finally:
        if run_id is not None:
            problem = wiring.release_lock(run_id)
            if problem:
                echo(f"warning: {problem}", err=True)
    return result


def load_reviewed(plan_file: Path) -> Plan:
    from flipgitops.core.render import PlanFileError, load_plan_json

    try:
        data = plan_file.read_bytes()
    except OSError as exc:
        raise PlanMismatch(f"cannot read the reviewed plan {plan_file}: "
                           f"{exc.strerror or type(exc).__name__}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise PlanMismatch(f"the reviewed plan {plan_file} is not a JSON plan (binary "
                           "content): pass the file `plan --out` wrote") from None
    try:
        return load_plan_json(text)
    except PlanFileError as exc:
        raise PlanMismatch(f"the reviewed plan {plan_file} cannot be used: {exc}") from None
