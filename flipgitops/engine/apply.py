"""apply: lock the environment, execute the plan wave by wave, journal it, re-observe.

Why it is shaped like this:
- The lock is taken *before* observing, so the plan we execute is computed while no other run
  can change the world (Terraform does the same with its state lock).
- Every action is journaled (start / finish / failure) before and after it runs, so a crashed
  run leaves a record of how far it got. Recovery does not read the journal though:
  reconciliation is level-based, so a rerun re-observes and plans only what is still missing.
- A failed action only stops what depends on it (transitively): everything else in the
  plan still runs, so one trust's broken host does not hold back the other trusts. The
  dependents are reported (and journaled) as not run, naming the failure behind them.
- Converged means a fresh observation plans nothing; only then is the applied revision
  recorded.

Test hook: ``FLIPGITOPS_FAULT_EXIT_AFTER=N`` makes the process ``os._exit(75)`` right after
the N-th action finishes (journal written, lock *not* released), exactly like a killed CI
runner. The reliability suite uses it to crash at every action boundary.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flipgitops.engine.executors import ApplyContext, Outcome, executor_for

if TYPE_CHECKING:
    from flipgitops.adapters.aws_actions import AwsActions
    from flipgitops.adapters.aws_session import Clients
    from flipgitops.adapters.state_store import Journal
from flipgitops.engine.progress import Progress, make_progress
from flipgitops.errors import FlipGitopsError, GuardBlocked, LockHeld, PlanMismatch
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import FORMAT_VERSION, Action, Plan, PlanOptions

log = logging.getLogger(__name__)

Echo = Callable[..., None]
Confirm = Callable[[Plan], bool]

FAULT_ENV = "FLIPGITOPS_FAULT_EXIT_AFTER"
FAULT_EXIT_CODE = 75

EXIT_OK, EXIT_FAILED, EXIT_BLOCKED, EXIT_LOCKED = 0, 1, 3, 4


@dataclass
class ApplyResult:
    environment: str
    exit_code: int
    message: str
    dry_run: bool = False
    run_id: str | None = None
    plan: Plan | None = None
    completed: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    not_run: list[str] = field(default_factory=list)
    not_run_reasons: dict[str, str] = field(default_factory=dict)  # id -> why it did not run
    remaining: list[str] = field(default_factory=list)
    guard_blocked: list[str] = field(default_factory=list)  # failed: refused by a guard
    converged: bool = False
    commit: str | None = None

    def to_json(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "format_version": FORMAT_VERSION,
            "environment": self.environment,
            "exit_code": self.exit_code,
            "message": self.message,
            "dry_run": self.dry_run,
            "run_id": self.run_id,
            "fingerprint": plan.fingerprint if plan else None,
            "commit": self.commit,
            "converged": self.converged,
            "completed": self.completed,
            "failed": [{"id": k, "message": v, "blocked": k in self.guard_blocked}
                       for k, v in self.failed.items()],
            "not_run": self.not_run,
            "not_run_reasons": {k: self.not_run_reasons[k] for k in self.not_run
                                if k in self.not_run_reasons},
            "remaining": self.remaining,
            "violations": [v.model_dump(mode="json") for v in plan.violations] if plan else [],
        }


class _FaultHook:
    """Counts finished actions; exits hard after the N-th when the test hook is set."""

    def __init__(self) -> None:
        raw = os.environ.get(FAULT_ENV, "").strip()
        self.limit = int(raw) if raw.isdigit() and int(raw) > 0 else None
        self.count = 0

    def action_finished(self) -> None:
        self.count += 1
        if self.limit is not None and self.count >= self.limit:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(FAULT_EXIT_CODE)


def holder() -> dict[str, Any]:
    """Who holds the lock, in terms an operator can act on (the LockHeld message shows it)."""
    who: dict[str, Any] = {"who": f"{getpass.getuser()}@{socket.gethostname()}",
                           "pid": os.getpid()}
    run = os.environ.get("GITHUB_RUN_ID")
    if run:
        who["ci_run"] = f"{os.environ.get('GITHUB_REPOSITORY', '')}#{run}"
    return who


# --- adapter seams (one place to follow their interfaces) ----------------------------------


def _observe_and_plan(
    manifest: Manifest, manifest_path: Path, options: PlanOptions, clients: Clients
) -> tuple[ObservedState, Plan]:
    from flipgitops.core.planner import plan as make_plan
    from flipgitops.engine.observe import observe

    observed = observe(manifest, manifest_path=manifest_path, hosts=True, clients=clients)
    return observed, make_plan(manifest, observed, options)


def _aws_actions(manifest: Manifest, clients: Clients) -> AwsActions:
    from flipgitops.adapters.aws_actions import AwsActions

    return AwsActions(manifest, clients)


def _head_commit(manifest_path: Path) -> str | None:
    from flipgitops.adapters.git import head_commit

    return head_commit(manifest_path.resolve().parent)


# --- the run -------------------------------------------------------------------------------


def apply(
    manifest: Manifest,
    manifest_path: Path,
    options: PlanOptions,
    *,
    plan_file: Path | None = None,
    dry_run: bool = False,
    confirm: Confirm | None = None,
    echo: Echo,
    fmt: str = "text",
    color: bool = False,
    clients: Clients | None = None,
) -> ApplyResult:
    """Converge ``manifest``'s environment. ``confirm`` None means already confirmed (--yes)."""
    from flipgitops.adapters.aws_session import as_clients

    env = manifest.environment
    clients = clients if clients is not None else as_clients(None, manifest.aws.region)
    if dry_run:
        return _run(manifest, manifest_path, options, None, plan_file=plan_file, dry_run=True,
                    confirm=None, echo=echo, fmt=fmt, color=color, clients=clients)

    from flipgitops.adapters import state_store

    run_id = state_store.acquire_lock(manifest, holder(), clients=clients)
    try:
        return _run(manifest, manifest_path, options, run_id, plan_file=plan_file,
                    dry_run=False, confirm=confirm, echo=echo, fmt=fmt, color=color,
                    clients=clients)
    finally:
        try:
            state_store.release_lock(manifest, run_id, clients=clients)
        except FlipGitopsError as exc:
            echo(f"warning: could not release lock {run_id} of {env}: {exc}; "
                 f"run `flipgitops unlock --env {env} --lock-id {run_id}`", err=True)


def _run(
    manifest: Manifest,
    manifest_path: Path,
    options: PlanOptions,
    run_id: str | None,
    *,
    plan_file: Path | None,
    dry_run: bool,
    confirm: Confirm | None,
    echo: Echo,
    fmt: str,
    color: bool,
    clients: Clients,
) -> ApplyResult:
    from flipgitops.core.render import render_plan

    env = manifest.environment
    observed, fresh = _observe_and_plan(manifest, manifest_path, options, clients)
    # Only a converged run writes the allowlist record, and this run holds the lock: what
    # the first observation read is still the record to carry over.
    owners = observed.hub.allowlist.recorded_owners
    result = ApplyResult(env, EXIT_OK, "", dry_run=dry_run, run_id=run_id, plan=fresh)

    if plan_file is not None:
        _check_reviewed(plan_file, fresh)
    if fresh.blocked:
        if fmt == "text":
            echo(render_plan(fresh, "text", color=color))
        blocking = sorted({v.guard for v in fresh.violations if not v.allowed})
        result.exit_code = EXIT_BLOCKED
        result.message = (f"blocked by {', '.join(blocking)}: nothing was changed "
                          "(see how to proceed above)")
        result.not_run = [a.id for a in fresh.actions]
        return result
    if fresh.is_empty:
        result.converged = True
        result.message = "no changes: live state already matches the manifest"
        if not dry_run:
            result.commit = _record_applied(manifest, manifest_path, fresh, clients, owners)
        return result

    if fmt == "text":
        echo(render_plan(fresh, "text", color=color))
    if confirm is not None and not confirm(fresh):
        result.exit_code = EXIT_FAILED
        result.message = "apply cancelled: nothing was changed"
        result.not_run = [a.id for a in fresh.actions]
        return result

    ctx = ApplyContext(manifest=manifest, manifest_dir=manifest_path.resolve().parent,
                       aws=_aws_actions(manifest, clients), echo=echo, dry_run=dry_run,
                       allow=options.allow, fl_quiesced=options.fl_quiesced)
    progress = make_progress(echo, machine_output=fmt == "json")
    journal = None if dry_run else _open_journal(manifest, run_id, clients)
    if journal is not None:
        journal.event("run.start", fingerprint=fresh.fingerprint, actions=len(fresh.actions),
                      waves=len(fresh.waves), allow=sorted(options.allow) or None)
    try:
        _execute(fresh, ctx, progress, journal, result)
    finally:
        progress.close()
    if not dry_run and not result.failed:
        _, again = _observe_and_plan(manifest, manifest_path, options, clients)
        result.remaining = [a.id for a in again.actions]
    _conclude(manifest, manifest_path, fresh, result, clients, owners)
    if journal is not None:
        journal.event("run.end", exit_code=result.exit_code, converged=result.converged,
                      completed=len(result.completed), failed=sorted(result.failed) or None,
                      not_run=sorted(result.not_run) or None,
                      remaining=result.remaining or None)
        journal.close()
    return result


def _conclude(manifest: Manifest, manifest_path: Path, fresh: Plan, result: ApplyResult,
              clients: Clients, owners: dict[str, str]) -> None:
    """Exit code and message from what ran and what a fresh plan still wants."""
    if result.failed and set(result.failed) <= set(result.guard_blocked):
        result.exit_code = EXIT_BLOCKED
        result.message = (f"blocked at apply time by a guard on the hub Terraform's plan "
                          f"({', '.join(sorted(result.failed))}); {len(result.completed)} "
                          f"action(s) completed, {len(result.not_run)} not run. Proceed as "
                          "the guard says and rerun apply")
    elif result.failed:
        result.exit_code = EXIT_FAILED
        result.message = (f"{len(result.failed)} action(s) failed; {len(result.completed)} "
                          f"completed, {len(result.not_run)} not run. Fix the cause and rerun "
                          "apply: it re-observes and plans only what is still missing")
    elif result.dry_run:
        result.message = (f"dry run: {len(result.completed)} action(s) would run; "
                          "nothing was changed")
    elif result.remaining:
        result.exit_code = EXIT_FAILED
        result.message = ("applied, but not converged: a fresh plan still has "
                          f"{len(result.remaining)} action(s): " + ", ".join(result.remaining))
    else:
        result.converged = True
        result.commit = _record_applied(manifest, manifest_path, fresh, clients, owners)
        result.message = f"converged: {len(result.completed)} action(s) applied"


def _check_reviewed(plan_file: Path, fresh: Plan) -> None:
    from flipgitops.core.render import PlanFileError, load_plan_json

    try:
        reviewed = load_plan_json(plan_file.read_text(encoding="utf-8"))
    except (OSError, PlanFileError) as exc:
        raise PlanMismatch(f"cannot read the reviewed plan {plan_file}: {exc}") from None
    if reviewed.environment != fresh.environment:
        raise PlanMismatch(
            f"{plan_file} is a plan for {reviewed.environment}, not {fresh.environment}"
        )
    if reviewed.fingerprint != fresh.fingerprint:
        raise PlanMismatch(
            f"the reviewed plan {plan_file} is stale: live state or the manifest changed since "
            f"it was made (reviewed {reviewed.fingerprint[:19]}, now {fresh.fingerprint[:19]}). "
            "Nothing was changed; run plan again, review it and apply the new plan"
        )


def _record_applied(
    manifest: Manifest, manifest_path: Path, plan: Plan, clients: Clients,
    owners: dict[str, str],
) -> str | None:
    """The applied record; with a Terraform-owned allowlist also the allowlist record,
    built from ``owners`` (the record this run observed) and the manifest."""
    from flipgitops.adapters import state_store

    commit = _head_commit(manifest_path)
    state_store.write_applied(manifest, commit, plan.fingerprint, clients=clients)
    if manifest.hub.fl_server.allowlist == "terraform":
        from flipgitops.core.diff import terraform_owner_record

        state_store.write_allowlist_owners(
            manifest, terraform_owner_record(manifest, owners), clients=clients)
    return commit


def _open_journal(manifest: Manifest, run_id: str | None, clients: Clients) -> Journal:
    from flipgitops.adapters.state_store import Journal

    return Journal(manifest, run_id, clients=clients)


def _execute(plan: Plan, ctx: ApplyContext, progress: Progress, journal: Journal | None,
             result: ApplyResult) -> None:
    """Run every action none of whose (transitive) dependencies failed.

    A failure only takes its dependents down: one trust's broken host must not stop the
    other trusts' host chains, which share nothing with it but the hub steps before them.
    Waves come from the dependency graph alone, so an action's dependencies have always
    been decided (run, failed or skipped) by the time its wave starts.
    """
    fault = _FaultHook()
    total = len(plan.waves)
    blocked_by: dict[str, tuple[str, ...]] = {}  # skipped action -> failed actions behind it
    for index, wave in enumerate(plan.waves, start=1):
        runnable: list[Action] = []
        for action in (plan.action(i) for i in wave):
            culprits = _failed_behind(action, result.failed, blocked_by)
            if culprits:
                blocked_by[action.id] = culprits
                _skip(action, culprits, journal, result)
            else:
                runnable.append(action)
        if not runnable:
            continue
        progress.start_wave(index, total, runnable)
        for group in _groups(runnable):
            for action in group:
                progress.started(action)
                if journal is not None:
                    journal.start(action)
            outcomes = _run_group(ctx, group)
            for action in group:
                outcome = outcomes.get(action.id, Outcome(False, False, "not executed"))
                if outcome.ok:
                    result.completed.append(action.id)
                    if journal is not None:
                        journal.finish(action, changed=outcome.changed, message=outcome.message)
                else:
                    result.failed[action.id] = outcome.message
                    if outcome.blocked:
                        result.guard_blocked.append(action.id)
                    if journal is not None:
                        journal.failure(action, outcome.message)
                progress.finished(action, outcome.ok, outcome.message)
                if not ctx.dry_run:
                    fault.action_finished()


def _failed_behind(action: Action, failed: dict[str, str],
                   blocked_by: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    """The failed actions ``action`` transitively depends on (sorted; empty: it may run)."""
    culprits: set[str] = set()
    for dep in action.depends_on:
        if dep in failed:
            culprits.add(dep)
        culprits.update(blocked_by.get(dep, ()))
    return tuple(sorted(culprits))


def _skip(action: Action, culprits: tuple[str, ...], journal: Journal | None,
          result: ApplyResult) -> None:
    reason = "depends on failed " + ", ".join(culprits)
    result.not_run.append(action.id)
    result.not_run_reasons[action.id] = reason
    if journal is not None:
        journal.skipped(action, reason)


def _groups(actions: Sequence[Action]) -> list[list[Action]]:
    """AWS actions one by one (plan order), then one group per host kind (parallel hosts)."""
    singles: list[list[Action]] = []
    grouped: dict[str, list[Action]] = {}
    for action in actions:
        if executor_for(action.kind).grouped:
            grouped.setdefault(action.kind, []).append(action)
        else:
            singles.append([action])
    return singles + [grouped[k] for k in sorted(grouped)]


def _run_group(ctx: ApplyContext, group: list[Action]) -> dict[str, Outcome]:
    """A failing executor fails its actions, never the run: the report and the lock
    release still happen. Unexpected errors are shown by type and redacted message only."""
    from flipgitops.adapters.aws_session import redact

    try:
        return executor_for(group[0].kind).run(ctx, group)
    except GuardBlocked as exc:
        return {a.id: Outcome(False, False, str(exc), blocked=True) for a in group}
    except FlipGitopsError as exc:
        message = str(exc)
    except Exception as exc:
        log.debug("executor for %s raised", group[0].kind, exc_info=True)
        message = f"unexpected {type(exc).__name__}: {redact(str(exc))[:300]}"
    return {a.id: Outcome(False, False, message) for a in group}


# --- CLI entry points ----------------------------------------------------------------------


def run_apply(
    env: str,
    *,
    plan_file: Path | None,
    yes: bool,
    allow: frozenset[str],
    fl_quiesced: bool,
    dry_run: bool,
    prune: bool,
    fmt: str,
    color: bool,
    echo: Echo,
) -> int:
    from flipgitops.engine.manifests import load_env

    if not yes and not dry_run and not sys.stdin.isatty():
        echo("refusing to apply without confirmation: stdin is not a terminal; "
             "pass --yes (e.g. in CI) after reviewing the plan", err=True)
        return EXIT_FAILED
    manifest, path = load_env(env)
    options = PlanOptions(prune=prune, allow=allow, fl_quiesced=fl_quiesced)
    confirm = None if (yes or dry_run) else _ask(echo)
    try:
        result = apply(manifest, path, options, plan_file=plan_file, dry_run=dry_run,
                       confirm=confirm, echo=echo, fmt=fmt, color=color)
    except LockHeld as exc:
        result = ApplyResult(manifest.environment, EXIT_LOCKED, f"{exc}")
    except PlanMismatch as exc:
        result = ApplyResult(manifest.environment, EXIT_FAILED, f"{exc}")
    _report(result, fmt, echo)
    return result.exit_code


def _ask(echo: Echo) -> Confirm:
    def confirm(plan: Plan) -> bool:
        import click

        return click.confirm(
            f"Apply {len(plan.actions)} action(s) to {plan.environment}?", default=False
        )

    return confirm


def _report(result: ApplyResult, fmt: str, echo: Echo) -> None:
    if fmt == "json":
        echo(json.dumps(result.to_json(), indent=2))
        if result.exit_code != EXIT_OK:
            echo(result.message, err=True)
        return
    if result.exit_code == EXIT_OK:
        echo(result.message)
        return
    if result.completed or result.failed:
        echo("Completed: " + (", ".join(result.completed) or "(none)"), err=True)
        for action_id, message in result.failed.items():
            echo(f"Failed: {action_id}: {message}", err=True)
        for line in _not_run_lines(result):
            echo(line, err=True)
    prefix = {EXIT_LOCKED: "error", EXIT_BLOCKED: "blocked"}.get(result.exit_code, "error")
    echo(f"{prefix}: {result.message}", err=True)


def _not_run_lines(result: ApplyResult) -> list[str]:
    """One line per action a failure held back, naming that failure; the rest on one line."""
    why = result.not_run_reasons
    lines = [f"Not run: {a} ({why[a]})" for a in result.not_run if a in why]
    plain = [a for a in result.not_run if a not in why]
    if plain or not lines:
        lines.append("Not run: " + (", ".join(plain) or "(none)"))
    return lines


def run_unlock(env: str, *, lock_id: str, echo: Echo) -> int:
    from flipgitops.adapters import state_store
    from flipgitops.engine.manifests import load_env

    manifest, _ = load_env(env)
    if state_store.force_unlock(manifest, lock_id):
        echo(f"released lock {lock_id} of {manifest.environment}")
        return EXIT_OK
    echo(f"lock {lock_id} is not the lock held on {manifest.environment} "
         "(already released, or another run holds it): nothing changed", err=True)
    return EXIT_FAILED
