"""Executors of the hub's action kinds: FLIP's own procedures, in a crash-safe order.

Every executor reads first, then — in a dry run — returns ``Outcome(True, True, "would …")``
before its first write (the dry-run ports raise if one slips through). Each is idempotent:
it looks at what a previous, interrupted run left (an escrowed kit, a kit in the ephemeral
parameter, a task still running, a tag on the database) and finishes from there.

FLIP files each procedure follows (`londonaicentre/FLIP`, see /docs/flip-contracts.md):
- registry.register: `deploy/providers/AWS/scripts/register-trusts.sh`@03bb6813 (SSM
  hand-off; judged by the kit, never the exit code) and `flip_api/scripts/register_trust.py`
  @00e1b6b0 (kit JSON; metadata-only kit for an existing name);
- registry.delete: `scripts/delete-trust.sh`@05600a0d and `delete_trust.py`@3c9a08e0;
- registry.secret_write / credentials.mint: E2 `main.tf`/`locals.tf`@01328ab0 (TRUST_NAMES in
  the flip-api task environment, `trust_api_key_hashes` in FLIP_API), keys as
  `scripts/generate_trust_key.py` (`secrets.token_urlsafe(32)`, sha256 hex);
- hub.deploy_images: `deploy-centralhub` and `rollback-centralhub`, AWS `Makefile`@0a13d3f9.
"""

from __future__ import annotations

import functools
import json
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr, ValidationError

from flipgitops.adapters.aws import counts_after
from flipgitops.adapters.ecs import (
    app_container,
    env_value,
    parse_trust_names,
    with_image,
    with_trust_names,
)
from flipgitops.adapters.ecs_tasks import TaskInfo, problem_lines
from flipgitops.adapters.hub import snapshot_prefix
from flipgitops.adapters.hub_secret import SecretError, encode_trust_hashes, trust_hashes
from flipgitops.adapters.schema_reset import (
    RESET_STARTED_BY,
    evidence,
    is_reset_of,
    reset_command,
)
from flipgitops.engine.executors import ExecContext, Outcome, executor, side_by_side, single
from flipgitops.errors import FlipGitopsError
from flipgitops.model import flip
from flipgitops.model.actions import (
    Action,
    ActionKind,
    AllowlistParams,
    DeleteParams,
    DeployImagesParams,
    GenerationParams,
    LedgerMigrateParams,
    MintParams,
    NoParams,
    RedeployParams,
    RegisterParams,
    RotateInternalKeyParams,
    SecretWriteParams,
    TerraformParams,
)
from flipgitops.model.flip import (
    DELETE_STATUS_DELETED,
    DELETE_STATUS_NOT_FOUND,
    EPHEMERAL_KIT_PREFIX,
    HUB_ROLES,
    REGISTER_STARTED_BY,
    SECRET_INTERNAL_KEY,
    SECRET_INTERNAL_KEY_HASH,
    SECRET_TRUST_HASHES,
    TASK_ENV_TRUST_NAMES,
    TERRAFORM_TRUST_RULE_PREFIX,
    HubRole,
    delete_command,
    image_tag,
    managed_rule_description,
    register_command,
    with_tag,
)
from flipgitops.model.kit import EscrowedKit, TrustKit, sha256_hex
from flipgitops.model.observed import LedgerTrust, ObservedLedger

USABLE_DB_STATUSES = ("available", "backing-up")


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def mint_key() -> SecretStr:
    """FLIP's generator (`scripts/generate_trust_key.py`): 32 random bytes, URL-safe."""
    return SecretStr(secrets.token_urlsafe(32))


# --- the ledger ---------------------------------------------------------------------------


def _ledger_entry(held: EscrowedKit, registry: str, before: LedgerTrust | None) -> LedgerTrust:
    kit = held.kit
    return LedgerTrust(
        credentials_generation=held.credentials_generation,
        database_generation=held.database_generation,
        registry="secret" if registry == "secret" else "database",
        trust_id=kit.trust_id or None,
        fl_kit_slot=kit.fl_kit_slot,
        fl_kit_slot_number=kit.fl_kit_slot_number,
        api_key_sha256=kit.api_key_sha256,
        internal_key_sha256=kit.internal_key_sha256,
        local_credentials_sha256=before.local_credentials_sha256 if before else None,
        held=True,
        registered_at=before.registered_at if before and _same(before, held) else _now(),
        source="flipgitops",
    )


def _same(entry: LedgerTrust, held: EscrowedKit) -> bool:
    return (entry.api_key_sha256 == held.kit.api_key_sha256
            and entry.credentials_generation == held.credentials_generation
            and entry.database_generation == held.database_generation)


def _with_trust(name: str, held: EscrowedKit, registry: str
                ) -> Callable[[ObservedLedger], ObservedLedger]:
    def update(ledger: ObservedLedger) -> ObservedLedger:
        entry = _ledger_entry(held, registry, ledger.trusts.get(name))
        return ledger.model_copy(update={"trusts": {**ledger.trusts, name: entry}})
    return update


def _without_trusts(names: Sequence[str]) -> Callable[[ObservedLedger], ObservedLedger]:
    def update(ledger: ObservedLedger) -> ObservedLedger:
        return ledger.model_copy(update={
            "trusts": {n: t for n, t in ledger.trusts.items() if n not in names},
            "delivered_kits": {n: f for n, f in ledger.delivered_kits.items()
                               if n not in names}})
    return update


def _recorded(ledger: ObservedLedger, name: str, held: EscrowedKit, registry: str) -> bool:
    entry = ledger.trusts.get(name)
    if entry is None:
        return False
    wanted = _ledger_entry(held, registry, entry)
    return entry.model_dump(exclude={"registered_at"}) == wanted.model_dump(
        exclude={"registered_at"})


# --- registry.register (database) ---------------------------------------------------------


def parse_ephemeral(raw: str | None) -> list[TrustKit] | str | None:
    """The ephemeral parameter as register-trusts.sh reads it: None when absent, [] for
    "no kit" (empty, the string None, or a zero-length array), the kits, or a problem."""
    if raw is None:
        return None
    if not raw.strip() or raw.strip() == "None":
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        return "is not JSON"
    if not isinstance(data, list) or not all(isinstance(k, dict) for k in data):
        return "is not FLIP's kit JSON array"
    try:
        return [TrustKit.model_validate(k) for k in data]
    except ValidationError as exc:
        fields = sorted({".".join(map(str, e.get("loc", ()))) for e in exc.errors()})
        return f"has malformed {', '.join(fields)}"


def _slot_problem(expected: str | None, kit: TrustKit) -> str | None:
    if expected is None or kit.fl_kit_slot == expected:
        return None
    return (f"the hub assigned FL kit slot {kit.fl_kit_slot!r}, the manifest expects "
            f"{expected!r}: set fl_kit_slot to the hub's slot (or remove it) in the manifest")


def _failed_with_log(ctx: ExecContext, task: TaskInfo | None, head: str) -> Outcome:
    lines = problem_lines(ctx.ports.hub.task_log(task.task_id)) if task else []
    if task is not None:
        ctx.ports.hub.delete_task_log(task.task_id)  # FLIP deletes it whatever happened
    log = ("; task log: " + " | ".join(lines)) if lines else ""
    return Outcome(False, task is not None, head + log)


@executor(ActionKind.REGISTRY_REGISTER, grouped=True)
def register_trusts(ctx: ExecContext, actions: Sequence[Action]) -> dict[str, Outcome]:
    """register_trust as one-off flip-api tasks, every trust of the wave at once: each task
    is started (or an earlier run's found), in the manifest's order, then they are waited
    for and judged side by side (`side_by_side`), so N registrations cost about one task's
    time, not N. FLIP claims a slot with `SELECT … FOR UPDATE SKIP LOCKED` (register_trust's
    _claim_free_slot), so concurrent registrations never share one; starting them in order
    lets them claim slots in that order, as register-trusts.sh@03bb6813 does (one kit after
    another, each task waited for before the next starts; the demo's test fails when the
    order is lost). A failure fails its own trust only."""
    # The register_trust tasks still running when the wave began (an earlier run's), listed
    # once for the wave when a trust first needs them: the tasks this wave starts are its
    # own, and each trust looks only for its own parameter.
    earlier = functools.cache(lambda: ctx.ports.hub.running_tasks(REGISTER_STARTED_BY))

    def start(action: Action) -> Outcome | tuple[Action, RegisterParams, TaskInfo]:
        try:
            got = _start_registration(ctx, action, earlier)
        except FlipGitopsError as exc:
            return Outcome(False, False, str(exc))
        return got if isinstance(got, Outcome) else (action, *got)

    hub = ctx.ports.hub

    def judge(item: tuple[Action, RegisterParams, TaskInfo]) -> Outcome:
        _action, p, task = item
        try:
            done = hub.wait_task(task, f"register_trust {p.name}", ctx.report)
            kits = parse_ephemeral(hub.read_parameter(p.ephemeral_parameter))
            return _judge_registration(ctx, p, kits, done)
        except FlipGitopsError as exc:
            return Outcome(False, True, f"{p.name}: {exc}")

    out: dict[str, Outcome] = {}
    started: list[tuple[Action, RegisterParams, TaskInfo]] = []
    for action, got in zip(actions, [start(action) for action in actions], strict=True):
        if isinstance(got, Outcome):
            out[action.id] = got
        else:
            started.append(got)
    for item, outcome in zip(started, side_by_side(judge, started), strict=True):
        out[item[0].id] = outcome
    return out


def _start_registration(ctx: ExecContext, action: Action,
                        earlier: Callable[[], Sequence[TaskInfo]]
                        ) -> Outcome | tuple[RegisterParams, TaskInfo]:
    """The outcome when nothing needs waiting for, else the task to wait for (started now,
    or by an earlier run: a second one would overwrite its kit)."""
    p = action.typed(RegisterParams)
    hub, escrow, state = ctx.ports.hub, ctx.ports.escrow, ctx.ports.state
    if not p.ephemeral_parameter.startswith(EPHEMERAL_KIT_PREFIX):
        return Outcome(False, False, f"ephemeral parameter {p.ephemeral_parameter} is not "
                                     f"under {EPHEMERAL_KIT_PREFIX}")
    gens = (p.credentials_generation, p.database_generation)

    held = escrow.read_kit(p.name)
    if held is not None and held.kit.has_credentials and \
            (held.credentials_generation, held.database_generation) == gens:
        # Registered by an earlier run: finish its bookkeeping, never register again.
        ctx.secrets.remember_kit(p.name, held)
        recorded = _recorded(state.read_ledger(), p.name, held, "database")
        leftover = hub.read_parameter(p.ephemeral_parameter) is not None
        slot = _slot_problem(p.expected_slot, held.kit)
        if recorded and not leftover:
            return Outcome(slot is None, False, slot or f"{p.name} is registered (kit "
                           f"escrowed for generation {gens[0]}/{gens[1]})")
        if ctx.dry_run:
            return Outcome(True, True, f"would record {p.name}'s escrowed registration in the "
                                       "ledger and delete its ephemeral parameter")
        state.update_ledger(_with_trust(p.name, held, "database"))
        if leftover:
            hub.delete_parameter(p.ephemeral_parameter)
        return Outcome(slot is None, True, slot or f"{p.name}: finished the bookkeeping of "
                                                   "an earlier registration")

    kits = parse_ephemeral(hub.read_parameter(p.ephemeral_parameter))
    task: TaskInfo | None = None
    if kits is None or kits == []:
        running = [t for t in earlier() if p.ephemeral_parameter in t.command]
        if ctx.dry_run:
            return Outcome(True, True, (
                f"would wait for the register_trust task {running[0].task_id} already "
                f"running for {p.name}" if running else
                f"would run register_trust --name {p.name} --code {p.code} as a one-off "
                f"flip-api task and escrow its kit"))
        if kits == [] and not running:
            hub.delete_parameter(p.ephemeral_parameter)  # a failed attempt's "no kit"
        if running:
            task = running[0]
            ctx.report(f"{p.name}: waiting for register_trust task {task.task_id}, started "
                       "by an earlier run (a second one would overwrite its kit)")
        else:
            task = hub.run_task(register_command(p.name, p.code, p.region,
                                                 p.ephemeral_parameter), REGISTER_STARTED_BY)
            ctx.report(f"{p.name}: register_trust task {task.task_id} started")
        return p, task
    elif ctx.dry_run:
        usable = not isinstance(kits, str) and kits[0].trust_name == p.name \
            and kits[0].has_credentials
        return Outcome(usable, usable, (
            f"would escrow the kit an earlier run left in {p.ephemeral_parameter}" if usable
            else f"{p.name}: {p.ephemeral_parameter}, left by an earlier run, holds no usable "
                 "kit (it would be reported as a failed registration)"))
    return _judge_registration(ctx, p, kits, task)


def _judge_registration(ctx: ExecContext, p: RegisterParams,
                        kits: list[TrustKit] | str | None, task: TaskInfo | None) -> Outcome:
    hub = ctx.ports.hub
    if kits is None:
        return _failed_with_log(ctx, task, f"{p.name}: no kit in SSM parameter "
                                           f"{p.ephemeral_parameter} — registration FAILED")
    if isinstance(kits, str):
        hub.delete_parameter(p.ephemeral_parameter)
        return _failed_with_log(ctx, task, f"{p.name}: the kit in {p.ephemeral_parameter} "
                                           f"{kits} — registration FAILED")
    if not kits:
        hub.delete_parameter(p.ephemeral_parameter)
        return _failed_with_log(ctx, task, f"{p.name}: empty kit array — registration "
                                           "FAILED (see the task's log)")
    kit = kits[0]
    if kit.trust_name != p.name:
        return Outcome(False, task is not None, f"{p.name}: the kit in "
                       f"{p.ephemeral_parameter} is for {kit.trust_name!r}; left in place")
    if not kit.has_credentials:
        hub.delete_parameter(p.ephemeral_parameter)
        if task is not None:
            hub.delete_task_log(task.task_id)
        return Outcome(False, task is not None, (
            f"{p.name}: the hub already has a trust with this name (id {kit.trust_id}, slot "
            f"{kit.fl_kit_slot}) and flipgitops holds no key for it — FLIP returned only its "
            "metadata, no key was minted. Adopt it (`flipgitops adopt`, which escrows the key "
            "from the trust's kit file), or rotate it with --allow FG009 (delete_trust + "
            "register_trust: its projects and FL results on the hub are deleted)"))
    held = EscrowedKit(kit=kit, credentials_generation=p.credentials_generation,
                       database_generation=p.database_generation)
    ctx.ports.escrow.write_kit(p.name, held)  # first: nothing may depend on an unheld key
    ctx.secrets.remember_kit(p.name, held)
    ctx.ports.state.update_ledger(_with_trust(p.name, held, "database"))
    hub.delete_parameter(p.ephemeral_parameter)
    if task is not None:
        hub.delete_task_log(task.task_id)
    slot = _slot_problem(p.expected_slot, kit)
    done = (f"{p.name} registered on the hub (id {kit.trust_id}, slot {kit.fl_kit_slot}); "
            "kit escrowed")
    return Outcome(slot is None, True, f"{done}; {slot}" if slot else done)


# --- registry.delete (database) -----------------------------------------------------------


def delete_status(lines: Sequence[str]) -> dict[str, Any] | None:
    """delete-trust.sh: the last log line that starts with ``{`` and parses."""
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("{"):
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict):
                return data
    return None


@executor(ActionKind.REGISTRY_DELETE)
@single
def delete_trust(ctx: ExecContext, action: Action) -> Outcome:
    p = action.typed(DeleteParams)
    hub = ctx.ports.hub
    command = tuple(delete_command(p.name))
    running = [t for t in hub.running_tasks(flip.DELETE_STARTED_BY) if t.command == command]
    if ctx.dry_run:
        return Outcome(True, True, f"would run delete_trust --name {p.name} (its hub records "
                                   "are deleted) and forget its escrowed kit")
    task = running[0] if running else hub.run_task(list(command), flip.DELETE_STARTED_BY)
    ctx.report(f"{p.name}: delete_trust task {task.task_id} "
               f"{'already running' if running else 'started'}")
    task = hub.wait_task(task, f"delete_trust {p.name}", ctx.report)
    lines = hub.task_log(task.task_id)
    status = delete_status(lines)
    if status is None:
        shown = problem_lines(lines)
        return Outcome(False, True, f"{p.name}: no JSON object found in the logs of task "
                       f"{task.task_id} — delete_trust may have crashed before printing"
                       + (f"; task log: {' | '.join(shown)}" if shown else ""))
    kind = status.get("status")
    if kind not in (DELETE_STATUS_DELETED, DELETE_STATUS_NOT_FOUND) or \
            status.get("name", p.name) != p.name:
        return Outcome(False, True, f"{p.name}: unexpected status {str(kind)[:40]!r} from "
                                    "delete_trust")
    ctx.ports.state.update_ledger(_without_trusts([p.name]))
    ctx.ports.escrow.delete_kit(p.name)
    if p.reason in ("decommission", "prune"):
        ctx.ports.escrow.delete_local(p.name)
        ctx.secrets.forget(p.name)
    if kind == DELETE_STATUS_NOT_FOUND:
        return Outcome(True, True, f"{p.name} was not on the hub — nothing to delete there; "
                                   "flipgitops' records removed")
    rows = status.get("dependent_rows_deleted")
    cascade = ", ".join(f"{k}={v}" for k, v in sorted(rows.items())) \
        if isinstance(rows, dict) else ""
    return Outcome(True, True, f"deleted trust {p.name} on the hub (freed FL kit slot "
                               f"{status.get('freed_fl_kit_slot')!s}"
                               + (f"; cascaded {cascade}" if cascade else "") + ")")


# --- credentials.mint and registry.secret_write (secret era) ------------------------------


@executor(ActionKind.CREDENTIALS_MINT)
@single
def mint_credentials(ctx: ExecContext, action: Action) -> Outcome:
    p = action.typed(MintParams)
    name = action.target
    held = ctx.ports.escrow.read_kit(name)
    gens = (p.credentials_generation, p.database_generation)
    if held is not None and held.kit.has_credentials and \
            (held.credentials_generation, held.database_generation) == gens:
        ctx.secrets.remember_kit(name, held)
        return Outcome(True, False, f"{name}: keys for generation {gens[0]} already escrowed")
    if ctx.dry_run:
        return Outcome(True, True, f"would mint and escrow {name}'s keys (generation "
                                   f"{gens[0]})")
    kit = TrustKit(trust_id="", trust_name=name, trust_api_key=mint_key(),
                   trust_internal_service_key=mint_key(), fl_kit_slot=p.fl_kit_slot,
                   fl_kit_slot_number=flip.slot_number(p.fl_kit_slot))
    minted = EscrowedKit(kit=kit, credentials_generation=gens[0], database_generation=gens[1])
    ctx.ports.escrow.write_kit(name, minted)
    ctx.secrets.remember_kit(name, minted)
    return Outcome(True, True, f"{name}: keys minted and escrowed (generation {gens[0]})")


def _hash_mutation(register: Mapping[str, str], deregister: Sequence[str]
                   ) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Applied to the secret as it is at write time (read-modify-write), keeping the form
    the hashes are stored in. FLIP's E2 hub accepts one hash per trust: a rotation
    replaces it (hub.md §5.2)."""
    def mutate(data: dict[str, Any]) -> dict[str, Any]:
        hashes, form, problem = trust_hashes(data)
        if problem:
            raise SecretError(f"hub secret: {problem}; refusing to write over it")
        new = {k: v for k, v in (hashes or {}).items() if k not in deregister}
        new.update(register)
        if hashes is not None and new == hashes:
            return data
        return {**data, SECRET_TRUST_HASHES: encode_trust_hashes(new, form)}
    return mutate


@executor(ActionKind.REGISTRY_SECRET_WRITE)
@single
def write_secret_registry(ctx: ExecContext, action: Action) -> Outcome:
    p = action.typed(SecretWriteParams)
    hub, escrow, state = ctx.ports.hub, ctx.ports.escrow, ctx.ports.state
    kits: dict[str, EscrowedKit] = {}
    for name in p.registering:
        held = ctx.secrets.kit(name) or escrow.read_kit(name)
        if held is None or not held.kit.has_credentials:
            return Outcome(False, False, f"{name}: no escrowed keys to register "
                                         "(credentials.mint runs first)")
        kits[name] = held
    view = hub.read_secret()
    if not view.exists:
        return Outcome(False, False, f"hub secret {view.name} does not exist")
    if view.hash_problem:
        return Outcome(False, False, f"hub secret {view.name}: {view.hash_problem}; "
                                     "refusing to write over it")
    wanted = {n: str(k.kit.api_key_sha256) for n, k in kits.items()}
    hashes_change = any((view.hashes or {}).get(n) != h for n, h in wanted.items()) or \
        any(n in (view.hashes or {}) for n in p.deregistering)
    svc = hub.service("flip_api")
    # The registry as written: the family's newest revision, which the redeploy deploys
    # (an earlier run may have written it and stopped before redeploying).
    written = (hub.latest_revision("flip_api") or str(svc["taskDefinition"])) if svc else ""
    task_def = hub.task_definition(written) if svc else None
    container = app_container(task_def, str(svc["serviceName"])) if svc and task_def else None
    if task_def is None or container is None:
        return Outcome(False, False, "flip-api's service or its task definition's flip-api "
                                     "container was not found")
    names, _ = parse_trust_names(env_value(container, TASK_ENV_TRUST_NAMES))
    names_change = names != tuple(p.names_after)
    ledger = state.read_ledger()
    ledger_change = any(not _recorded(ledger, n, k, "secret") for n, k in kits.items()) or \
        any(n in ledger.trusts for n in p.deregistering)
    if not (hashes_change or names_change or ledger_change):
        return Outcome(True, False, "TRUST_NAMES and trust_api_key_hashes already hold "
                                    "the registry")
    summary = (f"{len(p.registering)} registered, {len(p.deregistering)} removed"
               + (f"; TRUST_NAMES {list(names or ())} -> {list(p.names_after)}"
                  if names_change else ""))
    if ctx.dry_run:
        return Outcome(True, True, f"would write the secret registry ({summary}); flip-api "
                                   "then needs a redeploy")
    # Pending first: a crash from here on still says flip-api must be redeployed.
    state.update_ledger(lambda led: led.model_copy(update={"redeploy_pending": True}))
    if hashes_change:
        hub.update_secret(_hash_mutation(wanted, p.deregistering))
    revision = ""
    if names_change:
        arn = hub.register_task_definition(
            with_trust_names(task_def, str(container["name"]), p.names_after))
        revision = f"; new flip-api revision {arn.rsplit(':', 1)[-1]}"
    def record(led: ObservedLedger) -> ObservedLedger:
        for name, held in kits.items():
            led = _with_trust(name, held, "secret")(led)
        return _without_trusts(p.deregistering)(led)
    state.update_ledger(record)
    for name in p.deregistering:  # leaving (decommission or prune), as delete_trust's
        escrow.delete_local(name)
        escrow.delete_kit(name)
        ctx.secrets.forget(name)
    return Outcome(True, True, f"secret registry written ({summary}){revision}; the hub "
                               "accepts it only after flip-api is redeployed")


# --- ledger.migrate -----------------------------------------------------------------------


def _legacy_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _int_map(value: Any) -> dict[str, int]:
    data = _legacy_json(value)
    if not isinstance(data, dict):
        return {}
    out: dict[str, int] = {}
    for k, v in data.items():
        if isinstance(v, int) and not isinstance(v, bool):
            out[str(k)] = v
        elif isinstance(v, str) and v.isdigit():
            out[str(k)] = int(v)
    return out


@executor(ActionKind.LEDGER_MIGRATE)
@single
def migrate_ledger(ctx: ExecContext, action: Action) -> Outcome:
    """Older flipgitops kept its bookkeeping in FLIP_API, which FLIP's Terraform rewrites
    whole: move it into the ledger (first), then remove those keys (second)."""
    p = action.typed(LedgerMigrateParams)
    hub, escrow, state = ctx.ports.hub, ctx.ports.escrow, ctx.ports.state
    view = hub.read_secret()
    present = [k for k in p.legacy_keys if k in view.legacy]
    if not present:
        return Outcome(True, False, "no legacy flipgitops keys left in the hub secret")
    legacy = view.legacy
    gens = _int_map(legacy.get("flipgitops_credentials_generations"))
    db_gens = _int_map(legacy.get("flipgitops_database_generations"))
    listed = _legacy_json(legacy.get("trust_names"))
    names = {str(n) for n in listed} if isinstance(listed, list) else set()
    trusts = sorted(set(gens) | set(db_gens) | names)
    pending_value = legacy.get("flipgitops_redeploy_pending")
    pending = pending_value is True or str(pending_value).lower() == "true"
    v1_keys = {t: escrow.read_legacy_api_key(t) for t in trusts if escrow.read_kit(t) is None}
    if ctx.dry_run:
        return Outcome(True, True, f"would record {len(trusts)} trusts in the ledger and "
                                   f"remove {', '.join(present)} from {view.name}")
    registry = ctx.manifest.hub.trust_registry
    for name, v1 in v1_keys.items():
        if v1 is None:
            continue
        trust = ctx.manifest.trust(name)
        slot = trust.fl_kit_slot if trust else None
        kit = TrustKit(trust_id="", trust_name=name, trust_api_key=v1[2],
                       trust_internal_service_key=mint_key(), fl_kit_slot=slot,
                       fl_kit_slot_number=flip.slot_number(slot) if slot else None)
        escrow.write_kit(name, EscrowedKit(kit=kit, credentials_generation=v1[0],
                                           database_generation=v1[1]))

    def fold(led: ObservedLedger) -> ObservedLedger:
        entries = dict(led.trusts)
        for name in trusts:
            if name in entries:
                continue  # the ledger's own record wins
            held = v1_keys.get(name)
            entries[name] = LedgerTrust(
                credentials_generation=gens.get(name, held[0] if held else 1),
                database_generation=db_gens.get(name, held[1] if held else 1),
                registry=registry,
                api_key_sha256=(view.hashes or {}).get(name)
                or (sha256_hex(held[2].get_secret_value()) if held else None),
                held=name not in v1_keys or held is not None,
                source="migrated")
        return led.model_copy(update={"trusts": entries,
                                      "redeploy_pending": led.redeploy_pending or pending})

    state.update_ledger(fold)
    hub.update_secret(lambda data: {k: v for k, v in data.items() if k not in present})
    return Outcome(True, True, f"moved {len(trusts)} trusts' records into the ledger; removed "
                               f"{', '.join(present)} from {view.name}")


# --- hub.deploy_images (deploy-centralhub) --------------------------------------------------


def _role_name(ctx: ExecContext, role: HubRole) -> str:
    return str(getattr(ctx.manifest.hub.ecs.services, role))


@executor(ActionKind.HUB_DEPLOY_IMAGES)
@single
def deploy_images(ctx: ExecContext, action: Action) -> Outcome:
    p = action.typed(DeployImagesParams)
    hub = ctx.ports.hub
    roles = [r for r in HUB_ROLES if r in p.images]
    # Phase 1: every service, task definition and image checked before anything changes.
    current: dict[HubRole, tuple[str, dict[str, Any], str]] = {}
    for role in roles:
        name = _role_name(ctx, role)
        svc = hub.service(role)
        if svc is None:
            return Outcome(False, False, f"{name} not found in cluster "
                                         f"{ctx.manifest.hub.ecs.cluster}; nothing changed")
        arn = str(svc.get("taskDefinition", ""))
        task_def = hub.task_definition(arn)
        container = app_container(task_def, name) if task_def else None
        if task_def is None or container is None or not container.get("image"):
            return Outcome(False, False, f"{name}: task definition {arn} has no container "
                                         f"named {name}; nothing changed")
        image = str(container["image"])
        if "@" in image:
            return Outcome(False, False, f"{name}: {image} is pinned by digest; nothing changed")
        new_image = with_tag(image, p.images[role].tag)
        current[role] = (arn, task_def, new_image)
    for role in roles:
        new_image = current[role][2]
        check = hub.check_image(new_image)
        if check.exists is not True:
            return Outcome(False, False, f"{new_image} {check.detail}; no service was changed")
        ctx.report(f"{_role_name(ctx, role)}: {new_image} {check.detail}")
    to_move = [r for r in roles
               if image_tag(str((app_container(current[r][1], _role_name(ctx, r)) or {})
                                .get("image"))) != p.images[r].tag]
    if ctx.dry_run:
        return Outcome(True, True, "would deploy " + ", ".join(
            f"{_role_name(ctx, r)} -> {p.images[r].tag}" for r in to_move or roles))
    # Phase 2: a revision with only the image changed, update, then wait.
    moved: list[tuple[HubRole, str, str]] = []
    for role in to_move:
        old_arn, task_def, new_image = current[role]
        name = _role_name(ctx, role)
        new_arn = hub.register_task_definition(with_image(task_def, name, new_image))
        try:
            hub.update_service(role, new_arn, force=True)
        except FlipGitopsError as exc:
            hub.deregister_task_definition(new_arn)
            rolled = _rollback(ctx, moved) if moved else "nothing (no other service moved)"
            return Outcome(False, True, f"updating {name} failed ({exc}); its new revision "
                                        f"was deregistered; rolled back {rolled}")
        moved.append((role, old_arn, new_arn))
        ctx.report(f"{name}: {old_arn.rsplit(':', 1)[-1]} -> {new_arn.rsplit(':', 1)[-1]} "
                   f"({new_image})")
    problem = _settled(ctx, roles)
    if problem is None:
        names = ", ".join(_role_name(ctx, r) for r, _, _ in moved) or "nothing (already there)"
        return Outcome(True, bool(moved), f"deployed {names}; stable; /api/health 200")
    if not moved:
        return Outcome(False, False, f"{problem}; no service was moved by this run")
    rolled = _rollback(ctx, moved)
    names = ", ".join(_role_name(ctx, r) for r, _, _ in moved)
    return Outcome(False, True, f"{problem}; moved {names}; rolled back {rolled}")


def _settled(ctx: ExecContext, roles: Sequence[HubRole]) -> str | None:
    """Stable (bounded wait) and the hub answering 200 on /api/health, or what is wrong."""
    final = ctx.ports.hub.wait_stable(roles, ctx.report)
    unstable = [f"{_role_name(ctx, r)} ({s.detail})" for r, s in final.items() if not s.stable]
    if unstable:
        return "did not stabilise: " + ", ".join(unstable)
    health = ctx.ports.hub.health()
    if not health.ok:
        return f"the hub's {health.url} answered {health.detail}"
    return None


def _rollback(ctx: ExecContext, moved: Sequence[tuple[HubRole, str, str]]) -> str:
    """rollback-centralhub for each moved service: the previous ACTIVE revision below the
    current, update, deregister the failed revision; then wait stable."""
    hub = ctx.ports.hub
    done: list[str] = []
    failed: list[str] = []
    for role, old_arn, new_arn in moved:
        name = _role_name(ctx, role)
        previous = hub.previous_revision(new_arn) or old_arn
        try:
            hub.update_service(role, previous, force=True)
            hub.deregister_task_definition(new_arn)
        except FlipGitopsError as exc:  # keep rolling the others back; say which failed
            failed.append(f"{name} ({str(exc)[:160]})")
            continue
        done.append(f"{name} to {previous.rsplit('/', 1)[-1]}")
    if done:
        final = hub.wait_stable([r for r, _, _ in moved], ctx.report)
        if not all(s.stable for s in final.values()):
            failed.append("the rolled-back services did not stabilise either")
    return ", ".join(done) + (f"; NOT rolled back: {', '.join(failed)}" if failed else "") \
        if done or failed else "nothing"


# --- hub.redeploy --------------------------------------------------------------------------


TIE_WAIT_LIMIT = 2.0  # seconds: the most a redeploy waits out a same-second change


def _outwait_tie(moments: Iterable[datetime | None]) -> None:
    """E2 reads the registry once per process, and observation judges it loaded only when
    flip-api's deployment started after the last change (`adapters.aws.counts_after`). A
    deployment started in the same whole second as a change stamped to the second (moto's
    CreatedDate) cannot be told from one started before it, so the next plan would redeploy
    again and this apply would not converge: start it once that second has passed."""
    marks = [counts_after(m) for m in moments if m is not None]
    if marks:
        wait = (max(marks) - datetime.now(UTC)).total_seconds()
        if wait > 0:
            time.sleep(min(wait + 0.05, TIE_WAIT_LIMIT))


@executor(ActionKind.HUB_REDEPLOY)
@single
def redeploy(ctx: ExecContext, action: Action) -> Outcome:
    p = action.typed(RedeployParams)
    hub = ctx.ports.hub
    name = _role_name(ctx, p.role)
    svc = hub.service(p.role)
    if svc is None:
        return Outcome(False, False, f"ECS service {name} not found")
    latest = hub.latest_revision(p.role)
    move = latest if latest and latest != svc.get("taskDefinition") else None
    if ctx.dry_run:
        return Outcome(True, True, f"would force a new deployment of {name} ({p.reason})"
                       + (f" on revision {move.rsplit(':', 1)[-1]}" if move else ""))
    if p.role == "flip_api" and ctx.manifest.hub.trust_registry == "secret":
        target = hub.task_definition(move or str(svc.get("taskDefinition") or ""))
        registered = (target or {}).get("registeredAt")
        _outwait_tie([hub.read_secret().changed,
                      registered if isinstance(registered, datetime) else None])
    hub.update_service(p.role, move, force=True)
    final = hub.wait_stable([p.role], ctx.report)[p.role]
    if not final.stable:
        return Outcome(False, True, f"{name} did not stabilise after its redeploy: "
                                    f"{final.detail}")
    cleared = ""
    if p.role == "flip_api" and (ctx.manifest.hub.trust_registry == "secret"
                                 or ctx.ports.state.read_ledger().redeploy_pending):
        ctx.ports.state.update_ledger(
            lambda led: led.model_copy(update={"redeploy_pending": False}))
        cleared = "; the registry it loaded is current"
    return Outcome(True, True, f"{name} redeployed ({p.reason}) and stable{cleared}")


# --- hub.rotate_internal_key ---------------------------------------------------------------


@executor(ActionKind.HUB_ROTATE_INTERNAL_KEY)
@single
def rotate_internal_key(ctx: ExecContext, action: Action) -> Outcome:
    p = action.typed(RotateInternalKeyParams)
    hub, escrow, state = ctx.ports.hub, ctx.ports.escrow, ctx.ports.state
    held = escrow.read_internal_key()
    view = hub.read_secret()
    if not view.exists:
        return Outcome(False, False, f"hub secret {view.name} does not exist")
    key = held[1] if held is not None and held[0] == p.generation else None
    if key is not None:
        digest = sha256_hex(key.get_secret_value())
        if view.internal_key_sha256 == digest and view.internal_key_hash == digest and \
                state.read_ledger().internal_service_key_generation == p.generation:
            return Outcome(True, False, f"internal service key generation {p.generation} is "
                                        "in place")
    if ctx.dry_run:
        return Outcome(True, True, f"would rotate the internal service key to generation "
                                   f"{p.generation} (escrow, then {view.name})")
    if key is None:
        key = mint_key()
        escrow.write_internal_key(p.generation, key)  # escrow first: never an unheld key
    value = key.get_secret_value()
    hub.update_secret(lambda data: {**data, SECRET_INTERNAL_KEY: value,
                                    SECRET_INTERNAL_KEY_HASH: sha256_hex(value)})
    state.update_ledger(lambda led: led.model_copy(
        update={"internal_service_key_generation": p.generation}))
    return Outcome(True, True, (
        f"internal service key rotated to generation {p.generation} in {view.name} "
        f"(escrowed at /flipgitops/{ctx.manifest.environment}/hub/internal-service-key). "
        "FLIP's Terraform writes FLIP_API from TF_VAR_INTERNAL_SERVICE_KEY and "
        "TF_VAR_INTERNAL_SERVICE_KEY_HASH: update your CI's INTERNAL_SERVICE_KEY and "
        "INTERNAL_SERVICE_KEY_HASH from the escrow, or the next Terraform apply reverts it; "
        "fl-server and flip-api pick it up on their next deployment"))


# --- allowlist.update ------------------------------------------------------------------------


def _cidr(value: str) -> str:
    return value if "/" in value else f"{value}/32"


@executor(ActionKind.ALLOWLIST_UPDATE)
@single
def update_allowlist(ctx: ExecContext, action: Action) -> Outcome:
    """Add first, then revoke, on the FL port only; FLIP's Terraform rules are left alone."""
    p = action.typed(AllowlistParams)
    hub = ctx.ports.hub
    port = ctx.manifest.hub.fl_server.port
    group = hub.group()  # an ambiguous or missing group is an error naming them
    exact = {r.cidr: r for r in group.rules if r.protocol == "tcp" and r.from_port == port
             and r.to_port == port}
    wanted = {_cidr(t.cidr): t.trust for t in p.add}
    new = [(c, managed_rule_description(t)) for c, t in wanted.items() if c not in exact]
    relabel = [(c, managed_rule_description(t)) for c, t in wanted.items()
               if c in exact and exact[c].description != managed_rule_description(t)
               and not (exact[c].description or "").startswith(TERRAFORM_TRUST_RULE_PREFIX)]
    gone = [c for c in dict.fromkeys(_cidr(t.cidr) for t in p.revoke)
            if c in exact and c not in wanted
            and not (exact[c].description or "").startswith(TERRAFORM_TRUST_RULE_PREFIX)]
    peak = group.total_rules + len(new)
    if peak > group.quota:
        return Outcome(False, False, (
            f"security group {group.group_id} ({group.name}) would hold {peak} inbound rules, "
            f"more than its quota of {group.quota} (Service Quotas L-0EA8095F): raise the "
            "quota; no rule was written"))
    if not (new or relabel or gone):
        return Outcome(True, False, "the allowlist already matches")
    summary = (f"add {', '.join(c for c, _ in new) or 'none'}; revoke {', '.join(gone) or 'none'}"
               + (f"; relabel {', '.join(c for c, _ in relabel)}" if relabel else ""))
    if ctx.dry_run:
        return Outcome(True, True, f"would {summary} on {group.group_id}")
    if new:
        hub.authorize_rules(group.group_id, new)
    for cidr, description in relabel:
        hub.relabel_rule(group.group_id, cidr, description)
    if gone:
        hub.revoke_rules(group.group_id, gone)
    return Outcome(True, True, f"{summary} on {group.group_id}")


# --- terraform.apply -------------------------------------------------------------------------


def terraform_findings(ctx: ExecContext, plan: dict[str, Any]) -> list[str]:
    """The guards' Terraform checks (FG002/FG007/FG008) over the plan about to be applied."""
    from flipgitops.core.guards import check_terraform_plan

    return check_terraform_plan(ctx.manifest, plan, allow=ctx.allow, fl_quiesced=ctx.fl_quiesced)


@executor(ActionKind.TERRAFORM_APPLY)
@single
def apply_terraform(ctx: ExecContext, action: Action) -> Outcome:
    p = action.typed(TerraformParams)
    tf = ctx.ports.terraform
    if tf is None:
        return Outcome(False, False, "hub.terraform is not configured in the manifest")
    if ctx.dry_run:
        plan = tf.plan_readonly(p)
        problems = terraform_findings(ctx, plan)
        if problems:
            return Outcome(False, False, "terraform plan refused: " + "; ".join(problems),
                           blocked=True)
        return Outcome(True, True, f"would apply the hub's Terraform ({p.summary or 'plan'})")
    result = tf.apply(p, lambda plan: terraform_findings(ctx, plan))
    if result.problems:
        return Outcome(False, False, "terraform plan refused, nothing applied: "
                       + "; ".join(result.problems), blocked=True)
    if not result.applied:
        return Outcome(True, False, "the hub's Terraform has no changes")
    return Outcome(True, True, f"applied the hub's Terraform: {len(result.addresses)} "
                               f"resource(s) changed ({', '.join(result.addresses[:8])})")


# --- the database ----------------------------------------------------------------------------


@executor(ActionKind.DATABASE_SNAPSHOT)
@single
def snapshot_database(ctx: ExecContext, action: Action) -> Outcome:
    p = action.typed(GenerationParams)
    hub = ctx.ports.hub
    db = hub.database()
    if not db.exists:
        return Outcome(False, False, f"RDS instance {db.identifier} not found")
    prefix = snapshot_prefix(ctx.manifest.environment, p.generation)
    mine = [(i, s) for i, s in hub.snapshots(prefix) if s in ("available", "creating")]
    if any(s == "available" for _, s in mine):
        done = next(i for i, s in mine if s == "available")
        return Outcome(True, False, f"snapshot {done} of generation {p.generation} exists")
    if not mine and db.status not in USABLE_DB_STATUSES:
        return Outcome(False, False, f"RDS instance {db.identifier} is {db.status!r}, not "
                                     "available: wait for it, then rerun (no snapshot taken)")
    if ctx.dry_run:
        return Outcome(True, True, f"would snapshot {db.identifier} as {prefix}<time>")
    if mine:
        snapshot_id = mine[0][0]
    else:
        snapshot_id = prefix + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        hub.create_snapshot(snapshot_id, {"flipgitops:generation": str(p.generation),
                                          "flipgitops:environment": ctx.manifest.environment})
    hub.wait_snapshot(snapshot_id, ctx.report)
    return Outcome(True, True, f"snapshot {snapshot_id} available")


@executor(ActionKind.DATABASE_RESET_SCHEMA)
@single
def reset_schema(ctx: ExecContext, action: Action) -> Outcome:
    p = action.typed(GenerationParams)
    hub = ctx.ports.hub
    db = hub.database()
    if not db.exists:
        return Outcome(False, False, f"RDS instance {db.identifier} not found")
    if db.generation == p.generation:
        return Outcome(True, False, f"schema already reset for generation {p.generation}")
    if db.status not in USABLE_DB_STATUSES:
        return Outcome(False, False, f"RDS instance {db.identifier} is {db.status!r}; not "
                                     "resetting its schema now")
    running = [t for t in hub.running_tasks(RESET_STARTED_BY)
               if is_reset_of(t.command, p.generation)]
    if ctx.dry_run:
        return Outcome(True, True, "would run DROP SCHEMA public CASCADE; CREATE SCHEMA "
                                   f"public on {db.identifier} (generation {p.generation})")
    task = running[0] if running else hub.run_task(reset_command(p.generation),
                                                   RESET_STARTED_BY)
    ctx.report(f"schema reset task {task.task_id} {'already running' if running else 'started'}")
    task = hub.wait_task(task, "the schema reset", ctx.report)
    lines = hub.task_log(task.task_id)
    if not evidence(lines, p.generation):
        shown = problem_lines(lines)
        codes = ", ".join(f"{k}={v}" for k, v in sorted(task.exit_codes.items()))
        return Outcome(False, True, (
            f"schema reset task {task.task_id} left no evidence of the reset on its log "
            f"stream (exit codes {codes or 'none'} are not trusted); the database was not "
            "re-tagged" + (f"; task log: {' | '.join(shown)}" if shown else "")))
    hub.tag_database(p.generation)
    return Outcome(True, True, f"schema public dropped and recreated on {db.identifier}; "
                               f"tagged generation {p.generation}")


@executor(ActionKind.DATABASE_RESTORE_PROTECTION)
@single
def restore_protection(ctx: ExecContext, action: Action) -> Outcome:
    action.typed(NoParams)
    db = ctx.ports.hub.database()
    if not db.exists:
        return Outcome(False, False, f"RDS instance {db.identifier} not found")
    if db.deletion_protection:
        return Outcome(True, False, f"deletion protection is on for {db.identifier}")
    if ctx.dry_run:
        return Outcome(True, True, f"would turn deletion protection on for {db.identifier}")
    ctx.ports.hub.enable_deletion_protection()
    return Outcome(True, True, f"deletion protection turned on for {db.identifier}")
