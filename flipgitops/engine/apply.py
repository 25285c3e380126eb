"""apply: lock the environment, execute the plan wave by wave, journal it, re-observe.

Why it is shaped like this:
- The lock is taken *before* observing, so the plan executed is computed while no other run
  can change the world (Terraform does the same with its state lock).
- Every action is journaled (start / finish / failure / not run) as it happens, so a crashed
  run leaves a record of how far it got. Recovery does not read the journal: reconciliation
  is level-based, so a rerun re-observes and plans only what is still missing.
- A failed action only stops what depends on it (transitively); everything else still runs,
  so one trust's broken host does not hold back the others.
- An interrupt (SIGINT/SIGTERM, see `Interrupt`) stops the run at the next action boundary:
  what is running finishes (or is cancelled, for Ansible), the rest is journaled as not run,
  the lock is released, and the CLI exits 130/143.
- Converged means a fresh observation is in sync (`Plan.in_sync`: nothing to do *and*
  nothing to report); only then is the applied revision recorded. Nothing left to do while
  something flipgitops never acts on still differs (an advisory, an unmanaged trust, an
  unreachable host) exits 2, as `plan` and `drift` do for the same world: apply never
  claims convergence while drift reports drift.
- The journal records the run but never ends it by itself: a journal write that fails
  (the state bucket deleted mid-apply) stops the run at the next action boundary like an
  interrupt, and the result still says what completed, failed and did not run.
- The engine returns an `ApplyResult`; printing, prompting and isatty decisions are the
  CLI's (`flipgitops/cli.py`, `flipgitops/ui/`).

Test hook: ``FLIPGITOPS_FAULT_EXIT_AFTER=N`` makes the process ``os._exit(75)`` right after
the N-th action finishes (journal written, lock *not* released), exactly like a killed CI
runner. The reliability suite uses it to crash at every action boundary.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from flipgitops.engine.executors import ExecContext, Outcome, executor_for
from flipgitops.engine.ports_hosts import HostStep, HostTarget
from flipgitops.errors import FlipGitopsError, PlanMismatch
from flipgitops.model.actions import Action
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedHost, ObservedState
from flipgitops.model.plan import FORMAT_VERSION, Plan, PlanOptions

log = logging.getLogger(__name__)

FAULT_ENV = "FLIPGITOPS_FAULT_EXIT_AFTER"
FAULT_EXIT_CODE = 75
EXIT_OK, EXIT_FAILED, EXIT_DRIFT, EXIT_BLOCKED, EXIT_LOCKED = 0, 1, 2, 3, 4
INTERRUPTED = "the run was interrupted"
UNSETTLED_SHOWN = 8  # findings quoted in an apply's "not in sync" message


class Interrupt:
    """Set by the CLI's signal handlers; read by the engine at every action boundary and by
    the Ansible runner as its cancel callback."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal: int | None = None

    def set(self, signum: int) -> None:
        self.signal = signum
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    @property
    def exit_code(self) -> int:
        return 128 + (self.signal or 2)


class Journal(Protocol):
    def event(self, event: str, **fields: Any) -> None: ...
    def start(self, action: Action) -> None: ...
    def finish(self, action: Action, *, changed: bool | None = None,
               message: str | None = None) -> None: ...
    def failure(self, action: Action, error: str) -> None: ...
    def skipped(self, action: Action, reason: str) -> None: ...
    def hold(self) -> AbstractContextManager[None]:
        """Events inside are stored together at its end (one write)."""
        ...
    def flush(self) -> None:
        """Store every event so far now, also inside `hold`."""
        ...


class Progress(Protocol):
    """How the run tells a person what is happening (the CLI implements it)."""

    def start_wave(self, index: int, total: int, actions: Sequence[Action]) -> None: ...
    def started(self, action: Action) -> None: ...
    def finished(self, action: Action, ok: bool, message: str) -> None: ...
    def line(self, text: str) -> None: ...
    def close(self) -> None: ...


class NoProgress:
    def start_wave(self, index: int, total: int, actions: Sequence[Action]) -> None:
        return None

    def started(self, action: Action) -> None:
        return None

    def finished(self, action: Action, ok: bool, message: str) -> None:
        return None

    def line(self, text: str) -> None:
        return None

    def close(self) -> None:
        return None


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
    interrupted: bool = False
    warnings: list[str] = field(default_factory=list)
    journal_error: str | None = None  # the journal write that failed (the run stopped)

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
            "interrupted": self.interrupted,
            "journal_error": self.journal_error,
            "completed": self.completed,
            "failed": [{"id": k, "message": v, "blocked": k in self.guard_blocked}
                       for k, v in self.failed.items()],
            "not_run": self.not_run,
            "not_run_reasons": {k: self.not_run_reasons[k] for k in self.not_run
                                if k in self.not_run_reasons},
            "remaining": self.remaining,
            "violations": [v.model_dump(mode="json") for v in plan.violations] if plan else [],
            "warnings": self.warnings,
        }


class _FaultHook:
    """Counts finished actions; exits hard after the N-th when the test hook is set."""

    def __init__(self) -> None:
        raw = os.environ.get(FAULT_ENV, "").strip()
        self.limit = int(raw) if raw.isdigit() and int(raw) > 0 else None
        self.count = 0

    def action_finished(self, flush: Callable[[], None]) -> None:
        self.count += 1
        if self.limit is not None and self.count >= self.limit:
            flush()  # the journal as a killed run leaves it: every finished action in it
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(FAULT_EXIT_CODE)


@dataclass
class Run:
    """One apply's collaborators, injected by `engine/wiring.py` (or a test)."""

    manifest: Manifest
    manifest_path: Path
    options: PlanOptions
    observe_and_plan: Callable[[], tuple[ObservedState, Plan]]
    context: Callable[[ObservedState, Plan], ExecContext]
    journal: Journal | None = None
    progress: Progress = field(default_factory=NoProgress)
    interrupt: Interrupt = field(default_factory=Interrupt)
    record_converged: Callable[[ObservedState, Plan], str | None] = lambda _o, _p: None
    dry_run: bool = False
    run_id: str | None = None
    # The hosts the re-observation will gather, as far as known now (`Wiring.facts_targets`):
    # a chain of host waves takes their facts at its end, in the same host run, and hands
    # them to `remember_facts`, which the re-observation uses for each host whose target is
    # still the same; any later action voids them (`remember_facts({})`). None: no reuse.
    facts_targets: Callable[[], Sequence[HostTarget]] | None = None
    remember_facts: Callable[[Mapping[str, tuple[HostTarget, ObservedHost]]], None] = (
        lambda _f: None)


def check_reviewed(reviewed: Plan, fresh: Plan, plan_file: Path) -> None:
    if reviewed.environment != fresh.environment:
        raise PlanMismatch(
            f"{plan_file} is a plan for {reviewed.environment}, not {fresh.environment}")
    if reviewed.fingerprint != fresh.fingerprint:
        raise PlanMismatch(
            f"the reviewed plan {plan_file} is stale: live state or the manifest changed since "
            f"it was made (reviewed {reviewed.fingerprint[:19]}, now {fresh.fingerprint[:19]}). "
            "Nothing was changed; run plan again, review it and apply the new plan")
    # The fingerprint leaves the overrides out (the same decisions, whoever allows them), so
    # the review is held to them here: an apply may not let through a guard the reviewer
    # saw blocking. Fewer overrides need no check: the guards then refuse the plan.
    unreviewed = sorted(_overridden(fresh) - _overridden(reviewed))
    if unreviewed:
        shown = ", ".join(f"{guard} on {target}" for guard, target in unreviewed[:6])
        raise PlanMismatch(
            f"the reviewed plan {plan_file} was not reviewed with the override(s) this apply "
            f"gives ({shown}): nothing was changed. Apply it without them, or plan again "
            "with the same --allow/--fl-quiesced so the review shows them overridden")


def _overridden(plan: Plan) -> set[tuple[str, str]]:
    """The guard findings a plan lets through, by guard and target."""
    return {(v.guard, v.target) for v in plan.violations if v.allowed}


class _Recorder:
    """The run's journal, which never ends the run by itself: the first write that fails
    (the state bucket deleted or unwritable) is kept in ``error`` and later writes are
    skipped; the engine stops at the next action boundary and reports it."""

    def __init__(self, journal: Journal | None) -> None:
        self._journal = journal
        self.error: str | None = None

    def _write(self, write: Callable[[Journal], None]) -> None:
        if self._journal is None or self.error is not None:
            return
        try:
            write(self._journal)
        except FlipGitopsError as exc:
            self.error = str(exc)
        except Exception as exc:
            from flipgitops.errors import redact

            log.debug("journal write raised", exc_info=True)
            self.error = f"unexpected {type(exc).__name__}: {redact(str(exc))[:300]}"

    def event(self, event: str, **fields: Any) -> None:
        self._write(lambda j: j.event(event, **fields))

    def start(self, action: Action) -> None:
        self._write(lambda j: j.start(action))

    def finish(self, action: Action, *, changed: bool | None = None,
               message: str | None = None) -> None:
        self._write(lambda j: j.finish(action, changed=changed, message=message))

    def failure(self, action: Action, error: str) -> None:
        self._write(lambda j: j.failure(action, error))

    def skipped(self, action: Action, reason: str) -> None:
        self._write(lambda j: j.skipped(action, reason))

    @contextmanager
    def hold(self) -> Iterator[None]:
        """The events of a group of actions that start (or end) together, in one write."""
        if self._journal is None or self.error is not None:
            yield
            return
        held = self._journal.hold()
        held.__enter__()  # only counts: the write is at its end, which may fail like any
        try:
            yield
        finally:
            def leave(_j: Journal) -> None:
                held.__exit__(None, None, None)

            self._write(leave)

    def flush(self) -> None:
        self._write(lambda j: j.flush())


def unsettled(plan: Plan) -> list[str]:
    """What keeps a plan with nothing (more) to do from being in sync: the findings
    flipgitops reports but never acts on, as `drift` lists them."""
    return ([*plan.advisories, *(f"unmanaged: {u}" for u in plan.unmanaged),
             *(f"unknown: {u}" for u in plan.unknown)]
            + [f"{v.guard}: {v.message}" for v in plan.violations if v.allowed])


def _not_in_sync(plan: Plan, done: str) -> str:
    found = unsettled(plan)
    shown = "; ".join(found[:UNSETTLED_SHOWN]) + (
        f"; and {len(found) - UNSETTLED_SHOWN} more" if len(found) > UNSETTLED_SHOWN else "")
    return (f"{done}, but live state is not in sync with the manifest: {len(found)} "
            f"finding(s) flipgitops reports but never acts on need a manual step ({shown}). "
            "`flipgitops drift` says how to fix each")


def execute(run: Run, *, reviewed: tuple[Plan, Path] | None = None,
            confirm: Callable[[Plan], bool] | None = None) -> ApplyResult:
    """Observe, plan, check the reviewed plan and the guards, ask, then run the waves."""
    env = run.manifest.environment
    observed, fresh = run.observe_and_plan()
    result = ApplyResult(env, EXIT_OK, "", dry_run=run.dry_run, run_id=run.run_id, plan=fresh)
    if reviewed is not None:
        check_reviewed(reviewed[0], fresh, reviewed[1])
    journal = _Recorder(run.journal)
    if run.interrupt.is_set():  # a signal while observing: nothing starts
        return _stopped_before_start(run, result, fresh, journal)
    if fresh.blocked:
        blocking = sorted({v.guard for v in fresh.violations if not v.allowed})
        result.exit_code = EXIT_BLOCKED
        result.message = (f"blocked by {', '.join(blocking)}: nothing was changed "
                          "(see how to proceed above)")
        result.not_run = [a.id for a in fresh.actions]
        return result
    if fresh.is_empty:
        if fresh.in_sync:
            result.message = "no changes: live state already matches the manifest"
            if not run.dry_run:
                _record(run, result, observed, fresh)
            result.converged = result.exit_code == EXIT_OK
        else:
            result.exit_code = EXIT_DRIFT
            result.message = _not_in_sync(fresh, "nothing to apply")
        return result
    if confirm is not None and not confirm(fresh):
        result.exit_code = EXIT_FAILED
        result.message = "apply cancelled: nothing was changed"
        result.not_run = [a.id for a in fresh.actions]
        return result
    if run.interrupt.is_set():
        return _stopped_before_start(run, result, fresh, journal)
    ctx = run.context(observed, fresh)
    journal.event("run.start", fingerprint=fresh.fingerprint, actions=len(fresh.actions),
                  waves=len(fresh.waves), allow=sorted(run.options.allow) or None)
    try:
        _waves(fresh, ctx, run, result, journal)
    finally:
        run.progress.close()
    if (not run.dry_run and not result.failed and not result.interrupted
            and journal.error is None and not run.interrupt.is_set()):
        again_observed, again = run.observe_and_plan()
        result.remaining = [a.id for a in again.actions]
        _conclude(run, result, again_observed, again, journal)
    else:
        _conclude(run, result, observed, fresh, journal)
    _end(result, journal)
    return result


def _end(result: ApplyResult, journal: _Recorder) -> None:
    journal.event("run.end", exit_code=result.exit_code, converged=result.converged,
                  interrupted=result.interrupted or None,
                  completed=len(result.completed), failed=sorted(result.failed) or None,
                  not_run=sorted(result.not_run) or None,
                  remaining=result.remaining or None)
    if journal.error is not None and result.journal_error is None:
        result.journal_error = journal.error
        result.warnings.append(f"the run's journal could not be written: {journal.error}")


def _stopped_before_start(run: Run, result: ApplyResult, plan: Plan,
                          journal: _Recorder) -> ApplyResult:
    """A signal arrived before the first action: nothing ran, and the journal says so."""
    result.interrupted = True
    journal.event("run.start", fingerprint=plan.fingerprint, actions=len(plan.actions),
                  waves=len(plan.waves), allow=sorted(run.options.allow) or None)
    for action in plan.actions:
        _not_run(action, INTERRUPTED + " before it started", result, journal)
    _conclude(run, result, None, plan, journal)
    _end(result, journal)
    return result


def _record(run: Run, result: ApplyResult, observed: ObservedState, plan: Plan) -> None:
    """The applied record; a failure to write it is this run's failure, never a traceback."""
    try:
        result.commit = run.record_converged(observed, plan)
    except FlipGitopsError as exc:
        result.exit_code = EXIT_FAILED
        result.message = (f"{result.message}; but the applied record could not be written: "
                          f"{exc}")


def _conclude(run: Run, result: ApplyResult, observed: ObservedState | None, plan: Plan,
              journal: _Recorder) -> None:
    counts = (f"{len(result.completed)} action(s) completed, {len(result.failed)} failed, "
              f"{len(result.not_run)} not run")
    if result.interrupted or run.interrupt.is_set():
        result.interrupted = True
        result.exit_code = run.interrupt.exit_code
        result.message = (f"interrupted: {len(result.completed)} action(s) completed, "
                          f"{len(result.not_run)} not run; rerun apply to finish (it "
                          "re-observes and plans only what is still missing)")
    elif journal.error is not None:
        result.exit_code = EXIT_FAILED
        result.journal_error = journal.error
        result.message = (f"stopped: the run's journal could not be written ({journal.error})"
                          f"; {counts}. Check the state bucket s3://{run.manifest.state.bucket} "
                          "(it must exist and be writable), then rerun apply: it re-observes "
                          "and plans only what is still missing")
    elif result.failed and set(result.failed) <= set(result.guard_blocked):
        result.exit_code = EXIT_BLOCKED
        result.message = (f"blocked at apply time by a guard ({', '.join(sorted(result.failed))})"
                          f"; {len(result.completed)} action(s) completed, "
                          f"{len(result.not_run)} not run. Proceed as the guard says and rerun")
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
    elif not plan.in_sync:
        result.exit_code = EXIT_DRIFT
        result.message = _not_in_sync(plan, f"applied {len(result.completed)} action(s)")
    else:
        assert observed is not None
        result.message = f"converged: {len(result.completed)} action(s) applied"
        _record(run, result, observed, plan)
        result.converged = result.exit_code == EXIT_OK


def _waves(plan: Plan, ctx: ExecContext, run: Run, result: ApplyResult,
           journal: _Recorder) -> None:
    """Run every action none of whose (transitive) dependencies failed, wave by wave; stop
    at the next action boundary once interrupted or once the journal cannot be written.

    Consecutive waves of host actions only (an onboarding's provision → deploy_release →
    kit file + FL kit → start → verify) are one host run, each host's steps in one module
    invocation (`_Chain`): five fewer Ansible runs per onboarding, and one interpreter start
    per host instead of six. Inside it a step runs only when the steps it depends on
    succeeded, so a failure still stops only what depends on it.
    """
    fault = _FaultHook()
    total = len(plan.waves)
    blocked_by: dict[str, tuple[str, ...]] = {}
    chain = _Chain(plan, ctx, run, result, journal, fault, blocked_by, total)
    for index, wave in enumerate(plan.waves, start=1):
        actions = [plan.action(i) for i in wave]
        if not chain.accepts(actions):
            chain.flush()
        runnable: list[Action] = []
        for action in actions:
            why = _stop(run, result, journal)
            if why:
                _not_run(action, why, result, journal)
                continue
            culprits = _failed_behind(action, result.failed, blocked_by)
            if culprits:
                blocked_by[action.id] = culprits
                _not_run(action, "depends on failed " + ", ".join(culprits), result, journal)
            else:
                runnable.append(action)
        if not runnable:
            continue
        if chain.accepts(runnable):
            chain.add(index, runnable)
            continue
        _run_wave(index, total, runnable, ctx, run, result, journal, fault)
    chain.flush()
    _stop(run, result, journal)


def _stop(run: Run, result: ApplyResult, journal: _Recorder) -> str | None:
    """Why no further action may start (an interrupt, a journal that cannot be written)."""
    if run.interrupt.is_set():
        result.interrupted = True
        return INTERRUPTED
    if journal.error is not None:
        return "the run's journal could not be written"
    return None


def _run_wave(index: int, total: int, runnable: list[Action], ctx: ExecContext, run: Run,
              result: ApplyResult, journal: _Recorder, fault: _FaultHook) -> None:
    run.remember_facts({})  # whatever this wave changes, facts taken before it may miss
    run.progress.start_wave(index, total, runnable)
    for group in _groups(runnable):
        why = _stop(run, result, journal)
        if why:
            for action in group:
                _not_run(action, why, result, journal)
            continue
        with journal.hold():
            for action in group:
                run.progress.started(action)
                journal.start(action)
        outcomes = _run_group(ctx, group)
        with journal.hold():
            for action in group:
                _record_outcome(action, outcomes.get(action.id, Outcome(False, False,
                                                                        "not executed")),
                                run, result, journal, fault)


def _record_outcome(action: Action, outcome: Outcome, run: Run, result: ApplyResult,
                    journal: _Recorder, fault: _FaultHook) -> None:
    if outcome.ok:
        result.completed.append(action.id)
        journal.finish(action, changed=outcome.changed, message=outcome.message)
    else:
        result.failed[action.id] = outcome.message
        if outcome.blocked:
            result.guard_blocked.append(action.id)
        journal.failure(action, outcome.message)
    run.progress.finished(action, outcome.ok, outcome.message)
    if not run.dry_run:
        fault.action_finished(journal.flush)


class _Chain:
    """Consecutive waves of host actions, held back and run as ONE `HostPort.run_steps`.

    A wave joins when every action is of a host kind whose executor can `prepare` (not in a
    dry run, which contacts no host anyway) and everything it depends on inside the chain is
    on the same host: a host's steps run in one host program run, so an order *across*
    hosts cannot be kept inside it. A chain of one wave of one kind runs as before.
    """

    def __init__(self, plan: Plan, ctx: ExecContext, run: Run, result: ApplyResult,
                 journal: _Recorder, fault: _FaultHook,
                 blocked_by: dict[str, tuple[str, ...]], total: int) -> None:
        self.plan, self.ctx, self.run, self.result = plan, ctx, run, result
        self.journal = journal
        self.fault, self.blocked_by, self.total = fault, blocked_by, total
        self.waves: list[tuple[int, list[Action]]] = []
        self.targets: dict[str, str] = {}  # action id in the chain -> its host (trust)

    def accepts(self, actions: Sequence[Action]) -> bool:
        if self.ctx.dry_run or not actions:
            return False
        for action in actions:
            if executor_for(action.kind).prepare is None:
                return False
            if any(self.targets.get(dep, action.target) != action.target
                   for dep in action.depends_on):
                return False
        return True

    def add(self, index: int, actions: list[Action]) -> None:
        self.waves.append((index, actions))
        self.targets.update((a.id, a.target) for a in actions)

    def flush(self) -> None:
        waves, self.waves, self.targets = self.waves, [], {}
        if not waves:
            return
        run, result, journal = self.run, self.result, self.journal
        if len(waves) == 1 and len(_groups(waves[0][1])) == 1:
            index, actions = waves[0]
            _run_wave(index, self.total, actions, self.ctx, run, result, journal, self.fault)
            return
        everything = [a for _, acts in waves for a in acts]
        why = _stop(run, result, journal)
        if why:
            for action in everything:
                _not_run(action, why, result, journal)
            return
        first, last = waves[0][0], waves[-1][0]
        run.progress.start_wave(first, self.total, everything)
        run.progress.line(f"waves {first}-{last}/{self.total}: one host run, each host's "
                          "steps in one go")
        with journal.hold():
            for action in everything:
                run.progress.started(action)
                journal.start(action)
        outcomes, skipped = self._execute(waves)
        interrupted = _stop(run, result, journal) == INTERRUPTED
        with journal.hold():
            self._record(waves, outcomes, skipped, interrupted)

    def _record(self, waves: list[tuple[int, list[Action]]], outcomes: dict[str, Outcome],
                skipped: dict[str, str], interrupted: bool) -> None:
        run, result, journal = self.run, self.result, self.journal
        for index, actions in waves:
            run.progress.start_wave(index, self.total, actions)
            for action in actions:
                if action.id in skipped:
                    culprits = _failed_behind(action, result.failed, self.blocked_by)
                    if interrupted:
                        _not_run(action, INTERRUPTED, result, journal)
                    elif culprits:
                        self.blocked_by[action.id] = culprits
                        _not_run(action, "depends on failed " + ", ".join(culprits), result,
                                 journal)
                    else:
                        _not_run(action, skipped[action.id], result, journal)
                    run.progress.line(f"{action.id} ... not run "
                                      f"({result.not_run_reasons[action.id]})")
                    continue
                _record_outcome(action, outcomes.get(action.id, Outcome(False, False,
                                                                        "not executed")),
                                run, result, journal, self.fault)

    def _execute(self, waves: list[tuple[int, list[Action]]]
                 ) -> tuple[dict[str, Outcome], dict[str, str]]:
        """(outcomes, id -> why not run) of every action of the chain, from one host run."""
        from flipgitops.errors import redact

        ctx = self.ctx
        in_chain = {a.id for _, acts in waves for a in acts}
        outcomes: dict[str, Outcome] = {}
        batches = []
        steps: list[HostStep] = []
        for _, actions in waves:
            for group in _groups(actions):
                try:
                    batch = executor_for(group[0].kind).prepare(ctx, group)  # type: ignore[misc]
                except FlipGitopsError as exc:
                    outcomes.update((a.id, Outcome(False, False, str(exc))) for a in group)
                    continue
                except Exception as exc:
                    log.debug("preparing %s raised", group[0].kind, exc_info=True)
                    message = f"unexpected {type(exc).__name__}: {redact(str(exc))[:300]}"
                    outcomes.update((a.id, Outcome(False, False, message)) for a in group)
                    continue
                batches.append(batch)
                if batch.tasks:
                    ctx.report(f"{batch.kind}: {len(batch.tasks)} host(s)")
                for action_id, task in batch.tasks.items():
                    after = tuple(d for d in self.plan.action(action_id).depends_on
                                  if d in in_chain)
                    steps.append(HostStep(action_id, batch.kind, task, after))
        self.run.remember_facts({})
        facts_after = self._facts_targets() if steps else ()
        try:
            results, facts = (ctx.ports.hosts.run_steps_then_gather(
                steps, facts_after, cancel=ctx.cancel) if steps else ({}, {}))
        except FlipGitopsError as exc:
            failed = Outcome(False, False, str(exc))
            results, facts = {}, {}
            outcomes.update((s.key, failed) for s in steps)
        self.run.remember_facts({t.trust: (t, facts[t.trust]) for t in facts_after
                                 if t.trust in facts})
        skipped = {key: r.message for key, r in results.items() if r.skipped_after is not None}
        for batch in batches:
            done = {k: r for k, r in results.items() if k in batch.tasks and k not in skipped}
            for action_id, outcome in batch.finish(done).items():
                if action_id not in skipped:
                    outcomes.setdefault(action_id, outcome)
        return outcomes, skipped


    def _facts_targets(self) -> tuple[HostTarget, ...]:
        """The targets the re-observation will gather (a failure to tell: none, so the
        re-observation gathers every host itself, as it always could)."""
        if self.run.facts_targets is None:
            return ()
        try:
            return tuple(self.run.facts_targets())
        except FlipGitopsError as exc:
            log.debug("no facts at the end of the host run: %s", exc)
            return ()


def _not_run(action: Action, reason: str, result: ApplyResult, journal: _Recorder) -> None:
    result.not_run.append(action.id)
    result.not_run_reasons[action.id] = reason
    journal.skipped(action, reason)


def _failed_behind(action: Action, failed: dict[str, str],
                   blocked_by: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    culprits: set[str] = set()
    for dep in action.depends_on:
        if dep in failed:
            culprits.add(dep)
        culprits.update(blocked_by.get(dep, ()))
    return tuple(sorted(culprits))


def _groups(actions: Sequence[Action]) -> list[list[Action]]:
    """Hub actions one by one (plan order), then one group per host kind (parallel hosts)."""
    singles: list[list[Action]] = []
    grouped: dict[str, list[Action]] = {}
    for action in actions:
        if executor_for(action.kind).grouped:
            grouped.setdefault(action.kind, []).append(action)
        else:
            singles.append([action])
    return singles + [grouped[k] for k in sorted(grouped)]


def _run_group(ctx: ExecContext, group: list[Action]) -> dict[str, Outcome]:
    """A failing executor fails its actions, never the run: the report and the lock
    release still happen. Unexpected errors are shown by type and redacted message only."""
    from flipgitops.errors import redact

    try:
        return dict(executor_for(group[0].kind).run(ctx, group))
    except FlipGitopsError as exc:
        message = str(exc)
    except Exception as exc:
        log.debug("executor for %s raised", group[0].kind, exc_info=True)
        message = f"unexpected {type(exc).__name__}: {redact(str(exc))[:300]}"
    return {a.id: Outcome(False, False, message) for a in group}
