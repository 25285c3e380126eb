"""The planner: `plan(desired, observed, options) -> Plan`, pure and deterministic.

Level-based: every action is derived from what is still different now, never from what a
previous run intended, so a rerun after a crash plans exactly the missing steps. Hub-side
work is batched (one secret write, one redeploy, one allowlist change for any number of
trusts) and host work fans out per trust, so onboarding ten trusts costs the same number of
waves as one.

Action ids (stable; executors and reviewers rely on them):
    credentials.escrow:<trust>      hub_secret.update        hub.redeploy
    hub.deploy_image:<role>         allowlist.update         allowlist.revoke
    terraform.apply                 terraform.apply:revoke
    host.<step>:<trust>             hub_secret.finalize      hub.redeploy:finalize
    database.snapshot  database.reset_schema  database.restore_protection
``allowlist.revoke`` / ``terraform.apply:revoke`` exist only when one plan both removes
trusts (revoke before deregistering) and onboards trusts (allow after registering); a single
batch could not satisfy both orders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flipgitops.core import diff as views
from flipgitops.core.diff import (
    DELIVER_FACTS,
    KEY_FACTS,
    POLLING_FACTS,
    STACK_FACTS,
    attribute_rules,
    cidr_of,
    database_target,
    fl_port_rules,
    has_host,
    host_gaps,
    host_reachable,
    ip_of,
    is_present,
    registered_names,
    secret_names,
    stale_registration,
    terraform_owned,
)
from flipgitops.core.fingerprint import fingerprint
from flipgitops.core.guards import check
from flipgitops.core.ordering import ordered
from flipgitops.model.manifest import Manifest, Trust
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Action, ActionKind, Plan, PlanOptions

K = ActionKind
HUB_SECRET = "hub_secret.update"
HUB_SECRET_FINAL = "hub_secret.finalize"
REDEPLOY = "hub.redeploy"
REDEPLOY_FINAL = "hub.redeploy:finalize"
ALLOWLIST = "allowlist.update"
ALLOWLIST_REVOKE = "allowlist.revoke"
TERRAFORM = "terraform.apply"
TERRAFORM_REVOKE = "terraform.apply:revoke"
SNAPSHOT = "database.snapshot"
RESET_SCHEMA = "database.reset_schema"
RESTORE_PROTECTION = "database.restore_protection"


def action_id(kind: str, target: str | None = None) -> str:
    return kind if target is None else f"{kind}:{target}"


@dataclass
class _Spec:
    id: str
    kind: str
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    deps: set[str] = field(default_factory=set)
    destructive: bool = False
    description: str = ""


@dataclass
class _Allow:
    """Allowlist work for this plan, in trust/cidr pairs."""

    adds: list[dict[str, str]] = field(default_factory=list)
    moves: list[dict[str, str]] = field(default_factory=list)  # revokes of a trust's old IP
    removals: list[dict[str, str]] = field(default_factory=list)  # decommission / prune


class _Planner:
    def __init__(self, desired: Manifest, observed: ObservedState, options: PlanOptions) -> None:
        self.d, self.o, self.opt = desired, observed, options
        self.specs: dict[str, _Spec] = {}
        self.notes: list[str] = []
        self.unknown: set[str] = set()
        self.attribution = attribute_rules(desired, observed)
        self.secret = observed.hub.secret
        self.registered = registered_names(observed)
        self.in_secret = secret_names(observed)
        self.recreating = False
        self.register: set[str] = set()  # escrow + (re)write the hub hash
        self.newly: set[str] = set()  # not registered before this plan
        self.rotating: set[str] = set()  # registered; the hub keeps the old hash as previous
        self.stale_db: set[str] = set()  # registered before the database was recreated
        self.skipped: set[str] = set()  # cannot be onboarded (hub secret missing)
        self.deregister: set[str] = set()
        self.allow = _Allow()
        self.allow_for: dict[str, str] = {}  # trust -> allowlist action that allows it
        self.removal_action: str | None = None
        self.finalize: set[str] = set()
        self.in_flight: set[str] = set()  # previous hash still accepted, no rotation planned
        self.last_host_step: dict[str, str] = {}

    @property
    def redeploy_pending(self) -> bool:
        """A previous run wrote the hub secret and died before redeploying flip-api."""
        return self.secret.exists and self.secret.redeploy_pending

    # -- helpers ---------------------------------------------------------------------------

    def add(self, id_: str, kind: str, target: str, *, params: dict[str, Any] | None = None,
            deps: set[str] | None = None, destructive: bool = False,
            description: str = "") -> _Spec:
        spec = _Spec(id_, kind, target, params or {}, set(deps or ()), destructive, description)
        self.specs[id_] = spec
        return spec

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def actions(self) -> list[Action]:
        return [
            Action(
                id=s.id,
                kind=s.kind,
                target=s.target,
                params=s.params,
                depends_on=tuple(sorted(d for d in s.deps if d in self.specs and d != s.id)),
                destructive=s.destructive,
                description=s.description,
            )
            for s in self.specs.values()
        ]

    @property
    def present(self) -> list[Trust]:
        return [t for t in self.d.trusts if is_present(t)]

    # -- the flows -------------------------------------------------------------------------

    def build(self) -> None:
        self._hub_notes()
        self._database()
        self._credentials()
        self._removals()
        self._images()
        if self.d.hub.fl_server.allowlist == "terraform":
            self._terraform_allowlist()
        else:
            self._aws_allowlist()
        self._secret()
        for t in self.present:
            if t.state == "active" and has_host(t) and t.name not in self.skipped:
                self._host_chain(t)
        self._hub_only_notes()
        self._finalize()

    def _hub_notes(self) -> None:
        hub, ohub = self.d.hub, self.o.hub
        if not ohub.secret.exists:
            self.note(f"hub secret {hub.secret} not found: the hub's Terraform creates it; "
                      "trust registration waits until it exists")
        if not ohub.allowlist.exists:
            self.note(f"security group {hub.fl_server.security_group} not found: the hub's "
                      "Terraform creates it; allowlist changes wait until it exists")
        for role in views.HUB_ROLES:
            svc = ohub.services.get(role)
            if svc is None or not svc.exists:
                self.note(f"ECS service {getattr(hub.ecs.services, role)} ({role}) not found in "
                          f"cluster {hub.ecs.cluster}: the hub's Terraform creates it")
        cog = ohub.cognito
        if not cog.exists:
            self.note(f"Cognito user pool {hub.cognito.user_pool} not found: the hub's "
                      "Terraform creates it")
        elif cog.mfa is not None and cog.mfa != hub.cognito.mfa:
            self.note(f"Cognito MFA is {cog.mfa}, manifest says {hub.cognito.mfa}: change it "
                      "in the hub's Terraform (ENFORCE_MFA)")

    def _database(self) -> None:
        db, odb = self.d.hub.database, self.o.hub.database
        if not odb.exists:
            self.note(f"database {db.identifier} not found: the hub's Terraform creates it; "
                      "flipgitops never creates or deletes the database")
            return
        live_gen = odb.generation or 1
        if odb.deletion_protection is False and db.deletion_protection:
            self.add(RESTORE_PROTECTION, K.DATABASE_RESTORE_PROTECTION, db.identifier,
                     params={"deletion_protection": True},
                     description=f"turn deletion protection back on for {db.identifier}")
        if odb.deletion_protection and not db.deletion_protection:
            self.note(f"database {db.identifier}: deletion protection stays on; flipgitops "
                      "never turns it off")
        for fact, want, have in (
            ("instance_class", db.instance_class, odb.instance_class),
            ("engine_version", db.engine_version, odb.engine_version),
            ("backup_retention_days", db.backup_retention_days, odb.backup_retention_days),
        ):
            if have is not None and have != want:
                self.note(f"hub.database.{fact} is {have}, manifest says {want}: the hub's "
                          "Terraform owns it; change it there")
        if db.generation < live_gen:
            self.note(f"hub.database.generation {db.generation} is below the live generation "
                      f"{live_gen}: set it to {live_gen} (or {live_gen + 1} to recreate again)")
        if db.generation > live_gen:
            self.recreating = True
            self.add(SNAPSHOT, K.DATABASE_SNAPSHOT, db.identifier,
                     params={"generation": db.generation},
                     description=f"snapshot {db.identifier} before generation {db.generation} "
                     "and wait until it is available")
            self.add(RESET_SCHEMA, K.DATABASE_RESET_SCHEMA, db.identifier,
                     params={"generation": db.generation}, deps={SNAPSHOT}, destructive=True,
                     description=f"reset the {db.identifier} schema (generation {live_gen} → "
                     f"{db.generation}) with a one-off flip-api task")

    def _credentials(self) -> None:
        for t in self.present:
            name, want = t.name, t.credentials_generation
            live = self.secret.credentials_generations.get(name)
            is_registered = name in self.registered
            if not is_registered:
                if not self.secret.exists:
                    self.skipped.add(name)
                    continue
                self.newly.add(name)
            elif live is None or live < want or stale_registration(self.d, self.o, name):
                # No recorded generation means flipgitops never escrowed this key: adopt it
                # by rotating, so the key the host gets is one we can deliver again. A key
                # minted for an older database generation is replaced too (DESIGN §5.6),
                # whether or not the schema reset is still to run: after a crash that
                # followed the reset the database already carries the new generation.
                self.rotating.add(name)
                if stale_registration(self.d, self.o, name):
                    self.stale_db.add(name)
            elif live > want:
                self.note(f"trusts.{name}.credentials_generation {want} is below the hub's "
                          f"{live}: set it to {live} (or {live + 1} to rotate)")
        self.register = self.newly | self.rotating
        generations = {t.name: t.credentials_generation for t in self.present}
        db_target = database_target(self.d, self.o) or self.d.hub.database.generation
        if self.stale_db and not self.recreating:
            self.note("the database is at generation " + str(db_target) + " but "
                      + ", ".join(sorted(self.stale_db)) + " still hold keys from before "
                      "it was recreated (a previous run stopped after the schema reset): "
                      "re-registering them with new keys")
        for name in sorted(self.register):
            why = ("new trust" if name in self.newly
                   else "database recreated" if name in self.stale_db else "rotation")
            self.add(action_id(K.CREDENTIALS_ESCROW, name), K.CREDENTIALS_ESCROW, name,
                     params={"generation": generations[name], "database_generation": db_target},
                     description=f"mint and escrow {name}'s generation "
                     f"{generations[name]} API key in SSM ({why})")

    def _removals(self) -> None:
        manifest_names = {t.name for t in self.d.trusts}
        leaving = [t.name for t in self.d.trusts if t.state == "decommissioned"]
        if self.opt.prune:
            leaving += sorted(self.unmanaged_names() - manifest_names)
        for name in leaving:
            trust = self.d.trust(name)
            if trust is not None and has_host(trust):
                host = self.o.hosts.get(name)
                footprint = bool(self.attribution.cidrs(name)) or name in self.in_secret
                if host is not None and host.reachable and host.stack_running:
                    self.add(action_id(K.HOST_STOP_STACK, name), K.HOST_STOP_STACK, name,
                             description=f"stop {name}'s trust stack")
                elif (host is None or not host.reachable) and footprint:
                    self.unknown.add(name)
            for cidr in self.attribution.cidrs(name):
                self.allow.removals.append({"trust": name, "cidr": cidr})
            if name in self.in_secret and self.secret.exists:
                self.deregister.add(name)

    def unmanaged_names(self) -> set[str]:
        known = {t.name for t in self.d.trusts}
        return (set(self.in_secret) | set(self.attribution.by_trust)) - known

    def _images(self) -> None:
        images = self.d.hub.images
        wanted = {"flip_api": images.hub_tag, "fl_api": images.fl_tag, "fl_server": images.fl_tag}
        for role, tag in wanted.items():
            svc = self.o.hub.services.get(role)
            if svc is None or not svc.exists or svc.tag == tag:
                continue
            self.add(action_id(K.HUB_DEPLOY_IMAGE, role), K.HUB_DEPLOY_IMAGE, role,
                     params={"tag": tag, "from": svc.tag},
                     description=f"deploy {svc.name} ({role}) {svc.tag} → {tag}")

    # -- allowlist -------------------------------------------------------------------------

    def _allowlist_pairs(self) -> None:
        for t in self.present:
            if t.name in self.skipped:
                continue
            want = cidr_of(t.public_ip)
            have = self.attribution.cidrs(t.name)
            if want not in have:
                self.allow.adds.append({"trust": t.name, "cidr": want})
            self.allow.moves += [{"trust": t.name, "cidr": c} for c in have if c != want]

    def _split_needed(self) -> bool:
        onboarding = any(a["trust"] in self.newly for a in self.allow.adds)
        return onboarding and bool(self.allow.removals) and bool(self.deregister)

    def _aws_allowlist(self) -> None:
        if not self.o.hub.allowlist.exists:
            return
        self._allowlist_pairs()
        a = self.allow
        if not (a.adds or a.moves or a.removals):
            return
        group = self.d.hub.fl_server.security_group
        main = {"add": a.adds, "revoke": a.moves + a.removals}
        if self._split_needed():
            self.add(ALLOWLIST_REVOKE, K.ALLOWLIST_UPDATE, group,
                     params={"add": [], "revoke": _sorted_pairs(a.removals)},
                     description=_allow_text(group, [], a.removals))
            main = {"add": a.adds, "revoke": a.moves}
            self.removal_action = ALLOWLIST_REVOKE
        elif a.removals:
            self.removal_action = ALLOWLIST
        self.add(ALLOWLIST, K.ALLOWLIST_UPDATE, group,
                 params={"add": _sorted_pairs(main["add"]),
                         "revoke": _sorted_pairs(main["revoke"])},
                 description=_allow_text(group, main["add"], main["revoke"]))
        self._allowlist_deps(ALLOWLIST, main["add"])

    def _allowlist_deps(self, action: str, adds: list[dict[str, str]]) -> None:
        for pair in adds:
            self.allow_for[pair["trust"]] = action
            # With the redeploy marker set, flip-api may not know trusts the secret already
            # lists (a run died before the redeploy): open the FL port only after it.
            if pair["trust"] in self.newly or self.redeploy_pending:
                self.specs[action].deps.add(REDEPLOY)
        if self.removal_action is not None:
            for pair in self.allow.removals:
                self.specs[self.removal_action].deps.add(
                    action_id(K.HOST_STOP_STACK, pair["trust"])
                )

    def _terraform_allowlist(self) -> None:
        """The hub's Terraform owns the rules: flipgitops only renders the full IP list.

        Rules Terraform did not write cannot be removed by it, so they are left alone (with a
        note) rather than planned forever; a trust already allowed by such a rule is left out
        of the list so Terraform does not create a duplicate rule.
        """
        if not self.o.hub.allowlist.exists:
            return
        rules = fl_port_rules(self.d, self.o)
        owned = {r.cidr for r in rules if terraform_owned(r)}
        foreign = {r.cidr for r in rules if not terraform_owned(r)}
        for pair in self.allow.removals:
            if pair["cidr"] not in owned:
                self.note(f"ingress rule {pair['cidr']} ({pair['trust']}) was not written by "
                          "the hub's Terraform: remove it by hand")
        self.allow.removals = [p for p in self.allow.removals if p["cidr"] in owned]
        self._allowlist_pairs()
        a = self.allow
        a.moves = [p for p in a.moves if p["cidr"] in owned]
        # Rules of nobody, or of trusts no longer in the manifest, stay until --prune.
        manifest_names = {t.name for t in self.d.trusts}
        unclaimed = [*self.attribution.orphans, *(
            r for name, owned_rules in self.attribution.by_trust.items()
            if name not in manifest_names for r in owned_rules)]
        kept_orphans = set() if self.opt.prune else {
            ip_of(r.cidr) for r in unclaimed if terraform_owned(r)
        }
        final_ips = {
            t.public_ip for t in self.present
            if t.name not in self.skipped and cidr_of(t.public_ip) not in foreign
        } | kept_orphans
        live = {ip_of(c) for c in owned}
        # Images move through ECS, but the hub's Terraform renders the same tags into its task
        # definitions: left behind, its next run (for any allowlist change) would register new
        # revisions and restart FL. So an upgrade also runs Terraform, after the deploys, in
        # the same quiesced window (its plan is checked for FG007 like the deploys are).
        deploys = {i for i, s in self.specs.items() if s.kind == K.HUB_DEPLOY_IMAGE}
        if final_ips == live and not deploys:
            return
        images = self.d.hub.images
        base = {"docker_image_tag": images.hub_tag, "flip_fl_image_tag": images.fl_tag,
                "environment": self.d.environment}
        target = self.d.hub.terraform.dir if self.d.hub.terraform else "hub-terraform"
        removed = {ip_of(p["cidr"]) for p in a.removals}
        if self._split_needed():
            self.add(TERRAFORM_REVOKE, K.TERRAFORM_APPLY, target,
                     params={"local_trust_public_ips": sorted(live - removed), **base},
                     description=f"terraform apply: revoke {', '.join(sorted(removed))}")
            self.removal_action = TERRAFORM_REVOKE
        elif a.removals:
            self.removal_action = TERRAFORM
        added, dropped = sorted(final_ips - live), sorted(live - final_ips)
        summary = "; ".join(p for p in (
            "allow " + ", ".join(added) if added else "",
            "revoke " + ", ".join(dropped) if dropped else "",
            f"image tags {images.hub_tag}/{images.fl_tag} after the deploys" if deploys else "",
        ) if p)
        self.add(TERRAFORM, K.TERRAFORM_APPLY, target,
                 params={"local_trust_public_ips": sorted(final_ips), **base}, deps=deploys,
                 description=f"terraform apply (local_trust_public_ips): {summary}")
        self._allowlist_deps(TERRAFORM, a.adds)

    # -- hub secret + redeploy -------------------------------------------------------------

    def _secret(self) -> None:
        in_flight = self.in_flight = {
            t.name for t in self.present
            if t.name in self.secret.previous_key_hashes and t.name not in self.rotating
        }
        if self.register or self.deregister:
            deps = {action_id(K.CREDENTIALS_ESCROW, n) for n in self.register}
            deps |= {action_id(K.HOST_STOP_STACK, n) for n in self.deregister}
            if self.removal_action and self.deregister:
                deps.add(self.removal_action)
            if self.recreating:
                deps.add(RESET_SCHEMA)
            parts = []
            if self.register:
                parts.append("register " + ", ".join(sorted(self.register)))
            if self.deregister:
                parts.append("deregister " + ", ".join(sorted(self.deregister)))
            self.add(HUB_SECRET, K.HUB_SECRET_UPDATE, self.d.hub.secret,
                     params={"register": sorted(self.register),
                             "deregister": sorted(self.deregister), "drop_previous": []},
                     deps=deps,
                     description=f"hub secret {self.d.hub.secret}: " + "; ".join(parts))
        needs_host_reload = any(
            t.state == "active" and has_host(t) and host_reachable(self.o, t.name)
            for t in self.present if t.name in in_flight
        )
        pending = self.redeploy_pending
        if pending:
            self.note("a previous run updated the hub secret but did not redeploy flip-api "
                      f"({self.d.hub.ecs.services.flip_api} may not have loaded it): "
                      "redeploying it")
        if HUB_SECRET in self.specs or self.recreating or needs_host_reload or pending:
            why = "reload the hub secret" if HUB_SECRET in self.specs or needs_host_reload \
                else "start on the new schema" if self.recreating \
                else "a previous run updated the hub secret but did not redeploy it"
            self.add(REDEPLOY, K.HUB_REDEPLOY, "flip_api",
                     deps={HUB_SECRET, RESET_SCHEMA, action_id(K.HUB_DEPLOY_IMAGE, "flip_api")},
                     description=f"redeploy {self.d.hub.ecs.services.flip_api} ({why})")

    # -- hosts -----------------------------------------------------------------------------

    def _host_chain(self, t: Trust) -> None:
        name = t.name
        gaps = host_gaps(self.d, self.o, t)
        if gaps is None:
            self.unknown.add(name)
            return
        new_key = name in self.register
        in_flight = name in self.in_flight
        provision = "provisioned" in gaps
        deliver = bool(gaps & DELIVER_FACTS) or new_key or provision
        start = bool(gaps & STACK_FACTS) or provision
        restart = (new_key or in_flight or bool(gaps & KEY_FACTS)) and not start
        verify = start or restart or bool(gaps & POLLING_FACTS)
        steps: list[tuple[str, str]] = []
        if provision:
            steps.append((K.HOST_PROVISION, f"provision {name}'s host (docker, flip_root)"))
        if deliver:
            steps.append((K.HOST_DELIVER, f"deliver {name}'s FL kit and 0600 trust env file"))
        if start:
            tags = self.d.hub.images
            steps.append((K.HOST_START_STACK, f"start {name}'s trust stack on {tags.hub_tag} "
                          f"(FL {tags.fl_tag})"))
        elif restart:
            steps.append((K.HOST_RESTART_TRUST_API, f"restart {name}'s trust-api (new key)"))
        if verify:
            steps.append((K.HOST_VERIFY_POLLING, f"verify {name}'s trust-api polls the hub"))
        first_deps: set[str] = set()
        if name in self.allow_for:
            first_deps.add(self.allow_for[name])
        if new_key or in_flight or self.redeploy_pending:
            first_deps.add(REDEPLOY)
        previous: str | None = None
        for kind, text in steps:
            deps = {previous} if previous else set(first_deps)
            params: dict[str, Any] = {}
            if kind == K.HOST_START_STACK:
                deps |= {action_id(K.HUB_DEPLOY_IMAGE, r) for r in views.HUB_ROLES}
                params = {"docker_tag": self.d.hub.images.hub_tag,
                          "docker_fl_tag": self.d.hub.images.fl_tag}
            if kind == K.HOST_DELIVER:
                params = {"generation": self._hub_generation(t),
                          "docker_tag": self.d.hub.images.hub_tag,
                          "docker_fl_tag": self.d.hub.images.fl_tag}
            previous = self.add(action_id(kind, name), kind, name, params=params, deps=deps,
                                description=text).id
        if previous:
            self.last_host_step[name] = previous
        if (name in self.rotating or in_flight) and previous:
            self.finalize.add(name)

    def _hub_generation(self, t: Trust) -> int:
        """The key generation the hub holds for ``t`` once this plan's secret update ran:
        the host must get that key, even when the manifest lags behind the hub."""
        if t.name in self.register:
            return t.credentials_generation
        return self.secret.credentials_generations.get(t.name, t.credentials_generation)

    def _hub_only_notes(self) -> None:
        for t in self.present:
            pending = t.name in self.rotating or t.name in self.in_flight
            if not pending:
                continue
            if t.kind == "tre" or not has_host(t):
                self.note(f"{t.name} (tre): deliver the new API key from SSM "
                          f"/flipgitops/{self.d.environment}/trusts/{t.name}/api-key to the "
                          "TRE; the hub accepts the old key until the next rotation")
            elif t.state == "paused":
                self.note(f"{t.name} is paused: its host gets the new API key when it is "
                          "active again; the hub accepts the old key until then")
        for name in sorted(self.skipped):
            self.note(f"{name} is not registered and the hub secret is missing: not onboarded")

    def _finalize(self) -> None:
        if not self.finalize:
            return
        names = sorted(self.finalize)
        self.add(HUB_SECRET_FINAL, K.HUB_SECRET_UPDATE, self.d.hub.secret,
                 params={"register": [], "deregister": [], "drop_previous": names},
                 deps={self.last_host_step[n] for n in names},
                 description=f"hub secret {self.d.hub.secret}: drop the previous key hash of "
                 + ", ".join(names))
        self.add(REDEPLOY_FINAL, K.HUB_REDEPLOY, "flip_api", deps={HUB_SECRET_FINAL},
                 description=f"redeploy {self.d.hub.ecs.services.flip_api} (old keys rejected)")

    # -- report lists ----------------------------------------------------------------------

    def unmanaged(self) -> tuple[str, ...]:
        orphans = {f"ingress:{r.cidr}" for r in self.attribution.orphans}
        if self.opt.prune and orphans and self.d.hub.fl_server.allowlist == "aws-api":
            self.note("--prune leaves ingress rules flipgitops did not write ("
                      + ", ".join(sorted(orphans))
                      + "): remove them in the hub's Terraform or by hand")
        return tuple(sorted(self.unmanaged_names() | orphans))

    def left_behind(self) -> tuple[str, ...]:
        upgrading = any(s.kind == K.HUB_DEPLOY_IMAGE for s in self.specs.values())
        images = self.d.hub.images
        out = []
        for t in self.d.trusts:
            if t.state != "paused" or not has_host(t):
                continue
            host = self.o.hosts.get(t.name)
            stale = host is not None and host.reachable and (
                views.fl_client_tag(self.o, t.name) not in (None, images.fl_tag)
                or host.container_tag(views.TRUST_API_SERVICE) not in (None, images.hub_tag)
            )
            if upgrading or stale:
                out.append(t.name)
            if host is not None and not host.reachable:
                self.unknown.add(t.name)
        return tuple(sorted(out))


def _sorted_pairs(pairs: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(pairs, key=lambda p: (p["trust"], p["cidr"]))


def _allow_text(group: str, adds: list[dict[str, str]], revokes: list[dict[str, str]]) -> str:
    parts = []
    if adds:
        parts.append("allow " + ", ".join(f"{p['cidr']} ({p['trust']})"
                                          for p in _sorted_pairs(adds)))
    if revokes:
        parts.append("revoke " + ", ".join(f"{p['cidr']} ({p['trust']})"
                                           for p in _sorted_pairs(revokes)))
    return f"{group}: " + "; ".join(parts)


def plan(desired: Manifest, observed: ObservedState, options: PlanOptions | None = None) -> Plan:
    """Ordered, guarded actions that bring ``observed`` to ``desired``; same inputs, same bytes."""
    opts = options or PlanOptions()
    planner = _Planner(desired, observed, opts)
    planner.build()
    actions, waves = ordered(planner.actions())
    unmanaged = planner.unmanaged()
    left_behind = planner.left_behind()
    return Plan(
        environment=desired.environment,
        fingerprint=fingerprint(desired, observed, {"prune": opts.prune}),
        changes=views.diff(desired, observed),
        actions=actions,
        waves=waves,
        violations=check(desired, observed, actions, opts),
        unmanaged=unmanaged,
        left_behind=left_behind,
        unknown=tuple(sorted(planner.unknown)),
        notes=tuple(planner.notes),
    )
