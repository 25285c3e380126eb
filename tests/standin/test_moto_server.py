"""The sandbox's moto server: one parsed model per service per process, and each Host
header's backend looked up once, with every request still reaching the right backend."""

from __future__ import annotations

from typing import Any

import boto3

from flipgitops.sandbox.moto_server import MOTO_ACCOUNT_ID, MotoServer


def _client(moto: MotoServer, service: str) -> Any:
    return boto3.Session(region_name="eu-west-2").client(service, endpoint_url=moto.url)


def test_sessions_made_in_a_sandbox_process_share_one_model_loader(moto: MotoServer) -> None:
    first, second = boto3.Session(), boto3.Session()
    loader = first._session.get_component("data_loader")
    assert loader is second._session.get_component("data_loader")
    model = loader.load_service_model("ec2", "service-2")
    assert second._session.get_component("data_loader").load_service_model(
        "ec2", "service-2") is model  # parsed once


def test_every_service_still_reaches_its_own_backend(moto: MotoServer) -> None:
    for _ in range(2):  # the second pass is served from the remembered host -> backend
        assert _client(moto, "sts").get_caller_identity()["Account"] == MOTO_ACCOUNT_ID
        assert _client(moto, "ecs").list_clusters()["clusterArns"] == []
        assert "SecurityGroups" in _client(moto, "ec2").describe_security_groups()
        assert _client(moto, "s3").list_buckets()["Buckets"] == []
        assert _client(moto, "ssm").describe_parameters()["Parameters"] == []
