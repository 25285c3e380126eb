"""The planner: `plan(desired, observed, options) -> Plan`, pure and deterministic.

Level-based: every action comes from a fact that differs now (`core/facts.py`), never from
what a previous run intended, so a rerun after a crash plans exactly the missing steps.
`decide()` settles once what the plan will do (who is registered, re-keyed, removed, which
rules move); each phase turns its part into actions and names its dependencies by id
(`ids.py`); `assemble()` refuses a dependency on an id nobody planned and orders the waves.

Hub-side work is batched (one image deploy, one allowlist change, one secret write for any
number of trusts) and host work fans out per trust, so onboarding ten trusts costs the same
number of waves as one. Phases, in the order their actions usually run:
`hub.database` → `hub.internal_key` → `hub.ledger` → `hub.images` → `hosts.stops` →
`registry.registrations` → `allowlist` → `registry.removals` / `registry.secret_write` →
`hosts.chains`; guards (`core/guards.py`) judge the result.
"""

from __future__ import annotations

from flipgitops.core.diff import diff
from flipgitops.core.facts import differing
from flipgitops.core.fingerprint import fingerprint
from flipgitops.core.guards import check
from flipgitops.core.planner import allowlist, hosts, hub, registry
from flipgitops.core.planner.context import Ctx
from flipgitops.core.planner.decide import decide
from flipgitops.core.planner.fragment import Fragment, PlanningError, assemble, planned
from flipgitops.core.terraform_plan import TerraformPlanFormatError, parse_plan
from flipgitops.core.world import Reg, World
from flipgitops.model import flip
from flipgitops.model.actions import ActionKind, DeployImagesParams
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Confirmation, Plan, PlanOptions

__all__ = ["PlanningError", "plan"]


def plan(desired: Manifest, observed: ObservedState, options: PlanOptions | None = None) -> Plan:
    """Ordered, guarded actions that bring ``observed`` to ``desired``; same inputs, same
    bytes."""
    opts = options or PlanOptions()
    world = World(desired, observed)
    ctx = Ctx(world, opts)
    dec = decide(ctx)
    fragments: list[Fragment] = [hub.database(ctx), hub.internal_key(ctx), hub.ledger(ctx)]
    fragments.append(hub.images(ctx, planned(fragments)))
    fragments.append(hosts.stops(ctx, dec))
    fragments.append(registry.registrations(ctx, dec, planned(fragments)))
    rules = allowlist.plan_allowlist(ctx, dec, planned(fragments))
    fragments.append(rules.fragment)
    fragments.append(registry.removals(ctx, dec, rules.revoke_action))
    terraform_owned = desired.hub.fl_server.allowlist == "terraform"
    fragments.append(registry.secret_write(ctx, dec, rules.revoke_action, terraform_owned))
    fragments.append(hosts.chains(ctx, dec, rules.opens, planned(fragments)))
    fragments.append(_report(ctx, dec.rekeyed))
    actions, waves = assemble(fragments)
    upgrading = any(r in flip.FL_ROLES for a in actions if a.kind == ActionKind.HUB_DEPLOY_IMAGES
                    for r in a.typed(DeployImagesParams).images)
    values = differing(world)
    return Plan(
        environment=desired.environment,
        fingerprint=fingerprint(world, opts),
        changes=diff(world),
        actions=actions,
        waves=waves,
        violations=check(world, actions, opts),
        unmanaged=_unmanaged(ctx),
        left_behind=tuple(sorted(set().union(*(f.left_behind for f in fragments))
                                 | hub.left_behind(ctx, upgrading))),
        unknown=tuple(sorted(set().union(*(f.unknown for f in fragments)))),
        advisories=tuple(sorted({v.text(world) for v in values
                                 if v.fact.advisory and v.group != "unknown"})),
        confirmations=_confirmations(world),
        notes=tuple(dict.fromkeys([*(n for f in fragments for n in f.notes),
                                   *_terraform_notes(opts)])),
    )


def _terraform_notes(opts: PlanOptions) -> tuple[str, ...]:
    """What the hub Terraform's own plan would do that a reviewer must see (the cloud trust
    host created or destroyed); what must not run at all is a guard's (FG002/FG007/FG008)."""
    if opts.terraform_plan is None:
        return ()
    try:
        return parse_plan(opts.terraform_plan).notes()
    except TerraformPlanFormatError:
        return ()  # FG008 already says the plan cannot be judged


def _unmanaged(ctx: Ctx) -> tuple[str, ...]:
    names = {f"trust:{n}" for n in ctx.w.unmanaged_names}
    rules = {f"ingress:{r.cidr}" for r in ctx.w.attribution.orphans}
    return tuple(sorted(names | rules))


def _report(ctx: Ctx, rekeyed: frozenset[str]) -> Fragment:
    f = Fragment()
    w = ctx.w
    env = w.d.environment
    kits = w.d.hub.fl_kits
    # The kit set moves when a host holds another date or backend than the manifest: a TRE
    # (no host flipgitops reaches) needs the new FL kit handed over just the same.
    kit_set_moves = any(
        (h := w.host(t.name)) is not None and h.reachable and h.fl_kit.present
        and (h.fl_kit.date, h.fl_kit.backend) != (kits.date, w.d.hub.fl_backend)
        for t in w.active_hosted)
    for t in w.present:
        if (w.era_matches and not w.recreating and w.reg(t.name) is Reg.NOT_HELD
                and not t.has_host):
            # Not drift (a hosted trust's is: its host is left alone, `trust.key_held`): the
            # hub and the TRE agree (adopt's usual outcome, FLIP handed its key over once);
            # only flipgitops cannot hand the key out again.
            rotate = ", --allow FG009" if w.registry == "database" else ""
            f.note(f"{t.name} is registered on the hub but its key is not held by flipgitops: "
                   "it cannot redeliver that key (run `flipgitops adopt` where a kit file holds "
                   f"it; otherwise rotating it, credentials_generation + 1{rotate}, is a "
                   "separate, explicit decision)")
        if t.kind == "tre" or not t.has_host:
            command = (f"`flipgitops kit --env {env} --trust {t.name} --out "
                       f"{t.name}-kit.tar.gz` (a 0600 archive of its kit file and FL kit, as "
                       "FLIP's package-onprem-trust-kit)")
            if t.name in rekeyed:
                f.note(f"{t.name} is a TRE: hand it its new kit out of band with {command}")
            elif kit_set_moves and t.state == "active":
                f.note(f"{t.name} is a TRE: the FL kit set changes to {kits.date}; hand it its "
                       f"new kit out of band with {command}")
        elif t.state == "paused" and t.name in rekeyed:
            f.note(f"{t.name} is paused: its host gets its new kit file when it is active again")
    if ctx.opts.prune:
        orphans = [r.cidr for r in w.attribution.orphans]
        if orphans and w.d.hub.fl_server.allowlist == "aws-api":
            f.note("--prune leaves ingress rules flipgitops did not write (" + ", ".join(orphans)
                   + "): remove them in the hub's Terraform or by hand")
    return f


def _confirmations(world: World) -> tuple[Confirmation, ...]:
    out = []
    for t in world.present:
        if world.reg(t.name).value not in ("held", "not held"):
            continue
        by = world.hub_confirmations(t.name)
        out.append(Confirmation(trust=t.name, confirmed_by=by, ledger_only=not by))
    return tuple(out)
