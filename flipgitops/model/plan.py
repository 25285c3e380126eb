"""Changes, actions, guard violations and the plan: the data the core hands to apply.

A Plan is JSON-serialisable and deterministic for the same inputs, so a reviewed plan file
can be compared with a fresh one by fingerprint. Actions carry no secret values: credentials
are minted and escrowed by the executor at apply time, never planned.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FORMAT_VERSION = "1"


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ChangeOp = Literal["add", "remove", "change"]


class Change(Frozen):
    """One semantic difference between desired and observed, keyed by identity not index.

    ``path`` is dotted and uses identities, e.g. ``trusts.Trust_2.public_ip``.
    """

    op: ChangeOp
    path: str
    before: Any = None
    after: Any = None

    def describe(self) -> str:
        if self.op == "add":
            return f"{self.path}: (absent) → {self.after}"
        if self.op == "remove":
            return f"{self.path}: {self.before} → (absent)"
        return f"{self.path}: {self.before} → {self.after}"


class ActionKind:
    """Stable action kinds. Executors are looked up by these strings; never rename one."""

    # Credentials (per trust). Mints a key for (trust, generation) unless one is already
    # escrowed for that generation, and writes it to SSM SecureString. Idempotent.
    CREDENTIALS_ESCROW = "credentials.escrow"
    # Hub secret registry (one batched read-modify-write for all trusts in the plan).
    # params: register: [names] (add name + escrowed hash; a rotation keeps the old hash as
    # previous), deregister: [names], drop_previous: [names]
    HUB_SECRET_UPDATE = "hub_secret.update"
    # flip-api forceNewDeployment so it reloads the secret.
    HUB_REDEPLOY = "hub.redeploy"
    # New task-definition revision with one container's tag changed + update_service.
    # target: service role (flip_api | fl_api | fl_server); params: tag
    HUB_DEPLOY_IMAGE = "hub.deploy_image"
    # aws-api allowlist: params add: [{trust, cidr}], revoke: [{trust?, cidr}] (add first).
    ALLOWLIST_UPDATE = "allowlist.update"
    # terraform allowlist: render tfvars, plan, FG008 on plan JSON, apply that plan.
    TERRAFORM_APPLY = "terraform.apply"
    # Per trust host (Ansible).
    HOST_PROVISION = "host.provision"
    HOST_DELIVER = "host.deliver"  # kit tree + 0600 trust env file (keys, tags, hub url)
    HOST_START_STACK = "host.start_stack"  # compose up -d with the manifest's tags
    HOST_STOP_STACK = "host.stop_stack"
    HOST_RESTART_TRUST_API = "host.restart_trust_api"
    HOST_VERIFY_POLLING = "host.verify_polling"
    # Database.
    DATABASE_SNAPSHOT = "database.snapshot"  # params: generation; waits until available
    DATABASE_RESET_SCHEMA = "database.reset_schema"  # one-off ECS task; tags new generation
    DATABASE_RESTORE_PROTECTION = "database.restore_protection"

    ALL = (
        CREDENTIALS_ESCROW,
        HUB_SECRET_UPDATE,
        HUB_REDEPLOY,
        HUB_DEPLOY_IMAGE,
        ALLOWLIST_UPDATE,
        TERRAFORM_APPLY,
        HOST_PROVISION,
        HOST_DELIVER,
        HOST_START_STACK,
        HOST_STOP_STACK,
        HOST_RESTART_TRUST_API,
        HOST_VERIFY_POLLING,
        DATABASE_SNAPSHOT,
        DATABASE_RESET_SCHEMA,
        DATABASE_RESTORE_PROTECTION,
    )


class Action(Frozen):
    """One idempotent step. ``id`` is stable and unique within a plan, e.g.
    ``host.deliver:Trust_1``; ``depends_on`` lists ids of actions that must finish first."""

    id: str
    kind: str
    target: str
    params: dict[str, Any] = Field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    destructive: bool = False
    description: str = ""

    def describe(self) -> str:
        return self.description or f"{self.kind} {self.target}"


class Violation(Frozen):
    """A guard firing: which guard, on what, and how to proceed."""

    guard: str  # FG001..FG008
    target: str
    message: str
    how_to_proceed: str
    overridable: bool = True
    allowed: bool = False  # overridden with --allow (or --fl-quiesced for FG007)


class Finding(Frozen):
    """A drift finding for reports: grouped and graded."""

    group: Literal["changed", "missing", "unmanaged", "unknown"]
    severity: Literal["critical", "high", "medium", "low"]
    target: str
    message: str


class PlanOptions(Frozen):
    """Operator choices that change what is planned or what guards let through."""

    prune: bool = False
    allow: frozenset[str] = frozenset()
    fl_quiesced: bool = False
    # `terraform show -json` of the hub's Terraform plan when allowlist is terraform; the
    # engine produces it, guards (FG002/FG008) read it.
    terraform_plan: dict[str, Any] | None = None


class Plan(Frozen):
    format_version: str = FORMAT_VERSION
    environment: str
    fingerprint: str = Field(description="sha256 of canonical desired+observed; see apply --plan.")
    changes: tuple[Change, ...] = ()
    actions: tuple[Action, ...] = ()  # in execution order (wave by wave, then by id)
    waves: tuple[tuple[str, ...], ...] = ()  # action ids per wave
    violations: tuple[Violation, ...] = ()
    unmanaged: tuple[str, ...] = ()  # live things not in the manifest (pruned only with --prune)
    left_behind: tuple[str, ...] = ()  # paused trusts not moved by an FL upgrade
    unknown: tuple[str, ...] = ()  # unreachable hosts: facts unknown
    notes: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.actions

    @property
    def blocked(self) -> bool:
        return any(not v.allowed for v in self.violations)

    def action(self, action_id: str) -> Action:
        return next(a for a in self.actions if a.id == action_id)
