"""Guards FG001..FG008 (DESIGN §6): pure checks over (desired, observed, planned actions).

A guard never removes actions; it only says why they must not run yet and how to proceed,
so reviewers see the full plan even when it is blocked. Overriding is the operator's call
(`--allow <ID>`, `--fl-quiesced` for FG007), except FG002: nothing overrides losing the prod
database.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

from flipgitops.core.diff import (
    attribute_rules,
    fl_client_tag,
    has_host,
    host_reachable,
    ip_of,
    terraform_owned,
)
from flipgitops.core.terraform_plan import (
    DATABASE_TYPE,
    PROTECTED_TYPES,
    TerraformPlanFormatError,
    parse_plan,
)
from flipgitops.core.validate import is_immutable_tag
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Action, ActionKind, PlanOptions, Violation

FLOATING_TAGS = frozenset({"latest", "stag", "stage", "staging", "prod", "production", "main",
                           "master", "dev", "develop", "stable", "edge", "nightly"})
NEVER_OVERRIDABLE = frozenset({"FG002"})
FL_ROLES = ("fl_api", "fl_server")
_DB_SAFE_KINDS = frozenset({ActionKind.DATABASE_RESET_SCHEMA})


def _v(guard: str, target: str, message: str, how: str) -> Violation:
    return Violation(guard=guard, target=target, message=message, how_to_proceed=how)


def _resolve(v: Violation, options: PlanOptions) -> Violation:
    if v.guard in NEVER_OVERRIDABLE:
        return v.model_copy(update={"overridable": False, "allowed": False})
    allowed = v.guard in options.allow or (v.guard == "FG007" and options.fl_quiesced)
    return v.model_copy(update={"overridable": True, "allowed": allowed})


def check(
    desired: Manifest,
    observed: ObservedState,
    plan_actions: Sequence[Action],
    options: PlanOptions,
) -> tuple[Violation, ...]:
    """Every violation, each marked allowed or not, sorted by guard then target."""
    actions = tuple(plan_actions)
    found = [
        *fg001(desired, observed, actions),
        *fg002(desired, actions, options),
        *fg003(desired, actions),
        *fg004(desired, observed, actions),
        *fg005(desired),
        *fg006(desired, observed),
        *fg007(actions),
        *fg008(options),
    ]
    unique = {(v.guard, v.target, v.message): v for v in found}
    return tuple(_resolve(unique[k], options) for k in sorted(unique))


def _live_tag(observed: ObservedState, role: str) -> str | None:
    svc = observed.hub.services.get(role)
    return svc.tag if svc is not None and svc.exists else None


def fg001(d: Manifest, o: ObservedState, actions: tuple[Action, ...]) -> Iterator[Violation]:
    images = d.hub.images
    hub_moving = _live_tag(o, "flip_api") not in (None, images.hub_tag)
    # The FL version moves when every live FL service is off the desired tag; one drifted
    # service (a hand-made hotfix) is drift to restore, not an upgrade.
    fl_live = [t for t in (_live_tag(o, r) for r in FL_ROLES) if t is not None]
    fl_moving = bool(fl_live) and all(t != images.fl_tag for t in fl_live)
    if d.policy.lockstep_fl_images and hub_moving != fl_moving:
        moving, staying = ("hub_tag", "fl_tag") if hub_moving else ("fl_tag", "hub_tag")
        yield _v("FG001", "hub.images",
                 f"{moving} changes but {staying} does not (live flip-api "
                 f"{_live_tag(o, 'flip_api')}, fl-server {_live_tag(o, 'fl_server')}); "
                 "policy.lockstep_fl_images requires them to move together",
                 "bump hub_tag and fl_tag in the same change, or --allow FG001")
    fl_upgrade = any(
        a.kind == ActionKind.HUB_DEPLOY_IMAGE and a.target in FL_ROLES for a in actions
    )
    starting = {a.target for a in actions if a.kind == ActionKind.HOST_START_STACK}
    for t in d.trusts:
        if t.state != "active" or not has_host(t):
            continue
        if not host_reachable(o, t.name):
            if fl_upgrade:
                yield _v("FG001", t.name,
                         f"{t.name} is unreachable during an FL upgrade to {images.fl_tag}: it "
                         "would be left on the old FL wire contract",
                         f"restore access to {t.name} and re-plan, set it to state: paused "
                         "(left behind), or --allow FG001")
            continue
        tag = fl_client_tag(o, t.name)
        if tag is not None and tag != images.fl_tag and t.name not in starting:
            yield _v("FG001", t.name,
                     f"{t.name}'s fl-client would stay on {tag} while the hub runs "
                     f"{images.fl_tag}",
                     f"fix {t.name}'s host so its stack can be restarted, or --allow FG001")


def fg002(d: Manifest, actions: tuple[Action, ...], options: PlanOptions) -> Iterator[Violation]:
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
    for a in actions:
        if a.target == db.identifier and a.destructive and a.kind not in _DB_SAFE_KINDS:
            yield _v("FG002", a.id,
                     f"{a.id} would delete, replace or unprotect prod database {db.identifier}",
                     "not overridable: remove the change from the manifest")
    if options.terraform_plan is None:
        return
    try:
        tf = parse_plan(options.terraform_plan)
    except TerraformPlanFormatError:
        return  # FG008 reports an unreadable plan
    for rc in tf.removing({DATABASE_TYPE}):
        yield _v("FG002", rc.address,
                 f"Terraform would {rc.kind} prod database {rc.address}",
                 "not overridable: change the Terraform so the database is kept in place")
    for rc in tf.database_unprotecting():
        yield _v("FG002", rc.address,
                 f"Terraform would turn off deletion protection or the final snapshot of "
                 f"prod database {rc.address}",
                 "not overridable: keep deletion_protection on and skip_final_snapshot off")


def fg003(d: Manifest, actions: tuple[Action, ...]) -> Iterator[Violation]:
    for a in actions:
        if a.kind == ActionKind.DATABASE_RESET_SCHEMA:
            gen = a.params.get("generation", d.hub.database.generation)
            yield _v("FG003", d.hub.database.identifier,
                     f"database {d.hub.database.identifier} is recreated (generation {gen}): "
                     "every table is reset after a snapshot "
                     f"flipgitops-{d.environment}-gen{gen}-<time>",
                     "if that is intended, apply with --allow FG003; otherwise revert "
                     "hub.database.generation")


def removed_trusts(d: Manifest, o: ObservedState, actions: tuple[Action, ...]) -> set[str]:
    """Trusts this plan takes away (decommission or prune), whatever the allowlist mode."""
    present = {t.name for t in d.trusts if t.state in ("active", "paused")}
    names: set[str] = set()
    for a in actions:
        if a.kind == ActionKind.HOST_STOP_STACK:
            names.add(a.target)
        elif a.kind == ActionKind.HUB_SECRET_UPDATE:
            names.update(str(n) for n in a.params.get("deregister", []))
        elif a.kind == ActionKind.ALLOWLIST_UPDATE:
            names.update(
                str(r["trust"]) for r in a.params.get("revoke", [])
                if r.get("trust") and r["trust"] not in present
            )
        elif a.kind == ActionKind.TERRAFORM_APPLY:
            keep = {str(ip) for ip in a.params.get("local_trust_public_ips", [])}
            attribution = attribute_rules(d, o)
            for owner, rules in attribution.by_trust.items():
                if owner not in present and any(
                    terraform_owned(r) and ip_of(r.cidr) not in keep for r in rules
                ):
                    names.add(owner)
    return names


def fg004(d: Manifest, o: ObservedState, actions: tuple[Action, ...]) -> Iterator[Violation]:
    names = sorted(removed_trusts(d, o, actions))
    limit = d.policy.max_trust_removals
    if len(names) <= limit:
        return
    if limit > 0:
        split = (f"split the change into {math.ceil(len(names) / limit)} applies of at most "
                 f"{limit} removal(s) each, or --allow FG004")
    else:
        split = "raise policy.max_trust_removals, or --allow FG004"
    yield _v("FG004", "trusts",
             f"{len(names)} trusts removed in one apply ({', '.join(names)}); "
             f"policy.max_trust_removals is {limit}", split)


def fg005(d: Manifest) -> Iterator[Violation]:
    if not (d.is_prod or d.policy.immutable_tags):
        return
    for field in ("hub_tag", "fl_tag"):
        tag = getattr(d.hub.images, field)
        if is_immutable_tag(tag):
            continue
        kind = "a floating tag" if tag.lower() in FLOATING_TAGS else "not an immutable tag"
        yield _v("FG005", f"hub.images.{field}",
                 f"hub.images.{field} {tag!r} is {kind}; this environment requires "
                 "vX.Y.Z[-pre] or sha-<7 hex>",
                 f"pin hub.images.{field} to a release (e.g. v2.3.0) or sha-<7 hex>, "
                 "or --allow FG005 outside prod")


def fg006(d: Manifest, o: ObservedState) -> Iterator[Violation]:
    how = ("fix the AWS credentials (AWS_PROFILE / role) so they reach account "
           f"{d.aws.account_id} in {d.aws.region}; nothing here is safe to apply elsewhere")
    if o.hub.account_id != d.aws.account_id:
        yield _v("FG006", "aws.account_id",
                 f"live AWS account is {o.hub.account_id or 'unknown'}, the manifest is for "
                 f"{d.aws.account_id}", how)
    if o.hub.region != d.aws.region:
        yield _v("FG006", "aws.region",
                 f"live AWS region is {o.hub.region or 'unknown'}, the manifest is for "
                 f"{d.aws.region}", how)


def fg007(actions: tuple[Action, ...]) -> Iterator[Violation]:
    for a in actions:
        if a.kind == ActionKind.HUB_DEPLOY_IMAGE and a.target in FL_ROLES:
            yield _v("FG007", a.id,
                     f"{a.id} replaces {a.target} (→ {a.params.get('tag')}) and would abort "
                     "any FL training in progress",
                     "wait until no FL job is running, then apply with --fl-quiesced")


def fg008(options: PlanOptions) -> Iterator[Violation]:
    if options.terraform_plan is None:
        return
    try:
        tf = parse_plan(options.terraform_plan)
    except TerraformPlanFormatError as exc:
        yield _v("FG008", "terraform plan",
                 f"the Terraform plan JSON cannot be judged ({exc})",
                 "regenerate it with `terraform show -json <planfile>`; do not apply blind")
        return
    for rc in tf.removing(PROTECTED_TYPES):
        yield _v("FG008", rc.address,
                 f"Terraform would {rc.kind} protected {rc.type} {rc.address}",
                 "change the Terraform so it is updated in place (or moved with a `moved` "
                 "block), or --allow FG008 after a reviewed backup")
