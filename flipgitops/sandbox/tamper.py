"""Changes made "behind flipgitops' back", the way an operator would with the AWS CLI.

The demo uses them to show drift: they go straight to AWS (here the sandbox's moto server)
with plain boto3 and deliberately bypass every flipgitops code path, so what drift reports
is what a later observation really finds.
"""

from __future__ import annotations

from typing import Any

import boto3

from flipgitops.model.manifest import Manifest

ROGUE_CIDR = "198.51.100.99/32"


def _rule(manifest: Manifest, cidr: str, description: str | None = None) -> dict[str, Any]:
    fl = manifest.hub.fl_server
    ip_range = {"CidrIp": cidr, **({"Description": description} if description else {})}
    return {"IpProtocol": "tcp", "FromPort": fl.port, "ToPort": fl.port, "IpRanges": [ip_range]}


def _group_id(ec2: Any, manifest: Manifest) -> str:
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "group-name", "Values": [manifest.hub.fl_server.security_group]}]
    )["SecurityGroups"]
    return str(groups[0]["GroupId"])


def add_manual_ingress_rule(manifest: Manifest, cidr: str = ROGUE_CIDR) -> None:
    """Open the FL server port to one more /32 without the `flipgitops:` description."""
    ec2: Any = boto3.client("ec2", region_name=manifest.aws.region)
    ec2.authorize_security_group_ingress(
        GroupId=_group_id(ec2, manifest),
        IpPermissions=[_rule(manifest, cidr, "opened by hand for a quick test")],
    )


def revoke_manual_ingress_rule(manifest: Manifest, cidr: str = ROGUE_CIDR) -> None:
    """Take the hand-made rule away again, the way it came: by hand."""
    ec2: Any = boto3.client("ec2", region_name=manifest.aws.region)
    ec2.revoke_security_group_ingress(
        GroupId=_group_id(ec2, manifest), IpPermissions=[_rule(manifest, cidr)]
    )


def deploy_image_by_hand(manifest: Manifest, role: str, tag: str) -> str:
    """Roll one hub service to another image tag as `deploy-centralhub` would.

    Registers a new task-definition revision with only the service's own container changed,
    then points the service at it. Returns the new image reference.
    """
    ecs: Any = boto3.client("ecs", region_name=manifest.aws.region)
    cluster = manifest.hub.ecs.cluster
    service = getattr(manifest.hub.ecs.services, role)
    svc = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    td = ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])["taskDefinition"]
    containers = []
    image = ""
    for c in td["containerDefinitions"]:
        c = dict(c)
        if c["name"] == service:
            image = c["image"].rsplit(":", 1)[0] + ":" + tag
            c["image"] = image
        containers.append(c)
    keep = ("family", "taskRoleArn", "executionRoleArn", "networkMode", "requiresCompatibilities",
            "cpu", "memory", "volumes")
    spec = {k: td[k] for k in keep if td.get(k) is not None}
    new = ecs.register_task_definition(containerDefinitions=containers, **spec)
    arn = new["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=cluster, service=service, taskDefinition=arn)
    return image
