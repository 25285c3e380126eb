"""Desired vs observed, as identity-keyed `Change` records.

Both sides are first projected to the same comparable shape (the *views*): trusts keyed by
name, hub images keyed by service role, one boolean or tag per fact. The planner derives its
actions from the very same projections (`host_gaps`, `attribute_rules`), so "the diff is
empty" and "the plan is empty" cannot disagree about what in sync means.

Views never hold a secret: key material is reduced to "does the host's hash match the hub's".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from deepdiff import DeepDiff

from flipgitops.model.manifest import Manifest, Trust
from flipgitops.model.observed import IngressRule, ObservedState
from flipgitops.model.plan import Change

View = dict[str, Any]

TRUST_API_SERVICE = "trust-api"
FL_CLIENT_SERVICE = "fl-client"  # also matches compose names like fl-client-net-1
ENV_FILE_MODE = "0600"
# How FLIP's own Terraform describes its per-trust NLB rules (`local_trust_fl_server_nlb`).
TERRAFORM_TRUST_RULE_PREFIX = "FL Server/Admin NLB from on-prem Trust"
HUB_ROLES = ("flip_api", "fl_api", "fl_server")

# Which host fact, when wrong, is repaired by which host action.
PROVISION_FACTS = frozenset({"provisioned"})
DELIVER_FACTS = frozenset(
    {
        "kit",
        "env_file",
        "env_file_mode",
        "trust_name",
        "key_matches_hub",
        "aes_matches_hub",
        "docker_tag",
        "docker_fl_tag",
    }
)
STACK_FACTS = frozenset({"stack_running", "trust_api_tag", "fl_client_tag"})
POLLING_FACTS = frozenset({"polling"})
# Delivered facts a running trust-api only picks up when restarted.
KEY_FACTS = frozenset({"env_file", "key_matches_hub", "aes_matches_hub", "trust_name"})


def cidr_of(ip: str) -> str:
    return f"{ip}/32"


def ip_of(cidr: str) -> str:
    return cidr.removesuffix("/32")


def has_host(trust: Trust) -> bool:
    """Trusts whose host flipgitops manages; tre trusts are hub-side only."""
    return trust.kind != "tre" and trust.host is not None


def is_present(trust: Trust) -> bool:
    """Registered and allowlisted on the hub (active or paused)."""
    return trust.state in ("active", "paused")


# --- allowlist attribution ---------------------------------------------------------------


@dataclass(frozen=True)
class RuleAttribution:
    """Which FL-port ingress rule belongs to which trust.

    A rule belongs to ``<name>`` when flipgitops wrote it (description ``flipgitops:<name>``)
    or, failing that, when its CIDR is a manifest trust's ``public_ip`` (rules written by hand
    or by the hub's Terraform), or, for a rule the hub's Terraform wrote, when flipgitops'
    allowlist record says whose IP it rendered there (a trust whose IP has since changed).
    The manifest outranks the record, so a stale record can never steal a current trust's
    rule. Rules nobody claims are ``orphans``.
    """

    by_trust: dict[str, tuple[IngressRule, ...]]
    orphans: tuple[IngressRule, ...]

    def cidrs(self, name: str) -> tuple[str, ...]:
        return tuple(sorted({r.cidr for r in self.by_trust.get(name, ())}))


def _on_fl_port(rule: IngressRule, port: int) -> bool:
    if rule.protocol in ("-1", "all"):
        return True
    return rule.protocol in ("tcp", "6") and rule.from_port <= port <= rule.to_port


def fl_port_rules(desired: Manifest, observed: ObservedState) -> tuple[IngressRule, ...]:
    """Ingress rules that open the FL port; rules for other ports are none of our business."""
    port = desired.hub.fl_server.port
    rules = sorted(observed.hub.allowlist.rules, key=lambda r: (r.cidr, r.description or ""))
    return tuple(r for r in rules if _on_fl_port(r, port))


def terraform_owned(rule: IngressRule) -> bool:
    """Written by the hub's Terraform (`local_trust_fl_server_nlb`), so only it can remove it."""
    return (rule.description or "").startswith(TERRAFORM_TRUST_RULE_PREFIX)


def attribute_rules(desired: Manifest, observed: ObservedState) -> RuleAttribution:
    by_cidr = {cidr_of(t.public_ip): t.name for t in desired.trusts}
    recorded = observed.hub.allowlist.recorded_owners
    by_trust: dict[str, list[IngressRule]] = {}
    orphans: list[IngressRule] = []
    for rule in fl_port_rules(desired, observed):
        owner = rule.managed_trust or by_cidr.get(rule.cidr)
        if owner is None and terraform_owned(rule):
            owner = recorded.get(rule.cidr)
        if owner is None:
            orphans.append(rule)
        else:
            by_trust.setdefault(owner, []).append(rule)
    return RuleAttribution({k: tuple(v) for k, v in by_trust.items()}, tuple(orphans))


def terraform_owner_record(desired: Manifest, previous: dict[str, str]) -> dict[str, str]:
    """The allowlist record to keep after a converged run with a Terraform-owned allowlist:
    CIDR -> trust for every trust the hub's Terraform now allows.

    Entries of trusts that are no longer in the manifest are carried over (their rules are
    unmanaged and stay until ``--prune``, so their owner must stay known); entries of manifest
    trusts are rebuilt from the manifest, so a moved trust's old IP is forgotten once its rule
    is gone.
    """
    names = {t.name for t in desired.trusts}
    record = {cidr: name for cidr, name in previous.items() if name not in names}
    record.update({cidr_of(t.public_ip): t.name for t in desired.trusts if is_present(t)})
    return dict(sorted(record.items()))


def registered_names(observed: ObservedState) -> frozenset[str]:
    """Fully registered trusts: listed in TRUST_NAMES and with a key hash."""
    secret = observed.hub.secret
    if not secret.exists:
        return frozenset()
    return frozenset(secret.trust_names) & frozenset(secret.trust_api_key_hashes)


def registered(observed: ObservedState, name: str) -> bool:
    return name in registered_names(observed)


def database_target(desired: Manifest, observed: ObservedState) -> int | None:
    """The database generation every registered key must be minted for: the manifest's, or
    the live one when the manifest lags behind; None when there is no database to go by.

    Compared with each trust's recorded database generation, not with "is a recreation
    planned", so a run that died after the schema reset still re-registers every trust.
    """
    odb = observed.hub.database
    if not odb.exists:
        return None
    return max(desired.hub.database.generation, odb.generation or 1)


def stale_registration(desired: Manifest, observed: ObservedState, name: str) -> bool:
    """Registered with a key minted before the database was (last) recreated."""
    target = database_target(desired, observed)
    return target is not None and observed.hub.secret.database_generation(name) < target


def secret_names(observed: ObservedState) -> frozenset[str]:
    secret = observed.hub.secret
    if not secret.exists:
        return frozenset()
    return frozenset(secret.trust_names) | frozenset(secret.trust_api_key_hashes)


# --- host facts ----------------------------------------------------------------------------


def desired_host_view(desired: Manifest, trust: Trust) -> View:
    images = desired.hub.images
    return {
        "reachable": True,
        "provisioned": True,
        "kit": True,
        "env_file": True,
        "env_file_mode": ENV_FILE_MODE,
        "trust_name": trust.name,
        "key_matches_hub": True,
        "aes_matches_hub": True,
        "docker_tag": images.hub_tag,
        "docker_fl_tag": images.fl_tag,
        "stack_running": True,
        "trust_api_tag": images.hub_tag,
        "fl_client_tag": images.fl_tag,
        "polling": True,
    }


def host_reachable(observed: ObservedState, name: str) -> bool:
    host = observed.hosts.get(name)
    return host is not None and host.reachable


def fl_client_tag(observed: ObservedState, name: str) -> str | None:
    host = observed.hosts.get(name)
    if host is None:
        return None
    return next(
        (c.tag for c in host.containers if c.service.startswith(FL_CLIENT_SERVICE)), None
    )


def observed_host_view(observed: ObservedState, name: str) -> View:
    """The host's facts in the desired shape; unreachable hosts only say so (unknown)."""
    host = observed.hosts.get(name)
    if host is None or not host.reachable:
        return {"reachable": False}
    secret = observed.hub.secret
    hub_hash = secret.trust_api_key_hashes.get(name)
    mode = host.env_file_mode if host.env_file_present else None
    if mode is not None and len(mode) == 3:
        mode = "0" + mode
    return {
        "reachable": True,
        "provisioned": host.flip_root_present and host.docker_present,
        "kit": host.kit_present,
        "env_file": host.env_file_present,
        "env_file_mode": mode,
        "trust_name": host.trust_name,
        "key_matches_hub": hub_hash is not None and host.trust_api_key_sha256 == hub_hash,
        # Without a hub AES key there is nothing to deliver, so nothing can mismatch.
        "aes_matches_hub": secret.aes_key_sha256 is None
        or host.aes_key_sha256 == secret.aes_key_sha256,
        "docker_tag": host.docker_tag,
        "docker_fl_tag": host.docker_fl_tag,
        "stack_running": host.stack_running,
        "trust_api_tag": host.container_tag(TRUST_API_SERVICE),
        "fl_client_tag": fl_client_tag(observed, name),
        # Unknown (None) is not a failure: only an explicit "has not polled" is.
        "polling": host.polling_ok is not False,
    }


def host_gaps(desired: Manifest, observed: ObservedState, trust: Trust) -> frozenset[str] | None:
    """Host facts that differ from the manifest; None when the host is unknown (unreachable)."""
    if not host_reachable(observed, trust.name):
        return None
    want = desired_host_view(desired, trust)
    have = observed_host_view(observed, trust.name)
    return frozenset(k for k, v in want.items() if have.get(k) != v)


# --- views ---------------------------------------------------------------------------------


def _manages_host(trust: Trust) -> bool:
    return has_host(trust) and trust.state == "active"


def desired_trust_view(desired: Manifest, trust: Trust) -> View:
    view: View = {
        "public_ip": trust.public_ip,
        "registered": True,
        "credentials_generation": trust.credentials_generation,
        "rotation_pending": False,
    }
    if _manages_host(trust):
        view["host"] = desired_host_view(desired, trust)
    return view


def _observed_ip(attribution: RuleAttribution, name: str) -> str | None:
    ips = [ip_of(c) for c in attribution.cidrs(name)]
    return ",".join(ips) if ips else None


def observed_trust_view(
    observed: ObservedState,
    attribution: RuleAttribution,
    name: str,
    trust: Trust | None,
    registry: tuple[frozenset[str], frozenset[str]] | None = None,
) -> View | None:
    """The trust as live; None when nothing of it is live (so the diff says "add").

    ``registry`` is (names in the secret, fully registered names), computed once per view.
    """
    secret = observed.hub.secret
    in_secret, fully = registry or (secret_names(observed), registered_names(observed))
    view: View = {
        "public_ip": _observed_ip(attribution, name),
        "registered": name in fully,
        "credentials_generation": secret.credentials_generations.get(name),
        "rotation_pending": name in secret.previous_key_hashes,
    }
    host = observed.hosts.get(name)
    if trust is not None and _manages_host(trust):
        view["host"] = observed_host_view(observed, name)
        started = host is not None and host.reachable and host.flip_root_present
    elif trust is None:  # leaving (decommissioned / unmanaged): only a running stack matters
        started = host is not None and host.reachable and host.stack_running
        if started:
            view["host"] = {"stack_running": True}
    else:
        started = False
    footprint = (
        view["registered"]
        or name in in_secret
        or view["public_ip"] is not None
        or started
    )
    return view if footprint else None


def _hub_views(desired: Manifest, observed: ObservedState) -> tuple[View, View]:
    hub, ohub = desired.hub, observed.hub
    want_images = {"flip_api": hub.images.hub_tag, "fl_api": hub.images.fl_tag,
                   "fl_server": hub.images.fl_tag}
    have_images = {
        role: (s.tag if (s := ohub.services.get(role)) is not None and s.exists else None)
        for role in HUB_ROLES
    }
    db, odb = hub.database, ohub.database
    want_db: View = {"exists": True}
    have_db: View = {"exists": odb.exists}
    if odb.exists:
        want_db |= {
            "deletion_protection": db.deletion_protection,
            "generation": db.generation,
            "instance_class": db.instance_class,
            "engine_version": db.engine_version,
            "backup_retention_days": db.backup_retention_days,
        }
        have_db |= {
            "deletion_protection": odb.deletion_protection,
            "generation": odb.generation if odb.generation is not None else 1,
            "instance_class": odb.instance_class,
            "engine_version": odb.engine_version,
            "backup_retention_days": odb.backup_retention_days,
        }
    want_cog: View = {"exists": True}
    have_cog: View = {"exists": ohub.cognito.exists}
    if ohub.cognito.exists and ohub.cognito.mfa is not None:
        want_cog["mfa"] = hub.cognito.mfa
        have_cog["mfa"] = ohub.cognito.mfa
    want = {
        "images": want_images,
        # A registry change flip-api was not redeployed for (a run died in between).
        "secret": {"exists": True, "redeploy_pending": False},
        "allowlist": {"exists": True},
        "database": want_db,
        "cognito": want_cog,
    }
    have = {
        "images": have_images,
        "secret": {"exists": ohub.secret.exists,
                   "redeploy_pending": ohub.secret.redeploy_pending},
        "allowlist": {"exists": ohub.allowlist.exists},
        "database": have_db,
        "cognito": have_cog,
    }
    return want, have


def views(desired: Manifest, observed: ObservedState) -> tuple[View, View]:
    """(desired view, observed view), the same shape, ready to compare."""
    hub_want, hub_have = _hub_views(desired, observed)
    attribution = attribute_rules(desired, observed)
    want_trusts: View = {}
    have_trusts: View = {}
    by_name = {t.name: t for t in desired.trusts}
    db_target = database_target(desired, observed)
    for t in desired.trusts:
        if is_present(t):
            want_trusts[t.name] = desired_trust_view(desired, t)
            if db_target is not None:
                want_trusts[t.name]["database_generation"] = db_target
    registry = (secret_names(observed), registered_names(observed))
    names = set(by_name) | registry[0] | set(attribution.by_trust)
    for name in sorted(names):
        trust = by_name.get(name)
        if trust is not None and not is_present(trust):
            trust = None
        seen = observed_trust_view(observed, attribution, name, trust, registry)
        if seen is not None:
            if db_target is not None and name in want_trusts:
                # Only "older than the database" matters (it needs new keys); anything newer
                # is as good as current, and an unregistered trust is reported as such.
                recorded = observed.hub.secret.database_generation(name)
                seen["database_generation"] = (
                    min(recorded, db_target) if seen["registered"] else db_target
                )
            have_trusts[name] = seen
    # Unknown hosts: compare only reachability, never invent the facts we could not see.
    for name, seen in have_trusts.items():
        want = want_trusts.get(name)
        if want and "host" in want and seen.get("host") == {"reachable": False}:
            want["host"] = {"reachable": True}
    want = {
        "aws": {"account_id": desired.aws.account_id, "region": desired.aws.region},
        "hub": hub_want,
        "trusts": want_trusts,
    }
    have = {
        "aws": {"account_id": observed.hub.account_id, "region": observed.hub.region},
        "hub": hub_have,
        "trusts": have_trusts,
    }
    return want, have


def diff(desired: Manifest, observed: ObservedState) -> tuple[Change, ...]:
    """Every difference, observed (before) → desired (after), sorted by path."""
    want, have = views(desired, observed)
    have, want = _differing(have, want)
    tree = DeepDiff(have, want, view="tree", verbose_level=2, threshold_to_diff_deeper=0)
    changes: list[Change] = []
    for report, levels in tree.items():
        op = _OPS.get(report)
        if op is None:
            raise ValueError(f"unexpected deepdiff report {report!r} over normalised views")
        for level in levels:
            path = ".".join(str(p) for p in level.path(output_format="list"))
            before = None if op == "add" else level.t1
            after = None if op == "remove" else level.t2
            changes.append(Change(op=op, path=path, before=before, after=after))
    return tuple(sorted(changes, key=lambda c: c.path))


_MISSING = object()


def _differing(have: View, want: View) -> tuple[View, View]:
    """Drop every equal branch first: deepdiff's per-node cost is high, and in a large
    environment almost everything is equal (1,000 in-sync trusts must diff in milliseconds)."""
    h: View = {}
    w: View = {}
    for key in have.keys() | want.keys():
        a, b = have.get(key, _MISSING), want.get(key, _MISSING)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            a, b = _differing(a, b)
        if a is not _MISSING:
            h[key] = a
        if b is not _MISSING:
            w[key] = b
    return h, w


_OPS: dict[str, Any] = {
    "values_changed": "change",
    "type_changes": "change",
    "dictionary_item_added": "add",
    "dictionary_item_removed": "remove",
}
