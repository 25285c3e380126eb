"""What an observation report shows, once for every format: sections of facts and tables.

`sections(state)` turns the v2 observed state (registry era, allowlist, FLIP_API, services,
database, Cognito, kit bucket, admin API, flipgitops' ledger, the FLIP release on the
controller, and every host's kit file, FL kit, release, containers, trust-api evidence and
egress) into plain, clean strings; text prints them as aligned lines, markdown as tables.
Keys are never shown, only ``sha256:<12 hex>`` of them: the model holds nothing else, and
`short_hash` shortens what it holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from flipgitops.core.render._common import NONE, clean, short_hash, show, yes_no
from flipgitops.model.observed import (
    IngressRule,
    ObservedAllowlist,
    ObservedHost,
    ObservedState,
)


@dataclass(frozen=True)
class Section:
    """``title`` is ours; ``subject`` (a name from the data) is shown beside it as data."""

    title: str
    subject: str = ""
    facts: Sequence[tuple[str, str]] = field(default_factory=list)
    columns: tuple[str, ...] = ()
    rows: Sequence[tuple[str, ...]] = field(default_factory=list)
    empty: str = "none"
    kind: str = "rows"
    detail: bool = False  # one of many alike (a host): collapsible, first dropped when long


def _v(value: object) -> str:
    return show(value, 200)


def _sha(value: str | None) -> str:
    return short_hash(value) if value else NONE


def _rule_owner(rule: IngressRule, allowlist: ObservedAllowlist) -> str:
    if rule.managed_trust is not None:
        return f"flipgitops ({clean(rule.managed_trust)})"
    if rule.cidr in allowlist.recorded_owners:
        return f"hub Terraform ({clean(allowlist.recorded_owners[rule.cidr])})"
    return "not flipgitops'"


def _hub(state: ObservedState) -> list[Section]:
    hub = state.hub
    pool = hub.slot_pool
    facts = [("account", _v(hub.account_id)), ("region", _v(hub.region)),
             ("observed at", _v(state.observed_at)),
             ("trust registry", f"{clean(hub.registry.era)} ({clean(hub.registry.evidence)})"),
             ("FL kit slot pool", NONE if pool is None else f"{len(pool)} slots")]
    al = hub.allowlist
    al_facts = [("security group", _v(al.group_name)), ("group id", _v(al.group_id)),
                ("found", yes_no(al.exists)),
                ("rules on other ports", str(al.other_rules)),
                ("rule quota", _v(al.rule_quota))]
    if al.ambiguous:
        al_facts.append(("ambiguous: matches", ", ".join(clean(g) for g in al.ambiguous)))
    rules = [(clean(r.cidr), f"{clean(r.protocol)} {r.from_port}-{r.to_port}",
              _rule_owner(r, al), _v(r.description)) for r in al.rules]
    sec = hub.secret
    sec_facts = [("name", _v(sec.name)), ("exists", yes_no(sec.exists)),
                 ("readable", yes_no(sec.readable)),
                 ("aes_key", _sha(sec.aes_key_sha256)),
                 ("internal_service_key", _sha(sec.internal_key_sha256)),
                 ("internal_service_key_hash", _sha(sec.internal_key_hash)),
                 ("other keys", ", ".join(clean(k) for k in sec.other_keys) or NONE)]
    if sec.malformed:
        sec_facts.append(("malformed", "; ".join(clean(m) for m in sec.malformed)))
    if sec.legacy_keys:
        sec_facts.append(("flipgitops' old keys", ", ".join(clean(k) for k in sec.legacy_keys)))
    out = [Section("Hub", facts=facts),
           Section("NLB allowlist", facts=al_facts,
                   columns=("CIDR", "Ports", "Written by", "Description"), rows=rules,
                   empty="no ingress rules", kind="ingress rules"),
           Section("Hub secret", facts=sec_facts,
                   columns=("Trust", "API key hash (trust_api_key_hashes)"),
                   rows=[(clean(n), _sha(h)) for n, h in
                         sorted((sec.trust_api_key_hashes or {}).items())],
                   empty="no trust_api_key_hashes (database registry)", kind="key hashes")]
    services = [(clean(role), _v(s.name), _v(s.tag) if s.exists else "(not found)",
                 yes_no(s.stable),
                 NONE if s.trust_names is None else ", ".join(clean(n) for n in s.trust_names)
                 + (" (malformed)" if s.trust_names_malformed else ""),
                 yes_no(s.loaded_current))
                for role, s in sorted(hub.services.items())]
    out.append(Section("Hub services", columns=("Role", "Service", "Tag", "Stable",
                                                "TRUST_NAMES", "Loaded the registry"),
                       rows=services, empty="no services", kind="services"))
    db = hub.database
    out.append(Section("Database", facts=[
        ("identifier", _v(db.identifier)), ("exists", yes_no(db.exists)),
        ("status", _v(db.status)), ("class", _v(db.instance_class)),
        ("engine", _v(db.engine_version)), ("deletion protection", yes_no(db.deletion_protection)),
        ("backup days", _v(db.backup_retention_days)),
        ("generation (flipgitops:generation)", _v(db.generation))]))
    cg = hub.cognito
    out.append(Section("Cognito", facts=[("user pool", _v(cg.name)), ("exists", yes_no(cg.exists)),
                                         ("id", _v(cg.user_pool_id)), ("MFA", _v(cg.mfa))]))
    return out


def _kits_and_admin(state: ObservedState) -> list[Section]:
    out = []
    kits = state.hub.kits
    if kits is not None:
        facts = [("bucket", _v(kits.bucket)), ("date", _v(kits.date)),
                 ("backend", _v(kits.backend)), ("found", yes_no(kits.exists)),
                 ("readable", yes_no(kits.readable))]
        if kits.error:
            facts.append(("error", _v(kits.error)))
        if kits.shared_fingerprint:
            facts.append(("certificates/ca.crt", _sha(kits.shared_fingerprint)))
        rows = [(clean(slot), str(len(s.keys)), _sha(s.fingerprint))
                for slot, s in sorted(kits.slices.items())]
        out.append(Section("FL participant kits", facts=facts,
                           columns=("Slot", "Files", "Fingerprint"), rows=rows,
                           empty="no kit for any slot", kind="kit slots"))
    admin = state.hub.admin
    if admin.queried:
        admin_facts = [("answered", yes_no(admin.ok))]
        if admin.error:
            admin_facts.append(("error", _v(admin.error)))
        admin_rows = [(_v(t.name), _v(t.code), _v(t.region), yes_no(t.disabled),
                       _v(t.last_heartbeat)) for t in admin.trusts]
        out.append(Section("Hub admin API (GET /api/admin/trusts)", facts=admin_facts,
                           columns=("Trust", "Code", "Region", "Disabled", "Last heartbeat"),
                           rows=admin_rows, empty="no trusts", kind="admin API trusts"))
    return out


def _ledger(state: ObservedState) -> list[Section]:
    led = state.ledger
    facts = [("found", yes_no(led.exists)), ("readable", yes_no(led.readable)),
             ("internal service key generation", _v(led.internal_service_key_generation)),
             ("flip-api redeploy pending", yes_no(led.redeploy_pending))]
    if led.error:
        facts.append(("error", _v(led.error)))
    rows = [(clean(name), clean(e.registry), str(e.credentials_generation),
             str(e.database_generation), _v(e.fl_kit_slot), _sha(e.api_key_sha256),
             yes_no(e.held), clean(e.source), _sha(led.delivered_kits.get(name)))
            for name, e in sorted(led.trusts.items())]
    return [Section("flipgitops' ledger (its own record, not the hub's)", facts=facts,
                    columns=("Trust", "Registry", "Keys gen", "DB gen", "Slot", "API key",
                             "Key held", "Source", "Delivered FL kit"),
                    rows=rows, empty="no trusts recorded", kind="ledger entries")]


def _release(state: ObservedState) -> list[Section]:
    rel = state.flip_release
    if rel is None:
        return []
    facts = [("ref", _v(rel.ref)), ("commit", _v(rel.commit)),
             ("trust/ tree", _sha(rel.tree_sha256)),
             ("compose files", ", ".join(clean(f) for f in rel.compose_files) or NONE)]
    if rel.error:
        facts.append(("error", _v(rel.error)))
    return [Section("FLIP release on the controller", facts=facts)]


def _measured(value: bool | None) -> str:
    return "not measured" if value is None else yes_no(value)


def _stack(h: ObservedHost) -> str:
    return ", ".join(f"{clean(c.service)}:{_v(c.tag)} ({clean(c.state)})"
                     for c in h.containers) or NONE


def _trust_api(h: ObservedHost) -> str:
    api = h.trust_api
    if api.unauthorized or api.heartbeat_rejected:
        return "rejected by the hub" + (f": {_v(api.last_error)}" if api.last_error else "")
    if api.authenticated_as:
        return f"authenticated as {_v(api.authenticated_as)}"
    return "no evidence"


def _host(h: ObservedHost) -> Section:
    if not h.reachable:
        return Section("Host", subject=h.trust, detail=True,
                       facts=[("reachable", "no: its state is unknown"), ("why", _v(h.reason))])
    kf, fl, rel = h.kit_file, h.fl_kit, h.release
    facts = [
        ("reachable", "yes"),
        ("provisioned", f"flip_root {yes_no(h.flip_root_present)}, docker "
                        f"{yes_no(h.docker_present)}, compose {yes_no(h.compose_present)}, swarm "
                        f"{yes_no(h.swarm_active)}, network {yes_no(h.network_present)}"),
        ("FLIP release", f"{_v(rel.ref)} at {_v(rel.commit)}, intact {yes_no(rel.intact)}"
         if rel.present else "not deployed"),
        ("kit file", f"mode {_v(kf.mode)}, {len(kf.values)} values, sentinel "
                     f"{yes_no(kf.has_sentinel)}" + (f", at {_v(kf.path)}" if kf.path else "")
         if kf.present else "missing"),
        ("kit file keys", ", ".join(f"{clean(k)} {_sha(v)}"
                                    for k, v in sorted(kf.secret_sha256.items())) or NONE),
        ("FL kit", f"{_v(fl.backend)} {_v(fl.date)} slot {_v(fl.slot)}, content "
                   f"{_sha(fl.content_sha256)}" if fl.present else "missing"),
        ("compose project", _v(h.project)),
        ("containers", _stack(h)),
        ("trust-api", _trust_api(h)),
        ("egress IP", _v(h.egress_ip) if h.egress_ip else "not measured"),
        ("reaches the hub / FL server", f"{_measured(h.reaches_hub)} / "
                                        f"{_measured(h.reaches_fl)}"),
    ]
    if kf.placeholders:
        facts.append(("kit file placeholders", ", ".join(clean(p) for p in kf.placeholders)))
    if kf.others:
        facts.append(("other kit files", ", ".join(clean(p) for p in kf.others)))
    if fl.stray:
        facts.append(("stray FL kit paths", ", ".join(clean(p) for p in fl.stray)))
    if h.reason:
        facts.append(("note", _v(h.reason)))
    return Section("Host", subject=h.trust, facts=facts, detail=True)


def sections(state: ObservedState) -> list[Section]:
    out = [*_hub(state), *_kits_and_admin(state), *_ledger(state), *_release(state)]
    if state.hosts:
        rows = [(clean(name), yes_no(h.reachable), "yes" if h.kit_file.present else "no",
                 "yes" if h.fl_kit.present else "no",
                 "running" if h.stack_running else "stopped", _trust_api(h))
                for name, h in sorted(state.hosts.items())]
        out.append(Section("Trust hosts", columns=("Trust", "Reachable", "Kit file", "FL kit",
                                                   "Stack", "trust-api"),
                           rows=rows, kind="hosts"))
        out += [_host(h) for _, h in sorted(state.hosts.items())]
    return out
