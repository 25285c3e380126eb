"""Drift: what is live that the reviewed manifest does not say, graded for the nightly report.

Pure: (desired, observed) -> DriftReport. Unlike the planner it never decides what to do;
it names every difference with a group (changed / missing / unmanaged / unknown) and a
severity so a cron job can page on critical findings and batch the rest. A host that could
not be reached is always reported as *unknown*: silence about it would read as "in sync".
"""

from __future__ import annotations

from collections.abc import Iterator

from pydantic import BaseModel, ConfigDict

from flipgitops.core.diff import attribute_rules, cidr_of, database_target, fl_port_rules
from flipgitops.model.manifest import Manifest, Trust
from flipgitops.model.observed import ObservedHost, ObservedState
from flipgitops.model.plan import Finding

_GROUP_ORDER = {"changed": 0, "missing": 1, "unmanaged": 2, "unknown": 3}
_SEVERITY_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}

# Which manifest tag each hub service role runs.
_ROLE_TAG = {"flip_api": "hub_tag", "fl_api": "fl_tag", "fl_server": "fl_tag"}


class DriftReport(BaseModel):
    """Findings for one environment, ordered by group, severity, target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: str
    findings: tuple[Finding, ...] = ()
    observed_at: str | None = None

    @property
    def in_sync(self) -> bool:
        return not self.findings

    def by_group(self, group: str) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.group == group)

    def severity_counts(self) -> dict[str, int]:
        out = dict.fromkeys(_SEVERITY_ORDER, 0)
        for f in self.findings:
            out[f.severity] += 1
        return out


def drift_report(desired: Manifest, observed: ObservedState) -> DriftReport:
    findings = [*_account(desired, observed), *_allowlist(desired, observed),
                *_secret(desired, observed), *_services(desired, observed),
                *_database(desired, observed), *_cognito(desired, observed),
                *_hosts(desired, observed)]
    unique = {(f.group, f.severity, f.target, f.message): f for f in findings}
    ordered = sorted(
        unique.values(),
        key=lambda f: (_GROUP_ORDER[f.group], _SEVERITY_ORDER[f.severity], f.target, f.message),
    )
    return DriftReport(environment=desired.environment, findings=tuple(ordered),
                       observed_at=observed.observed_at)


def _f(group: str, severity: str, target: str, message: str) -> Finding:
    return Finding.model_validate(
        {"group": group, "severity": severity, "target": target, "message": message}
    )


def _registered(desired: Manifest) -> list[Trust]:
    """Trusts the hub should know: active and paused (paused keeps its registration)."""
    return [t for t in desired.trusts if t.state != "decommissioned"]


def _account(d: Manifest, o: ObservedState) -> Iterator[Finding]:
    live = o.hub
    if live.account_id is None:
        yield _f("unknown", "critical", "aws.account_id",
                 "could not read the live AWS account (STS); nothing else can be trusted")
    elif live.account_id != d.aws.account_id:
        yield _f("changed", "critical", "aws.account_id",
                 f"live account {live.account_id} is not the manifest's {d.aws.account_id}: "
                 "wrong credentials (FG006)")
    if live.region is not None and live.region != d.aws.region:
        yield _f("changed", "critical", "aws.region",
                 f"live region {live.region} is not the manifest's {d.aws.region} (FG006)")


def _allowlist(d: Manifest, o: ObservedState) -> Iterator[Finding]:
    """Rules are matched to trusts exactly as the planner matches them (`attribute_rules`),
    so drift and plan can never disagree about whose rule a rule is."""
    al = o.hub.allowlist
    group = d.hub.fl_server.security_group
    if not al.exists:
        yield _f("missing", "high", f"allowlist:{group}",
                 f"security group {group} does not exist: no trust can reach the FL server")
        return
    port = d.hub.fl_server.port
    rules = fl_port_rules(d, o)
    live = {r.cidr for r in rules}
    attribution = attribute_rules(d, o)
    owner_of = {r.cidr: name for name, owned in attribution.by_trust.items() for r in owned}
    wanted = {t.name: cidr_of(t.public_ip) for t in _registered(d)}
    for name, cidr in wanted.items():
        if cidr in live:
            continue
        owned = attribution.cidrs(name)
        if owned:
            yield _f("changed", "high", f"trust:{name}",
                     f"ingress rule is {', '.join(owned)} but public_ip is {cidr}")
        else:
            yield _f("missing", "high", f"trust:{name}",
                     f"no ingress rule for {cidr} on port {port}: the trust cannot reach FL")
    for r in rules:
        if r.cidr in wanted.values():
            continue
        owner = owner_of.get(r.cidr)
        if owner in wanted and wanted[owner] not in live:
            continue  # already reported as an IP change of that trust
        who = (f" (labelled for {owner})" if r.managed_trust else
               f" (last allowed for {owner})" if owner else "")
        yield _f("unmanaged", "high", f"ingress:{r.cidr}",
                 f"ingress rule for {r.cidr} on port {port}{who} belongs to no trust in the "
                 "manifest")


def _secret(d: Manifest, o: ObservedState) -> Iterator[Finding]:
    s = o.hub.secret
    if not s.exists:
        yield _f("missing", "critical", f"secret:{s.name}",
                 f"hub secret {s.name} does not exist: the hub cannot authenticate any trust")
        return
    live = set(s.trust_names)
    registered = {t.name for t in _registered(d)}
    manifest_names = {t.name for t in d.trusts}
    for name in sorted(registered - live):
        yield _f("missing", "high", f"trust:{name}", f"not registered in hub secret {s.name}")
    for name in sorted(registered & live):
        if name not in s.trust_api_key_hashes:
            yield _f("missing", "high", f"trust:{name}",
                     f"registered in hub secret {s.name} without an API key hash")
    for name in sorted(live - registered):
        why = "decommissioned in the manifest" if name in manifest_names else "not in the manifest"
        yield _f("unmanaged", "high", f"trust:{name}",
                 f"registered in hub secret {s.name} but {why}")
    if s.redeploy_pending:
        yield _f("changed", "high", f"secret:{s.name}",
                 "flip-api may not have loaded the current hub secret: a previous apply "
                 "updated it but did not redeploy flip-api (apply redeploys it)")
    target = database_target(d, o)
    for name in sorted(registered & live):
        recorded = s.database_generation(name)
        if target is not None and name in s.trust_api_key_hashes and recorded < target:
            yield _f("changed", "high", f"trust:{name}",
                     f"API key was minted for database generation {recorded}, the database "
                     f"is at {target}: apply re-registers it with a new key")


def _services(d: Manifest, o: ObservedState) -> Iterator[Finding]:
    names = d.hub.ecs.services.model_dump()
    for role, tag_field in _ROLE_TAG.items():
        want = getattr(d.hub.images, tag_field)
        svc = o.hub.services.get(role)
        target = f"service:{names[role]}"
        if svc is None or not svc.exists:
            yield _f("missing", "high", target,
                     f"ECS service {names[role]} not found in cluster {d.hub.ecs.cluster}")
        elif svc.tag != want:
            yield _f("changed", "high", target,
                     f"runs image tag {svc.tag or '(none)'}, manifest {tag_field} is {want}")


def _database(d: Manifest, o: ObservedState) -> Iterator[Finding]:
    want, db = d.hub.database, o.hub.database
    target = f"database:{want.identifier}"
    if not db.exists:
        yield _f("missing", "critical" if d.is_prod else "high", target,
                 f"RDS instance {want.identifier} does not exist")
        return
    if db.deletion_protection is not None and db.deletion_protection != want.deletion_protection:
        if d.is_prod and not db.deletion_protection:
            yield _f("changed", "critical", target,
                     "deletion protection is OFF in prod (apply restores it; FG002)")
        else:
            yield _f("changed", "medium", target,
                     f"deletion_protection is {db.deletion_protection}, manifest says "
                     f"{want.deletion_protection}")
    simple = (
        ("instance_class", db.instance_class, want.instance_class, "low"),
        ("engine_version", db.engine_version, want.engine_version, "medium"),
        ("backup_retention_days", db.backup_retention_days, want.backup_retention_days, "low"),
        ("generation", db.generation, want.generation, "medium"),
    )
    for field, live, wanted, severity in simple:
        if live is not None and live != wanted:
            yield _f("changed", severity, target, f"{field} is {live}, manifest says {wanted}")


def _cognito(d: Manifest, o: ObservedState) -> Iterator[Finding]:
    c = o.hub.cognito
    target = f"cognito:{d.hub.cognito.user_pool}"
    if not c.exists:
        yield _f("missing", "medium", target, f"user pool {d.hub.cognito.user_pool} not found")
    elif c.mfa is not None and c.mfa != d.hub.cognito.mfa:
        yield _f("changed", "medium", target, f"MFA is {c.mfa}, manifest says {d.hub.cognito.mfa}")


def _hosts(d: Manifest, o: ObservedState) -> Iterator[Finding]:
    for t in _registered(d):
        if t.host is None or t.kind == "tre":
            continue
        h = o.hosts.get(t.name)
        target = f"host:{t.name}"
        if h is None:
            yield _f("unknown", "medium", target, "host facts were not gathered")
        elif not h.reachable:
            yield _f("unknown", "medium", target,
                     f"host unreachable ({h.reason or 'no reason given'}): state unknown")
        else:
            yield from _host_facts(d, t, h, o)
    for t in d.trusts:
        gone = o.hosts.get(t.name)
        if t.state == "decommissioned" and gone is not None and gone.stack_running:
            yield _f("unmanaged", "medium", f"host:{t.name}",
                     "trust stack still running although the trust is decommissioned")
    known = {t.name for t in d.trusts}
    for name in sorted(set(o.hosts) - known):
        yield _f("unmanaged", "medium", f"host:{name}",
                 "host facts for a trust not in the manifest")


def _host_facts(d: Manifest, t: Trust, h: ObservedHost, o: ObservedState) -> Iterator[Finding]:
    target = f"host:{t.name}"
    layout = (("flip_root", h.flip_root_present), ("docker", h.docker_present),
              (f"FL kit for slot {t.fl_kit_slot}", h.kit_present),
              ("trust env file", h.env_file_present))
    for what, present in layout:
        if not present:
            yield _f("missing", "medium", target, f"{what} not present")
    if h.env_file_present and h.env_file_mode not in (None, "0600", "600"):
        yield _f("changed", "high", target,
                 f"trust env file mode is {h.env_file_mode}, must be 0600 (it holds keys)")
    hub_hash = o.hub.secret.trust_api_key_hashes.get(t.name)
    previous = o.hub.secret.previous_key_hashes.get(t.name)
    if h.env_file_present and hub_hash and h.trust_api_key_sha256 not in (hub_hash, previous):
        yield _f("changed", "high", target,
                 "host TRUST_API_KEY does not match the hub's hash: the trust cannot authenticate")
    aes = o.hub.secret.aes_key_sha256
    if h.env_file_present and aes and h.aes_key_sha256 and h.aes_key_sha256 != aes:
        yield _f("changed", "high", target, "host AES key does not match the hub's")
    if h.trust_name is not None and h.trust_name != t.name:
        yield _f("changed", "medium", target, f"TRUST_NAME is {h.trust_name}, expected {t.name}")
    if t.state != "active":
        return  # a paused trust may be stopped and on older tags
    if not h.stack_running:
        yield _f("missing", "medium", target, "trust stack not running")
        return
    images = d.hub.images
    fl = h.container_tag("fl-client")
    if fl is not None and fl != images.fl_tag:
        yield _f("changed", "high", target,
                 f"fl-client runs {fl}, manifest fl_tag is {images.fl_tag} (FL wire contract)")
    api = h.container_tag("trust-api")
    if api is not None and api != images.hub_tag:
        yield _f("changed", "medium", target, f"trust-api runs {api}, manifest hub_tag is "
                 f"{images.hub_tag}")
    if h.polling_ok is False:
        yield _f("changed", "medium", target, "trust-api has not polled the hub recently")
