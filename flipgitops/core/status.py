"""`flipgitops status`: health, the way FLIP operators read `make status` first.

Pure: (manifest, observation, the hub's health answer) -> StatusReport. One row per thing an
operator checks, hub first then trusts; a row is ok, warn (worth a look, not broken) or
fail (broken: the command exits 2). It reads the same observation plan and drift read.

What FLIP's own `make status` (`deploy/providers/AWS/check_status.py`@05c85643, EC2 era)
checks, and what stands for it on today's ECS hub:

- API and UI endpoints answer -> `GET https://<domain>/api/health` answers 200
  (`main.py`@00e1b6b0; it reports no version);
- hub containers running (flip-api, fl-server-net-N, fl-api-net-N) -> each ECS service
  stable (one deployment, its tasks running on the current revision) and on the manifest's
  image tag, the version evidence since `/api/health` has none;
- RDS and Secrets Manager present -> the database usable and protected; FLIP_API readable
  with `internal_service_key_hash == sha256(internal_service_key)` (otherwise fl-server's
  callbacks get 401 `Invalid internal service key.`, `access_manager.py`@3ba224eb);
- trust endpoints reachable -> the trust's /32 on the NLB group's FL port, its host
  reachable, and `<domain>:443` and the FL endpoint reachable from the host;
- trust services running (trust-api, imaging-api, data-access-api, fl-client-net-N,
  omop-db) -> every service of the trust's compose project running;
- beyond it: trust-api's own evidence of talking to the hub (FLIP's log lines) and, with an
  admin token, the hub's `last_heartbeat` within `HEARTBEAT_TIMEOUT_SECONDS`
  (`config.py`@0062d127).

Like check_status.py, warnings never fail the run; anything that stops training or trusts'
polling does.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from flipgitops.core.allowlist import cidr_of
from flipgitops.core.facts import USABLE_DB_STATES
from flipgitops.core.world import Reg, World
from flipgitops.model import flip
from flipgitops.model.manifest import Manifest, Trust
from flipgitops.model.observed import ObservedHost, ObservedState

State = Literal["ok", "warn", "fail"]
QUOTA_WARN_SHARE = 0.9  # the NLB group this full leaves little room for new trusts


class StatusRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    section: str  # "hub" or the trust's name
    check: str
    state: State
    detail: str


class HealthAnswer(BaseModel):
    """What GET https://<domain>/api/health answered (adapters/hub_api.py)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str
    status: int | None
    detail: str


class StatusReport(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    environment: str
    rows: tuple[StatusRow, ...]
    observed_at: str | None = None

    @property
    def healthy(self) -> bool:
        return all(r.state != "fail" for r in self.rows)

    @property
    def failing(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.section for r in self.rows if r.state == "fail"))

    @property
    def counts(self) -> dict[State, int]:
        out: dict[State, int] = {"ok": 0, "warn": 0, "fail": 0}
        for r in self.rows:
            out[r.state] += 1
        return out


def status_report(d: Manifest, o: ObservedState, health: HealthAnswer) -> StatusReport:
    w = World(d, o)
    rows = [*_hub(w, health)]
    for t in d.trusts:
        if t.is_present:
            rows += _trust(w, t)
    return StatusReport(environment=d.environment, rows=tuple(rows), observed_at=o.observed_at)


def _row(section: str, check: str, ok: bool, detail: str, *, warn: bool = False) -> StatusRow:
    state: State = "ok" if ok else ("warn" if warn else "fail")
    return StatusRow(section=section, check=check, state=state, detail=detail)


# --- the hub ------------------------------------------------------------------------------


def _hub(w: World, health: HealthAnswer) -> list[StatusRow]:
    rows = [_row("hub", "API health", health.status == 200,
                 f"GET {health.url}: {health.detail}")]
    rows += _services(w)
    rows += _database(w)
    rows += _secret(w)
    rows += _security_group(w)
    hub = w.o.hub
    rows.append(_row("hub", "trust registry", w.era_matches,
                     f"{hub.registry.era} ({hub.registry.evidence})"
                     + ("" if w.era_matches else f"; the manifest says {w.registry}")))
    admin = hub.admin
    if admin.queried:
        rows.append(_row("hub", "admin API", admin.ok,
                         f"lists {len(admin.trusts)} trust(s)" if admin.ok
                         else admin.error or "failed", warn=True))
    return rows


def _services(w: World) -> list[StatusRow]:
    d, hub = w.d, w.o.hub
    rows = []
    for role in flip.HUB_ROLES:
        name = getattr(d.hub.ecs.services, role)
        svc = hub.services.get(role)
        want = getattr(d.hub.images, flip.ROLE_TAG_FIELD[role])
        if svc is None or not svc.exists:
            rows.append(_row("hub", name, False, f"not found in cluster {d.hub.ecs.cluster}"))
            continue
        problems = []
        if svc.stable is False:
            problems.append("not stable (its current deployment's tasks are not all running "
                            "on the current revision)")
        if not svc.task_definition_exists:
            problems.append("its task definition was deleted")
        rev = f" (revision {svc.revision})" if svc.revision else ""
        if problems:
            rows.append(_row("hub", name, False, "; ".join(problems) + f"; runs "
                             f"{svc.tag or '(no tag)'}{rev}"))
        elif svc.tag != want:
            # Running and stable, on another version: drift to deploy, broken only in so far
            # as the hub's and the trusts' wire contracts may differ.
            rows.append(_row("hub", name, False, f"stable on {svc.tag or '(no tag)'}{rev}, the "
                             f"manifest says {want}", warn=True))
        else:
            rows.append(_row("hub", name, True, f"stable on {svc.tag}{rev}"))
    return rows


def _database(w: World) -> list[StatusRow]:
    d, db = w.d, w.o.hub.database
    if not db.exists:
        return [_row("hub", f"database {d.hub.database.identifier}", False, "not found")]
    protected = db.deletion_protection is True
    return [
        _row("hub", f"database {db.identifier}", db.status in USABLE_DB_STATES,
             f"{db.status}, generation {db.generation or 1}"),
        _row("hub", "database protection", protected,
             "deletion protection on" if protected else "deletion protection OFF",
             warn=not d.is_prod),
    ]


def _secret(w: World) -> list[StatusRow]:
    s = w.o.hub.secret
    if not s.exists:
        return [_row("hub", f"secret {s.name}", False, "not found")]
    if not s.readable or s.malformed:
        return [_row("hub", f"secret {s.name}", False, "; ".join(s.malformed) or "cannot be read")]
    consistent = s.internal_key_sha256 is not None and s.internal_key_sha256 == s.internal_key_hash
    return [_row("hub", f"secret {s.name}", consistent,
                 "readable; internal service key matches its hash" if consistent else
                 "internal_service_key_hash is not sha256(internal_service_key): fl-server's "
                 "callbacks to flip-api are refused (401)")]


def _security_group(w: World) -> list[StatusRow]:
    al = w.o.hub.allowlist
    if al.ambiguous:
        return [_row("hub", "NLB security group", False,
                     f"{w.d.hub.fl_server.security_group} is ambiguous: "
                     + ", ".join(al.ambiguous))]
    if not al.exists:
        return [_row("hub", "NLB security group", False, f"{al.group_name} not found")]
    used = sum(1 for r in al.rules if ":" not in r.cidr) + al.other_rules
    quota = al.rule_quota or w.d.hub.fl_server.rule_quota
    return [_row("hub", "NLB security group", used <= QUOTA_WARN_SHARE * quota,
                 f"{al.group_id}: {used} of {quota} inbound rules used", warn=used <= quota)]


# --- a trust ------------------------------------------------------------------------------


def _trust(w: World, t: Trust) -> list[StatusRow]:
    rows: list[StatusRow] = []
    reg = w.reg(t.name)
    confirmed = w.hub_confirmations(t.name)
    rows.append(_row(t.name, "registration", reg in (Reg.HELD, Reg.NOT_HELD),
                     {Reg.HELD: "registered; key held by flipgitops",
                      Reg.NOT_HELD: "registered; key NOT held by flipgitops",
                      Reg.ABSENT: "not registered", Reg.LOST: "the hub no longer lists it"}[reg]
                     + (f" (confirmed by {', '.join(confirmed)})" if confirmed
                        else " (flipgitops' ledger only)" if reg is Reg.HELD else ""),
                     warn=reg is Reg.NOT_HELD))
    cidr = cidr_of(t.public_ip)
    allowed = cidr in w.attribution.cidrs(t.name)
    rows.append(_row(t.name, "allowlist", allowed,
                     f"{cidr} may reach the FL server on port {w.d.hub.fl_server.port}" if allowed
                     else f"no ingress rule for {cidr} on port {w.d.hub.fl_server.port}: it "
                     "cannot reach the FL server"))
    heartbeat = _heartbeat(w, t)
    if heartbeat is not None:
        rows.append(heartbeat)
    if not (t.has_host and t.state == "active"):
        return rows
    host = w.host(t.name)
    if host is None or not host.reachable:
        rows.append(_row(t.name, "host", False,
                         f"unreachable: {host.reason if host else 'no facts gathered'}"))
        return rows
    rows += _stack(w, t, host)
    kf = host.kit_file
    rows.append(_row(t.name, "kit file", kf.present and kf.mode == "0600",
                     f"{kf.path or 'kit file'}: " + (f"mode {kf.mode}" if kf.present
                                                      else "missing")))
    fl = host.fl_kit
    rows.append(_row(t.name, "FL kit", fl.present and fl.date == w.d.hub.fl_kits.date,
                     f"{fl.backend or w.d.hub.fl_backend} {fl.date or '(none)'}, slot "
                     f"{fl.slot or '(none)'}" if fl.present else "missing"))
    for check, value, text in (
        ("reaches hub", host.reaches_hub, f"{w.d.hub.domain}:443"),
        ("reaches FL server", host.reaches_fl,
         f"{w.d.hub.fl_hostname}:{w.d.hub.fl_server.port}"),
    ):
        if value is not None:
            rows.append(_row(t.name, check, value, text + (" reachable" if value
                                                           else " NOT reachable")))
    if host.egress_ip is not None:
        rows.append(_row(t.name, "egress IP", host.egress_ip == t.public_ip,
                         f"egresses from {host.egress_ip}; public_ip is {t.public_ip}"))
    return rows


def _stack(w: World, t: Trust, host: ObservedHost) -> list[StatusRow]:
    _, number = w.slot(t)
    project = host.project or (flip.compose_project(number) if number else "trust<N>")
    rows: list[StatusRow] = []
    down = sorted(svc for svc in host.expected_config
                  if (c := host.container(svc)) is None or c.state != "running")
    if not host.expected_config:
        rows.append(_row(t.name, "stack", False, f"{project}: no stack (compose config failed)"))
    else:
        rows.append(_row(t.name, "stack", not down,
                         f"{project}: " + (("not running: " + ", ".join(down)) if down
                                           else f"{len(host.expected_config)} services running")))
    images = w.d.hub.images
    stale = [f"{svc} on {c.tag}" for svc, want in ((flip.TRUST_API_SERVICE, images.hub_tag),
                                                   (flip.FL_CLIENT_SERVICE, images.fl_tag))
             if (c := host.container(svc)) is not None and c.tag not in (None, want)]
    if stale:
        rows.append(_row(t.name, "images", False, ", ".join(stale) + f" (the manifest says "
                         f"{images.hub_tag} / FL {images.fl_tag})", warn=True))
    api = host.trust_api
    trust_api = host.container(flip.TRUST_API_SERVICE)
    if trust_api is None or trust_api.state != "running":
        seen = f" (its last evidence: {api.authenticated_as})" if api.authenticated_as else ""
        rows.append(_row(t.name, "authentication", False,
                         f"trust-api is {trust_api.state if trust_api else 'absent'}: nothing "
                         f"polls the hub{seen}"))
    elif api.unauthorized or api.heartbeat_rejected:
        rows.append(_row(t.name, "authentication", False,
                         f"trust-api rejected by the hub: {api.last_error or '401'}"))
    elif api.authenticated_as:
        rows.append(_row(t.name, "authentication", api.authenticated_as == t.name,
                         f"trust-api authenticated as {api.authenticated_as}"))
    else:
        rows.append(_row(t.name, "authentication", False,
                         "no evidence that trust-api authenticated", warn=True))
    return rows


def _heartbeat(w: World, t: Trust) -> StatusRow | None:
    """The hub's own view of the trust (admin API): offline after HEARTBEAT_TIMEOUT_SECONDS."""
    admin = w.o.hub.admin
    if not (admin.queried and admin.ok) or t.state != "active":
        return None
    row = next((a for a in admin.trusts if a.name == t.name), None)
    if row is None:
        return _row(t.name, "heartbeat", False, "the hub's admin API does not list it")
    if row.last_heartbeat is None:
        return _row(t.name, "heartbeat", False, "the hub has never had a heartbeat from it")
    age = _age(row.last_heartbeat, w.o.observed_at)
    if age is None:
        return _row(t.name, "heartbeat", True, f"last heartbeat {row.last_heartbeat}",
                    warn=True)
    limit = flip.HEARTBEAT_TIMEOUT_SECONDS
    return _row(t.name, "heartbeat", age <= limit,
                f"last heartbeat {age:.0f}s ago" + ("" if age <= limit else
                                                    f": the hub counts it offline (> {limit}s)"))


def _age(stamp: str, now: str | None) -> float | None:
    try:
        then = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        at = datetime.fromisoformat(now) if now else None
    except ValueError:
        return None
    if at is None or then.tzinfo is None or at.tzinfo is None:
        return None
    return max(0.0, (at - then).total_seconds())
