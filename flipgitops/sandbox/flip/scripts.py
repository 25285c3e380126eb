"""What the flip-api container does when a one-off ECS task gives it a command.

The worker hands over the task's command override and environment; this module plays the
process and returns its output lines (stdout and stderr interleaved, as the awslogs driver
records both) and its exit code. Three commands are played, FLIP's way:

- ``uv run python -m flip_api.scripts.register_trust ...`` (register_trust.py@00e1b6b0, the
  service trusts_services/services/register_trust.py@160f4bf2);
- ``uv run python -m flip_api.scripts.delete_trust --name N`` (delete_trust.py@3c9a08e0);
- ``uv run python -c <script> ...``: the schema reset the hub guide prescribes
  (``DROP SCHEMA public CASCADE; CREATE SCHEMA public;``), standing in for "python +
  PostgreSQL": each statement the script contains is executed, and the script's evidence line
  ``{"flipgitops": "schema-reset", "status": "reset", "generation": N}`` is printed only when
  both ran (N from its ``--generation N`` argument).

Anything else logs ``unknown command``. FLIP's logger format was not found in FLIP's files,
so log lines here are ``<LEVEL> - <message>`` with FLIP's message texts.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from flipgitops.sandbox.flip import flipnames as fn
from flipgitops.sandbox.flip.hub import (
    DatabaseUnavailable,
    HubState,
    Registration,
    RegistrationError,
    SlotRow,
    TrustRow,
)

UV_PYTHON = ["uv", "run", "python"]
_DROP = re.compile(r"DROP\s+SCHEMA\s+(IF\s+EXISTS\s+)?public\s+CASCADE", re.IGNORECASE)
_CREATE = re.compile(r"CREATE\s+SCHEMA\s+(IF\s+NOT\s+EXISTS\s+)?public\b", re.IGNORECASE)


@dataclass
class Run:
    """One container process: its output lines in order and its exit code."""

    env: Mapping[str, str]
    lines: list[str] = field(default_factory=list)
    exit_code: int = 0

    def out(self, text: str) -> None:
        self.lines.extend(text.splitlines() or [""])

    def log(self, level: str, message: str, *args: Any) -> None:
        self.out(f"{level} - {message % args if args else message}")

    def fail(self, code: int) -> None:
        self.exit_code = code


class _ArgError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that reports instead of exiting, so the played process can exit 2."""

    def error(self, message: str) -> NoReturn:
        raise _ArgError(f"{self.format_usage()}{self.prog}: error: {message}")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        raise _ArgError(message or "")


def run_command(
    command: list[str],
    env: Mapping[str, str],
    state: HubState,
    *,
    put_parameter: Callable[[str, str], None],
    slot_names: Callable[[Run], list[str]],
) -> Run:
    """Play ``command`` in a flip-api container with environment ``env``."""
    run = Run(env)
    if command[:3] != UV_PYTHON or len(command) < 5:
        run.log("ERROR", "unknown command")
        run.fail(127)
        return run
    flag, target, args = command[3], command[4], command[5:]
    if flag == "-m" and target in (fn.REGISTER_MODULE, fn.DELETE_MODULE):
        if state.era == "secret":
            # E2's image predates the database registry and has neither script.
            run.out(f"/app/.venv/bin/python: No module named {target}")
            run.fail(1)
        elif target == fn.REGISTER_MODULE:
            _register_trust(args, run, state, put_parameter, slot_names)
        else:
            _delete_trust(args, run, state)
        return run
    if flag == "-c" and (_DROP.search(target) or _CREATE.search(target)):
        _schema_reset(target, args, run, state)
        return run
    run.log("ERROR", "unknown command")
    run.fail(127)
    return run


def _traceback(run: Run, script: str, error: Exception) -> None:
    run.out("Traceback (most recent call last):")
    run.out(f'  File "/app/src/flip_api/scripts/{script}", line 1, in main')
    run.out(f"sqlalchemy.exc.ProgrammingError: (psycopg2.errors.UndefinedTable) {error}")
    run.fail(1)


def _parse(parser: _Parser, args: list[str], run: Run) -> argparse.Namespace | None:
    try:
        return parser.parse_args(args)
    except _ArgError as e:
        run.out(str(e).rstrip("\n"))
        run.fail(2)
        return None


# --- register_trust -----------------------------------------------------------------------

def _register_parser() -> _Parser:
    parser = _Parser(prog="register_trust.py", description="Register one trust on the hub.")
    parser.add_argument("--name", required=True)
    parser.add_argument("--code", default=None)
    parser.add_argument("--region", default=None)
    parser.add_argument("--require-existing", action="store_true", default=False)
    parser.add_argument("--out-ssm-parameter", default=None, metavar="NAME")
    return parser


def hub_shared(env: Mapping[str, str]) -> dict[str, str]:
    """`_hub_shared_from_env`: the listed keys present in the environment; unset keys are
    omitted (no empty strings)."""
    return {key: env[key] for key in fn.HUB_SHARED_ENV_KEYS if key in env}


def full_kit(reg: Registration, env: Mapping[str, str]) -> dict[str, Any]:
    """A new registration's kit element, keys in FLIP's order."""
    return {"trust_id": reg.trust.id, "trust_name": reg.trust.name,
            "trust_api_key": reg.api_key,
            "trust_internal_service_key": reg.internal_key,
            "fl_kit_slot": reg.slot.slot_name,
            "fl_kit_slot_number": reg.slot.slot_number,
            "hub_shared": hub_shared(env)}


def metadata_kit(trust: TrustRow, slot: SlotRow | None, env: Mapping[str, str]) -> dict[str, Any]:
    """The idempotent-skip kit: the credential keys are absent, not null."""
    return {"trust_id": trust.id, "trust_name": trust.name,
            "fl_kit_slot": slot.slot_name if slot else None,
            "fl_kit_slot_number": slot.slot_number if slot else None,
            "hub_shared": hub_shared(env)}


def _register_trust(args: list[str], run: Run, state: HubState,
                    put_parameter: Callable[[str, str], None],
                    slot_names: Callable[[Run], list[str]]) -> None:
    ns = _parse(_register_parser(), args, run)
    if ns is None:
        return
    out: str | None = ns.out_ssm_parameter
    try:
        with state.transaction():
            kits = _register_one(ns, run, state, slot_names)
    except DatabaseUnavailable as e:
        _traceback(run, "register_trust.py", e)
        return
    except RegistrationError as e:
        run.log("ERROR", fn.LOG_REGISTER_FAILED, ns.name, e)
        if out:
            if _write_kit(put_parameter, out, [], run):
                run.out(out)
        else:
            run.out("[]")
        run.fail(1)
        return
    if kits is None:  # --require-existing and absent: nothing on stdout or SSM
        run.fail(1)
        return
    if out:
        if _write_kit(put_parameter, out, kits, run):
            run.out(out)
        return
    run.out(json.dumps(kits))


def _register_one(ns: argparse.Namespace, run: Run, state: HubState,
                  slot_names: Callable[[Run], list[str]]) -> list[dict[str, Any]] | None:
    name = ns.name.strip()
    existing = state.trust(name)
    if existing is not None:
        run.log("INFO", fn.LOG_ALREADY_REGISTERED, name)
        return [metadata_kit(existing, state.slot_of(existing.id), run.env)]
    if ns.require_existing:
        run.log("ERROR", fn.LOG_REQUIRE_EXISTING, name)
        return None
    reg = state.register_trust(name, ns.code, ns.region, lambda: slot_names(run))
    run.log("INFO", fn.LOG_REGISTERED, reg.trust.name, reg.trust.id, reg.slot.slot_name)
    return [full_kit(reg, run.env)]


def _write_kit(put_parameter: Callable[[str, str], None], name: str,
               kits: list[dict[str, Any]], run: Run) -> bool:
    try:
        put_parameter(name, json.dumps(kits))
    except Exception as e:  # FLIP fails loud on any boto3 error the same way
        run.log("ERROR", fn.LOG_SSM_FAILED, name, e)
        run.fail(1)
        return False
    return True


# --- delete_trust -------------------------------------------------------------------------

def _delete_trust(args: list[str], run: Run, state: HubState) -> None:
    parser = _Parser(prog="delete_trust.py", description="Hard-delete one trust.")
    parser.add_argument("--name", required=True)
    ns = _parse(parser, args, run)
    if ns is None:
        return
    name = ns.name.strip()
    try:
        result = state.delete_trust(name)
    except DatabaseUnavailable as e:
        _traceback(run, "delete_trust.py", e)
        return
    if result is None:
        run.log("INFO", fn.LOG_NOT_FOUND, name)
        run.out(json.dumps({"status": "not_found", "name": name}))
        return
    run.log("INFO", fn.LOG_DELETED, result["name"], result["trust_id"],
            result["freed_fl_kit_slot"], result["dependent_rows_deleted"])
    run.out(json.dumps({"status": "deleted", **result}))


# --- the schema reset ("python + PostgreSQL") --------------------------------------------

def _generation(args: list[str]) -> int | None:
    for i, arg in enumerate(args):
        value = arg.split("=", 1)[1] if arg.startswith("--generation=") else (
            args[i + 1] if arg == "--generation" and i + 1 < len(args) else None)
        if value is not None:
            return int(value) if value.isdigit() else None
    return None


def _schema_reset(script: str, args: list[str], run: Run, state: HubState) -> None:
    refusal = state.connection_refusal
    if refusal is not None:  # psycopg2.connect raises before any statement runs
        run.out("Traceback (most recent call last):")
        run.out('  File "<string>", line 9, in <module>')
        run.out(f"psycopg2.OperationalError: connection to server failed: {refusal}")
        run.fail(1)
        return
    dropped = bool(_DROP.search(script))
    created = bool(_CREATE.search(script))
    if dropped:
        state.drop_schema()
    if created:
        state.create_schema()
    generation = _generation(args)
    if dropped and created and generation is not None:
        run.out(json.dumps({"flipgitops": "schema-reset", "status": "reset",
                            "generation": generation}))
