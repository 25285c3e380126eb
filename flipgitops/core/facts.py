"""The one table of what "in sync" means: every fact flipgitops reconciles or reports.

Each row says, for one kind of fact: which subjects it is about (the hub, each present trust,
each active trust's host, each trust that is leaving), its desired value, its observed value,
the action kind that repairs it (``None``: an *advisory*, reported but never acted on), how
bad a difference is, and the fix an operator reads. `evaluate()` runs the table once;

- `core/diff.py` turns the values into `Change` records (the plan's "changes" section);
- `core/drift.py` grades every differing value into a `Finding`;
- the planner's phases (`core/planner/`) act on the differing values whose fact has a repair;
- `core/fingerprint.py` hashes the values (never a volatile field: those are not facts).

so `drift` reports in sync exactly when the plan has nothing to do or report.
Values never hold a secret: keys are compared as the sha256 hex observation already holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from flipgitops.core import kitfile
from flipgitops.core.allowlist import cidr_of, ip_of
from flipgitops.core.world import Reg, World
from flipgitops.model import flip
from flipgitops.model.actions import ActionKind
from flipgitops.model.kit import LOCAL_CREDENTIAL_KEYS, local_credentials_fingerprint
from flipgitops.model.manifest import Trust
from flipgitops.model.plan import Group, Severity

K = ActionKind
Scope = Literal["aws", "hub", "trust", "host", "leaving"]

# Databases in these RDS states can be snapshotted and reset; any other (stopped, ...) cannot.
USABLE_DB_STATES = frozenset({"available", "backing-up", "modifying", "configuring-log-exports",
                              "storage-optimization", "maintenance"})


@dataclass(frozen=True)
class Subject:
    """What one fact value is about: the hub (nothing set), a trust, or a hub service."""

    name: str | None = None  # trust name
    trust: Trust | None = None  # None for a trust that is not (or no longer) in the manifest
    role: str | None = None  # hub service role for image facts

    @property
    def label(self) -> str:
        return self.name or self.role or "hub"


Value = Callable[[World, Subject], Any]
Text = Callable[[World, Subject, Any, Any], str]


@dataclass(frozen=True)
class Fact:
    id: str
    scope: Scope
    repair: ActionKind | None  # None: advisory
    severity: Severity
    want: Value
    have: Value
    message: Text
    fix: str | Text = "apply repairs it"
    applies: Callable[[World, Subject], bool] = lambda _w, _s: True
    per_role: bool = False  # hub facts about each of flip-api, fl-api, fl-server

    @property
    def advisory(self) -> bool:
        return self.repair is None


@dataclass(frozen=True)
class FactValue:
    fact: Fact
    subject: Subject
    want: Any
    have: Any

    @property
    def differs(self) -> bool:
        return bool(self.want != self.have)

    @property
    def parts(self) -> tuple[str, ...]:
        """Where the value sits in the views; a live trust name may hold a dot, so the tree
        is built from these parts, never by splitting the dotted path."""
        f, s = self.fact, self.subject
        key = f.id.split(".", 1)[1]
        if f.scope in ("aws", "hub"):
            return (f.scope, key, *((s.role,) if s.role else ()))
        if f.scope == "host":
            return ("trusts", s.name or "", "host", key)
        return ("trusts", s.name or "", key)

    @property
    def path(self) -> str:
        return ".".join(self.parts)

    @property
    def group(self) -> Group:
        if self.fact.scope == "host" and self.fact.id == "host.reachable":
            return "unknown"
        if self.subject.name is not None and self.subject.trust is None:
            return "unmanaged"
        absent = self.have in (None, False, (), {}, "")
        return "missing" if absent and self.want not in (None, False, (), {}) else "changed"

    def text(self, world: World) -> str:
        return self.fact.message(world, self.subject, self.want, self.have)

    def fix_text(self, world: World) -> str:
        fix = self.fact.fix
        return fix if isinstance(fix, str) else fix(world, self.subject, self.want, self.have)


# --- subjects --------------------------------------------------------------------------------


def _hub(w: World) -> Iterator[Subject]:
    yield Subject()


def _roles(w: World) -> Iterator[Subject]:
    for role in flip.HUB_ROLES:
        yield Subject(role=role)


def _present(w: World) -> Iterator[Subject]:
    for t in w.present:
        yield Subject(t.name, t)


def _hosts(w: World) -> Iterator[Subject]:
    for t in w.active_hosted:
        yield Subject(t.name, t)


def _leaving(w: World) -> Iterator[Subject]:
    """Decommissioned trusts and live trusts the manifest does not name (unmanaged)."""
    for t in w.d.trusts:
        if t.state == "decommissioned":
            yield Subject(t.name, t)
    for name in sorted(w.unmanaged_names):
        yield Subject(name, None)


SUBJECTS: dict[Scope, Callable[[World], Iterator[Subject]]] = {
    "aws": _hub, "hub": _hub, "trust": _present, "host": _hosts, "leaving": _leaving,
}


# --- small readers -----------------------------------------------------------------------------


def _svc(w: World, role: str | None) -> Any:
    return w.o.hub.services.get(role or "")


def _tag_field(role: str | None) -> str:
    fields: dict[str, str] = {str(k): str(v) for k, v in flip.ROLE_TAG_FIELD.items()}
    return fields.get(role or "flip_api", "hub_tag")


def _want_tag(w: World, s: Subject) -> str:
    return str(getattr(w.d.hub.images, _tag_field(s.role)))


def _live_tag(w: World, s: Subject) -> str | None:
    svc = _svc(w, s.role)
    return svc.tag if svc is not None and svc.exists else None


def _service_exists(w: World, s: Subject) -> bool:
    svc = _svc(w, s.role)
    return svc is not None and svc.exists


def _t(s: Subject) -> Trust:
    assert s.trust is not None
    return s.trust


def _host_ok(w: World, s: Subject) -> bool:
    return w.reachable(s.name or "")


def _held(w: World, s: Subject) -> bool:
    return w.reg(s.name or "") is Reg.HELD


def _hashes_known(w: World, s: Subject) -> bool:
    return _host_ok(w, s) and _held(w, s)


def _slot(w: World, s: Subject) -> tuple[str | None, int | None]:
    return w.slot(_t(s))


def desired_kit_values(w: World, s: Subject) -> dict[str, str]:
    """The kit file's non-secret values for ``s``'s trust (FLIP's format, core/kitfile)."""
    slot, number = _slot(w, s)
    entry = w.ledger(s.name or "")
    trust_id = (entry.trust_id or "") if entry is not None else ""
    return kitfile.public_values(w.d, _t(s), slot=slot or "", slot_number=number or 0,
                                 trust_id=trust_id)


def _kit_values_have(w: World, s: Subject) -> dict[str, str]:
    host = w.host(s.name or "")
    if host is None or not host.kit_file.present:
        return {}
    want = desired_kit_values(w, s)
    # Only the keys flipgitops writes are compared; an operator's extra keys are theirs. A
    # key the file leaves out reads as empty: FLIP's readers cannot tell the two apart (every
    # default in FLIP's compose files is `${VAR:-default}`, and Make's `$(or …)` skips an
    # empty value), so an adopted `settings: {KEY: ""}` describes a file without KEY.
    return {k: host.kit_file.values.get(k, "") for k in want}


def _kit_secrets_want(w: World, s: Subject) -> dict[str, str | None]:
    entry = w.ledger(s.name or "")
    assert entry is not None
    return {
        "TRUST_API_KEY": entry.api_key_sha256,
        "TRUST_INTERNAL_SERVICE_KEY": entry.internal_key_sha256,
        "AES_KEY_BASE64": w.o.hub.secret.aes_key_sha256,
        "trust-local credentials": entry.local_credentials_sha256 or "(minted on apply)",
    }


def _kit_secrets_have(w: World, s: Subject) -> dict[str, str | None]:
    host = w.host(s.name or "")
    assert host is not None
    hashes = host.kit_file.secret_sha256
    local = {k: v for k, v in hashes.items() if k in LOCAL_CREDENTIAL_KEYS}
    return {
        "TRUST_API_KEY": hashes.get("TRUST_API_KEY"),
        "TRUST_INTERNAL_SERVICE_KEY": hashes.get("TRUST_INTERNAL_SERVICE_KEY"),
        "AES_KEY_BASE64": hashes.get("AES_KEY_BASE64"),
        "trust-local credentials": local_credentials_fingerprint(local) if local else None,
    }


def _kit_slice(w: World, s: Subject) -> Any:
    kits = w.o.hub.kits
    slot, _ = _slot(w, s)
    if kits is None or not kits.readable or slot is None:
        return None
    return kits.slices.get(slot)


def _fl_kit_want(w: World, s: Subject) -> dict[str, Any]:
    slot, _ = _slot(w, s)
    piece = _kit_slice(w, s)
    return {"present": True, "date": w.d.hub.fl_kits.date, "slot": slot,
            "backend": w.d.hub.fl_backend, "source": piece.fingerprint if piece else None,
            "intact": True}


def _fl_kit_have(w: World, s: Subject) -> dict[str, Any]:
    host = w.host(s.name or "")
    assert host is not None
    k = host.fl_kit
    if k.source_fingerprint is None and k.listed_fingerprint is not None:
        # No delivery record of flipgitops' (FLIP's own procedures put the kit there): the
        # host hashed its files at the slot's keys the way the bucket lists them, so the kit
        # in place is the bucket's (date, slot, backend) exactly when the fingerprints agree.
        want = _fl_kit_want(w, s)
        same = k.listed_fingerprint == want["source"]
        return {"present": k.present, "date": want["date"] if same else None,
                "slot": want["slot"] if same else None,
                "backend": want["backend"] if same else None,
                "source": k.listed_fingerprint, "intact": k.present and not k.stray}
    return {"present": k.present, "date": k.date, "slot": k.slot, "backend": k.backend,
            "source": k.source_fingerprint,
            "intact": k.present and k.content_sha256 is not None
            and k.content_sha256 == k.delivered_sha256 and not k.stray}


def _fl_kit_unverifiable(w: World, s: Subject) -> bool:
    """A kit flipgitops did not deliver, whose bucket ETags are not MD5s (a multipart
    upload): the host cannot recompute the listing, so nothing can say whether it is the
    bucket's kit without downloading it. Reported, never redelivered on a guess."""
    host = w.host(s.name or "")
    piece = _kit_slice(w, s)
    return (host is not None and host.fl_kit.present and host.fl_kit.source_fingerprint is None
            and host.fl_kit.listed_fingerprint is None and piece is not None
            and not bool(piece.etag_md5))


def _expected_services(w: World, s: Subject) -> list[str]:
    host = w.host(s.name or "")
    return sorted(host.expected_config) if host is not None else []


def _stack_running_have(w: World, s: Subject) -> bool:
    host = w.host(s.name or "")
    if host is None or not host.expected_config:
        return False
    return all((c := host.container(svc)) is not None and c.state == "running"
               for svc in host.expected_config)


def _stack_current_have(w: World, s: Subject) -> bool:
    host = w.host(s.name or "")
    if host is None or not host.expected_config:
        return False
    return all((c := host.container(svc)) is not None and c.config_hash == h
               for svc, h in host.expected_config.items())


def _stack_tags_have(w: World, s: Subject) -> dict[str, str | None]:
    host = w.host(s.name or "")
    assert host is not None
    api, fl = host.container(flip.TRUST_API_SERVICE), host.container(flip.FL_CLIENT_SERVICE)
    return {flip.TRUST_API_SERVICE: api.tag if api else None,
            flip.FL_CLIENT_SERVICE: fl.tag if fl else None}


def _registered_have(w: World, s: Subject) -> bool:
    return w.reg(s.name or "") in (Reg.HELD, Reg.NOT_HELD)


def _release_want(w: World, s: Subject) -> dict[str, Any]:
    rel = w.o.flip_release
    return {"ref": w.d.flip.ref, "commit": rel.commit if rel else None, "intact": True}


def _release_have(w: World, s: Subject) -> dict[str, Any]:
    host = w.host(s.name or "")
    assert host is not None
    r = host.release
    return {"ref": r.ref, "commit": r.commit, "intact": bool(r.present and r.intact)}


def _leaving_registered(w: World, s: Subject) -> bool:
    name = s.name or ""
    if w.registry == "secret":
        return name in w.secret_listed
    return w.ledger(name) is not None or bool(w.in_hub(name))


def _leaving_stack(w: World, s: Subject) -> bool:
    host = w.host(s.name or "")
    return host is not None and host.reachable and host.stack_running


def _slot_pool(w: World) -> tuple[str, ...] | None:
    return w.o.hub.slot_pool


def _show(value: Any) -> str:
    return "(none)" if value is None or value == "" else str(value)


def _dict_diff(want: dict[str, Any], have: dict[str, Any]) -> str:
    keys = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    shown = [f"{k} is {_show(have.get(k))}, wants {_show(want.get(k))}" for k in keys[:6]]
    more = f" (+{len(keys) - 6} more)" if len(keys) > 6 else ""
    return "; ".join(shown) + more


# --- the table -----------------------------------------------------------------------------

FACTS: tuple[Fact, ...] = (
    # -- aws / hub ------------------------------------------------------------------------
    Fact("aws.account_id", "aws", None, "critical",
         want=lambda w, s: w.d.aws.account_id, have=lambda w, s: w.o.hub.account_id,
         message=lambda w, s, want, have: f"live AWS account is {_show(have)}, the manifest is "
         f"for {want} (FG006)",
         fix="use credentials for the manifest's account (AWS_PROFILE / the CI role)"),
    Fact("aws.region", "aws", None, "critical",
         want=lambda w, s: w.d.aws.region, have=lambda w, s: w.o.hub.region,
         message=lambda w, s, want, have: f"live AWS region is {_show(have)}, the manifest "
         f"is for {want} (FG006)",
         fix="use the manifest's region"),
    Fact("hub.image", "hub", K.HUB_DEPLOY_IMAGES, "high",
         applies=_service_exists, want=_want_tag, have=_live_tag,
         per_role=True,
         message=lambda w, s, want, have: f"{getattr(w.d.hub.ecs.services, s.role or '')} "
         f"runs {_show(have)}, hub.images.{_tag_field(s.role)} is {want}"),
    Fact("hub.service", "hub", None, "high",
         want=lambda w, s: True, have=_service_exists,
         per_role=True,
         message=lambda w, s, want, have: "ECS service "
         f"{getattr(w.d.hub.ecs.services, s.role or '')} not found in cluster "
         f"{w.d.hub.ecs.cluster}",
         fix="deploy the hub with FLIP's Terraform (it creates the services)"),
    Fact("hub.task_definition", "hub", None, "high",
         applies=_service_exists,
         want=lambda w, s: True, have=lambda w, s: bool(_svc(w, s.role).task_definition_exists),
         per_role=True,
         message=lambda w, s, want, have: f"the task definition of "
         f"{getattr(w.d.hub.ecs.services, s.role or '')} was deleted",
         fix="re-run FLIP's Terraform, or deploy-centralhub, to register a task definition"),
    Fact("hub.secret", "hub", None, "critical",
         want=lambda w, s: True, have=lambda w, s: w.o.hub.secret.exists,
         message=lambda w, s, want, have: f"hub secret {w.d.hub.secret} does not exist: the hub "
         "cannot decrypt or authenticate anything",
         fix="deploy the hub with FLIP's Terraform (it writes FLIP_API)"),
    Fact("hub.secret_wellformed", "hub", None, "critical",
         applies=lambda w, s: w.o.hub.secret.exists,
         want=lambda w, s: (), have=lambda w, s: w.o.hub.secret.malformed,
         message=lambda w, s, want, have: f"hub secret {w.d.hub.secret} is malformed: "
         + "; ".join(have) + " (nothing is applied until it is fixed, FG013)",
         fix="fix FLIP_API in Secrets Manager (FLIP's Terraform writes it from TF_VAR_*)"),
    Fact("hub.ledger", "hub", None, "critical",
         want=lambda w, s: True, have=lambda w, s: w.o.ledger.readable,
         message=lambda w, s, want, have: f"flipgitops' ledger cannot be read: "
         f"{_show(w.o.ledger.error)} (nothing is applied until it is fixed, FG013)",
         fix="restore the ledger object from the state bucket's versions, or fix it"),
    Fact("hub.allowlist", "hub", None, "high",
         want=lambda w, s: True, have=lambda w, s: w.o.hub.allowlist.exists,
         message=lambda w, s, want, have: f"security group {w.d.hub.fl_server.security_group} "
         "not found (by Name tag or group name): no trust can reach the FL server",
         fix="deploy the hub with FLIP's Terraform, or fix hub.fl_server.security_group"),
    Fact("hub.allowlist_unambiguous", "hub", None, "critical",
         applies=lambda w, s: w.o.hub.allowlist.exists,
         want=lambda w, s: (), have=lambda w, s: w.o.hub.allowlist.ambiguous,
         message=lambda w, s, want, have: f"{len(have)} security groups match "
         f"{w.d.hub.fl_server.security_group}: " + ", ".join(have)
         + " (FG012: flipgitops writes no rule until one matches)",
         fix="set hub.fl_server.security_group to the exact group name of the NLB's group"),
    Fact("hub.registry_era", "hub", None, "critical",
         want=lambda w, s: w.registry, have=lambda w, s: w.o.hub.registry.era,
         message=lambda w, s, want, have: f"the live hub keeps a {have} registry "
         f"({w.o.hub.registry.evidence}); the manifest says trust_registry: {want} (FG011)",
         fix=lambda w, s, want, have: f"set hub.trust_registry: {have}"),
    Fact("hub.registry_loaded", "hub", K.HUB_REDEPLOY, "high",
         applies=lambda w, s: w.registry == "secret" and w.era_matches
         and _service_exists(w, Subject(role="flip_api")),
         want=lambda w, s: True,
         have=lambda w, s: bool(_svc(w, "flip_api").loaded_current)
         and not w.o.ledger.redeploy_pending,
         message=lambda w, s, want, have: "flip-api has not been redeployed since the trust "
         "registry changed: FLIP's older hub only reads TRUST_NAMES and the key hashes at start"),
    Fact("hub.internal_key", "hub", K.HUB_ROTATE_INTERNAL_KEY, "high",
         applies=lambda w, s: w.o.hub.secret.exists and w.o.hub.secret.readable,
         want=lambda w, s: True,
         have=lambda w, s: w.o.hub.secret.internal_key_sha256 is not None
         and w.o.hub.secret.internal_key_sha256 == w.o.hub.secret.internal_key_hash,
         message=lambda w, s, want, have: "FLIP_API's internal_service_key_hash is not the "
         "sha256 of internal_service_key: fl-server cannot authenticate to flip-api"),
    Fact("hub.internal_key_generation", "hub", K.HUB_ROTATE_INTERNAL_KEY, "medium",
         applies=lambda w, s: w.o.hub.secret.exists,
         want=lambda w, s: w.d.hub.internal_service_key_generation,
         have=lambda w, s: w.o.ledger.internal_service_key_generation or 1,
         message=lambda w, s, want, have: f"internal service key generation is {have}, the "
         f"manifest asks for {want} (a rotation)"),
    Fact("hub.legacy_bookkeeping", "hub", K.LEDGER_MIGRATE, "medium",
         applies=lambda w, s: w.o.hub.secret.exists,
         want=lambda w, s: (), have=lambda w, s: w.o.hub.secret.legacy_keys,
         message=lambda w, s, want, have: "FLIP_API still carries flipgitops' old bookkeeping ("
         + ", ".join(have) + "): FLIP's Terraform rewrites the secret whole and would lose it"),
    Fact("hub.database", "hub", None, "critical",
         want=lambda w, s: True, have=lambda w, s: w.o.hub.database.exists,
         message=lambda w, s, want, have: f"RDS instance {w.d.hub.database.identifier} does not "
         "exist", fix="deploy the hub with FLIP's Terraform (flipgitops never creates it)"),
    Fact("hub.database_protection", "hub", K.DATABASE_RESTORE_PROTECTION, "critical",
         applies=lambda w, s: w.o.hub.database.exists and w.d.hub.database.deletion_protection,
         want=lambda w, s: True,
         have=lambda w, s: w.o.hub.database.deletion_protection,
         message=lambda w, s, want, have: f"deletion protection of {w.d.hub.database.identifier}"
         " is OFF"),
    Fact("hub.database_generation", "hub", K.DATABASE_RESET_SCHEMA, "medium",
         applies=lambda w, s: w.o.hub.database.exists,
         want=lambda w, s: max(w.d.hub.database.generation, w.o.hub.database.generation or 1),
         have=lambda w, s: w.o.hub.database.generation or 1,
         message=lambda w, s, want, have: f"database generation is {have}, the manifest asks "
         f"for {want}: a recreation (FG003)"),
    Fact("hub.database_settings", "hub", None, "low",
         applies=lambda w, s: w.o.hub.database.exists,
         want=lambda w, s: {"instance_class": w.d.hub.database.instance_class,
                            "engine_version": w.d.hub.database.engine_version,
                            "backup_retention_days": w.d.hub.database.backup_retention_days},
         have=lambda w, s: {"instance_class": w.o.hub.database.instance_class,
                            "engine_version": w.o.hub.database.engine_version,
                            "backup_retention_days": w.o.hub.database.backup_retention_days},
         message=lambda w, s, want, have: f"{w.d.hub.database.identifier}: "
         + _dict_diff(want, have),
         fix="FLIP's Terraform owns these: change them there (or the manifest)"),
    Fact("hub.cognito", "hub", None, "medium",
         want=lambda w, s: {"exists": True, "mfa": w.d.hub.cognito.mfa},
         have=lambda w, s: {"exists": w.o.hub.cognito.exists,
                            "mfa": w.o.hub.cognito.mfa if w.o.hub.cognito.mfa is not None
                            else w.d.hub.cognito.mfa},
         message=lambda w, s, want, have: f"Cognito {w.d.hub.cognito.user_pool}: "
         + _dict_diff(want, have),
         fix="FLIP's Terraform owns the user pool (ENFORCE_MFA): change it there"),
    # -- trusts the hub should know (active and paused) -----------------------------------
    Fact("trust.registered", "trust", K.REGISTRY_REGISTER, "high",
         applies=lambda w, s: w.era_matches,
         want=lambda w, s: True, have=_registered_have,
         message=lambda w, s, want, have: f"{s.name} is not registered on the hub"
         + (" (flipgitops registered it but the hub no longer lists it)"
            if w.reg(s.name or "") is Reg.LOST else "")),
    Fact("trust.key_held", "trust", None, "medium",
         # A trust with a host only: flipgitops leaves that host alone. A TRE (no host) whose
         # key is not held is in sync with the hub; the plan says so in a note.
         applies=lambda w, s: w.era_matches and w.reg(s.name or "") is Reg.NOT_HELD
         and _t(s).has_host,
         want=lambda w, s: True, have=lambda w, s: False,
         message=lambda w, s, want, have: f"{s.name} is registered on the hub but its key is "
         "not held by flipgitops: it cannot redeliver that key",
         fix=lambda w, s, want, have: "run `flipgitops adopt` where the host's kit file has the "
         "key; otherwise rotating it (bump credentials_generation"
         + (", --allow FG009" if w.registry == "database" else "") + ") is a separate, explicit "
         "decision"),
    Fact("trust.credentials_generation", "trust", K.REGISTRY_REGISTER, "medium",
         applies=lambda w, s: w.era_matches and _held(w, s),
         want=lambda w, s: _t(s).credentials_generation,
         have=lambda w, s: w.ledger(s.name or "").credentials_generation,  # type: ignore[union-attr]
         message=lambda w, s, want, have: f"{s.name}'s keys are generation {have}, the manifest "
         f"asks for {want}: a rotation"),
    # Only the database registry lives in the database: the secret era's TRUST_NAMES and
    # hashes survive a recreation (flip-api re-seeds its rows from them at boot).
    Fact("trust.database_generation", "trust", K.REGISTRY_REGISTER, "high",
         applies=lambda w, s: w.registry == "database" and w.era_matches and _held(w, s)
         and w.db_target is not None,
         want=lambda w, s: w.db_target,
         have=lambda w, s: min(w.ledger(s.name or "").database_generation,  # type: ignore[union-attr]
                               w.db_target or 1),
         message=lambda w, s, want, have: f"{s.name} was registered for database generation "
         f"{have}; the database is at {want}: it is re-registered"),
    Fact("trust.hub_key", "trust", K.REGISTRY_SECRET_WRITE, "high",
         applies=lambda w, s: w.registry == "secret" and w.era_matches and _held(w, s),
         want=lambda w, s: w.ledger(s.name or "").api_key_sha256,  # type: ignore[union-attr]
         have=lambda w, s: (w.o.hub.secret.trust_api_key_hashes or {}).get(s.name or ""),
         message=lambda w, s, want, have: f"FLIP_API's trust_api_key_hashes entry of {s.name} "
         "is not the hash of the key flipgitops holds"),
    Fact("trust.fl_kit_slot", "trust", None, "medium",
         applies=lambda w, s: w.registry == "database" and _t(s).fl_kit_slot is not None
         and _held(w, s),
         want=lambda w, s: _t(s).fl_kit_slot,
         have=lambda w, s: w.ledger(s.name or "").fl_kit_slot,  # type: ignore[union-attr]
         message=lambda w, s, want, have: f"the hub assigned {s.name} FL kit slot {have}; the "
         f"manifest says {want}",
         fix=lambda w, s, want, have: f"set trusts[].fl_kit_slot: {have} (or remove it: the hub "
         "assigns slots)"),
    Fact("trust.slot_in_pool", "trust", None, "high",
         applies=lambda w, s: w.registry == "database" and _t(s).fl_kit_slot is not None
         and not _held(w, s) and _slot_pool(w) is not None,
         want=lambda w, s: True,
         have=lambda w, s: _t(s).fl_kit_slot in (_slot_pool(w) or ()),
         message=lambda w, s, want, have: f"fl_kit_slot {_t(s).fl_kit_slot} of {s.name} is not in "
         f"the hub's pool {flip.SLOT_POOL_PARAMETER}",
         fix="add it to FL_KIT_SLOT_NAMES (make apply-fl-kit-slots) or remove fl_kit_slot"),
    Fact("trust.kit_in_bucket", "trust", None, "high",
         applies=lambda w, s: _held(w, s) and w.o.hub.kits is not None
         and w.o.hub.kits.readable and _slot(w, s)[0] is not None,
         want=lambda w, s: True, have=lambda w, s: _kit_slice(w, s) is not None,
         message=lambda w, s, want, have: f"no FL participant kit for {s.name}'s slot "
         f"{_slot(w, s)[0]} in s3://{w.d.hub.fl_kits.bucket} for {w.d.hub.fl_kits.date}: it "
         "cannot join training",
         fix="provision the kit (make add-fl-kits) or fix hub.fl_kits.date"),
    Fact("trust.public_ip", "trust", K.ALLOWLIST_UPDATE, "high",
         applies=lambda w, s: w.o.hub.allowlist.exists and not w.o.hub.allowlist.ambiguous,
         want=lambda w, s: cidr_of(_t(s).public_ip),
         have=lambda w, s: ",".join(w.attribution.cidrs(s.name or "")) or None,
         message=lambda w, s, want, have: f"{s.name}'s ingress rule is {_show(have)}; public_ip "
         f"is {ip_of(want)}" if have else f"no ingress rule for {want}: {s.name} cannot reach "
         "the FL server"),
    # -- each active trust's host ------------------------------------------------------------
    Fact("host.reachable", "host", None, "medium",
         want=lambda w, s: True, have=_host_ok,
         message=lambda w, s, want, have: f"{s.name}'s host is unreachable ("
         f"{_show(h.reason if (h := w.host(s.name or '')) else 'no facts gathered')}): its "
         "state is unknown",
         fix="restore SSH access (host.address, ssh_key, the network) and re-run"),
    Fact("host.provisioned", "host", K.HOST_PROVISION, "medium",
         applies=_host_ok,
         want=lambda w, s: {"flip_root": True, "docker": True, "compose": True, "swarm": True,
                            "network": True},
         have=lambda w, s: {"flip_root": (h := w.host(s.name or "")).flip_root_present,  # type: ignore[union-attr]
                            "docker": h.docker_present, "compose": h.compose_present,  # type: ignore[union-attr]
                            "swarm": h.swarm_active is not False,  # type: ignore[union-attr]
                            "network": h.network_present is not False},  # type: ignore[union-attr]
         message=lambda w, s, want, have: f"{s.name}'s host is not provisioned: "
         + ", ".join(k for k in want if not have.get(k)) + " missing"),
    Fact("host.release", "host", K.HOST_DEPLOY_RELEASE, "high",
         applies=_host_ok, want=_release_want, have=_release_have,
         message=lambda w, s, want, have: f"{s.name}'s FLIP trust directory: "
         + _dict_diff(want, have)),
    Fact("host.kit_file", "host", K.HOST_WRITE_KIT_FILE, "high",
         applies=_host_ok,
         want=lambda w, s: {"present": True, "mode": "0600"},
         have=lambda w, s: {"present": (h := w.host(s.name or "")).kit_file.present,  # type: ignore[union-attr]
                            "mode": h.kit_file.mode if h.kit_file.present else None},  # type: ignore[union-attr]
         message=lambda w, s, want, have: f"{s.name}'s kit file "
         f"{flip.kit_file_name(_t(s).code, w.d.environment)}: " + (
             f"mode is {have['mode']}, must be 0600 (it holds keys)" if have["present"]
             else "missing")),
    Fact("host.kit_values", "host", K.HOST_WRITE_KIT_FILE, "high",
         applies=lambda w, s: _host_ok(w, s) and _held(w, s),
         want=desired_kit_values, have=_kit_values_have,
         message=lambda w, s, want, have: f"{s.name}'s kit file: " + _dict_diff(want, have)),
    Fact("host.kit_secrets", "host", K.HOST_WRITE_KIT_FILE, "high",
         applies=_hashes_known, want=_kit_secrets_want, have=_kit_secrets_have,
         message=lambda w, s, want, have: f"{s.name}'s kit file holds other keys than the hub's: "
         + ", ".join(k for k in want if want[k] != have.get(k))),
    Fact("host.fl_kit", "host", K.HOST_DELIVER_FL_KIT, "high",
         applies=lambda w, s: _host_ok(w, s) and _held(w, s) and _kit_slice(w, s) is not None
         and not _fl_kit_unverifiable(w, s),
         want=_fl_kit_want, have=_fl_kit_have,
         message=lambda w, s, want, have: f"{s.name}'s FL kit: "
         + ("missing" if not have["present"] else
            "edited on the host (no longer what was delivered)" if not have["intact"]
            else "stale: " + _dict_diff(want, have))),
    Fact("host.fl_kit_unverified", "host", None, "medium",
         applies=lambda w, s: _host_ok(w, s) and _held(w, s) and _fl_kit_unverifiable(w, s),
         want=lambda w, s: True, have=lambda w, s: False,
         message=lambda w, s, want, have: f"{s.name}'s FL kit was not delivered by flipgitops "
         f"and the bucket's ETags for slot {_slot(w, s)[0]} are not MD5s (a multipart "
         "upload): whether it is the bucket's kit cannot be told without downloading it, so "
         "it is left as it is",
         fix="upload the slot's files in one part each (aws s3 cp/sync with a "
         "multipart_threshold above their size) so hosts can compare them, or have flipgitops "
         "deliver the kit once (move the host's <FL_KIT_DIR>/net-1 aside and apply)"),
    Fact("host.stack_running", "host", K.HOST_START_STACK, "high",
         applies=_host_ok, want=lambda w, s: True, have=_stack_running_have,
         message=lambda w, s, want, have: f"{s.name}'s trust stack "
         f"({flip.compose_project(_slot(w, s)[1] or 0)}) is not running: "
         + (", ".join(svc for svc in _expected_services(w, s)
                      if (c := w.host(s.name or "").container(svc)) is None  # type: ignore[union-attr]
                      or c.state != "running") or "no services")),
    Fact("host.stack_current", "host", K.HOST_START_STACK, "medium",
         applies=lambda w, s: _host_ok(w, s) and _stack_running_have(w, s),
         want=lambda w, s: True, have=_stack_current_have,
         message=lambda w, s, want, have: f"{s.name}'s containers do not carry the current kit "
         "file and compose files (compose would recreate them)"),
    Fact("host.stack_tags", "host", K.HOST_START_STACK, "high",
         applies=lambda w, s: _host_ok(w, s) and _stack_running_have(w, s),
         want=lambda w, s: {flip.TRUST_API_SERVICE: w.d.hub.images.hub_tag,
                            flip.FL_CLIENT_SERVICE: w.d.hub.images.fl_tag},
         have=_stack_tags_have,
         message=lambda w, s, want, have: f"{s.name}: " + _dict_diff(want, have)),
    Fact("host.trust_api_rejected", "host", None, "high",
         applies=lambda w, s: _host_ok(w, s) and _stack_running_have(w, s),
         want=lambda w, s: False,
         have=lambda w, s: (h := w.host(s.name or "")) is not None
         and (h.trust_api.unauthorized or h.trust_api.heartbeat_rejected),
         message=lambda w, s, want, have: f"{s.name}'s trust-api is rejected by the hub ("
         f"{_show(w.host(s.name or '').trust_api.last_error)})",  # type: ignore[union-attr]
         fix="its key is not the hub's: check the registration (flipgitops plan shows whether "
         "the kit file matches what flipgitops holds); a rotation re-keys it"),
    Fact("host.egress_ip", "host", None, "high",
         applies=lambda w, s: _host_ok(w, s) and w.host(s.name or "").egress_ip is not None,  # type: ignore[union-attr]
         want=lambda w, s: _t(s).public_ip,
         have=lambda w, s: w.host(s.name or "").egress_ip,  # type: ignore[union-attr]
         message=lambda w, s, want, have: f"{s.name} now egresses from {have}; public_ip says "
         f"{want}",
         fix=lambda w, s, want, have: f"if {have} is the trust's new egress IP, set public_ip: "
         f"{have} (apply moves its NLB rule); otherwise fix the host's NAT/proxy"),
    Fact("host.reaches_hub", "host", None, "high",
         applies=lambda w, s: _host_ok(w, s) and w.host(s.name or "").reaches_hub is not None,  # type: ignore[union-attr]
         want=lambda w, s: True,
         have=lambda w, s: w.host(s.name or "").reaches_hub,  # type: ignore[union-attr]
         message=lambda w, s, want, have: f"{s.name} cannot reach {w.d.hub.domain}:443",
         fix="check the trust's outbound firewall/proxy for HTTPS to the hub's domain"),
    Fact("host.reaches_fl", "host", None, "high",
         applies=lambda w, s: _host_ok(w, s) and w.host(s.name or "").reaches_fl is not None,  # type: ignore[union-attr]
         want=lambda w, s: True,
         have=lambda w, s: w.host(s.name or "").reaches_fl,  # type: ignore[union-attr]
         message=lambda w, s, want, have: f"{s.name} cannot reach {w.d.hub.fl_hostname}:"
         f"{w.d.hub.fl_server.port}",
         fix=lambda w, s, want, have: "check the NLB ingress rule for the trust's egress IP "
         f"({_t(s).public_ip}) and the trust's outbound firewall for TCP "
         f"{w.d.hub.fl_server.port}"),
    # -- trusts leaving (decommissioned) or not in the manifest (unmanaged) ----------------
    Fact("leaving.registered", "leaving", K.REGISTRY_DELETE, "high",
         applies=lambda w, s: w.era_matches,
         want=lambda w, s: False, have=_leaving_registered,
         message=lambda w, s, want, have: f"{s.name} is registered on the hub but "
         + ("decommissioned in the manifest" if s.trust else "not in the manifest"),
         fix=lambda w, s, want, have: "apply removes it" if s.trust else
         "add it to the manifest (flipgitops adopt), or plan/apply with --prune to remove it"),
    Fact("leaving.rule", "leaving", K.ALLOWLIST_UPDATE, "high",
         applies=lambda w, s: w.o.hub.allowlist.exists and not w.o.hub.allowlist.ambiguous,
         want=lambda w, s: None,
         have=lambda w, s: ",".join(w.attribution.cidrs(s.name or "")) or None,
         message=lambda w, s, want, have: f"ingress rule {have} of {s.name} is still open",
         fix=lambda w, s, want, have: "apply revokes it" if s.trust else
         "add the trust to the manifest, or --prune to revoke it"),
    Fact("leaving.stack", "leaving", K.HOST_STOP_STACK, "medium",
         applies=lambda w, s: s.trust is not None and s.trust.has_host,
         want=lambda w, s: False, have=_leaving_stack,
         message=lambda w, s, want, have: f"{s.name}'s trust stack is still running although "
         "the trust is decommissioned"),
)
FACTS_BY_ID: dict[str, Fact] = {f.id: f for f in FACTS}


_CACHE = "_fact_values"


def evaluate(world: World) -> tuple[FactValue, ...]:
    """Every fact value of this world, in table order then subject order.

    A World is immutable and the planner, the diff, the guards and the fingerprint all read
    its facts, so they are computed once per World (kept on the instance, like its
    cached properties) instead of once per reader."""
    cached: tuple[FactValue, ...] | None = world.__dict__.get(_CACHE)
    if cached is not None:
        return cached
    out: list[FactValue] = []
    for fact in FACTS:
        subjects = _roles(world) if fact.per_role else SUBJECTS[fact.scope](world)
        for subject in subjects:
            if fact.scope == "host" and fact.id != "host.reachable" and not _host_ok(world,
                                                                                      subject):
                continue
            if not fact.applies(world, subject):
                continue
            out.append(FactValue(fact, subject, fact.want(world, subject),
                                 fact.have(world, subject)))
    values = tuple(out)
    world.__dict__[_CACHE] = values  # a frozen dataclass's __dict__, as cached_property uses
    return values


def differing(world: World) -> tuple[FactValue, ...]:
    return tuple(v for v in evaluate(world) if v.differs)


def views(world: World) -> tuple[dict[str, Any], dict[str, Any]]:
    """(desired view, observed view): the same nested shape, keyed by fact path."""
    want: dict[str, Any] = {}
    have: dict[str, Any] = {}
    for value in evaluate(world):
        _put(want, value.parts, value.want)
        _put(have, value.parts, value.have)
    return want, have


def _put(tree: dict[str, Any], parts: tuple[str, ...], value: Any) -> None:
    *parents, leaf = parts
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value
