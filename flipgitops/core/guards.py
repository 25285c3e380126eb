"""Guards FG001..FG013: one object each, pure, used by both `plan` and `apply`.

A guard never removes actions; it says why they must not run yet and how to proceed, so a
reviewer sees the whole plan even when it is blocked. Each guard has its checks over the plan
(`check`) and, where it has one, over the hub Terraform's plan (`check_terraform`): `plan`
runs both (Terraform's plan is made read-only at plan time in terraform mode), and `apply`
runs the Terraform checks again on the exact plan file it is about to apply.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from flipgitops.core.allowlist import cidr_of, terraform_owned
from flipgitops.core.terraform_plan import (
    DATABASE_TYPE,
    PROTECTED_TYPES,
    TerraformPlan,
    TerraformPlanFormatError,
    parse_plan,
)
from flipgitops.core.world import World
from flipgitops.model import flip
from flipgitops.model.actions import (
    Action,
    ActionKind,
    AllowlistParams,
    DeleteParams,
    DeliverFlKitParams,
    DeployImagesParams,
    RedeployParams,
    TerraformParams,
)
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import IngressRule
from flipgitops.model.plan import PlanOptions, Violation

K = ActionKind


@dataclass(frozen=True)
class GuardInput:
    world: World
    actions: tuple[Action, ...]
    options: PlanOptions

    def of(self, kind: ActionKind) -> list[Action]:
        return [a for a in self.actions if a.kind == kind]


Check = Callable[[GuardInput], Iterator[Violation]]
TerraformCheck = Callable[[Manifest, TerraformPlan], Iterator[Violation]]


@dataclass(frozen=True)
class Guard:
    id: str
    title: str
    overridable: bool
    how: str  # how to proceed, in general; each violation says it for its own case
    check: Check
    check_terraform: TerraformCheck | None = None

    def allowed(self, options: PlanOptions) -> bool:
        if not self.overridable:
            return False
        if self.id == "FG007":
            return options.fl_quiesced or "FG007" in options.allow
        return self.id in options.allow


def _v(guard: str, target: str, message: str, how: str) -> Violation:
    return Violation(guard=guard, target=target, message=message, how_to_proceed=how)


# --- FG001 lockstep ----------------------------------------------------------------------------


def _fl_roles_moving(g: GuardInput) -> list[str]:
    out: list[str] = []
    for a in g.of(K.HUB_DEPLOY_IMAGES):
        out += [r for r in a.typed(DeployImagesParams).images if r in flip.FL_ROLES]
    return out


def _fg001(g: GuardInput) -> Iterator[Violation]:
    w = g.world
    d, images = w.d, w.d.hub.images
    live = {r: (s.tag if (s := w.o.hub.services.get(r)) is not None and s.exists else None)
            for r in flip.HUB_ROLES}
    hub_moving = live["flip_api"] not in (None, images.hub_tag)
    fl_live = [t for r, t in live.items() if r in flip.FL_ROLES and t is not None]
    # The FL version moves when every live FL service is off the desired tag; one drifted
    # service (a hand-made hotfix) is drift to restore, not an upgrade.
    fl_moving = bool(fl_live) and all(t != images.fl_tag for t in fl_live)
    if d.policy.lockstep_fl_images and hub_moving != fl_moving:
        moving, staying = ("hub_tag", "fl_tag") if hub_moving else ("fl_tag", "hub_tag")
        yield _v("FG001", "hub.images",
                 f"{moving} changes but {staying} does not (live flip-api {live['flip_api']}, "
                 f"fl-server {live['fl_server']}): FLIP's hub and FL images share a wire "
                 "contract and must move together (policy.lockstep_fl_images)",
                 "bump hub_tag and fl_tag in the same change, or --allow FG001")
    fl_upgrade = bool(_fl_roles_moving(g))
    starting = {a.target for a in g.of(K.HOST_START_STACK)}
    for t in w.active_hosted:
        host = w.host(t.name)
        if host is None or not host.reachable:
            if fl_upgrade:
                yield _v("FG001", t.name,
                         f"{t.name} is unreachable during an FL upgrade to {images.fl_tag}: it "
                         "would be left on the old FL wire contract",
                         f"restore access to {t.name} and re-plan, set it to state: paused "
                         "(left behind), or --allow FG001")
            continue
        fl = host.container(flip.FL_CLIENT_SERVICE)
        if fl is not None and fl.tag not in (None, images.fl_tag) and t.name not in starting:
            yield _v("FG001", t.name,
                     f"{t.name}'s {flip.FL_CLIENT_SERVICE} would stay on {fl.tag} while the hub "
                     f"runs {images.fl_tag}",
                     f"fix {t.name}'s host so its stack can be restarted, or --allow FG001")


# --- FG002 the prod database ----------------------------------------------------------------


def _fg002(g: GuardInput) -> Iterator[Violation]:
    d = g.world.d
    if not d.is_prod:
        return
    db = d.hub.database
    how = "not overridable in prod: keep it true (a prod database is never unprotected here)"
    if not db.deletion_protection:
        yield _v("FG002", "hub.database.deletion_protection",
                 f"prod database {db.identifier}: deletion_protection is turned off", how)
    if not db.final_snapshot:
        yield _v("FG002", "hub.database.final_snapshot",
                 f"prod database {db.identifier}: final_snapshot is turned off", how)


def _fg002_tf(d: Manifest, tf: TerraformPlan) -> Iterator[Violation]:
    if not d.is_prod:
        return
    for rc in tf.removing({DATABASE_TYPE}):
        yield _v("FG002", rc.address, f"Terraform would {rc.kind} prod database {rc.address}",
                 "not overridable: change the Terraform so the database is kept in place")
    for rc in tf.database_unprotecting():
        yield _v("FG002", rc.address,
                 f"Terraform would turn off deletion protection or the final snapshot of prod "
                 f"database {rc.address}",
                 "not overridable: keep deletion_protection on and skip_final_snapshot off")


# --- FG003 .. FG006 ---------------------------------------------------------------------------


def _fg003(g: GuardInput) -> Iterator[Violation]:
    d = g.world.d
    if g.of(K.DATABASE_RESET_SCHEMA):
        gen = d.hub.database.generation
        yield _v("FG003", d.hub.database.identifier,
                 f"database {d.hub.database.identifier} is recreated (generation {gen}): every "
                 "project, query, model, FL result and trust registration is lost, after a "
                 f"snapshot flipgitops-{d.environment}-gen{gen}-<time>",
                 "if that is intended, apply with --allow FG003; otherwise revert "
                 "hub.database.generation")


def removed_trusts(g: GuardInput) -> set[str]:
    """Trusts this plan takes away (decommission or prune), whatever the registry/allowlist."""
    w = g.world
    present = {t.name for t in w.present}
    names = {a.target for a in g.of(K.HOST_STOP_STACK)}
    names |= {a.typed(DeleteParams).name for a in g.of(K.REGISTRY_DELETE)
              if a.typed(DeleteParams).reason in ("decommission", "prune")}
    for a in g.of(K.ALLOWLIST_UPDATE):
        names |= {r.trust for r in a.typed(AllowlistParams).revoke if r.trust not in present}
    for a in g.of(K.TERRAFORM_APPLY):
        keep = set(a.typed(TerraformParams).local_trust_public_ips)
        for owner, rules in w.attribution.by_trust.items():
            if owner not in present and any(terraform_owned(r) and r.cidr.removesuffix("/32")
                                            not in keep for r in rules):
                names.add(owner)
    return names - present


def _fg004(g: GuardInput) -> Iterator[Violation]:
    names = sorted(removed_trusts(g))
    limit = g.world.d.policy.max_trust_removals
    if len(names) <= limit:
        return
    split = (f"split the change into {math.ceil(len(names) / limit)} applies of at most "
             f"{limit} removal(s) each, or --allow FG004" if limit > 0
             else "raise policy.max_trust_removals, or --allow FG004")
    yield _v("FG004", "trusts", f"{len(names)} trusts removed in one apply ({', '.join(names)});"
             f" policy.max_trust_removals is {limit}", split)


def _fg005(g: GuardInput) -> Iterator[Violation]:
    d = g.world.d
    if not (d.is_prod or d.policy.immutable_tags):
        return
    for field in ("hub_tag", "fl_tag"):
        tag = getattr(d.hub.images, field)
        if flip.is_immutable_tag(tag):
            continue
        kind = "a floating tag" if tag.lower() in flip.FLOATING_TAGS else "not an immutable tag"
        yield _v("FG005", f"hub.images.{field}",
                 f"hub.images.{field} {tag!r} is {kind}; this environment requires vX.Y.Z[-pre] "
                 "or sha-<7 hex>",
                 f"pin hub.images.{field} to a release (e.g. v2.3.0) or sha-<7 hex>")


def _fg006(g: GuardInput) -> Iterator[Violation]:
    d, o = g.world.d, g.world.o
    how = ("fix the AWS credentials (AWS_PROFILE / role) so they reach account "
           f"{d.aws.account_id} in {d.aws.region}; nothing here is safe to apply elsewhere")
    if o.hub.account_id != d.aws.account_id:
        yield _v("FG006", "aws.account_id", f"live AWS account is {o.hub.account_id or 'unknown'}"
                 f", the manifest is for {d.aws.account_id}", how)
    if o.hub.region != d.aws.region:
        yield _v("FG006", "aws.region", f"live AWS region is {o.hub.region or 'unknown'}, the "
                 f"manifest is for {d.aws.region}", how)


# --- FG007 FL may be training -----------------------------------------------------------------

_FG007_HOW = "wait until no FL job is running, then apply with --fl-quiesced"


def _fg007(g: GuardInput) -> Iterator[Violation]:
    for role in _fl_roles_moving(g):
        yield _v("FG007", f"hub.deploy_images:{role}",
                 f"deploying {role} restarts the FL control plane and aborts any training in "
                 "progress", _FG007_HOW)
    for a in g.of(K.HUB_REDEPLOY):
        if a.typed(RedeployParams).role in flip.FL_ROLES:
            yield _v("FG007", a.id, f"{a.id} restarts the FL server and aborts any training in "
                     "progress", _FG007_HOW)


def _fg007_tf(d: Manifest, tf: TerraformPlan) -> Iterator[Violation]:
    for rc in tf.fl_service_changes():
        yield _v("FG007", rc.address, f"Terraform would change {rc.address} ({rc.kind}), "
                 "restarting the FL control plane", _FG007_HOW)


def _fg008_tf(d: Manifest, tf: TerraformPlan) -> Iterator[Violation]:
    for rc in tf.removing(PROTECTED_TYPES):
        yield _v("FG008", rc.address, f"Terraform would {rc.kind} protected {rc.type} "
                 f"{rc.address}",
                 "change the Terraform so it is updated in place (or moved with a `moved` "
                 "block), or --allow FG008 after a reviewed backup")
    # The hub data flipgitops relies on, rewritten from CI's variables: as bad as a loss.
    for rc in tf.secret_rewrites(d.hub.secret):
        keys = ("AES_KEY_BASE64, INTERNAL_SERVICE_KEY, INTERNAL_SERVICE_KEY_HASH"
                + (", TRUST_API_KEY_HASHES" if d.hub.trust_registry == "secret" else ""))
        yield _v("FG008", rc.address,
                 f"Terraform would rewrite {d.hub.secret} ({rc.address}, {rc.kind}) from "
                 f"TF_VAR_{{{keys}}}: the keys live in it now (an internal service key "
                 "flipgitops rotated, the trusts' hashes it registered) would be replaced by "
                 "CI's values",
                 f"set those TF_VARs to what {d.hub.secret} holds (the internal key is escrowed "
                 f"at /flipgitops/{d.environment}/hub/internal-service-key), re-plan, or "
                 "--allow FG008 if the rewrite is the intent")
    for rc in tf.slot_pool_emptied():
        yield _v("FG008", rc.address,
                 f"Terraform would set {rc.address} (SSM /flip/fl_kit_slot_names) to []: "
                 "register_trust then has no FL kit slot to reconcile from "
                 "(NoFreeKitSlotError) — TF_VAR_FL_KIT_SLOT_NAMES is missing or empty here",
                 "export TF_VAR_FL_KIT_SLOT_NAMES (the JSON list FLIP's env file holds) and "
                 "re-plan, or --allow FG008")


def _fg008(g: GuardInput) -> Iterator[Violation]:
    return iter(())


# --- FG009 .. FG012 ----------------------------------------------------------------------------


def _fg009(g: GuardInput) -> Iterator[Violation]:
    for a in g.of(K.REGISTRY_DELETE):
        p = a.typed(DeleteParams)
        if p.reason == "rotation":
            yield _v("FG009", p.name,
                     f"rotating {p.name} on the database registry is delete_trust + "
                     "register_trust: FLIP cannot re-key a trust in place, and delete_trust "
                     "deletes its project links, FL jobs, metrics, logs and query results",
                     f"if {p.name}'s hub records may go, apply with --allow FG009; otherwise "
                     "revert credentials_generation")


def _fg010(g: GuardInput) -> Iterator[Violation]:
    w = g.world
    changing = any(
        (h := w.host(a.target)) is not None and h.fl_kit.present
        and (h.fl_kit.date, h.fl_kit.backend) != (p.date, p.backend)
        for a in g.of(K.HOST_DELIVER_FL_KIT) if (p := a.typed(DeliverFlKitParams))
    )
    kits = w.o.hub.kits
    if not changing:
        return
    for t in w.active_hosted:
        if not w.reachable(t.name):
            yield _v("FG010", t.name,
                     f"the FL kit set changes (to {w.d.hub.fl_kits.date}, {w.d.hub.fl_backend}) "
                     f"but {t.name} is unreachable: it would keep the old certificates and be "
                     "unable to join training",
                     f"restore access to {t.name}, pause it, or --allow FG010")
        elif kits is not None and (slot := w.slot(t)[0]) and slot not in kits.slices:
            yield _v("FG010", t.name,
                     f"the FL kit set changes but {kits.bucket} has no kit for {t.name}'s slot "
                     f"{slot} at {w.d.hub.fl_kits.date}",
                     "provision the kit first, or --allow FG010")


def _fg011(g: GuardInput) -> Iterator[Violation]:
    w = g.world
    if not w.era_matches:
        era = w.o.hub.registry
        yield _v("FG011", "hub.trust_registry",
                 f"the manifest says trust_registry: {w.registry} but the live hub keeps a "
                 f"{era.era} registry ({era.evidence})",
                 f"not overridable: set hub.trust_registry: {era.era} (registering on the "
                 "wrong registry would leave every trust unable to authenticate)")


def rules_at_peak(g: GuardInput) -> int:
    """Inbound rules the security group holds at the fullest point of this plan, as AWS
    counts them against its IPv4 rule quota.

    The allowlist executor adds a trust's new rule before it revokes the old one, so the
    peak is the live rules plus the additions; an IP change on a full group fails at the
    add, not after the revoke. Counted per rule (one CIDR may hold a port-exact rule and a
    wider one: AWS counts both), IPv4 only (IPv6 rules have their own quota), plus the
    group's other inbound rules (`ObservedAllowlist.other_rules`). In terraform mode the
    rules the hub's Terraform owns become the rendered list; Terraform orders its creates
    and destroys freely, so the same peak is assumed."""
    w = g.world
    al = w.o.hub.allowlist
    port = w.d.hub.fl_server.port
    ipv4 = [r for r in al.rules if ":" not in r.cidr]
    def port_exact(r: IngressRule) -> bool:
        return r.protocol in ("tcp", "6") and r.from_port == port == r.to_port
    exact = {r.cidr for r in ipv4 if port_exact(r)}
    wider = [r for r in ipv4 if not port_exact(r)]
    added = {r.cidr for a in g.of(K.ALLOWLIST_UPDATE) for r in a.typed(AllowlistParams).add}
    tf = g.of(K.TERRAFORM_APPLY)
    if tf:
        added |= {cidr_of(ip) for ip in tf[-1].typed(TerraformParams).local_trust_public_ips}
    return len(wider) + len(exact | added) + al.other_rules


def _fg012(g: GuardInput) -> Iterator[Violation]:
    w = g.world
    al = w.o.hub.allowlist
    if al.ambiguous:
        yield _v("FG012", "hub.fl_server.security_group",
                 f"{len(al.ambiguous)} security groups match {w.d.hub.fl_server.security_group}"
                 f": {', '.join(al.ambiguous)}; rules would go to the wrong group",
                 "not overridable: set hub.fl_server.security_group to the exact group name")
    if not al.exists or not (g.of(K.ALLOWLIST_UPDATE) or g.of(K.TERRAFORM_APPLY)):
        return
    quota = al.rule_quota or w.d.hub.fl_server.rule_quota
    needed = rules_at_peak(g)
    if needed > quota:
        yield _v("FG012", "hub.fl_server.rule_quota",
                 f"the allowlist would need {needed} inbound rules in "
                 f"{al.group_id or al.group_name} ({al.other_rules} of them not trusts' FL-port "
                 f"rules), which may hold {quota}: AWS would refuse part-way",
                 "not overridable: ask AWS for a higher 'Inbound or outbound rules per security "
                 "group' quota (Service Quotas vpc L-0EA8095F; set hub.fl_server.rule_quota "
                 "where Service Quotas cannot be read), or remove trusts")


# --- FG013 sound inputs ------------------------------------------------------------------------


def _fg013(g: GuardInput) -> Iterator[Violation]:
    """Nothing runs on a hub secret or a ledger that cannot be used: FLIP_API's AES key goes
    into every kit file and its hashes decide who authenticates, and the ledger is what
    flipgitops registered; acting on a corrupt one would change the hub (a registration, a
    rule) and then fail, or overwrite what it cannot read. Blocked, nothing changes."""
    if not g.actions:
        return  # the facts table reports them (drift, plan advisories)
    w = g.world
    sec = w.o.hub.secret
    if not sec.exists or sec.malformed:
        what = ("does not exist" if not sec.exists
                else "is malformed: " + "; ".join(sec.malformed))
        yield _v("FG013", "hub.secret", f"hub secret {w.d.hub.secret} {what}",
                 "not overridable: fix FLIP_API (FLIP's Terraform writes it from TF_VAR_*), "
                 "then plan again; nothing was changed")
    if not w.o.ledger.readable:
        yield _v("FG013", "state.ledger",
                 w.o.ledger.error or "flipgitops' ledger cannot be read",
                 "not overridable: restore the ledger object from the bucket's versions (or "
                 "fix it), then plan again; nothing was changed")


GUARDS: tuple[Guard, ...] = (
    Guard("FG001", "FL images in lockstep", True, "--allow FG001", _fg001),
    Guard("FG002", "the prod database stays protected", False, "never", _fg002, _fg002_tf),
    Guard("FG003", "database recreation", True, "--allow FG003", _fg003),
    Guard("FG004", "removal blast radius", True, "--allow FG004", _fg004),
    Guard("FG005", "immutable image tags", False, "fix the tag", _fg005),
    Guard("FG006", "the right AWS account and region", False, "never", _fg006),
    Guard("FG007", "FL may be training", True, "--fl-quiesced", _fg007, _fg007_tf),
    Guard("FG008", "protected resources and hub data in a Terraform plan", True,
          "--allow FG008", _fg008, _fg008_tf),
    Guard("FG009", "re-registering a trust (database registry)", True, "--allow FG009", _fg009),
    Guard("FG010", "every active trust gets the new FL kit", True, "--allow FG010", _fg010),
    Guard("FG011", "the manifest's registry is the hub's", False, "never", _fg011),
    Guard("FG012", "the allowlist fits its security group", False, "never", _fg012),
    Guard("FG013", "the hub secret and the ledger are sound", False, "never", _fg013),
)
GUARDS_BY_ID: dict[str, Guard] = {g.id: g for g in GUARDS}


def allow_problem(guard_id: str) -> str | None:
    """Why ``--allow <guard_id>`` would accept nothing (None when it names an overridable
    guard). An unknown or never-overridable id is refused rather than ignored: an operator
    who typed `--allow FG03` believes a guard is accepted that is not."""
    guard = GUARDS_BY_ID.get(guard_id)
    if guard is None:
        near = GUARDS_BY_ID.get(guard_id.strip().upper())
        hint = f" (did you mean {near.id}?)" if near else ""
        known = ", ".join(g.id for g in GUARDS if g.overridable)
        return f"{guard_id!r} is not a guard{hint}; overridable guards: {known}"
    if not guard.overridable:
        how = "" if guard.how == "never" else f" ({guard.how})"
        return f"{guard.id} ({guard.title}) is not overridable: --allow cannot accept it{how}"
    return None


def _resolve(found: list[Violation], options: PlanOptions) -> tuple[Violation, ...]:
    unique = {(v.guard, v.target, v.message): v for v in found}
    out = []
    for key in sorted(unique):
        v, guard = unique[key], GUARDS_BY_ID[unique[key].guard]
        out.append(v.model_copy(update={"overridable": guard.overridable,
                                        "allowed": guard.allowed(options)}))
    return tuple(out)


def check(world: World, actions: tuple[Action, ...], options: PlanOptions
          ) -> tuple[Violation, ...]:
    """Every violation of the plan (and of the Terraform plan in ``options``), each marked
    allowed or not, sorted by guard then target."""
    g = GuardInput(world, actions, options)
    found = [v for guard in GUARDS for v in guard.check(g)]
    found += terraform_violations(world.d, options.terraform_plan)
    return _resolve(found, options)


def terraform_violations(manifest: Manifest, plan_json: Mapping[str, Any] | None
                         ) -> list[Violation]:
    if plan_json is None:
        return []
    try:
        tf = parse_plan(plan_json)
    except TerraformPlanFormatError as exc:
        return [_v("FG008", "terraform plan", f"the Terraform plan JSON cannot be judged ({exc})",
                   "regenerate it with `terraform show -json <planfile>`; do not apply blind")]
    return [v for guard in GUARDS if guard.check_terraform is not None
            for v in guard.check_terraform(manifest, tf)]


def check_terraform_plan(manifest: Manifest, plan_json: Mapping[str, Any], *,
                         allow: frozenset[str], fl_quiesced: bool) -> list[str]:
    """Apply time: what refuses the exact Terraform plan about to be applied (one line each)."""
    options = PlanOptions(allow=allow, fl_quiesced=fl_quiesced)
    return [f"{v.guard}: {v.message} ({v.how_to_proceed})"
            for v in _resolve(terraform_violations(manifest, plan_json), options)
            if not v.allowed]
