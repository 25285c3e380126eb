"""Actions as typed data: every kind, its parameters, and what a reviewer must know about it.

One registry (`KINDS`) holds, per kind, the params model, the render symbol, whether it is
destructive and, for host kinds, the step the host playbook runs. The engine adds the
executor (`engine/executors.py`, checked complete at import and by a meta-test). A plan file
whose kind is unknown or whose params do not fit their model does not load.

Params never carry a secret: keys are minted, escrowed and read back at apply time.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, model_validator

from flipgitops.model.flip import FlBackend, HubRole


class ActionKind(StrEnum):
    """Stable action kinds; executors, plan files and reviewers rely on them: never rename."""

    REGISTRY_REGISTER = "registry.register"
    REGISTRY_DELETE = "registry.delete"
    CREDENTIALS_MINT = "credentials.mint"
    REGISTRY_SECRET_WRITE = "registry.secret_write"
    LEDGER_MIGRATE = "ledger.migrate"
    HUB_DEPLOY_IMAGES = "hub.deploy_images"
    HUB_REDEPLOY = "hub.redeploy"
    HUB_ROTATE_INTERNAL_KEY = "hub.rotate_internal_key"
    ALLOWLIST_UPDATE = "allowlist.update"
    TERRAFORM_APPLY = "terraform.apply"
    HOST_PROVISION = "host.provision"
    HOST_DEPLOY_RELEASE = "host.deploy_release"
    HOST_WRITE_KIT_FILE = "host.write_kit_file"
    HOST_DELIVER_FL_KIT = "host.deliver_fl_kit"
    HOST_START_STACK = "host.start_stack"
    HOST_STOP_STACK = "host.stop_stack"
    HOST_VERIFY = "host.verify"
    DATABASE_SNAPSHOT = "database.snapshot"
    DATABASE_RESET_SCHEMA = "database.reset_schema"
    DATABASE_RESTORE_PROTECTION = "database.restore_protection"


class Params(BaseModel):
    """Base of every params model: frozen, strict about unknown keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")


Reason = Literal["new trust", "rotation", "database recreated", "hub lost it", "decommission",
                 "prune", "key not held"]


class RegisterParams(Params):
    """database registry: FLIP's register_trust as a one-off flip-api task."""

    name: str
    code: str
    region: str | None = None
    credentials_generation: int
    database_generation: int
    # /flip/trust-kits/ephemeral/flipgitops-<env>-<trust>-c<gen>-d<dbgen>: deterministic, so a
    # rerun after a crash finds the kit instead of registering twice.
    ephemeral_parameter: str
    expected_slot: str | None = None  # the manifest's fl_kit_slot, checked against the kit
    reason: Reason = "new trust"


class DeleteParams(Params):
    """database registry: FLIP's delete_trust as a one-off flip-api task."""

    name: str
    reason: Reason = "decommission"


class MintParams(Params):
    """secret registry: mint the trust's keys and escrow them as FLIP's kit JSON."""

    credentials_generation: int
    database_generation: int
    fl_kit_slot: str
    reason: Reason = "new trust"


class SecretWriteParams(Params):
    """secret registry: TRUST_NAMES in a new flip-api revision, hashes in FLIP_API."""

    # ("register" would shadow ABCMeta.register on a pydantic model)
    registering: tuple[str, ...] = ()
    deregistering: tuple[str, ...] = ()
    names_after: tuple[str, ...] = ()  # TRUST_NAMES once written, in order


class LedgerMigrateParams(Params):
    legacy_keys: tuple[str, ...]


class ImageChange(Params):
    tag: str
    from_tag: str | None = None


class DeployImagesParams(Params):
    """deploy-centralhub: check every image, register revisions, update, wait stable."""

    images: dict[HubRole, ImageChange]


class RedeployParams(Params):
    role: HubRole
    reason: str


class RotateInternalKeyParams(Params):
    generation: int


class TrustCidr(Params):
    trust: str
    cidr: str


class AllowlistParams(Params):
    add: tuple[TrustCidr, ...] = ()
    revoke: tuple[TrustCidr, ...] = ()


class TerraformParams(Params):
    """The hub's Terraform root with flipgitops' inputs (FLIP's variable names)."""

    local_trust_public_ips: tuple[str, ...]
    docker_image_tag: str
    flip_fl_image_tag: str
    environment: str  # prod | stag (FLIP's root validates it)
    # secret registry with a Terraform-owned allowlist: TRUST_NAMES / hashes go through
    # Terraform's variables, never behind its back into FLIP_API.
    trust_names: tuple[str, ...] | None = None
    summary: str = ""


class ProvisionParams(Params):
    flip_root: str
    # creates deploy_trust-network-<N>; None until the hub assigns the slot (same apply)
    slot_number: int | None = None


class DeployReleaseParams(Params):
    ref: str
    commit: str
    from_ref: str | None = None


class WriteKitFileParams(Params):
    credentials_generation: int
    changed: tuple[str, ...] = ()  # kit-file keys that change (names only, never values)


class DeliverFlKitParams(Params):
    """The slot's slice of the kit set. For a trust registered in the same apply the hub
    assigns the slot then: ``slot`` is None and the executor reads it from the escrowed kit."""

    date: str
    backend: FlBackend
    slot: str | None = None
    slot_number: int | None = None
    source_fingerprint: str | None = None


class StartStackParams(Params):
    project: str | None = None  # trust<N>; None until the hub assigns the slot (same apply)
    hub_tag: str
    fl_tag: str
    reason: str = ""


class StopStackParams(Params):
    project: str | None = None


class VerifyParams(Params):
    expect_trust: str


class GenerationParams(Params):
    generation: int


class NoParams(Params):
    pass


@dataclass(frozen=True)
class KindSpec:
    """Everything the model layer knows about one kind."""

    params: type[Params]
    symbol: str  # one character, Terraform-like: + add, ~ change, - remove, ! destroys data
    destructive: bool = False
    host_step: str | None = None  # the task file the host playbook runs for this kind
    summary: str = ""


K = ActionKind
KINDS: dict[ActionKind, KindSpec] = {
    K.REGISTRY_REGISTER: KindSpec(RegisterParams, "+", summary="register_trust one-off task"),
    K.REGISTRY_DELETE: KindSpec(DeleteParams, "!", destructive=True,
                                summary="delete_trust one-off task (cascades hub records)"),
    K.CREDENTIALS_MINT: KindSpec(MintParams, "+", summary="mint and escrow a trust's keys"),
    K.REGISTRY_SECRET_WRITE: KindSpec(SecretWriteParams, "~",
                                      summary="TRUST_NAMES revision + FLIP_API hashes"),
    K.LEDGER_MIGRATE: KindSpec(LedgerMigrateParams, "~",
                               summary="move flipgitops' old keys out of FLIP_API"),
    K.HUB_DEPLOY_IMAGES: KindSpec(DeployImagesParams, "~", summary="deploy-centralhub"),
    K.HUB_REDEPLOY: KindSpec(RedeployParams, "~", summary="force a new ECS deployment"),
    K.HUB_ROTATE_INTERNAL_KEY: KindSpec(RotateInternalKeyParams, "~",
                                        summary="new internal service key in FLIP_API"),
    K.ALLOWLIST_UPDATE: KindSpec(AllowlistParams, "~", summary="NLB ingress rules"),
    K.TERRAFORM_APPLY: KindSpec(TerraformParams, "~", summary="the hub's Terraform"),
    K.HOST_PROVISION: KindSpec(ProvisionParams, "+", host_step="provision"),
    K.HOST_DEPLOY_RELEASE: KindSpec(DeployReleaseParams, "~", host_step="deploy_release"),
    K.HOST_WRITE_KIT_FILE: KindSpec(WriteKitFileParams, "~", host_step="write_kit_file"),
    K.HOST_DELIVER_FL_KIT: KindSpec(DeliverFlKitParams, "~", host_step="deliver_fl_kit"),
    K.HOST_START_STACK: KindSpec(StartStackParams, "~", host_step="start_stack"),
    K.HOST_STOP_STACK: KindSpec(StopStackParams, "-", host_step="stop_stack"),
    K.HOST_VERIFY: KindSpec(VerifyParams, "?", host_step="verify"),
    K.DATABASE_SNAPSHOT: KindSpec(GenerationParams, "+", summary="manual RDS snapshot"),
    K.DATABASE_RESET_SCHEMA: KindSpec(GenerationParams, "!", destructive=True,
                                      summary="DROP SCHEMA public CASCADE; CREATE SCHEMA public"),
    K.DATABASE_RESTORE_PROTECTION: KindSpec(NoParams, "~",
                                            summary="turn deletion protection back on"),
}
HOST_KINDS = frozenset(k for k, s in KINDS.items() if s.host_step is not None)

P = TypeVar("P", bound=Params)


class Action(BaseModel):
    """One idempotent step. ``id`` is stable and unique within a plan (e.g.
    ``host.start_stack:Trust_1``); ``depends_on`` lists ids that must finish first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    kind: ActionKind
    target: str
    params: SerializeAsAny[Params] = Field(default_factory=NoParams)
    depends_on: tuple[str, ...] = ()
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _typed_params(cls, data: Any) -> Any:
        """Validate ``params`` with the kind's own model, whatever shape it arrives in."""
        if not isinstance(data, dict):
            return data
        try:
            kind = ActionKind(str(data.get("kind")))
        except ValueError:
            known = ", ".join(k.value for k in ActionKind)
            raise ValueError(f"unknown action kind {data.get('kind')!r} (known: {known})") \
                from None
        model = KINDS[kind].params
        raw = data.get("params", {})
        if isinstance(raw, Params) and not isinstance(raw, model):
            raw = raw.model_dump()
        if not isinstance(raw, model):
            raw = model.model_validate(raw)
        return {**data, "kind": kind, "params": raw}

    @property
    def spec(self) -> KindSpec:
        return KINDS[self.kind]

    @property
    def destructive(self) -> bool:
        return self.spec.destructive

    def typed(self, model: type[P]) -> P:
        """The params as ``model``; a mismatch is a programming error, raised loudly."""
        if not isinstance(self.params, model):
            raise TypeError(f"{self.id}: params are {type(self.params).__name__}, "
                            f"not {model.__name__}")
        return self.params

    def describe(self) -> str:
        return self.description or f"{self.kind} {self.target}"
