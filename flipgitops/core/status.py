"""`flipgitops status`: health, the way FLIP operators read `make status` first.

Pure: (manifest, observation, the hub's health answer) -> StatusReport. One row per thing an
operator checks, hub first then trusts; a row is ok, warn (worth a look, not broken) or
fail (broken: the command exits 2). It reads the same observation plan and drift read.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from flipgitops.core.world import Reg, World
from flipgitops.model import flip
from flipgitops.model.manifest import Manifest, Trust
from flipgitops.model.observed import ObservedState

State = Literal["ok", "warn", "fail"]
USABLE_DB = frozenset({"available", "backing-up", "modifying", "maintenance"})


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


def _hub(w: World, health: HealthAnswer) -> list[StatusRow]:
    d, hub = w.d, w.o.hub
    rows = [_row("hub", "API health", health.status == 200,
                 f"GET {health.url}: {health.detail}")]
    for role in flip.HUB_ROLES:
        name = getattr(d.hub.ecs.services, role)
        svc = hub.services.get(role)
        want = getattr(d.hub.images, flip.ROLE_TAG_FIELD[role])
        if svc is None or not svc.exists:
            rows.append(_row("hub", name, False, f"not found in cluster {d.hub.ecs.cluster}"))
            continue
        problems = []
        if svc.stable is False:
            problems.append("not stable (tasks of its current deployment are not all running)")
        if svc.tag != want:
            problems.append(f"runs {svc.tag or '(no tag)'}, the manifest says {want}")
        if not svc.task_definition_exists:
            problems.append("its task definition was deleted")
        rev = f" (revision {svc.revision})" if svc.revision else ""
        rows.append(_row("hub", name, not problems,
                         "; ".join(problems) or f"stable on {svc.tag}{rev}"))
    db = hub.database
    if not db.exists:
        rows.append(_row("hub", f"database {d.hub.database.identifier}", False, "not found"))
    else:
        usable = db.status in USABLE_DB
        rows.append(_row("hub", f"database {db.identifier}", usable,
                         f"{db.status}, generation {db.generation or 1}"))
        protected = db.deletion_protection is True
        rows.append(_row("hub", "database protection", protected,
                         "deletion protection on" if protected else "deletion protection OFF",
                         warn=not d.is_prod))
    s = hub.secret
    if not s.exists:
        rows.append(_row("hub", f"secret {s.name}", False, "not found"))
    elif not s.readable or s.malformed:
        rows.append(_row("hub", f"secret {s.name}", False,
                         "; ".join(s.malformed) or "cannot be read"))
    else:
        consistent = s.internal_key_sha256 is not None and \
            s.internal_key_sha256 == s.internal_key_hash
        rows.append(_row("hub", f"secret {s.name}", consistent,
                         "readable; internal service key matches its hash" if consistent
                         else "internal_service_key_hash is not sha256(internal_service_key)"))
    al = hub.allowlist
    rows.append(_row("hub", "NLB security group", al.exists and not al.ambiguous,
                     (f"{al.group_id} ({len(al.rules)} FL-port rules)" if al.exists
                      and not al.ambiguous else "ambiguous: " + ", ".join(al.ambiguous)
                      if al.ambiguous else f"{al.group_name} not found")))
    rows.append(_row("hub", "trust registry", w.era_matches,
                     f"{hub.registry.era} ({hub.registry.evidence})"
                     + ("" if w.era_matches else f"; the manifest says {w.registry}")))
    return rows


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
    if not (t.has_host and t.state == "active"):
        return rows
    host = w.host(t.name)
    if host is None or not host.reachable:
        rows.append(_row(t.name, "host", False,
                         f"unreachable: {host.reason if host else 'no facts gathered'}"))
        return rows
    _, number = w.slot(t)
    project = host.project or (flip.compose_project(number) if number else "trust<N>")
    down = sorted(svc for svc in host.expected_config
                  if (c := host.container(svc)) is None or c.state != "running")
    if not host.expected_config:
        rows.append(_row(t.name, "stack", False, f"{project}: no stack (compose config failed)"))
    else:
        rows.append(_row(t.name, "stack", not down,
                         f"{project}: " + (("not running: " + ", ".join(down)) if down
                                           else f"{len(host.expected_config)} services running")))
    api = host.trust_api
    if api.unauthorized or api.heartbeat_rejected:
        rows.append(_row(t.name, "authentication", False,
                         f"trust-api rejected by the hub: {api.last_error or '401'}"))
    elif api.authenticated_as:
        rows.append(_row(t.name, "authentication", api.authenticated_as == t.name,
                         f"trust-api authenticated as {api.authenticated_as}"))
    else:
        rows.append(_row(t.name, "authentication", False,
                         "no evidence that trust-api authenticated", warn=True))
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
