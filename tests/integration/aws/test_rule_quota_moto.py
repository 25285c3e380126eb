"""The NLB group's rule count and quota as AWS keeps them, read from a real moto server:
IPv4 and IPv6 rules counted apart, a prefix list by its maximum entries, a group reference
as one rule, every port's rules (not only the FL port's), and the quota from Service Quotas
unless it cannot be read."""

from __future__ import annotations

import boto3
import pytest
from aws_hubworld import REGION

from flipgitops.adapters import allowlist as al
from flipgitops.adapters.aws_session import Clients
from flipgitops.sandbox.moto_server import MotoServer

NLB = "flip-fl-server-nlb"


def _group(c: Clients) -> tuple[str, str]:
    vpc = c.ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    group = c.ec2.create_security_group(
        GroupName=f"{NLB}-20251201113551000000000001", Description="nlb", VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group",
                            "Tags": [{"Key": "Name", "Value": NLB}]}])["GroupId"]
    return vpc, group


def test_every_inbound_ipv4_rule_counts_ipv6_apart_prefix_lists_by_size(clients: Clients
                                                                        ) -> None:
    vpc, group = _group(clients)
    peer = clients.ec2.create_security_group(GroupName="peer", Description="p",
                                             VpcId=vpc)["GroupId"]
    plist = clients.ec2.create_managed_prefix_list(
        PrefixListName="partners", MaxEntries=20, AddressFamily="IPv4",
        Entries=[{"Cidr": "192.0.2.0/28"}])["PrefixList"]["PrefixListId"]
    clients.ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 8002, "ToPort": 8002,
         "IpRanges": [{"CidrIp": "203.0.113.11/32", "Description": "flipgitops:Trust_1"},
                      {"CidrIp": "203.0.113.12/32", "Description": "flipgitops:Trust_2"}],
         "Ipv6Ranges": [{"CidrIpv6": "2001:db8::/64"}]},
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "10.0.0.0/16"}], "PrefixListIds": [{"PrefixListId": plist}]},
        {"IpProtocol": "tcp", "FromPort": 9000, "ToPort": 9000,
         "UserIdGroupPairs": [{"GroupId": peer}]},
    ])
    seen = al.observe_allowlist(clients, NLB, 8002, manifest_quota=60)
    assert seen.group_id == group
    assert {r.cidr for r in seen.rules} == {"203.0.113.11/32", "203.0.113.12/32",
                                            "2001:db8::/64"}
    # 10.0.0.0/16 (1) + the prefix list at its maximum (20) + the group reference (1);
    # the IPv6 FL-port rule has its own quota and is not counted.
    assert seen.other_rules == 22
    group_view = al.the_group(clients, NLB, 8002, manifest_quota=60)
    assert group_view.total_rules == 24  # what the executor adds its new rules to


def test_quota_from_service_quotas_else_the_manifests(moto: MotoServer, clients: Clients,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _group(clients)
    assert al.observe_allowlist(clients, NLB, 8002, manifest_quota=45).rule_quota == 60
    # Service Quotas out of reach (no permission, an endpoint that is down): the manifest's.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SERVICE_QUOTAS", "http://127.0.0.1:9")
    blind = Clients(boto3.Session(region_name=REGION))
    assert al.rule_quota(blind) is None
    assert al.observe_allowlist(blind, NLB, 8002, manifest_quota=45).rule_quota == 45
