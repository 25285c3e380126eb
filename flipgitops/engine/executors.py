"""Executors: how each action kind touches the world, looked up by ``Action.kind``.

The planner decides *what* and in which order; executors only know *how*, and each one is
idempotent so a rerun after a crash can repeat any prefix of a plan safely. Host actions of
one kind are executed as a group (one ansible-runner run over all their hosts, in parallel);
AWS actions run one at a time.

Secrets: a trust's API key is minted and escrowed in SSM by ``credentials.escrow`` before any
hub write, then read back from the escrow (or this run's in-memory cache) wherever it is
needed. Plaintext keys live only in :class:`ApplyContext` memory and in the 0600 trust env
files the hosts adapter writes; everything printed or journaled shows ``sha256:<12 hex>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flipgitops.errors import AdapterError, FlipGitopsError
from flipgitops.model.manifest import Manifest, Trust
from flipgitops.model.plan import Action, ActionKind

if TYPE_CHECKING:
    from flipgitops.adapters.aws_actions import AwsActions

Echo = Callable[..., None]

# Placeholder handed to hosts in check mode when no key is escrowed yet: check mode writes
# nothing, and a dry run must never mint a real key.
DRY_RUN_PLACEHOLDER = "dry-run-placeholder-not-a-key"


def short_hash(hexdigest: str) -> str:
    return f"sha256:{hexdigest[:12]}"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Outcome:
    """What one action did. ``message`` is shown and journaled: it must never hold a secret."""

    ok: bool
    changed: bool = False
    message: str = ""
    # Refused by a guard at apply time (the hub Terraform's own plan), not broken: the run
    # exits 3 like a plan-time block when nothing else failed.
    blocked: bool = False


@dataclass
class ApplyContext:
    """Everything executors share during one run."""

    manifest: Manifest
    manifest_dir: Path
    aws: AwsActions
    echo: Echo
    dry_run: bool = False
    allow: frozenset[str] = frozenset()  # guards the operator accepted (--allow)
    fl_quiesced: bool = False  # --fl-quiesced: FL may be restarted (FG007)
    # trust -> (generation, database generation, plaintext key); only in memory, never in
    # repr.
    _keys: dict[str, tuple[int, int, str]] = field(default_factory=dict, repr=False)

    def say(self, text: str) -> None:
        self.echo(text, err=True)

    def remember_key(
        self, trust: str, generation: int, key: str, database_generation: int = 1
    ) -> None:
        self._keys[trust] = (generation, database_generation, key)

    def _record(self, trust: str) -> tuple[int, int, str] | None:
        if trust not in self._keys:
            found = self.aws.escrow_record(trust)
            if found is None:
                return None
            self._keys[trust] = (found.generation, found.database_generation, found.api_key)
        return self._keys[trust]

    def trust_key(self, trust: str) -> tuple[int, str] | None:
        """The newest key for ``trust``: minted this run, else the escrowed one."""
        found = self._record(trust)
        return None if found is None else (found[0], found[2])

    def trust_database_generation(self, trust: str) -> int | None:
        """The database generation ``trust``'s newest key was minted for."""
        found = self._record(trust)
        return None if found is None else found[1]

    def trust(self, name: str) -> Trust:
        trust = self.manifest.trust(name)
        if trust is None:
            raise FlipGitopsError(f"trust {name} is not in the manifest; cannot act on its host")
        return trust


Runner = Callable[[ApplyContext, Sequence[Action]], dict[str, Outcome]]


@dataclass(frozen=True)
class Executor:
    """``grouped`` executors receive every action of their kind in a wave at once."""

    run: Runner
    grouped: bool = False


def _single(fn: Callable[[ApplyContext, Action], Outcome]) -> Executor:
    def run(ctx: ApplyContext, actions: Sequence[Action]) -> dict[str, Outcome]:
        return {a.id: fn(ctx, a) for a in actions}

    return Executor(run=run)


# --- credentials -------------------------------------------------------------------------


def _desired_generation(ctx: ApplyContext, action: Action) -> int:
    if "generation" in action.params:
        return int(action.params["generation"])
    return ctx.trust(action.target).credentials_generation


def _database_generation(ctx: ApplyContext, action: Action) -> int:
    """The database generation a key is minted for: a recreated database needs new keys."""
    if "database_generation" in action.params:
        return int(action.params["database_generation"])
    return ctx.manifest.hub.database.generation


def credentials_escrow(ctx: ApplyContext, action: Action) -> Outcome:
    trust, generation = action.target, _desired_generation(ctx, action)
    database_generation = _database_generation(ctx, action)
    if ctx.dry_run:
        existing = ctx.aws.escrow_record(trust)
        if existing is not None and (existing.generation, existing.database_generation) == (
            generation, database_generation
        ):
            return Outcome(True, False, f"key generation {generation} already escrowed")
        return Outcome(True, True, f"would mint and escrow a generation {generation} key")
    key = ctx.aws.ensure_escrowed_key(trust, generation, database_generation)
    ctx.remember_key(trust, generation, key, database_generation)
    return Outcome(True, True, f"escrowed generation {generation} key {short_hash(key_hash(key))}"
                   f" (database generation {database_generation})")


# --- hub -----------------------------------------------------------------------------------


def _names(params: Mapping[str, Any], key: str) -> list[str]:
    return [str(n) for n in params.get(key, []) or []]


def hub_secret_update(ctx: ApplyContext, action: Action) -> Outcome:
    register_names = _names(action.params, "register")
    deregister = _names(action.params, "deregister")
    drop_previous = _names(action.params, "drop_previous")
    register: dict[str, tuple[str, int]] = {}
    database_generations: dict[str, int] = {}
    min_database = ctx.manifest.hub.database.generation
    for name in register_names:
        found = ctx.trust_key(name)
        if found is None:
            if ctx.dry_run:
                continue
            return Outcome(False, False, f"no escrowed key for {name}: escrow must run first")
        generation, key = found
        wanted = ctx.manifest.trust(name)
        if wanted is not None and generation < wanted.credentials_generation and not ctx.dry_run:
            return Outcome(
                False, False,
                f"escrowed key for {name} is generation {generation}, manifest wants "
                f"{wanted.credentials_generation}: escrow must run first",
            )
        database_generation = ctx.trust_database_generation(name) or 1
        if database_generation < min_database and not ctx.dry_run:
            return Outcome(
                False, False,
                f"escrowed key for {name} was minted for database generation "
                f"{database_generation}, the manifest is at {min_database}: escrow must run "
                "first",
            )
        register[name] = (key_hash(key), generation)
        database_generations[name] = database_generation
    summary = _secret_summary(register, register_names, deregister, drop_previous)
    if ctx.dry_run:
        return Outcome(True, True, f"would update hub secret: {summary}")
    # Every registry write marks flip-api as needing a redeploy in the same write; only the
    # redeploy clears it, so a crash in between is planned again on the next run.
    changed = ctx.aws.update_hub_secret(
        register=register, deregister=deregister, drop_previous=drop_previous,
        database_generations=database_generations, mark_redeploy_pending=True,
    )
    return Outcome(True, changed, summary)


def _secret_summary(
    register: Mapping[str, tuple[str, int]],
    register_names: Sequence[str],
    deregister: Sequence[str],
    drop_previous: Sequence[str],
) -> str:
    parts = []
    if register_names:
        shown = [
            f"{n}={short_hash(register[n][0])}" if n in register else f"{n}=(not escrowed yet)"
            for n in register_names
        ]
        parts.append("register " + ", ".join(shown))
    if deregister:
        parts.append("deregister " + ", ".join(deregister))
    if drop_previous:
        parts.append("drop previous hash of " + ", ".join(drop_previous))
    return "; ".join(parts) or "no change"


def hub_redeploy(ctx: ApplyContext, action: Action) -> Outcome:
    if ctx.dry_run:
        return Outcome(True, True, "would force a new flip-api deployment")
    ctx.aws.redeploy_flip_api()
    # Only after the new deployment was accepted: flip-api's new tasks read the secret as
    # it is now, so the marker set with the registry change can go.
    cleared = ctx.aws.clear_redeploy_pending()
    return Outcome(True, True, "flip-api redeployed" + (" (redeploy marker cleared)"
                                                        if cleared else ""))


def hub_deploy_image(ctx: ApplyContext, action: Action) -> Outcome:
    tag = str(action.params["tag"])
    if ctx.dry_run:
        return Outcome(True, True, f"would deploy {action.target} on {tag}")
    ctx.aws.deploy_image(action.target, tag)
    return Outcome(True, True, f"{action.target} on {tag}")


def allowlist_update(ctx: ApplyContext, action: Action) -> Outcome:
    add = [(str(r["trust"]), str(r["cidr"])) for r in action.params.get("add", []) or []]
    revoke = [str(r["cidr"]) for r in action.params.get("revoke", []) or []]
    summary = "; ".join(
        p for p in (
            "add " + ", ".join(f"{c} ({t})" for t, c in add) if add else "",
            "revoke " + ", ".join(revoke) if revoke else "",
        ) if p
    )
    if ctx.dry_run:
        return Outcome(True, True, f"would {summary}")
    ctx.aws.update_allowlist(add=add, revoke=revoke)
    return Outcome(True, True, summary)


# --- terraform -----------------------------------------------------------------------------


def terraform_vars(manifest: Manifest, params: Mapping[str, Any]) -> dict[str, Any]:
    """The hub root's variables (FLIP's names): planned tfvars win, else the manifest's."""
    if "local_trust_public_ips" in params:
        return dict(params)
    images = manifest.hub.images
    return {
        "environment": "prod" if manifest.is_prod else "stag",
        "local_trust_public_ips": sorted(
            t.public_ip for t in manifest.trusts if t.state != "decommissioned"
        ),
        "docker_image_tag": images.hub_tag,
        "flip_fl_image_tag": images.fl_tag,
    }


def terraform_guard(
    manifest: Manifest, allow: frozenset[str], *, fl_quiesced: bool = False
) -> Callable[[dict[str, Any]], list[str]]:
    """FG008 (protected types destroyed, any env), FG002 (prod database) and FG007 (the FL
    server or API rolled while training may run) on the exact plan that will be applied;
    FG002 is never overridable."""
    from flipgitops.core.terraform_plan import (
        DATABASE_TYPE,
        PROTECTED_TYPES,
        TerraformPlanFormatError,
        parse_plan,
    )

    def guard(plan_json: dict[str, Any]) -> list[str]:
        try:
            tf_plan = parse_plan(plan_json)
        except TerraformPlanFormatError as exc:
            return [f"cannot judge the terraform plan: {exc}"]
        problems = []
        if manifest.is_prod:
            for rc in (*tf_plan.removing([DATABASE_TYPE]), *tf_plan.database_unprotecting()):
                problems.append(f"FG002: {rc.address} would be {rc.kind}d or unprotected "
                                "in prod (never overridable)")
        if "FG008" not in allow:
            for rc in tf_plan.removing(PROTECTED_TYPES):
                problems.append(f"FG008: {rc.address} would be {rc.kind}d "
                                "(protected type; --allow FG008 to accept)")
        if not fl_quiesced:
            for rc in tf_plan.fl_service_changes():
                problems.append(f"FG007: {rc.address} would change ({rc.kind}), restarting "
                                "the FL control plane; rerun with --fl-quiesced once no "
                                "training runs")
        return sorted(set(problems))

    return guard


def terraform_apply(ctx: ApplyContext, action: Action) -> Outcome:
    from flipgitops.adapters.terraform import Terraform, plan_and_apply_allowlist

    config = ctx.manifest.hub.terraform
    if config is None:
        return Outcome(False, False, "hub.terraform is not set: the allowlist is not Terraform's")
    tf = Terraform((ctx.manifest_dir / config.dir).resolve())
    tf.init(config.backend_config)
    result = plan_and_apply_allowlist(
        tf, terraform_vars(ctx.manifest, action.params),
        terraform_guard(ctx.manifest, ctx.allow, fl_quiesced=ctx.fl_quiesced), ctx.dry_run,
    )
    addresses = ", ".join(result["addresses"]) or "no resource changes"
    if ctx.dry_run:
        return Outcome(True, bool(result["changed"]), f"terraform plan only: {addresses}")
    return Outcome(True, bool(result["applied"]), f"terraform applied: {addresses}")


# --- database ------------------------------------------------------------------------------


def database_snapshot(ctx: ApplyContext, action: Action) -> Outcome:
    generation = int(action.params.get("generation", ctx.manifest.hub.database.generation))
    if ctx.dry_run:
        return Outcome(True, True, f"would snapshot the database before generation {generation}")
    snapshot = ctx.aws.snapshot_database(generation)
    return Outcome(True, True, f"snapshot {snapshot} available")


def database_reset_schema(ctx: ApplyContext, action: Action) -> Outcome:
    generation = int(action.params.get("generation", ctx.manifest.hub.database.generation))
    if ctx.dry_run:
        return Outcome(True, True, f"would reset the schema (generation {generation})")
    ctx.aws.reset_schema(generation)
    return Outcome(True, True, f"schema reset, generation {generation}")


def database_restore_protection(ctx: ApplyContext, action: Action) -> Outcome:
    if ctx.dry_run:
        return Outcome(True, True, "would turn deletion protection back on")
    ctx.aws.restore_protection()
    return Outcome(True, True, "deletion protection on")


# --- hosts ---------------------------------------------------------------------------------


def host_vars(manifest: Manifest, trust: Trust) -> dict[str, Any]:
    """What every host playbook may template: the manifest's view of this trust."""
    hub = manifest.hub
    return {
        "trust_name": trust.name,
        "hub_url": f"https://{hub.domain}/api",
        "registry": hub.images.registry,
        "docker_tag": hub.images.hub_tag,
        "docker_fl_tag": hub.images.fl_tag,
        "fl_backend": hub.fl_backend,
        "services": trust.services.model_dump(),
    }


def _host_secrets(
    ctx: ApplyContext, trust: Trust, action: Action, aes_key: str | None
) -> dict[str, str]:
    found = ctx.trust_key(trust.name)
    wanted = int(action.params.get("generation", trust.credentials_generation))
    if not ctx.dry_run:
        if found is None:
            raise FlipGitopsError(
                f"no escrowed API key for {trust.name}: the hub registration must run first "
                "(bump credentials_generation to mint a new one)"
            )
        if found[0] != wanted:
            raise FlipGitopsError(
                f"the escrowed API key of {trust.name} is generation {found[0]}, the plan "
                f"delivers generation {wanted}: rerun apply to re-plan"
            )
    if aes_key is None and not ctx.dry_run:
        raise FlipGitopsError("the hub secret has no aes_key to deliver to trusts")
    return {
        "trust_api_key": found[1] if found else DRY_RUN_PLACEHOLDER,
        "aes_key_base64": aes_key or DRY_RUN_PLACEHOLDER,
    }


def run_host_group(ctx: ApplyContext, actions: Sequence[Action]) -> dict[str, Outcome]:
    """One ansible-runner run for every action of one host kind in a wave (parallel forks)."""
    from flipgitops.adapters.hosts import HostTarget, HostTask, run_host_action

    if not actions:
        return {}
    kind = actions[0].kind
    outcomes: dict[str, Outcome] = {}
    tasks = []
    by_trust: dict[str, Action] = {}
    aes_key = ctx.aws.hub_aes_key() if kind == ActionKind.HOST_DELIVER else None
    for action in actions:
        try:
            trust = ctx.trust(action.target)
            if trust.host is None:
                raise FlipGitopsError(f"trust {trust.name} has no host to act on")
            secrets = (_host_secrets(ctx, trust, action, aes_key)
                       if kind == ActionKind.HOST_DELIVER else {})
        except FlipGitopsError as exc:
            outcomes[action.id] = Outcome(False, False, str(exc))
            continue
        target = HostTarget(trust=trust.name, host=trust.host, fl_kit_slot=trust.fl_kit_slot,
                            region=ctx.manifest.aws.region)
        tasks.append(HostTask(target=target, vars=host_vars(ctx.manifest, trust), secrets=secrets))
        by_trust[trust.name] = action
    if not tasks:
        return outcomes
    try:
        results = run_host_action(kind, tasks, base_dir=ctx.manifest_dir, check=ctx.dry_run)
    except (AdapterError, OSError) as exc:
        for action in by_trust.values():
            outcomes[action.id] = Outcome(False, False, f"host run failed: {exc}")
        return outcomes
    for name, action in by_trust.items():
        result = results.get(name)
        if result is None:
            outcomes[action.id] = Outcome(False, False, "no result from the host run")
        else:
            prefix = "check mode: " if ctx.dry_run else ""
            outcomes[action.id] = Outcome(result.ok, result.changed, prefix + result.message)
    return outcomes


EXECUTORS: dict[str, Executor] = {
    ActionKind.CREDENTIALS_ESCROW: _single(credentials_escrow),
    ActionKind.HUB_SECRET_UPDATE: _single(hub_secret_update),
    ActionKind.HUB_REDEPLOY: _single(hub_redeploy),
    ActionKind.HUB_DEPLOY_IMAGE: _single(hub_deploy_image),
    ActionKind.ALLOWLIST_UPDATE: _single(allowlist_update),
    ActionKind.TERRAFORM_APPLY: _single(terraform_apply),
    ActionKind.DATABASE_SNAPSHOT: _single(database_snapshot),
    ActionKind.DATABASE_RESET_SCHEMA: _single(database_reset_schema),
    ActionKind.DATABASE_RESTORE_PROTECTION: _single(database_restore_protection),
    **{
        kind: Executor(run=run_host_group, grouped=True)
        for kind in (
            ActionKind.HOST_PROVISION,
            ActionKind.HOST_DELIVER,
            ActionKind.HOST_START_STACK,
            ActionKind.HOST_STOP_STACK,
            ActionKind.HOST_RESTART_TRUST_API,
            ActionKind.HOST_VERIFY_POLLING,
        )
    },
}


def executor_for(kind: str) -> Executor:
    try:
        return EXECUTORS[kind]
    except KeyError:
        raise FlipGitopsError(f"no executor for action kind {kind!r}") from None
