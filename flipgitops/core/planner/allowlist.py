"""The NLB allowlist: one /32 ingress rule per trust on TCP `fl_server.port`.

aws-api: flipgitops adds and revokes its own rules (`flipgitops:<trust>`); rules FLIP's
Terraform wrote are Terraform's and never revoked here (a note says to remove them there).
terraform: flipgitops renders the full `local_trust_public_ips` list and runs the hub's
Terraform; an image upgrade runs it too (after the deploys), because FLIP's root renders the
same tags into its task definitions and would otherwise restart FL on its next run.

A new trust's rule opens after it is registered; a leaving trust's rule is revoked after its
stack stopped and before its registration is removed. When one plan does both, removals go
in a separate `…:revoke` action so the two orders cannot form a cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

from flipgitops.core.allowlist import cidr_of, ip_of, terraform_owned
from flipgitops.core.planner import ids
from flipgitops.core.planner.context import Ctx
from flipgitops.core.planner.decide import Decisions
from flipgitops.core.planner.fragment import Fragment
from flipgitops.core.planner.hub import redeploy
from flipgitops.model import flip
from flipgitops.model.actions import ActionKind, AllowlistParams, TerraformParams, TrustCidr

K = ActionKind


@dataclass(frozen=True)
class AllowlistResult:
    fragment: Fragment
    opens: dict[str, str]  # trust -> the action that opens its rule
    revoke_action: str | None  # the action that revokes leaving trusts' rules


def _registered_by(dec: Decisions, name: str) -> set[str]:
    """The action after which ``name`` is known to the hub (its rule may open then)."""
    if name in dec.register:
        return {ids.register(name)}
    if name in dec.secret_register:
        return {ids.redeploy("flip_api")}
    return set()


def _text(pairs: tuple[TrustCidr, ...] | list[TrustCidr]) -> str:
    return ", ".join(f"{p.cidr} ({p.trust})" for p in pairs)


def plan_allowlist(ctx: Ctx, dec: Decisions, prior: frozenset[str]) -> AllowlistResult:
    if ctx.w.d.hub.fl_server.allowlist == "terraform":
        return _terraform(ctx, dec, prior)
    return _aws_api(ctx, dec)


def _aws_api(ctx: Ctx, dec: Decisions) -> AllowlistResult:
    f = Fragment()
    w = ctx.w
    group = w.d.hub.fl_server.security_group
    rules = {r.cidr: r for r in w.o.hub.allowlist.rules}
    ours = [p for p in (*dec.move, *dec.remove) if not terraform_owned(rules[p.cidr])]
    for p in (*dec.move, *dec.remove):
        if terraform_owned(rules[p.cidr]):
            f.note(f"ingress rule {p.cidr} ({p.trust}) was written by the hub's Terraform: "
                   "remove it from local_trust_public_ips there")
    removals = [p for p in ours if p in dec.remove]
    moves = [p for p in ours if p in dec.move]
    opens: dict[str, str] = {}
    revoke_action: str | None = None
    split = bool(dec.add) and bool(removals)
    main_revoke = moves if split else [*moves, *removals]
    stops = {ids.host(K.HOST_STOP_STACK, n) for n in dec.stop}
    if split:
        revoke_action = f.add(ids.ALLOWLIST_REVOKE, K.ALLOWLIST_UPDATE, group,
                              AllowlistParams(revoke=tuple(removals)),
                              deps={ids.host(K.HOST_STOP_STACK, p.trust) for p in removals}
                              & stops,
                              description=f"{group}: revoke {_text(removals)}")
    if dec.add or main_revoke:
        deps: set[str] = set()
        for p in dec.add:
            deps |= _registered_by(dec, p.trust)
        if not split:
            deps |= {ids.host(K.HOST_STOP_STACK, p.trust) for p in removals} & stops
        parts = [f"allow {_text(dec.add)}" if dec.add else "",
                 f"revoke {_text(main_revoke)}" if main_revoke else ""]
        action = f.add(ids.ALLOWLIST, K.ALLOWLIST_UPDATE, group,
                       AllowlistParams(add=dec.add, revoke=tuple(main_revoke)), deps=deps,
                       description=f"{group}: " + "; ".join(p for p in parts if p))
        opens = {p.trust: action for p in dec.add}
        if removals and not split:
            revoke_action = action
    return AllowlistResult(f, opens, revoke_action)


def _terraform(ctx: Ctx, dec: Decisions, prior: frozenset[str]) -> AllowlistResult:
    """The hub's Terraform owns the rules: flipgitops renders the whole IP list.

    Rules Terraform did not write cannot be removed by it, so they are left alone (with a
    note); a trust already allowed by such a rule is left out of the list so Terraform does
    not create a duplicate rule.
    """
    f = Fragment()
    w = ctx.w
    al = w.o.hub.allowlist
    if not al.exists or al.ambiguous:
        return AllowlistResult(f, {}, None)
    rules = {r.cidr: r for r in al.rules}
    owned = {c for c, r in rules.items() if terraform_owned(r)}
    foreign = {c for c, r in rules.items() if not terraform_owned(r)}
    for p in (*dec.move, *dec.remove):
        if p.cidr not in owned:
            f.note(f"ingress rule {p.cidr} ({p.trust}) was not written by the hub's Terraform: "
                   "remove it by hand")
    removed = {ip_of(p.cidr) for p in dec.remove if p.cidr in owned}
    unclaimed = [r for r in w.attribution.orphans if terraform_owned(r)]
    unclaimed += [r for name, rs in w.attribution.by_trust.items() if name not in w.by_name
                  for r in rs if terraform_owned(r)]
    kept = set() if ctx.opts.prune else {ip_of(r.cidr) for r in unclaimed}
    final = {t.public_ip for t in w.present if cidr_of(t.public_ip) not in foreign} | kept
    final -= removed
    live = {ip_of(c) for c in owned}
    upgrading = ids.DEPLOY_IMAGES in prior
    secret_names = w.registry == "secret" and (dec.secret_write
                                               or ctx.has_gap("hub.registry_loaded"))
    if final == live and not upgrading and not secret_names:
        return AllowlistResult(f, {}, None)
    images = w.d.hub.images
    names: tuple[str, ...] | None = None
    if w.registry == "secret":
        svc = w.o.hub.services.get("flip_api")
        current = list(svc.trust_names or ()) if svc is not None else []
        after = [n for n in current if n not in dec.secret_deregister]
        names = tuple(after + sorted(n for n in dec.secret_register if n not in after))
    base = dict(docker_image_tag=images.hub_tag, flip_fl_image_tag=images.fl_tag,
                environment=flip.terraform_environment(w.d.environment), trust_names=names)
    target = w.d.hub.terraform.dir if w.d.hub.terraform else "hub-terraform"
    revoke_action: str | None = None
    stops = {ids.host(K.HOST_STOP_STACK, n) for n in dec.stop}
    split = bool(dec.add) and bool(removed)
    if split:
        revoke_action = f.add(
            ids.TERRAFORM_REVOKE, K.TERRAFORM_APPLY, target,
            TerraformParams(local_trust_public_ips=tuple(sorted(live - removed)),
                            summary="revoke " + ", ".join(sorted(removed)), **base),
            deps=stops, description=f"terraform apply: revoke {', '.join(sorted(removed))}")
    added, dropped = sorted(final - live), sorted(live - final)
    summary = "; ".join(p for p in (
        "allow " + ", ".join(added) if added else "",
        "revoke " + ", ".join(dropped) if dropped and not split else "",
        f"image tags {images.hub_tag}/{images.fl_tag} after the deploys" if upgrading else "",
        "TRUST_NAMES and key hashes" if secret_names else "",
    ) if p) or "no change to the rules"
    deps: set[str] = {ids.DEPLOY_IMAGES} & prior
    for p in dec.add:
        deps |= _registered_by(dec, p.trust) - {ids.redeploy("flip_api")}
    deps |= {ids.mint(n) for n in dec.mint}
    if removed and not split:
        deps |= stops
    if revoke_action:
        # Each Terraform run sets the whole list: the revoke run (without the new IPs) must
        # come first, or it would take back the rules this run adds.
        deps.add(revoke_action)
    action = f.add(ids.TERRAFORM, K.TERRAFORM_APPLY, target,
                   TerraformParams(local_trust_public_ips=tuple(sorted(final)), summary=summary,
                                   **base),
                   deps=deps, description=f"terraform apply: {summary}")
    if removed and not split:
        revoke_action = action
    if secret_names:
        redeploy(f, ctx, "flip_api", "load TRUST_NAMES and the key hashes Terraform wrote",
                 {action})
    return AllowlistResult(f, {p.trust: action for p in dec.add}, revoke_action)
