"""The NLB security group through the real CLI against the sandbox: found by its Name tag
although FLIP's module names it with a suffix; two matches block (FG012 naming both) and
nothing is written; a manifest that needs 61 rules in a 60-rule group is blocked at plan
time, 60 are not. Plan-only: no trust is onboarded."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from flipgitops.sandbox.environment import REGION, TrustSpec, sandbox
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = pytest.mark.slow
NAME = "flip-fl-server-nlb"


def _ec2(moto: MotoServer) -> Any:
    return boto3.client("ec2", region_name=REGION, endpoint_url=moto.url)


def _groups(ec2: Any) -> list[dict[str, Any]]:
    return list(ec2.describe_security_groups(Filters=[{"Name": "tag:Name",
                                                       "Values": [NAME]}])["SecurityGroups"])


def test_security_group_by_name_tag_ambiguity_and_rule_quota(tmp_path: Path,
                                                             moto: MotoServer) -> None:
    started = time.monotonic()
    ec2 = _ec2(moto)
    with sandbox(tmp_path, trusts=[TrustSpec("Trust_1", "GSTT", "203.0.113.11")],
                 moto=moto) as box:
        (group,) = _groups(ec2)
        assert group["GroupName"].startswith(f"{NAME}-") and group["GroupName"] != NAME
        seen = json.loads(box.cli("observe", "--env", "dev", "--no-hosts", "--format",
                                  "json").out)
        allowlist = seen["hub"]["allowlist"]
        assert allowlist["group_id"] == group["GroupId"] and allowlist["ambiguous"] == []
        assert allowlist["rule_quota"] == 60  # Service Quotas (moto serves L-0EA8095F)
        r = box.cli("plan", "--env", "dev")
        assert r.code == 2, r.text
        assert "FG012" not in r.out and "allowlist.update" in r.out

        # A second group carrying the same Name tag: plan and apply refuse, naming both.
        vpc = group["VpcId"]
        twin = ec2.create_security_group(
            GroupName=f"{NAME}-old", Description="a leftover", VpcId=vpc,
            TagSpecifications=[{"ResourceType": "security-group",
                                "Tags": [{"Key": "Name", "Value": NAME}]}])["GroupId"]
        r = box.cli("plan", "--env", "dev")
        assert r.code == 3, r.text
        assert "FG012" in r.out and group["GroupId"] in r.out and twin in r.out
        before = {g["GroupId"]: g["IpPermissions"] for g in _groups(ec2)}
        r = box.cli("apply", "--env", "dev", "--yes")
        assert r.code == 3, r.text
        assert {g["GroupId"]: g["IpPermissions"] for g in _groups(ec2)} == before
        assert not [e for e in box.hub.state.events if e[0] == "register"]
        ssm = boto3.client("ssm", region_name=REGION, endpoint_url=moto.url)
        assert not ssm.get_parameters_by_path(Path="/flipgitops/", Recursive=True)["Parameters"]
        ec2.delete_security_group(GroupId=twin)

        # 61 rules needed in a group AWS allows 60: blocked at plan time; 60 pass.
        used = len(allowlist["rules"]) + allowlist["other_rules"]  # FLIP's NAT rule, its own
        filler = [f"198.51.100.{i}/32" for i in range(1, 61 - used)]  # used + fill + Trust_1 = 61
        ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
            "IpRanges": [{"CidrIp": c, "Description": "office"} for c in filler]}])
        r = box.cli("plan", "--env", "dev")
        assert r.code == 3, r.text
        assert "FG012" in r.out and "61 inbound rules" in r.out and "may hold 60" in r.out
        ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[{
            "IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
            "IpRanges": [{"CidrIp": filler[0]}]}])
        r = box.cli("plan", "--env", "dev")
        assert r.code == 2 and "FG012" not in r.out, r.text
    print(f"\nwall: security-group e2e {time.monotonic() - started:.1f}s")
