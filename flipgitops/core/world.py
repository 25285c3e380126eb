"""The precomputed reading of one (manifest, observation) pair that every fact shares.

Derived once per plan or drift so that the facts table, the planner phases and the guards read
the same answers to the same questions (is this trust registered? does flipgitops hold its
key? which database generation must its key be for?) instead of each deriving its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import cached_property

from flipgitops.core.allowlist import RuleAttribution, attribute_rules
from flipgitops.model.flip import EPHEMERAL_KIT_PREFIX, TRUST_NAME_RE, Registry, slot_number
from flipgitops.model.manifest import Manifest, Trust
from flipgitops.model.observed import LedgerTrust, ObservedHost, ObservedState


class Reg(Enum):
    """What is known of one trust's registration on the live hub."""

    ABSENT = "absent"  # neither flipgitops nor the hub knows it
    HELD = "held"  # registered, flipgitops holds its key (escrow + ledger)
    NOT_HELD = "not held"  # the hub has it, flipgitops holds no key (adopt, or rotate)
    LOST = "lost"  # flipgitops registered it, the hub says it has no such trust


@dataclass(frozen=True)
class World:
    d: Manifest
    o: ObservedState

    # -- basics ------------------------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        """The registry flipgitops drives: the manifest's (FG011 blocks a mismatch)."""
        return self.d.hub.trust_registry

    @property
    def era_matches(self) -> bool:
        return self.o.hub.registry.era == self.registry

    @cached_property
    def attribution(self) -> RuleAttribution:
        return attribute_rules(self.d, self.o)

    @cached_property
    def by_name(self) -> dict[str, Trust]:
        return {t.name: t for t in self.d.trusts}

    @property
    def present(self) -> list[Trust]:
        return [t for t in self.d.trusts if t.is_present]

    @property
    def active_hosted(self) -> list[Trust]:
        return [t for t in self.d.trusts if t.state == "active" and t.has_host]

    def ledger(self, name: str) -> LedgerTrust | None:
        return self.o.ledger.trusts.get(name)

    def host(self, name: str) -> ObservedHost | None:
        return self.o.hosts.get(name)

    def reachable(self, name: str) -> bool:
        host = self.o.hosts.get(name)
        return host is not None and host.reachable

    # -- the database generation keys must be minted for -------------------------------------

    @property
    def db_target(self) -> int | None:
        """The database generation every registration must belong to: the manifest's, or the
        live one when the manifest lags behind; None when there is no database to go by.
        Compared with each trust's recorded generation rather than with "is a recreation
        planned", so a run that died after the schema reset still re-registers every trust."""
        odb = self.o.hub.database
        if not odb.exists:
            return None
        return max(self.d.hub.database.generation, odb.generation or 1)

    @property
    def recreating(self) -> bool:
        odb = self.o.hub.database
        return odb.exists and self.d.hub.database.generation > (odb.generation or 1)

    # -- the registry ------------------------------------------------------------------------

    @cached_property
    def admin_names(self) -> frozenset[str] | None:
        """Trusts the hub itself lists (GET /api/admin/trusts); None when not asked."""
        admin = self.o.hub.admin
        if not (admin.queried and admin.ok):
            return None
        return frozenset(t.name for t in admin.trusts if not t.disabled)

    @cached_property
    def secret_names(self) -> frozenset[str]:
        """secret era: names in flip-api's TRUST_NAMES that also have a hash in FLIP_API."""
        svc = self.o.hub.services.get("flip_api")
        names = frozenset(svc.trust_names or ()) if svc is not None and svc.exists else frozenset()
        hashes = self.o.hub.secret.trust_api_key_hashes or {}
        return names & frozenset(hashes)

    @cached_property
    def secret_listed(self) -> frozenset[str]:
        """secret era: every name with any footprint in TRUST_NAMES or the hashes."""
        svc = self.o.hub.services.get("flip_api")
        names = frozenset(svc.trust_names or ()) if svc is not None and svc.exists else frozenset()
        return names | frozenset(self.o.hub.secret.trust_api_key_hashes or {})

    def in_hub(self, name: str) -> bool | None:
        """Does the hub itself know ``name``? None when this observation cannot tell."""
        if self.registry == "secret":
            return name in self.secret_names
        admin = self.admin_names
        return None if admin is None else name in admin

    def reg(self, name: str) -> Reg:
        entry = self.ledger(name)
        hub = self.in_hub(name)
        if entry is not None and entry.held:
            return Reg.LOST if hub is False else Reg.HELD
        if entry is not None or hub:
            return Reg.NOT_HELD if hub is not False else Reg.ABSENT
        return Reg.ABSENT

    def footprint(self, name: str) -> bool:
        """Anything of ``name`` live on the hub side: registration, ledger, allowlist rule."""
        return (self.ledger(name) is not None or bool(self.in_hub(name))
                or (self.registry == "secret" and name in self.secret_listed)
                or bool(self.attribution.cidrs(name)))

    def hub_confirmations(self, name: str) -> tuple[str, ...]:
        """Evidence of the hub itself (not flipgitops' own memory) that ``name`` is known."""
        out: list[str] = []
        if self.registry == "secret" and name in self.secret_names:
            out.append("FLIP_API + TRUST_NAMES")
        admin = self.admin_names
        if admin is not None and name in admin:
            out.append("admin API")
        host = self.host(name)
        if host is not None and host.reachable and host.trust_api.authenticated_as == name:
            out.append("trust-api authenticated")
        return tuple(out)

    @cached_property
    def unmanaged_names(self) -> frozenset[str]:
        """Live trusts the manifest does not name. Names come from outside (the hub's
        registry, the admin API, rule labels): only ones shaped like a trust name are ever
        acted on (`actionable`)."""
        known = frozenset(self.by_name)
        names = set(self.o.ledger.trusts) | set(self.attribution.by_trust)
        if self.registry == "secret":
            names |= self.secret_listed
        admin = self.admin_names
        if admin is not None:
            names |= admin
        return frozenset(names - known)

    def actionable(self, name: str) -> bool:
        """A live name flipgitops may pass to a FLIP script (delete_trust --name ...)."""
        return bool(TRUST_NAME_RE.fullmatch(name))

    def ephemeral_parameter(self, trust: Trust) -> str:
        """Deterministic per trust and generation, so a rerun after a crash finds the kit a
        register_trust task already wrote instead of registering twice."""
        gen = trust.credentials_generation
        dbgen = self.db_target or self.d.hub.database.generation
        return f"{EPHEMERAL_KIT_PREFIX}flipgitops-{self.d.environment}-{trust.name}-c{gen}-d{dbgen}"

    # -- the trust's slot --------------------------------------------------------------------

    def slot(self, trust: Trust) -> tuple[str | None, int | None]:
        """The FL kit slot (name, number) the trust has: the hub's assignment (ledger) on the
        database registry, the manifest's on the secret registry."""
        entry = self.ledger(trust.name)
        if self.registry == "database":
            if entry is not None and entry.fl_kit_slot:
                return entry.fl_kit_slot, entry.fl_kit_slot_number
            return trust.fl_kit_slot, slot_number(trust.fl_kit_slot) if trust.fl_kit_slot else None
        return trust.fl_kit_slot, slot_number(trust.fl_kit_slot) if trust.fl_kit_slot else None

