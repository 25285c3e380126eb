"""Trust hosts: FLIP's own trust stack, started the way FLIP's trust/Makefile starts it.

Per active trust with a host, only the steps its differing facts need, in this order:
provision → deploy FLIP's trust/ at flip.ref → deliver the FL kit → write the kit file →
start the stack (compose decides which services a change recreates) → verify trust-api
authenticated. A host's first step waits for its trust's registration and rule; its stack
waits for the hub's image deploy (lockstep: trusts move right after the hub's FL services).
A leaving trust's stack stops before its rule is revoked and its registration removed.
"""

from __future__ import annotations

from flipgitops.core.planner import ids
from flipgitops.core.planner.context import Ctx
from flipgitops.core.planner.decide import Decisions
from flipgitops.core.planner.fragment import Fragment
from flipgitops.model import flip
from flipgitops.model.actions import (
    ActionKind,
    DeliverFlKitParams,
    DeployReleaseParams,
    Params,
    ProvisionParams,
    StartStackParams,
    StopStackParams,
    VerifyParams,
    WriteKitFileParams,
)
from flipgitops.model.manifest import Trust

K = ActionKind

PROVISION = frozenset({"host.provisioned"})
RELEASE = frozenset({"host.release"})
KIT_FILE = frozenset({"host.kit_file", "host.kit_values", "host.kit_secrets"})
FL_KIT = frozenset({"host.fl_kit"})
STACK = frozenset({"host.stack_running", "host.stack_current", "host.stack_tags"})


def stops(ctx: Ctx, dec: Decisions) -> Fragment:
    f = Fragment()
    for name in sorted(dec.stop):
        _, number = ctx.w.slot(ctx.w.by_name[name]) if name in ctx.w.by_name else (None, None)
        project = flip.compose_project(number) if number else None
        f.add(ids.host(K.HOST_STOP_STACK, name), K.HOST_STOP_STACK, name,
              StopStackParams(project=project),
              description=f"stop {name}'s trust stack" + (f" ({project})" if project else ""))
    for t in ctx.w.d.trusts:
        if t.state == "decommissioned" and t.has_host and not ctx.w.reachable(t.name) \
                and ctx.w.footprint(t.name):
            f.unknown.add(t.name)
    return f


def chains(ctx: Ctx, dec: Decisions, opens: dict[str, str], prior: frozenset[str]) -> Fragment:
    f = Fragment()
    for t in ctx.w.active_hosted:
        if not ctx.w.reachable(t.name):
            f.unknown.add(t.name)
            continue
        _chain(ctx, dec, opens, prior, f, t)
    return f


def _gaps(ctx: Ctx, name: str) -> frozenset[str]:
    return ctx.facts_differing_for(name)


def _chain(ctx: Ctx, dec: Decisions, opens: dict[str, str], prior: frozenset[str],
           f: Fragment, t: Trust) -> None:
    w, name = ctx.w, t.name
    if w.era_matches is False:
        return
    gaps = _gaps(ctx, name)
    rekeyed = name in dec.rekeyed
    registered_later = rekeyed or name in dec.secret_register
    if not rekeyed and w.reg(name).name not in ("HELD",):
        if gaps & (PROVISION | RELEASE | STACK):
            f.note(f"{name}: flipgitops holds no key for it, so its host is left alone until "
                   "it is adopted (flipgitops adopt) or rotated")
        return
    provision = bool(gaps & PROVISION)
    release = bool(gaps & RELEASE) or provision
    kit_file = bool(gaps & KIT_FILE) or rekeyed or provision
    fl_kit = bool(gaps & FL_KIT) or rekeyed or provision
    start = bool(gaps & STACK) or provision or release or kit_file or fl_kit
    verify = start
    slot, number = w.slot(t)
    if rekeyed and w.registry == "database":
        slot, number = (t.fl_kit_slot, None) if t.fl_kit_slot else (None, None)
    images = w.d.hub.images
    project = flip.compose_project(number) if number else None

    first: set[str] = set()
    if name in opens:
        first.add(opens[name])
    if name in dec.register:
        first.add(ids.register(name))
    if name in dec.mint:
        first.add(ids.mint(name))
    if name in dec.secret_register and ids.redeploy("flip_api") in prior:
        first.add(ids.redeploy("flip_api"))

    last: set[str] = set()

    def step(kind: ActionKind, params: Params, text: str, deps: set[str]) -> str:
        return f.add(ids.host(kind, name), kind, name, params, deps=deps or set(first),
                     description=text)

    if provision:
        last = {step(K.HOST_PROVISION, ProvisionParams(flip_root=_root(t), slot_number=number),
                     f"provision {name}'s host (Docker, compose, swarm, {_root(t)} tree"
                     + (f", network {flip.trust_network(number)}" if number else "") + ")",
                     set(first))}
    if release:
        rel = w.o.flip_release
        host = w.host(name)
        from_ref = host.release.ref if host is not None else None
        last = {step(K.HOST_DEPLOY_RELEASE,
                     DeployReleaseParams(ref=w.d.flip.ref, commit=(rel.commit if rel else None)
                                         or "", from_ref=from_ref),
                     f"deploy FLIP's trust/ at {w.d.flip.ref} to {_root(t)}/trust"
                     + (f" (was {from_ref})" if from_ref and from_ref != w.d.flip.ref else ""),
                     last or set(first))}
    middle: set[str] = set()
    # The FL kit goes first: it is checked on the controller (the slot's fed_client.json,
    # flower's files) before its host is touched, and a refused kit must leave the host as it
    # was, its kit file too (a kit file naming a date whose kit never arrived would say the
    # host is on the new kit set). The kit file then follows it.
    delivered: set[str] = set()
    if fl_kit:
        kits = w.o.hub.kits
        piece = kits.slices.get(slot) if kits is not None and slot else None
        deps = (last or set(first)) | first
        delivered = {step(K.HOST_DELIVER_FL_KIT,
                          DeliverFlKitParams(date=w.d.hub.fl_kits.date,
                                             backend=w.d.hub.fl_backend, slot=slot,
                                             slot_number=number,
                                             source_fingerprint=piece.fingerprint if piece
                                             else None),
                          f"deliver {name}'s FL kit ({w.d.hub.fl_backend}, "
                          f"{w.d.hub.fl_kits.date}, slot {slot or '(assigned at registration)'})",
                          deps)}
        middle |= delivered
    if kit_file:
        gap = ctx.gap("host.kit_values", name)
        changed = tuple(sorted(k for k in (gap.want if gap else {})
                               if gap is not None and gap.want.get(k) != gap.have.get(k)))
        deps = (delivered or last or set(first)) | first
        why = ("new keys" if rekeyed else
               "changes " + ", ".join(changed[:6]) if changed else "mode / keys")
        middle.add(step(K.HOST_WRITE_KIT_FILE,
                        WriteKitFileParams(credentials_generation=t.credentials_generation,
                                           changed=changed),
                        f"write {name}'s kit file {flip.kit_file_name(t.code, w.d.environment)} "
                        f"(0600; {why})", deps))
    last = middle or last
    if start:
        deps = (last or set(first)) | ({ids.DEPLOY_IMAGES} & prior)
        if w.registry == "secret" and name in dec.secret_register:
            deps |= {ids.redeploy("flip_api")} & prior
        last = {step(K.HOST_START_STACK,
                     StartStackParams(project=project, hub_tag=images.hub_tag,
                                      fl_tag=images.fl_tag),
                     f"start {name}'s trust stack {project or 'trust<N>'} ({images.hub_tag}, FL "
                     f"{images.fl_tag}) the way FLIP's trust/Makefile does", deps)}
    if verify:
        step(K.HOST_VERIFY, VerifyParams(expect_trust=name),
             f"verify {name}'s trust-api authenticated to the hub", last)
    if registered_later and not start:
        f.note(f"{name}: nothing to do on its host")


def _root(t: Trust) -> str:
    return t.host.flip_root if t.host is not None else flip.DEFAULT_FLIP_ROOT
