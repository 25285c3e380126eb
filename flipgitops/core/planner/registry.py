"""The trust registry, as FLIP implements it in each era.

database (current FLIP): a trust is registered by FLIP's `register_trust` one-off task, which
mints its keys and claims a slot, and removed by `delete_trust`; no flip-api redeploy (the hub
caches keys 60 s). FLIP cannot re-key a trust in place, so a rotation is delete + register
(FG009). Order for a new trust: register → rule → host; for a leaving one: stop the stack →
revoke the rule → delete.

secret (older hubs, the on-prem guide): flipgitops mints the keys, escrows them, writes the
names into flip-api's task definition (`TRUST_NAMES`) and the hashes into `FLIP_API`, then
redeploys flip-api, which reads both only at start. FLIP's E2 hub accepts one key per trust,
so a rotation has an outage between the redeploy and the trust-api restart (said in the plan).
"""

from __future__ import annotations

from flipgitops.core.planner import ids
from flipgitops.core.planner.context import Ctx
from flipgitops.core.planner.decide import Decisions
from flipgitops.core.planner.fragment import Fragment
from flipgitops.core.planner.hub import redeploy
from flipgitops.model.actions import (
    ActionKind,
    DeleteParams,
    MintParams,
    RegisterParams,
    SecretWriteParams,
)

K = ActionKind


def _pre(ctx: Ctx, prior: frozenset[str], dec: Decisions) -> set[str]:
    """What every registry write waits for: the bookkeeping migration and, after a database
    recreation, flip-api rebuilt on the new schema."""
    deps = {ids.LEDGER_MIGRATE} & prior
    # Only the database registry lives in the database: wait for flip-api to rebuild it.
    if ctx.w.registry == "database" and (ids.RESET_SCHEMA in prior or dec.finish_recreation):
        deps.add(ids.redeploy("flip_api"))
    return deps


def registrations(ctx: Ctx, dec: Decisions, prior: frozenset[str]) -> Fragment:
    """database: register_trust per trust (deleting first for a rotation); secret: mint."""
    f = Fragment()
    w = ctx.w
    pre = _pre(ctx, prior, dec)
    if dec.finish_recreation and ids.RESET_SCHEMA not in prior and w.registry == "database":
        redeploy(f, ctx, "flip_api", "finish the database recreation", set())
        f.note("the database is at generation " + str(w.db_target) + " but trusts still hold "
               "registrations from before it was recreated (a previous run stopped after the "
               "schema reset): redeploying flip-api and registering them again")
    db_gen = w.db_target or w.d.hub.database.generation
    for name, reason in sorted(dec.register.items()):
        t = w.by_name[name]
        deps = set(pre)
        if name in dec.delete:
            f.add(ids.delete(name), K.REGISTRY_DELETE, name,
                  DeleteParams(name=name, reason="rotation"), deps=pre,
                  description=f"delete_trust {name} (rotation: FLIP cannot re-key in place)")
            deps.add(ids.delete(name))
        f.add(ids.register(name), K.REGISTRY_REGISTER, name,
              RegisterParams(name=name, code=t.code, region=t.region,
                             credentials_generation=t.credentials_generation,
                             database_generation=db_gen,
                             ephemeral_parameter=w.ephemeral_parameter(t),
                             expected_slot=t.fl_kit_slot, reason=reason),
              deps=deps,
              description=f"register_trust {name} ({reason}; code {t.code}"
              + (f", region {t.region}" if t.region else "") + ") and escrow its kit")
    for name, reason in sorted(dec.mint.items()):
        t = w.by_name[name]
        f.add(ids.mint(name), K.CREDENTIALS_MINT, name,
              MintParams(credentials_generation=t.credentials_generation,
                         database_generation=db_gen, fl_kit_slot=t.fl_kit_slot or name,
                         reason=reason),
              deps=pre,
              description=f"mint and escrow {name}'s generation {t.credentials_generation} "
              f"keys ({reason})")
        if reason == "rotation" and t.has_host and t.state == "active":
            f.note(f"{name}: FLIP's older hub accepts one key per trust, so {name} cannot "
                   "authenticate between the flip-api redeploy and its trust-api restart "
                   "(seconds, within this apply)")
    return f


def removals(ctx: Ctx, dec: Decisions, revoke_action: str | None) -> Fragment:
    """database: delete_trust for leaving trusts, after their stack stopped and their rule
    was revoked."""
    f = Fragment()
    for name, reason in sorted(dec.delete.items()):
        if reason == "rotation":
            continue  # planned with its registration
        deps = {ids.host(K.HOST_STOP_STACK, name)} if name in dec.stop else set()
        if revoke_action and any(p.trust == name for p in dec.remove):
            deps.add(revoke_action)
        f.add(ids.delete(name), K.REGISTRY_DELETE, name, DeleteParams(name=name, reason=reason),
              deps=deps,
              description=f"delete_trust {name} ({reason}; cascades its hub records)")
    return f


def secret_write(ctx: Ctx, dec: Decisions, revoke_action: str | None,
                 terraform_owned: bool) -> Fragment:
    """secret: one batched TRUST_NAMES revision + FLIP_API hash write, then a redeploy.
    With a Terraform-owned allowlist the names go through Terraform's variables instead
    (`core/planner/allowlist.py`): FLIP's Terraform writes FLIP_API whole."""
    f = Fragment()
    w = ctx.w
    pending = ctx.has_gap("hub.registry_loaded")
    if not dec.secret_write and not pending:
        return f
    if dec.secret_write and not terraform_owned:
        svc = w.o.hub.services.get("flip_api")
        current = list(svc.trust_names or ()) if svc is not None else []
        after = [n for n in current if n not in dec.secret_deregister]
        after += sorted(n for n in dec.secret_register if n not in after)
        deps = {ids.mint(n) for n in dec.mint} | {ids.LEDGER_MIGRATE} & _known(ctx)
        deps |= {ids.host(K.HOST_STOP_STACK, n) for n in dec.stop & dec.secret_deregister}
        if revoke_action and any(p.trust in dec.secret_deregister for p in dec.remove):
            deps.add(revoke_action)
        parts = []
        if dec.secret_register:
            parts.append("register " + ", ".join(sorted(dec.secret_register)))
        if dec.secret_deregister:
            parts.append("deregister " + ", ".join(sorted(dec.secret_deregister)))
        f.add(ids.SECRET_WRITE, K.REGISTRY_SECRET_WRITE, w.d.hub.secret,
              SecretWriteParams(registering=tuple(sorted(dec.secret_register)),
                                deregistering=tuple(sorted(dec.secret_deregister)),
                                names_after=tuple(after)),
              deps=deps,
              description="TRUST_NAMES (new flip-api revision) and FLIP_API key hashes: "
              + "; ".join(parts))
        redeploy(f, ctx, "flip_api", "load TRUST_NAMES and the key hashes", {ids.SECRET_WRITE})
    elif pending:
        redeploy(f, ctx, "flip_api", "a registry change flip-api has not loaded yet", set())
    return f


def _known(ctx: Ctx) -> set[str]:
    return {ids.LEDGER_MIGRATE} if ctx.has_gap("hub.legacy_bookkeeping") else set()
