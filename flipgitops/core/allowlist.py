"""Whose FL-port ingress rule is whose: the one attribution plan, drift and guards share.

A rule belongs to ``<name>`` when flipgitops wrote it (description ``flipgitops:<name>``);
failing that, when its CIDR is a manifest trust's ``public_ip`` (rules written by hand or by
the hub's Terraform); failing that, for a rule the hub's Terraform wrote, when flipgitops'
allowlist record says whose IP it rendered there (a trust whose IP has since changed). The
manifest outranks the record, so a stale record can never steal a current trust's rule.
FLIP's own NAT rule (`fl_server_ingress`, the hub's own egress IP) is FLIP's, not a trust's.
Rules nobody claims are ``orphans`` (unmanaged).
"""

from __future__ import annotations

from dataclasses import dataclass

from flipgitops.model.flip import FLIP_NAT_RULE_DESCRIPTION, TERRAFORM_TRUST_RULE_PREFIX
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import IngressRule, ObservedState


def cidr_of(ip: str) -> str:
    return f"{ip}/32"


def ip_of(cidr: str) -> str:
    return cidr.removesuffix("/32")


def _on_fl_port(rule: IngressRule, port: int) -> bool:
    if rule.protocol in ("-1", "all"):
        return True
    return rule.protocol in ("tcp", "6") and rule.from_port <= port <= rule.to_port


def fl_port_rules(desired: Manifest, observed: ObservedState) -> tuple[IngressRule, ...]:
    """Ingress rules that open the FL port, minus FLIP's own NAT rule; sorted."""
    port = desired.hub.fl_server.port
    rules = sorted(observed.hub.allowlist.rules, key=lambda r: (r.cidr, r.description or ""))
    return tuple(r for r in rules if _on_fl_port(r, port) and not flip_owned(r))


def flip_owned(rule: IngressRule) -> bool:
    """FLIP's module rule for the hub's own NAT IP (main.tf `fl_server_ingress`)."""
    return (rule.description or "") == FLIP_NAT_RULE_DESCRIPTION


def terraform_owned(rule: IngressRule) -> bool:
    """Written by the hub's Terraform (`local_trust_fl_server_nlb`): only it can remove it."""
    return (rule.description or "").startswith(TERRAFORM_TRUST_RULE_PREFIX)


@dataclass(frozen=True)
class RuleAttribution:
    by_trust: dict[str, tuple[IngressRule, ...]]
    orphans: tuple[IngressRule, ...]

    def cidrs(self, name: str) -> tuple[str, ...]:
        return tuple(sorted({r.cidr for r in self.by_trust.get(name, ())}))

    def owner(self, cidr: str) -> str | None:
        return next((n for n, rules in self.by_trust.items()
                     if any(r.cidr == cidr for r in rules)), None)


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
    record.update({cidr_of(t.public_ip): t.name for t in desired.trusts if t.is_present})
    return dict(sorted(record.items()))
