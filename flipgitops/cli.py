"""The command layer: one thin function per verb, mapping errors to exit codes.

Exit codes (DESIGN.md §7): 0 ok / in sync / no changes, 1 error or invalid, 2 changes or
drift, 3 blocked by a guard, 4 lock held. Nothing here holds logic worth testing apart from
the command itself: parsing lives in core, side effects in adapters, wiring in engine.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from flipgitops.errors import FlipGitopsError, ManifestError

F = TypeVar("F", bound=Callable[..., Any])

FORMATS = click.Choice(["text", "markdown", "json"])

EPILOG = """\b
Exit codes: 0 ok/in sync/no changes, 1 error or invalid, 2 changes or drift,
            3 blocked by a guard, 4 another run holds the lock.
Environment: AWS credentials come from the default boto3 chain; AWS_ENDPOINT_URL points
flipgitops at another endpoint (the demo sandbox, tests). NO_COLOR disables colour.
"""


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
    fn = click.option(
        "--env",
        "env",
        metavar="NAME|PATH",
        required=True,
        help="Environment name (resolves environments/NAME.yaml) or a manifest path.",
    )(fn)
    return fn


def format_option(fn: F) -> F:
    return click.option(
        "--format",
        "fmt",
        type=FORMATS,
        default="text",
        show_default=True,
        help="text for terminals, markdown for PR comments, json for machines/artifacts.",
    )(fn)


@click.group(epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging on stderr (-vv for debug).")
@click.version_option(package_name="flipgitops")
def main(verbose: int) -> None:
    """flipgitops: reconcile a FLIP deployment with its reviewed manifest.

    \b
    One YAML file per environment (environments/<env>.yaml) declares the Central Hub and its
    trusts. flipgitops validates it, observes live AWS and trust hosts, plans ordered actions
    behind safety guards (FG001-FG008), applies them and reports drift.

    \b
    Typical loop:
      flipgitops validate                      # static checks, no network
      flipgitops plan --env prod               # what would change (exit 2 = changes)
      flipgitops apply --env prod --plan p.json   # apply exactly the reviewed plan
      flipgitops drift --env prod              # nightly: is live still the manifest?
      flipgitops demo                          # all of it against a local sandbox
    """
    setup_logging(verbose)


@main.command()
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


@main.command()
@click.option(
    "--check", is_flag=True, help="Do not write; exit 1 if the committed schema is stale."
)
@click.option(
    "--path",
    "schema_path",
    type=click.Path(path_type=Path),
    default=Path("schemas/flip-environment.schema.json"),
    show_default=True,
)
@handle_errors
def schema(check: bool, schema_path: Path) -> None:
    """Write (or --check) the JSON Schema editors use to validate manifests."""
    from flipgitops.engine.manifests import write_or_check_schema

    ok, message = write_or_check_schema(schema_path, check=check)
    click.echo(message, err=not ok)
    sys.exit(0 if ok else 1)


@main.command()
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


@main.command()
@env_option
@format_option
@click.option(
    "--base", metavar="REV", help="Also show the manifest change from git REV to the working tree."
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    help="Write the JSON plan (the artifact apply --plan consumes).",
)
@click.option("--prune", is_flag=True, help="Plan removal of live trusts absent from the manifest.")
@click.option("--allow", multiple=True, metavar="ID", help="Mark an overridable guard as accepted.")
@click.option("--fl-quiesced", is_flag=True, help="Confirm no FL training runs (FG007).")
@handle_errors
def plan(
    env: str,
    fmt: str,
    base: str | None,
    out: Path | None,
    prune: bool,
    allow: tuple[str, ...],
    fl_quiesced: bool,
) -> None:
    """Diff the manifest against live state and show ordered actions and guards.

    Exit 0 no changes, 2 changes, 3 blocked by a guard, 1 error.
    """
    from flipgitops.engine.planning import run_plan

    code = run_plan(
        env,
        fmt=fmt,
        base=base,
        out=out,
        prune=prune,
        allow=frozenset(allow),
        fl_quiesced=fl_quiesced,
        color=_color(),
        echo=click.echo,
    )
    sys.exit(code)


@main.command()
@env_option
@click.option(
    "--plan",
    "plan_file",
    type=click.Path(exists=True, path_type=Path),
    help="Reviewed JSON plan; refuse if the fresh plan's fingerprint differs.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--allow", multiple=True, metavar="ID", help="Allow an overridable guard (never FG002)."
)
@click.option("--fl-quiesced", is_flag=True, help="Confirm no FL training runs (FG007).")
@click.option(
    "--dry-run", is_flag=True, help="Ansible check mode and terraform plan only; change nothing."
)
@click.option("--prune", is_flag=True, help="Remove live trusts absent from the manifest.")
@format_option
@handle_errors
def apply(
    env: str,
    plan_file: Path | None,
    yes: bool,
    allow: tuple[str, ...],
    fl_quiesced: bool,
    dry_run: bool,
    prune: bool,
    fmt: str,
) -> None:
    """Lock the environment, execute the plan wave by wave, journal it, re-observe.

    Exit 0 converged, 1 failed (what completed is reported), 3 blocked, 4 lock held.
    """
    from flipgitops.engine.apply import run_apply

    code = run_apply(
        env,
        plan_file=plan_file,
        yes=yes,
        allow=frozenset(allow),
        fl_quiesced=fl_quiesced,
        dry_run=dry_run,
        prune=prune,
        fmt=fmt,
        color=_color(),
        echo=click.echo,
    )
    sys.exit(code)


@main.command()
@env_option
@format_option
@click.option("--report", type=click.Path(path_type=Path), help="Also write the report to FILE.")
@handle_errors
def drift(env: str, fmt: str, report: Path | None) -> None:
    """Compare manifest and live state: changed, missing, unmanaged, unknown. Changes nothing.

    Exit 0 in sync, 2 drift, 1 error.
    """
    from flipgitops.engine.drift import run_drift

    sys.exit(run_drift(env, fmt=fmt, report=report, color=_color(), echo=click.echo))


@main.command()
@env_option
@click.option("--lock-id", required=True, help="The run id printed by the holder / exit-4 message.")
@handle_errors
def unlock(env: str, lock_id: str) -> None:
    """Release a stale lock. Refuses when the lock id does not match the holder's."""
    from flipgitops.engine.apply import run_unlock

    sys.exit(run_unlock(env, lock_id=lock_id, echo=click.echo))


@main.command()
@click.option("--base", required=True, metavar="REV", help="Base commit (e.g. the PR base).")
@click.option("--head", default="HEAD", show_default=True, metavar="REV")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@handle_errors
def changed(base: str, head: str, fmt: str) -> None:
    """List environments whose manifests differ between two commits (for CI matrices)."""
    from flipgitops.engine.gitops import run_changed

    sys.exit(run_changed(base=base, head=head, fmt=fmt, echo=click.echo))


@main.command()
@click.option("--keep", is_flag=True, help="Leave the sandbox running and print how to use it.")
@handle_errors
def demo(keep: bool) -> None:
    """Run the whole loop against an embedded sandbox (local AWS emulator + local trusts).

    No AWS account needed. validate → plan → apply → plan (no changes) → drift after a
    manual change → a blocked lockstep violation → apply to converge again.
    """
    from flipgitops.sandbox.demo import run_demo

    sys.exit(run_demo(keep=keep, echo=click.echo))


def _color() -> bool:
    return "NO_COLOR" not in os.environ and sys.stdout.isatty()


if __name__ == "__main__":
    main()
