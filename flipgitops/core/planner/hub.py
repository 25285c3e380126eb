"""Hub-side phases: the database, the internal service key, flipgitops' old bookkeeping, and
the hub's images (deploy-centralhub).

Database recreation follows the hub guide's production procedure: a manual snapshot, then
`DROP SCHEMA public CASCADE; CREATE SCHEMA public;`, then a forced flip-api deploy so its
entrypoint rebuilds the tables, then every trust re-registered (the registry phase) and its
kit redelivered (the host phase).
"""

from __future__ import annotations

from flipgitops.core.facts import USABLE_DB_STATES
from flipgitops.core.planner import ids
from flipgitops.core.planner.context import Ctx
from flipgitops.core.planner.fragment import Fragment
from flipgitops.model import flip
from flipgitops.model.actions import (
    ActionKind,
    DeployImagesParams,
    GenerationParams,
    ImageChange,
    LedgerMigrateParams,
    NoParams,
    RedeployParams,
    RotateInternalKeyParams,
)

K = ActionKind


def redeploy(f: Fragment, ctx: Ctx, role: str, reason: str, deps: set[str]) -> str:
    service = getattr(ctx.w.d.hub.ecs.services, role)
    return f.add(ids.redeploy(role), K.HUB_REDEPLOY, role,
                 RedeployParams(role=role, reason=reason),
                 deps=deps, description=f"redeploy {service} ({reason})")


def database(ctx: Ctx) -> Fragment:
    f = Fragment()
    d, odb = ctx.w.d.hub.database, ctx.w.o.hub.database
    if not odb.exists:
        return f
    if ctx.has_gap("hub.database_protection"):
        f.add(ids.RESTORE_PROTECTION, K.DATABASE_RESTORE_PROTECTION, d.identifier, NoParams(),
              description=f"turn deletion protection back on for {d.identifier}")
    if odb.deletion_protection and not d.deletion_protection:
        f.note(f"database {d.identifier}: deletion protection stays on; flipgitops never turns "
               "it off")
    live = odb.generation or 1
    if d.generation < live:
        f.note(f"hub.database.generation {d.generation} is below the live generation {live}: "
               f"set it to {live} (or {live + 1} to recreate again)")
    if ctx.has_gap("hub.database_generation"):
        if odb.status is not None and odb.status not in USABLE_DB_STATES:
            f.note(f"database {d.identifier} is {odb.status}: it must be available before it "
                   "can be snapshotted and recreated (start it first)")
        gen = d.generation
        f.add(ids.SNAPSHOT, K.DATABASE_SNAPSHOT, d.identifier, GenerationParams(generation=gen),
              description=f"snapshot {d.identifier} (flipgitops-{ctx.w.d.environment}-gen{gen}-"
              "<time>) and wait until it is available")
        f.add(ids.RESET_SCHEMA, K.DATABASE_RESET_SCHEMA, d.identifier,
              GenerationParams(generation=gen), deps={ids.SNAPSHOT},
              description=f"reset schema public of {d.identifier} (generation {live} → {gen}) "
              "with a one-off flip-api task")
        redeploy(f, ctx, "flip_api", "rebuild the schema", {ids.RESET_SCHEMA})
    return f


def internal_key(ctx: Ctx) -> Fragment:
    f = Fragment()
    if not (ctx.has_gap("hub.internal_key") or ctx.has_gap("hub.internal_key_generation")):
        return f
    gen = ctx.w.d.hub.internal_service_key_generation
    f.add(ids.ROTATE_INTERNAL_KEY, K.HUB_ROTATE_INTERNAL_KEY, ctx.w.d.hub.secret,
          RotateInternalKeyParams(generation=gen),
          description=f"rotate FLIP_API's internal service key (generation {gen})")
    redeploy(f, ctx, "fl_server", "load the new internal service key", {ids.ROTATE_INTERNAL_KEY})
    redeploy(f, ctx, "flip_api", "load the new internal service key hash",
             {ids.ROTATE_INTERNAL_KEY})
    f.note("FLIP's Terraform writes FLIP_API from TF_VAR_INTERNAL_SERVICE_KEY(_HASH): update "
           "those CI values from SSM /flipgitops/"
           f"{ctx.w.d.environment}/hub/internal-service-key after the rotation, or the next "
           "Terraform apply reverts it")
    return f


def ledger(ctx: Ctx) -> Fragment:
    f = Fragment()
    gap = ctx.gap("hub.legacy_bookkeeping")
    if gap is not None:
        f.add(ids.LEDGER_MIGRATE, K.LEDGER_MIGRATE, ctx.w.d.hub.secret,
              LedgerMigrateParams(legacy_keys=tuple(gap.have)),
              description="move flipgitops' old bookkeeping out of FLIP_API into its own "
              "ledger (" + ", ".join(gap.have) + ")")
    return f


def images(ctx: Ctx, prior: frozenset[str]) -> Fragment:
    f = Fragment()
    changes: dict[str, ImageChange] = {}
    for value in ctx.gaps_of("hub.image"):
        role = value.subject.role or ""
        changes[role] = ImageChange(tag=str(value.want), from_tag=value.have)
    if not changes:
        return f
    text = ", ".join(f"{getattr(ctx.w.d.hub.ecs.services, r)} {c.from_tag} → {c.tag}"
                     for r, c in sorted(changes.items()))
    deps = {ids.RESET_SCHEMA} & prior
    f.add(ids.DEPLOY_IMAGES, K.HUB_DEPLOY_IMAGES, "hub",
          DeployImagesParams(images=changes),
          deps=deps, description=f"deploy-centralhub: {text}")
    return f


def left_behind(ctx: Ctx, upgrading: bool) -> set[str]:
    """Paused trusts an FL upgrade leaves on their old images."""
    out: set[str] = set()
    images = ctx.w.d.hub.images
    for t in ctx.w.d.trusts:
        if t.state != "paused" or not t.has_host:
            continue
        host = ctx.w.host(t.name)
        stale = host is not None and host.reachable and any(
            (c := host.container(svc)) is not None and c.tag not in (None, want)
            for svc, want in ((flip.TRUST_API_SERVICE, images.hub_tag),
                              (flip.FL_CLIENT_SERVICE, images.fl_tag)))
        if upgrading or stale:
            out.add(t.name)
    return out
