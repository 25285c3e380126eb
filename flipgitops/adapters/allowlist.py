"""The FL server NLB's security group: find it, read its FL-port rules, change them.

FLIP's `main.tf` creates the group through `terraform-aws-modules/alb` (module
`fl_server_nlb`, name `flip-fl-server-nlb`) without a `security_group_name`, so the module
names it with a prefix — `flip-fl-server-nlb-<suffix>` — and tags it `Name=flip-fl-server-nlb`.
The manifest's `hub.fl_server.security_group` is matched against the Name tag and the exact
group name (two filtered calls); more than one group is an error naming them all, never a
silent pick, since rules written to the wrong group lock trusts out.

Quota: "Inbound or outbound rules per security group" (Service Quotas `vpc`/`L-0EA8095F`,
60 by default) is enforced per direction and separately for IPv4 and IPv6 rules; every CIDR
of every permission is one rule, a referenced security group one, and a referenced prefix
list as many as its *maximum* entries (awsdocs/amazon-vpc-user-guide
`doc_source/amazon-vpc-limits.md`@06e98d97, "Security groups" and "Customer-managed prefix
lists"). The trusts' rules are IPv4 /32s, so the count that can run out is the IPv4 inbound
one: `quota_weight` counts it, every inbound rule of the group included, not only the FL
port's. Which family a group reference counts against is not said; it is counted (the
conservative reading).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from flipgitops.adapters.aws_session import Clients, call, error_code, must, translate
from flipgitops.errors import AwsError
from flipgitops.model.observed import IngressRule, ObservedAllowlist

QUOTA_SERVICE = "vpc"
QUOTA_CODE = "L-0EA8095F"  # Inbound or outbound rules per security group
AUTHORIZE_BATCH = 50  # ranges per authorize call: far below AWS's request limits


def find_groups(clients: Clients, name: str) -> list[dict[str, Any]]:
    """Groups whose Name tag or group name is ``name``, by id (two calls)."""
    found: dict[str, dict[str, Any]] = {}
    for filter_name in ("tag:Name", "group-name"):
        pages = must(
            lambda f=filter_name: list(clients.ec2.get_paginator(  # type: ignore[misc]
                "describe_security_groups").paginate(Filters=[{"Name": f, "Values": [name]}])),
            doing=f"looking up security group {name} by {filter_name}",
        )
        for page in pages:
            for group in page.get("SecurityGroups", []):
                found.setdefault(str(group["GroupId"]), dict(group))
    return [found[k] for k in sorted(found)]


def _covers(perm: dict[str, Any], port: int) -> bool:
    if perm.get("IpProtocol") == "-1":
        return True
    if perm.get("IpProtocol") not in ("tcp", "6"):
        return False
    return int(perm.get("FromPort", -1)) <= port <= int(perm.get("ToPort", -1))


def rules_on_port(group: dict[str, Any], port: int) -> list[IngressRule]:
    """One rule per CIDR that lets traffic reach the FL port, descriptions kept."""
    rules: list[IngressRule] = []
    for perm in group.get("IpPermissions", []):
        if not _covers(perm, port):
            continue
        protocol = "tcp" if perm.get("IpProtocol") == "6" else str(perm.get("IpProtocol"))
        lo = int(perm.get("FromPort", 0)) if protocol != "-1" else 0
        hi = int(perm.get("ToPort", 65535)) if protocol != "-1" else 65535
        ranges = [(r.get("CidrIp"), r.get("Description")) for r in perm.get("IpRanges", [])]
        ranges += [(r.get("CidrIpv6"), r.get("Description")) for r in perm.get("Ipv6Ranges", [])]
        rules += [IngressRule(cidr=c, from_port=lo, to_port=hi, protocol=protocol,
                              description=d) for c, d in ranges if c]
    return sorted(rules, key=lambda r: (r.cidr, r.from_port, r.to_port, r.protocol))


def prefix_list_ids(group: dict[str, Any]) -> list[str]:
    return sorted({str(p["PrefixListId"]) for perm in group.get("IpPermissions", [])
                   for p in perm.get("PrefixListIds", []) if p.get("PrefixListId")})


def prefix_list_sizes(clients: Clients, ids: Sequence[str]) -> dict[str, tuple[int, str]]:
    """Maximum entries and address family of the referenced prefix lists (one call; none
    when the group references none). A list AWS does not describe (AWS-managed lists
    publish a weight instead) counts as one."""
    if not ids:
        return {}
    resp: Any = call(lambda: clients.ec2.describe_managed_prefix_lists(PrefixListIds=list(ids)),
                doing="describing the prefix lists the NLB security group references",
                missing=("InvalidPrefixListID.NotFound", "InvalidPrefixListId.NotFound"))
    out: dict[str, tuple[int, str]] = {}
    for pl in (resp or {}).get("PrefixLists") or []:
        size = pl.get("MaxEntries")
        out[str(pl["PrefixListId"])] = (int(size) if isinstance(size, int) and size > 0
                                        else 1, str(pl.get("AddressFamily", "IPv4")))
    return out


def quota_weight(group: dict[str, Any], prefix_sizes: dict[str, tuple[int, str]]) -> int:
    """Inbound rules of the group as AWS counts them against the IPv4 rule quota."""
    weight = 0
    for perm in group.get("IpPermissions", []):
        weight += len(perm.get("IpRanges", [])) + len(perm.get("UserIdGroupPairs", []))
        for ref in perm.get("PrefixListIds", []):
            size, family = prefix_sizes.get(str(ref.get("PrefixListId")), (1, "IPv4"))
            weight += size if family != "IPv6" else 0
    return weight


def _ipv4(rule: IngressRule) -> bool:
    return ":" not in rule.cidr


def rule_quota(clients: Clients) -> int | None:
    """The account's applied quota, else AWS's default; None when Service Quotas does not
    answer (no permission, an emulator without it): the manifest's value is used then."""
    for op in ("get_service_quota", "get_aws_default_service_quota"):
        try:
            resp = getattr(clients.service_quotas, op)(ServiceCode=QUOTA_SERVICE,
                                                       QuotaCode=QUOTA_CODE)
        except (ClientError, BotoCoreError):
            continue
        value = resp.get("Quota", {}).get("Value")
        if isinstance(value, int | float) and value >= 1:
            return int(value)
    return None


def observe_allowlist(clients: Clients, name: str, port: int, manifest_quota: int
                      ) -> ObservedAllowlist:
    groups = find_groups(clients, name)
    if not groups:
        return ObservedAllowlist(exists=False, group_name=name)
    if len(groups) > 1:
        return ObservedAllowlist(exists=True, group_name=name, ambiguous=tuple(
            f"{g['GroupId']} ({g.get('GroupName', '?')})" for g in groups))
    group = groups[0]
    rules = rules_on_port(group, port)
    quota = rule_quota(clients)
    weight = quota_weight(group, prefix_list_sizes(clients, prefix_list_ids(group)))
    return ObservedAllowlist(
        exists=True, group_name=name, group_id=str(group["GroupId"]), rules=tuple(rules),
        rule_quota=quota if quota is not None else manifest_quota,
        other_rules=max(0, weight - sum(1 for r in rules if _ipv4(r))),
    )


@dataclass(frozen=True)
class Group:
    """The one group the manifest names, as the write side needs it."""

    group_id: str
    name: str
    rules: tuple[IngressRule, ...]
    total_rules: int  # inbound rules as AWS counts them against the IPv4 quota
    quota: int


def the_group(clients: Clients, name: str, port: int, manifest_quota: int) -> Group:
    """The group, or an error naming every match (ambiguous) or the fix (absent)."""
    groups = find_groups(clients, name)
    if not groups:
        raise AwsError(f"security group {name} not found (by Name tag or group name): deploy "
                       "the hub's FL server NLB first or fix hub.fl_server.security_group")
    if len(groups) > 1:
        listed = ", ".join(f"{g['GroupId']} ({g.get('GroupName', '?')})" for g in groups)
        raise AwsError(f"security group {name} is ambiguous: {len(groups)} groups match by "
                       f"Name tag or group name ({listed}); set hub.fl_server.security_group "
                       "to the exact group name")
    group = groups[0]
    quota = rule_quota(clients)
    return Group(group_id=str(group["GroupId"]), name=str(group.get("GroupName", name)),
                 rules=tuple(rules_on_port(group, port)),
                 total_rules=quota_weight(group, prefix_list_sizes(
                     clients, prefix_list_ids(group))),
                 quota=quota if quota is not None else manifest_quota)


def _permission(port: int, ranges: list[dict[str, str]]) -> Any:
    return {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": ranges}


def authorize(clients: Clients, group_id: str, port: int,
              rules: Sequence[tuple[str, str]]) -> None:
    """Add (cidr, description) rules in batches; a rule someone added meanwhile is done."""
    doing = f"adding ingress rules to security group {group_id} on port {port}"
    for i in range(0, len(rules), AUTHORIZE_BATCH):
        batch = list(rules[i:i + AUTHORIZE_BATCH])
        try:
            clients.ec2.authorize_security_group_ingress(GroupId=group_id, IpPermissions=[
                _permission(port, [{"CidrIp": c, "Description": d} for c, d in batch])])
            continue
        except ClientError as exc:
            if error_code(exc) != "InvalidPermission.Duplicate":
                raise translate(exc, doing=doing) from None
        except BotoCoreError as exc:
            raise translate(exc, doing=doing) from None
        # The batch failed as a whole because one rule exists: one by one, duplicates done.
        for cidr, description in batch:
            call(lambda c=cidr, d=description: clients.ec2.authorize_security_group_ingress(  # type: ignore[misc]
                GroupId=group_id, IpPermissions=[_permission(port, [{"CidrIp": c,
                                                                     "Description": d}])]),
                 doing=doing, missing=("InvalidPermission.Duplicate",))


def describe_rule(clients: Clients, group_id: str, port: int, cidr: str,
                  description: str) -> None:
    must(lambda: clients.ec2.update_security_group_rule_descriptions_ingress(
        GroupId=group_id, IpPermissions=[_permission(port, [{"CidrIp": cidr,
                                                             "Description": description}])]),
         doing=f"labelling ingress rule {cidr} of {group_id} as {description}")


def revoke(clients: Clients, group_id: str, port: int, cidrs: Sequence[str]) -> None:
    """Remove FL-port rules by CIDR; a rule that is already gone is done."""
    doing = f"revoking ingress rules from security group {group_id} on port {port}"

    def one_call(batch: list[str]) -> None:
        clients.ec2.revoke_security_group_ingress(GroupId=group_id, IpPermissions=[
            _permission(port, [{"CidrIp": c} for c in batch])])

    for i in range(0, len(cidrs), AUTHORIZE_BATCH):
        batch = list(cidrs[i:i + AUTHORIZE_BATCH])
        try:
            one_call(batch)
            continue
        except ClientError as exc:
            if error_code(exc) != "InvalidPermission.NotFound":
                raise translate(exc, doing=doing) from None
        except BotoCoreError as exc:
            raise translate(exc, doing=doing) from None
        for cidr in batch:
            call(lambda c=cidr: one_call([c]), doing=doing,  # type: ignore[misc]
                 missing=("InvalidPermission.NotFound",))
