"""What the plan will do, decided once from the differing facts, before any action exists.

Phases that must order themselves against another phase's work (an ingress rule after the
trust is registered, a registration removed only after its rule is revoked) read these
decisions rather than each other's output, so no phase depends on another having run first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from flipgitops.core.allowlist import cidr_of, terraform_owned
from flipgitops.core.planner.context import Ctx
from flipgitops.core.world import Reg
from flipgitops.model.actions import Reason, TrustCidr


@dataclass(frozen=True)
class Decisions:
    register: dict[str, Reason] = field(default_factory=dict)  # database: register_trust
    delete: dict[str, Reason] = field(default_factory=dict)  # database: delete_trust
    mint: dict[str, Reason] = field(default_factory=dict)  # secret: new keys
    secret_register: frozenset[str] = frozenset()  # secret: names/hashes to (re)write
    secret_deregister: frozenset[str] = frozenset()
    stop: frozenset[str] = frozenset()  # leaving trusts whose stacks stop
    add: tuple[TrustCidr, ...] = ()  # rules to add
    move: tuple[TrustCidr, ...] = ()  # old rules of trusts whose IP changed
    remove: tuple[TrustCidr, ...] = ()  # rules of leaving trusts
    finish_recreation: bool = False  # a reset ran (earlier) but trusts are still stale

    @property
    def secret_write(self) -> bool:
        return bool(self.secret_register or self.secret_deregister)

    @property
    def rekeyed(self) -> frozenset[str]:
        """Trusts that get new keys in this plan (their hosts need a new kit file)."""
        return frozenset(self.register) | frozenset(self.mint)


def decide(ctx: Ctx) -> Decisions:
    return _Decider(ctx).decisions


class _Decider:
    def __init__(self, ctx: Ctx) -> None:
        self.ctx = ctx
        self.w = ctx.w

    @cached_property
    def decisions(self) -> Decisions:
        register, delete, mint = self._registrations()
        sec_reg, sec_dereg = self._secret(mint)
        add, move, remove = self._rules()
        return Decisions(
            register=register, delete=delete, mint=mint,
            secret_register=sec_reg, secret_deregister=sec_dereg,
            stop=frozenset(v.subject.name or "" for v in self.ctx.gaps_of("leaving.stack")
                           if self.ctx.leaving(v.subject.name or "")),
            add=add, move=move, remove=remove,
            finish_recreation=bool(register) and any(
                r == "database recreated" for r in (*register.values(), *mint.values()))
            and not self.w.recreating,
        )

    def _rotation_reason(self, name: str) -> Reason | None:
        if self.ctx.has_gap("trust.database_generation", name):
            return "database recreated"
        if self.ctx.has_gap("trust.credentials_generation", name):
            return "rotation"
        return None

    def _registrations(self) -> tuple[dict[str, Reason], dict[str, Reason], dict[str, Reason]]:
        register: dict[str, Reason] = {}
        delete: dict[str, Reason] = {}
        mint: dict[str, Reason] = {}
        if not self.w.era_matches:
            return register, delete, mint
        database = self.w.registry == "database"
        for t in self.w.present:
            reg = self.w.reg(t.name)
            reason: Reason | None
            if reg is Reg.ABSENT:
                reason = "new trust"
            elif reg is Reg.LOST:
                reason = "hub lost it"
            elif reg is Reg.NOT_HELD:
                # A recreated database forgets every trust: even one whose key flipgitops
                # does not hold has to be registered again (and handed its new kit).
                reason = "database recreated" if self.w.recreating else None
            else:
                reason = self._rotation_reason(t.name)
            if reason is None:
                continue
            if not database:
                mint[t.name] = reason
            else:
                register[t.name] = reason
                if reason == "rotation":
                    delete[t.name] = "rotation"
        for v in self.ctx.gaps_of("leaving.registered"):
            name = v.subject.name or ""
            if not self.ctx.leaving(name):
                continue
            if database:
                delete[name] = "decommission" if v.subject.trust else "prune"
        return register, delete, mint

    def _secret(self, mint: dict[str, Reason]) -> tuple[frozenset[str], frozenset[str]]:
        if self.w.registry != "secret" or not self.w.era_matches:
            return frozenset(), frozenset()
        reg = set(mint) | {v.subject.name or "" for v in self.ctx.gaps_of("trust.hub_key")}
        dereg = {v.subject.name or "" for v in self.ctx.gaps_of("leaving.registered")
                 if self.ctx.leaving(v.subject.name or "")}
        return frozenset(reg), frozenset(dereg)

    def _rules(self) -> tuple[tuple[TrustCidr, ...], tuple[TrustCidr, ...],
                              tuple[TrustCidr, ...]]:
        al = self.w.o.hub.allowlist
        if not al.exists or al.ambiguous:
            return (), (), ()
        att = self.w.attribution
        add: list[TrustCidr] = []
        move: list[TrustCidr] = []
        for v in self.ctx.gaps_of("trust.public_ip"):
            t = v.subject.trust
            assert t is not None
            want = cidr_of(t.public_ip)
            if want not in att.cidrs(t.name):
                add.append(TrustCidr(trust=t.name, cidr=want))
            move += [TrustCidr(trust=t.name, cidr=c) for c in att.cidrs(t.name) if c != want]
        remove = [TrustCidr(trust=v.subject.name or "", cidr=c)
                  for v in self.ctx.gaps_of("leaving.rule")
                  if self.ctx.leaving(v.subject.name or "")
                  for c in att.cidrs(v.subject.name or "")]
        def key(p: TrustCidr) -> tuple[str, str]:
            return p.trust, p.cidr

        return tuple(sorted(add, key=key)), tuple(sorted(move, key=key)), \
            tuple(sorted(remove, key=key))

    @cached_property
    def terraform_rules(self) -> frozenset[str]:
        return frozenset(r.cidr for r in self.w.o.hub.allowlist.rules if terraform_owned(r))
