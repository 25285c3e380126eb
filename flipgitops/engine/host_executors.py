"""Executors of the host kinds: each turns a wave's actions into ONE HostPort run.

Each kind's executor is two halves: ``prepare`` turns the actions into host tasks (every
controller-side read and check, nothing contacted) and the batch's ``finish`` turns the
hosts' results into outcomes (and records what must be recorded after a host succeeded).
`run` is the two with one `HostPort.run` between; the engine may instead run the batches of
several consecutive host waves as one `HostPort.run_steps` (engine/apply.py).

Order inside each executor survives a crash at any point: reads and checks first (the
escrow, the release at the planned commit, the kit in the bucket at the planned
fingerprint), then what must be durable before a host depends on it (minted trust-local
credentials are escrowed before the kit file that holds them is written), then the host.
In a dry run every read-only check still runs and nothing is written or contacted.
Messages never hold a secret (the adapter masks what a host says, too).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from flipgitops.core import kitfile
from flipgitops.engine.executors import (
    ExecContext,
    Outcome,
    SecretCache,
    executor,
    side_by_side,
)
from flipgitops.engine.ports import Ports
from flipgitops.engine.ports_hosts import (
    FlKitInput,
    HostResult,
    HostTarget,
    HostTask,
    KitFileInput,
    ProvisionInput,
    ReleaseInput,
    ReleaseTree,
    StackInput,
    StepInput,
    VerifyInput,
)
from flipgitops.errors import FlipGitopsError
from flipgitops.model.actions import (
    Action,
    ActionKind,
    DeliverFlKitParams,
    DeployReleaseParams,
    ProvisionParams,
    StopStackParams,
    VerifyParams,
)
from flipgitops.model.flip import slot_number as flip_slot_number
from flipgitops.model.kit import LOCAL_CREDENTIAL_KEYS, EscrowedKit, LocalCredentials
from flipgitops.model.manifest import Trust
from flipgitops.model.observed import ObservedLedger

VERIFY_TIMEOUT_SECONDS = 180.0
K = ActionKind


def mint_secret() -> SecretStr:
    """FLIP's generate_trust_key (flip_api/scripts/generate_trust_key.py@160f4bf2)."""
    return SecretStr(secrets.token_urlsafe(32))


def _target(ctx: ExecContext, action: Action) -> tuple[Trust, HostTarget]:
    trust = ctx.trust(action.target)
    return trust, HostTarget.of(ctx.manifest, trust, ctx.manifest_dir)


Build = Callable[[Action, Trust, HostTarget], StepInput]
Done = Callable[[Action, HostResult], None]


@dataclass
class _Batch:
    """One kind's actions as host tasks (engine/executors.py HostBatch)."""

    kind: ActionKind
    actions: dict[str, Action] = field(default_factory=dict)
    tasks: dict[str, HostTask] = field(default_factory=dict)
    decided: dict[str, Outcome] = field(default_factory=dict)
    done: Done | None = None

    def finish(self, results: Mapping[str, HostResult]) -> dict[str, Outcome]:
        out = dict(self.decided)
        for action_id, task in self.tasks.items():
            name = task.target.trust
            result = results.get(action_id) or HostResult(name, False, False, "no result")
            out[action_id] = Outcome(result.ok, result.changed, result.message)
            if result.ok and self.done is not None:
                try:
                    self.done(self.actions[action_id], result)
                except FlipGitopsError as exc:
                    # The host did it; recording it (the ledger) failed: the action failed,
                    # never the run, so the report still says what completed and why not.
                    out[action_id] = Outcome(False, True, f"{result.message}; but recording "
                                                          f"it failed: {exc}")
        return out


def _prepare(ctx: ExecContext, kind: ActionKind, actions: Sequence[Action], build: Build,
             done: Done | None = None, *, concurrent: bool = False) -> _Batch:
    """Build each action's task; a failure fails that action only. No host is contacted.

    ``concurrent``: each build touches only its own trust's state (an FL kit's files in
    its bucket; the trust's escrowed credentials, minted and escrowed before its kit file
    is built) and the ledger, whose writers take turns, so they run side by side
    (`side_by_side`): ten onboardings read 120 kit objects, which one after the other took
    2.4 s of an apply here, and longer over a real network."""
    batch = _Batch(kind, done=done)

    def one(action: Action) -> HostTask | Outcome:
        try:
            trust, target = _target(ctx, action)
            if ctx.dry_run:
                # nothing is built: what a step needs may come from this apply's own
                # earlier steps (a kit registered in wave 1), which a dry run never ran
                return Outcome(True, True, f"would run {kind} on {target.trust}")
            return HostTask(target, build(action, trust, target))
        except (FlipGitopsError, LookupError, ValueError) as exc:
            return Outcome(False, False, str(exc))

    built = side_by_side(one, actions) if concurrent and not ctx.dry_run else \
        [one(action) for action in actions]
    for action, got in zip(actions, built, strict=True):
        if isinstance(got, Outcome):
            batch.decided[action.id] = got
        else:
            batch.actions[action.id] = action
            batch.tasks[action.id] = got
    return batch


def _run_batch(ctx: ExecContext, batch: _Batch) -> dict[str, Outcome]:
    """One HostPort run for the batch's tasks (one per host)."""
    if not batch.tasks:
        return batch.finish({})
    ctx.report(f"{batch.kind}: {len(batch.tasks)} host(s)")
    by_trust = ctx.ports.hosts.run(batch.kind, list(batch.tasks.values()), cancel=ctx.cancel)
    return batch.finish({action_id: by_trust[task.target.trust]
                         for action_id, task in batch.tasks.items()
                         if task.target.trust in by_trust})


def _host_kind(kind: ActionKind, make: Callable[[ExecContext], tuple[Build, Done | None]],
               *, concurrent: bool = False) -> None:
    """Register ``kind``'s executor: ``make(ctx)`` gives the task builder (and what to record
    after a host succeeded), fresh per call so per-run caches stay per run."""

    def prepare(ctx: ExecContext, actions: Sequence[Action]) -> _Batch:
        build, done = make(ctx)
        return _prepare(ctx, kind, actions, build, done, concurrent=concurrent)

    def run(ctx: ExecContext, actions: Sequence[Action]) -> Mapping[str, Outcome]:
        return _run_batch(ctx, prepare(ctx, actions))

    run.__name__ = f"run_{kind.value.replace('.', '_')}"
    executor(kind, grouped=True, prepare=prepare)(run)


def _provision(ctx: ExecContext) -> tuple[Build, Done | None]:
    def build(action: Action, trust: Trust, target: HostTarget) -> StepInput:
        params = action.typed(ProvisionParams)
        number = params.slot_number
        if number is None:
            _, number = _assigned_slot(ctx, trust)
        profile = kitfile.host_profile(ctx.manifest, trust, slot_number=number)
        return ProvisionInput(profile=profile, slot_number=number)

    return build, None


def _deploy_release(ctx: ExecContext) -> tuple[Build, Done | None]:
    trees: dict[str, ReleaseTree] = {}
    checkout = (ctx.manifest_dir / ctx.manifest.flip.checkout).resolve()

    def build(action: Action, trust: Trust, target: HostTarget) -> StepInput:
        params = action.typed(DeployReleaseParams)
        if params.ref not in trees:
            trees[params.ref] = ctx.ports.release.tree(Path(checkout), params.ref)
        tree = trees[params.ref]
        if tree.commit != params.commit:
            raise ValueError(f"flip.ref {params.ref} is now {tree.commit[:12]}, not the "
                             f"planned {params.commit[:12]}: plan again")
        return ReleaseInput(tree=tree)

    return build, None


def _assigned_slot(ctx: ExecContext, trust: Trust) -> tuple[str, int]:
    """The slot the hub assigned (the escrowed kit): for a trust registered earlier in the
    same apply the plan could not know it."""
    return kit_slot(_kit(ctx, trust), trust.name)


def kit_slot(held: EscrowedKit, trust: str) -> tuple[str, int]:
    """(FL_KIT_SLOT, FL_KIT_SLOT_NUMBER) of an escrowed kit (FLIP's number rule when the
    kit names none)."""
    kit = held.kit
    if kit.fl_kit_slot is None:
        raise ValueError(f"the escrowed kit of {trust} names no FL kit slot: register "
                         "it again (the hub's kit had none)")
    number = kit.fl_kit_slot_number
    return kit.fl_kit_slot, number if number is not None else flip_slot_number(kit.fl_kit_slot)


def _local_credentials(ctx: ExecContext, trust: Trust) -> LocalCredentials:
    return trust_local_credentials(ctx.ports, trust, region=ctx.manifest.aws.region,
                                   cache=ctx.secrets, dry_run=ctx.dry_run)


def trust_local_credentials(ports: Ports, trust: Trust, *, region: str | None,
                            cache: SecretCache, dry_run: bool = False) -> LocalCredentials:
    """Referenced credentials resolved; the rest escrowed ones or, the first time, minted
    and escrowed (before any host or archive holds them). The one home of that rule: the
    host executor and `flipgitops kit` both come here."""
    referenced = ports.hosts.resolve_references(trust.credentials, region=region)
    held = cache.local(trust.name) or ports.escrow.read_local(trust.name)
    minted = dict(held.values) if held else {}
    missing = [k for k in LOCAL_CREDENTIAL_KEYS if k not in minted and k not in referenced]
    if missing:
        if dry_run:
            minted.update({k: SecretStr("dry-run-placeholder") for k in missing})
        else:
            minted.update({k: mint_secret() for k in missing})
            escrowed = LocalCredentials(values=minted)
            ports.escrow.write_local(trust.name, escrowed)
            _ledger_local(ports, trust.name, escrowed.fingerprint())
    elif held is not None and not dry_run:
        # The ledger entry may be younger than the credentials: a rotation on the database
        # registry deletes the trust's entry and registers a new one, and the kit-file fact
        # compares the host with the entry. Record what the host gets (a no-op when it is
        # already there), or every later plan rewrites the kit file.
        _ledger_local(ports, trust.name, held.fingerprint())
    if not dry_run and (held is None or missing):
        cache.remember_local(trust.name, LocalCredentials(values=minted))
    return LocalCredentials(values={**minted, **referenced})


def local_credentials_missing(ports: Ports, trust: Trust) -> bool:
    """Whether `trust_local_credentials` would mint (and so write the escrow)."""
    held = ports.escrow.read_local(trust.name)
    have = set(held.values) if held else set()
    return any(k not in have and k not in trust.credentials for k in LOCAL_CREDENTIAL_KEYS)


def _ledger_local(ports: Ports, trust: str, fingerprint: str) -> None:
    def update(ledger: ObservedLedger) -> ObservedLedger:
        entry = ledger.trusts.get(trust)
        if entry is None:
            return ledger
        trusts = {**ledger.trusts,
                  trust: entry.model_copy(update={"local_credentials_sha256": fingerprint})}
        return ledger.model_copy(update={"trusts": trusts})

    ports.state.update_ledger(update)


def _kit(ctx: ExecContext, trust: Trust) -> EscrowedKit:
    held = ctx.secrets.kit(trust.name) or ctx.ports.escrow.read_kit(trust.name)
    if held is None:
        raise ValueError(f"no escrowed kit for {trust.name}: register the trust first "
                         "(flipgitops plan shows registry.register)")
    ctx.secrets.remember_kit(trust.name, held)
    return held


def _write_kit_file(ctx: ExecContext) -> tuple[Build, Done | None]:
    aes: list[SecretStr] = []
    once = threading.Lock()  # the builds run side by side: one read of the hub's AES key

    def build(action: Action, trust: Trust, target: HostTarget) -> StepInput:
        held = _kit(ctx, trust)
        with once:
            if not aes:
                aes.append(ctx.ports.hub.read_aes_key())
        local = _local_credentials(ctx, trust)
        text = kitfile.render(ctx.manifest, trust, kit=held.kit, local=local, aes_key=aes[0])
        return KitFileInput(content=SecretStr(text))

    return build, None


def _deliver_fl_kit(ctx: ExecContext) -> tuple[Build, Done | None]:
    delivered: dict[str, str] = {}

    def build(action: Action, trust: Trust, target: HostTarget) -> StepInput:
        params = action.typed(DeliverFlKitParams)
        slot, number = params.slot, params.slot_number
        if slot is None or number is None:
            slot, number = _assigned_slot(ctx, trust)
        kit = ctx.ports.kits.fetch(ctx.manifest.hub.fl_kits.bucket, params.date,
                                   params.backend, slot, number)
        if params.source_fingerprint is not None and kit.fingerprint != params.source_fingerprint:
            raise ValueError(f"the FL kit of {slot} in {kit.source} changed since the "
                             "plan: plan again")
        profile = kitfile.host_profile(ctx.manifest, trust, slot_number=number)
        delivered[trust.name] = kit.fingerprint
        return FlKitInput(kit=kit, fl_kit_dir=profile["FL_KIT_DIR"])

    def done(action: Action, result: HostResult) -> None:
        def update(ledger: ObservedLedger) -> ObservedLedger:
            kits = {**ledger.delivered_kits, action.target: delivered[action.target]}
            return ledger.model_copy(update={"delivered_kits": kits})

        ctx.ports.state.update_ledger(update)

    return build, done


def _start_stack(ctx: ExecContext) -> tuple[Build, Done | None]:
    return (lambda a, t, h: StackInput()), None


def _stop_stack(ctx: ExecContext) -> tuple[Build, Done | None]:
    return (lambda a, t, h: StackInput(project=a.typed(StopStackParams).project)), None


def _verify(ctx: ExecContext) -> tuple[Build, Done | None]:
    return (lambda a, t, h: VerifyInput(expect_trust=a.typed(VerifyParams).expect_trust,
                                        timeout_seconds=VERIFY_TIMEOUT_SECONDS)), None


for _kind, _make in (
    (K.HOST_PROVISION, _provision),
    (K.HOST_DEPLOY_RELEASE, _deploy_release),
    (K.HOST_START_STACK, _start_stack),
    (K.HOST_STOP_STACK, _stop_stack),
    (K.HOST_VERIFY, _verify),
):
    _host_kind(_kind, _make)
# Their builds wait on AWS for each trust (the bucket, the escrow): side by side.
_host_kind(K.HOST_WRITE_KIT_FILE, _write_kit_file, concurrent=True)
_host_kind(K.HOST_DELIVER_FL_KIT, _deliver_fl_kit, concurrent=True)
