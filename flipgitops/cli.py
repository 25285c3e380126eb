"""The command layer: every print, prompt, colour and exit code, and nothing else.

Exit codes (docs/architecture.md §7): 0 ok / in sync / no changes, 1 error or invalid,
2 changes or drift (unhealthy for `status`), 3 blocked by a guard, 4 lock held, 64 usage
error (an unknown option, a missing argument: CI must never read a typo as "changes"),
130/143 interrupted. Logic lives in core (pure), side effects in adapters, wiring in engine.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

import click

from flipgitops.errors import FlipGitopsError, ManifestError
from flipgitops.gc_thresholds import collect_rarely

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = click.Choice(["text", "markdown", "json"])
EXIT_USAGE = 64

EPILOG = """\b
Exit codes: 0 ok/in sync/no changes, 1 error or invalid, 2 changes or drift
            (plan: changes or findings to report; apply: nothing left to apply
            but not in sync; status: unhealthy), 3 blocked by a guard, 4 another
            run holds the lock, 64 usage error (unknown option or format, missing
            argument), 130/143 interrupted (SIGINT/SIGTERM).
Environment: AWS credentials come from the default boto3 chain; AWS_ENDPOINT_URL points
flipgitops at another AWS endpoint and FLIPGITOPS_ENDPOINTS (JSON) at a stand-in hub (the
demo sandbox, tests). NO_COLOR disables colour.
"""


def _check_allow(ctx: click.Context, param: click.Parameter,
                 value: tuple[str, ...]) -> tuple[str, ...]:
    """`--allow` names overridable guards only; anything else is a usage error (exit 64)."""
    from flipgitops.core.guards import allow_problem

    for guard_id in value:
        problem = allow_problem(guard_id)
        if problem is not None:
            raise click.BadParameter(problem, ctx=ctx, param=param)
    return value


def _fail(message: str, code: int) -> None:
    click.echo(message, err=True)
    sys.exit(code)


def handle_errors(fn: F) -> F:
    """Turn our own errors into a message and an exit code; never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ManifestError as exc:
            _fail(str(exc) + f"\n{len(exc.problems)} problem(s) found.", 1)
        except FlipGitopsError as exc:
            _fail(f"error: {exc}", exc.exit_code)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        return None

    return wrapper  # type: ignore[return-value]


# Libraries whose logging is about the SDK, not about what flipgitops does. botocore at
# DEBUG logs raw request and response bodies (GetSecretValue: the AES key), ansible-runner
# at DEBUG a failed run's whole output, so however many -v are given these never go below
# INFO; without -v they only show warnings.
SDK_LOGGERS = ("botocore", "boto3", "urllib3", "s3transfer", "werkzeug", "ansible-runner")
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"
_HANDLER_NAME = "flipgitops-cli"


class _SdkFloor(logging.Filter):
    """Drops SDK records below ``floor`` even when something lowered an SDK logger's level
    after we set it (a library, a plugin): the cap holds at the handler too."""

    def __init__(self, floor: int) -> None:
        super().__init__()
        self.floor = floor

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.floor or record.name.split(".")[0] not in SDK_LOGGERS


class _StderrHandler(logging.Handler):
    """Writes to the *current* sys.stderr, so click's test runner (which swaps it per
    invocation) never leaves a handler pointing at a closed stream."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stderr.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


def setup_logging(verbose: int) -> None:
    """Logging on stderr: warnings by default, -v info, -vv debug (flipgitops' own loggers;
    the SDKs stay at WARNING, or INFO with any -v)."""
    level = {0: logging.WARNING, 1: logging.INFO}.get(verbose, logging.DEBUG)
    sdk_level = logging.WARNING if verbose <= 0 else logging.INFO
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    handler = _StderrHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.addFilter(_SdkFloor(sdk_level))
    root.addHandler(handler)
    root.setLevel(level)
    for name in SDK_LOGGERS:
        logging.getLogger(name).setLevel(sdk_level)


def env_option(fn: F) -> F:
    return click.option(
        "--env", "env", metavar="NAME|PATH", required=True,
        help="Environment name (resolves environments/NAME.yaml) or a manifest path.",
    )(fn)


def format_option(fn: F) -> F:
    return click.option(
        "--format", "fmt", type=FORMATS, default="text", show_default=True,
        help="text for terminals, markdown for PR comments, json for machines/artifacts.",
    )(fn)


def _color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stdout.isatty()


def _writable(path: Path | None, option: str) -> None:
    """Refuse an output path that cannot be written before any work is done."""
    if path is None:
        return
    from flipgitops.engine.output import check_writable

    check_writable(path, option)


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.version_option(package_name="flipgitops")
def cli(verbose: int) -> None:
    """flipgitops: reconcile a FLIP deployment with its reviewed manifest.

    \b
    One YAML file per environment (environments/<env>.yaml) declares the Central Hub, the
    FLIP release its trusts run and the trusts themselves. flipgitops validates it,
    observes live AWS and trust hosts, plans ordered actions behind safety guards
    (FG001-FG013), applies them and reports drift.

    \b
    Typical loop:
      flipgitops validate                         # static checks, no network
      flipgitops plan --env prod                  # what would change (exit 2 = changes)
      flipgitops apply --env prod --plan p.json   # apply exactly the reviewed plan
      flipgitops drift --env prod                 # nightly: is live still the manifest?
      flipgitops status --env prod                # is everything healthy right now?
      flipgitops adopt --env prod                 # take over a FLIP deployed by hand
      flipgitops demo                             # all of it against a local sandbox
    """
    setup_logging(verbose)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@format_option
@handle_errors
def validate(paths: tuple[Path, ...], fmt: str) -> None:
    """Statically validate manifests (no network). No PATHS: every environments/*.yaml.

    Every problem of every file is reported in one run as file:line:col: location: message.
    Exit 0 when all are valid, 1 otherwise.
    """
    from flipgitops.engine.manifests import validate_paths

    ok = validate_paths(list(paths), fmt=fmt, echo=click.echo)
    sys.exit(0 if ok else 1)


@cli.command()
@click.option("--check", is_flag=True,
              help="Do not write; exit 1 if the committed schema is stale.")
@click.option("--path", "schema_path", type=click.Path(path_type=Path),
              default=Path("schemas/flip-environment.schema.json"), show_default=True)
@handle_errors
def schema(check: bool, schema_path: Path) -> None:
    """Write (or --check) the JSON Schema editors use to validate manifests."""
    from flipgitops.engine.manifests import write_or_check_schema

    ok, message = write_or_check_schema(schema_path, check=check)
    click.echo(message, err=not ok)
    sys.exit(0 if ok else 1)


@cli.command()
@env_option
@format_option
@click.option("--no-hosts", is_flag=True, help="Skip trust-host facts (AWS only).")
@handle_errors
def observe(env: str, fmt: str, no_hosts: bool) -> None:
    """Show a snapshot of live state (hub in AWS + trust hosts), secrets masked."""
    from flipgitops.core.render import render_observed
    from flipgitops.engine.manifests import load_env
    from flipgitops.engine.observe import observe as do_observe

    manifest, path = load_env(env)
    state = do_observe(manifest, manifest_path=path, hosts=not no_hosts)
    click.echo(render_observed(state, fmt, color=_color()))


@cli.command()
@env_option
@format_option
@click.option("--base", metavar="REV",
              help="Also show the manifest change from git REV (merge base) to the working tree.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Write the JSON plan (the artifact apply --plan consumes).")
@click.option("--prune", is_flag=True, help="Plan removal of live trusts absent from the manifest.")
@click.option("--allow", multiple=True, metavar="ID", callback=_check_allow,
              help="Accept an overridable guard (FG001, FG003, FG004, FG007-FG010); "
                   "repeatable.")
@click.option("--fl-quiesced", is_flag=True, help="Confirm no FL training runs (FG007).")
@handle_errors
def plan(env: str, fmt: str, base: str | None, out: Path | None, prune: bool,
         allow: tuple[str, ...], fl_quiesced: bool) -> None:
    """Diff the manifest against live state and show ordered actions and guards.

    In terraform mode this also runs the hub's `terraform plan`, read-only (in a temporary
    copy of the root), so FG002/FG007/FG008 show here rather than halfway through an apply.
    Exit 0 in sync, 2 changes (or nothing to apply but findings flipgitops never acts on,
    as drift reports them), 3 blocked by a guard, 1 error.
    """
    from flipgitops.core.render import render_plan
    from flipgitops.engine.output import write_atomic
    from flipgitops.engine.planning import exit_code, run_plan

    _writable(out, "--out")
    result = run_plan(env, base=base, prune=prune, allow=frozenset(allow),
                      fl_quiesced=fl_quiesced, status=lambda s: click.echo(s, err=True))
    artifact = out.name if out else "plan.json"
    click.echo(render_plan(result.plan, fmt, color=_color(), manifest_change=result.change,
                           artifact_name=artifact))
    if out:
        write_atomic(out, render_plan(result.plan, "json", manifest_change=result.change))
        click.echo(f"plan written to {out}", err=True)
    sys.exit(exit_code(result.plan))


class _Signals:
    """What SIGINT/SIGTERM do during an apply: set the engine's flag (it stops at the next
    action boundary; Ansible runs are cancelled through it), except at the confirmation
    prompt, where nothing has started and a person is waiting: there they end the apply at
    once (the lock is released on the way out), exit 130/143."""

    def __init__(self) -> None:
        from flipgitops.engine.apply import Interrupt

        self.interrupt = Interrupt()
        self._prompting = False

    def handler(self, signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._prompting:
            click.echo(f"\n{name}: apply cancelled at the prompt; nothing was changed",
                       err=True)
            raise SystemExit(128 + signum)
        if not self.interrupt.is_set():
            click.echo(f"\n{name}: stopping at the next action boundary (the lock is released "
                       "and the journal records what ran)", err=True)
        self.interrupt.set(signum)

    def confirm(self, ask: Callable[[Any], bool]) -> Callable[[Any], bool]:
        def confirm(plan: Any) -> bool:
            self._prompting = True
            try:
                return ask(plan)
            finally:
                self._prompting = False

        return confirm


@contextmanager
def _interruptible() -> Iterator[_Signals]:
    """The apply's signal handlers (`_Signals`); the old handlers come back afterwards."""
    signals = _Signals()
    old = {s: signal.signal(s, signals.handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield signals
    finally:
        for s, h in old.items():
            signal.signal(s, h)


@cli.command()
@env_option
@click.option("--plan", "plan_file", type=click.Path(path_type=Path),
              help="Reviewed JSON plan; refuse if the fresh plan's fingerprint differs.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option("--allow", multiple=True, metavar="ID", callback=_check_allow,
              help="Accept an overridable guard (FG001, FG003, FG004, FG007-FG010); "
                   "repeatable. Never FG002, FG005, FG006, FG011-FG013.")
@click.option("--fl-quiesced", is_flag=True, help="Confirm no FL training runs (FG007).")
@click.option("--dry-run", is_flag=True,
              help="Plan and show what each action would do; change nothing anywhere.")
@click.option("--prune", is_flag=True, help="Remove live trusts absent from the manifest.")
@format_option
@handle_errors
def apply(env: str, plan_file: Path | None, yes: bool, allow: tuple[str, ...],
          fl_quiesced: bool, dry_run: bool, prune: bool, fmt: str) -> None:
    """Lock the environment, execute the plan wave by wave, journal it, re-observe.

    Exit 0 converged, 1 failed (what completed is reported), 2 nothing (more) to apply but
    not in sync (findings flipgitops never acts on; drift exits 2 too), 3 blocked, 4 lock
    held, 130/143 interrupted at an action boundary.
    """
    from flipgitops.engine.planning import run_apply
    from flipgitops.ui.progress import make_progress
    from flipgitops.ui.report import confirm_prompt, print_apply_result

    if not yes and not dry_run and not sys.stdin.isatty():
        _fail("refusing to apply without confirmation: stdin is not a terminal; pass --yes "
              "(e.g. in CI) after reviewing the plan", 1)
    with _interruptible() as signals:
        result = run_apply(env, plan_file=plan_file, allow=frozenset(allow),
                           fl_quiesced=fl_quiesced, dry_run=dry_run, prune=prune, fmt=fmt,
                           color=_color(), interrupt=signals.interrupt,
                           confirm=None if (yes or dry_run) else signals.confirm(confirm_prompt),
                           echo=click.echo,
                           progress=make_progress(click.echo, machine_output=fmt == "json"))
    print_apply_result(result, fmt, click.echo)
    sys.exit(result.exit_code)


@cli.command()
@env_option
@format_option
@click.option("--report", type=click.Path(path_type=Path), help="Also write the report to FILE.")
@handle_errors
def drift(env: str, fmt: str, report: Path | None) -> None:
    """Compare manifest and live state: changed, missing, unmanaged, unknown. Changes nothing.

    Every finding says how to fix it. Exit 0 in sync, 2 drift, 1 error.
    """
    from flipgitops.core.render import render_drift
    from flipgitops.engine.output import write_atomic
    from flipgitops.engine.planning import run_drift

    _writable(report, "--report")
    result = run_drift(env, status=lambda s: click.echo(s, err=True))
    click.echo(render_drift(result, fmt, color=_color()))
    if report:
        write_atomic(report, render_drift(result, fmt, color=False))
        click.echo(f"report written to {report}", err=True)
    sys.exit(0 if result.in_sync else 2)


@cli.command()
@env_option
@format_option
@handle_errors
def status(env: str, fmt: str) -> None:
    """Health, like FLIP's `make status`: the hub's API and version, each ECS service stable
    on the expected revision, RDS available and protected, FLIP_API readable and consistent,
    then every trust's stack, its authentication evidence and its reachability.

    Exit 0 healthy, 2 unhealthy, 1 error.
    """
    from flipgitops.engine.status import run_status
    from flipgitops.ui.report import render_status

    report = run_status(env, status=lambda s: click.echo(s, err=True))
    click.echo(render_status(report, fmt, color=_color()))
    sys.exit(0 if report.healthy else 2)


@cli.command()
@env_option
@click.option("--write", is_flag=True,
              help="Write the adopted manifest (keeping its comments and order) and escrow the "
              "credentials found on hosts. Without it nothing at all is written.")
@format_option
@handle_errors
def adopt(env: str, write: bool, fmt: str) -> None:
    """Take over a running FLIP without touching a trust.

    Observes the live hub and the hosts the manifest names, and prints the manifest that
    describes what runs (trusts, codes, IPs, slots, tags, the FLIP ref on hosts) as a diff
    against the file. Keys found in hosts' kit files are checked against the hub; with
    --write they are escrowed. Keys it cannot find are reported as not held by flipgitops
    and are never rotated. Nothing in AWS or on a host changes except the escrow.
    """
    from flipgitops.engine.adopt import run_adopt
    from flipgitops.ui.report import render_adoption

    result = run_adopt(env, write=write, status=lambda s: click.echo(s, err=True))
    click.echo(render_adoption(result, fmt))
    sys.exit(0 if result.ok else 1)


@cli.command()
@env_option
@click.option("--trust", "trust_name", required=True, metavar="NAME", help="The trust's name.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Where to write the archive (mode 0600).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@handle_errors
def kit(env: str, trust_name: str, out: Path, force: bool) -> None:
    """Export a trust's kit for a TRE or an out-of-band hand-off.

    One 0600 tar.gz with the trust's FLIP kit file (from the escrow) and its FL kit (from
    the kit bucket), laid out as FLIP's package-onprem-trust-kit does.
    """
    from flipgitops.engine.kit import run_kit

    written = run_kit(env, trust=trust_name, out=out, force=force,
                      status=lambda s: click.echo(s, err=True))
    click.echo(f"kit for {trust_name} written to {written} (mode 0600)")


@cli.command()
@env_option
@click.option("--lock-id", required=True, help="The run id printed by the holder / exit-4 message.")
@handle_errors
def unlock(env: str, lock_id: str) -> None:
    """Release a stale lock. Refuses when the lock id does not match the holder's."""
    from flipgitops.engine.planning import run_unlock

    ok, message = run_unlock(env, lock_id=lock_id)
    click.echo(message, err=not ok)
    sys.exit(0 if ok else 1)


@cli.command()
@click.option("--base", required=True, metavar="REV", help="Base commit (e.g. the PR base).")
@click.option("--head", default="HEAD", show_default=True, metavar="REV")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@handle_errors
def changed(base: str, head: str, fmt: str) -> None:
    """List environments whose manifests (or whose flip.ref) changed between two commits."""
    from flipgitops.engine.gitops import run_changed

    sys.exit(run_changed(base=base, head=head, fmt=fmt, echo=click.echo))


@cli.command()
@click.option("--keep", is_flag=True, help="Leave the sandbox running and print how to use it.")
@handle_errors
def demo(keep: bool) -> None:
    """Run the whole loop against an embedded sandbox (a local AWS emulator, the stand-in
    FLIP hub and local trust hosts). No AWS account needed.
    """
    import importlib.util

    # moto is imported only once the sandbox starts, so look for it before anything runs.
    missing = next((m for m in ("moto", "flask") if importlib.util.find_spec(m) is None), None)
    try:
        from flipgitops.sandbox.demo import run_demo
    except ImportError as exc:
        missing = exc.name or "part of the sandbox"
    if missing is not None:
        _fail(f"the demo needs the sandbox extra ({missing} is not installed): install "
              "'flipgitops[sandbox]' (pip install 'flipgitops[sandbox]', uv tool install "
              "'flipgitops[sandbox]'), or run it from a clone with `uv run flipgitops demo`", 1)
        return
    sys.exit(run_demo(keep=keep, echo=click.echo))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: click's usage errors exit 64 instead of 2 (2 means changes)."""
    collect_rarely()  # before the command's imports: flipgitops/gc_thresholds.py
    try:
        cli.main(args=argv, prog_name="flipgitops", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click.UsageError as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    sys.exit(0)


if __name__ == "__main__":
    main()
