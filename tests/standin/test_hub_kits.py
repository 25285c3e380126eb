"""FL participant kits in S3, shaped like FLIP's (trust.md §8, flip_fl_kit s3.yml@83e67f0e)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hubworld import aws

from flipgitops.sandbox.flip import kits
from flipgitops.sandbox.moto_server import MotoServer

BUCKET = "flipdev-aicentre"
DATE = "2025-06-01"


@pytest.fixture
def s3(moto: MotoServer) -> Any:
    client = aws("s3", moto.url)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint":
                                                                    "eu-west-2"})
    return client


def keys(s3: Any, prefix: str) -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {o["Key"][len(prefix):] for page in pages for o in page.get("Contents", [])}


def body(s3: Any, key: str) -> str:
    return str(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode())


def test_an_nvflare_slot_has_flips_files(s3: Any) -> None:
    kits.write_nvflare_kits(s3, BUCKET, DATE, ["Trust_1", "Trust_2"])
    prefix = f"fl-flare-participant-kits/{DATE}/net-1/services/Trust_1/"
    assert keys(s3, prefix) == {
        "startup/fed_client.json", "startup/client.crt", "startup/client.key",
        "startup/rootCA.pem", "startup/start.sh", "startup/sub_start.sh", "startup/stop_fl.sh",
        "local/log_config.json.default", "local/resources.json.default",
        "local/log_config.template.json", "local/resources.template.json", "readme.txt"}
    assert json.loads(body(s3, prefix + "startup/fed_client.json"))["client"]["fqsn"] == "Trust_1"
    assert "${NUM_AVAILABLE_GPUS}" in body(s3, prefix + "local/resources.template.json")
    assert "$DIR/sub_start.sh &" not in body(s3, prefix + "startup/start.sh")
    services = keys(s3, f"fl-flare-participant-kits/{DATE}/net-1/services/")
    assert {k.split("/")[0] for k in services} == {
        "Trust_1", "Trust_2", "fl-server-net-1", "flip-fl-api-net-1"}


def test_a_flower_set_has_certificates_and_one_credential_per_supernode(s3: Any) -> None:
    kits.write_flower_kits(s3, BUCKET, DATE, 2)
    assert keys(s3, f"fl-flower-participant-kits/{DATE}/net-1/") == {
        "certificates/ca.crt", "certificates/server.pem", "certificates/server.key",
        "keys/supernode_credentials_1", "keys/supernode_credentials_1.pub",
        "keys/supernode_credentials_2", "keys/supernode_credentials_2.pub"}
    cred = body(s3, f"fl-flower-participant-kits/{DATE}/net-1/keys/supernode_credentials_1")
    assert cred.startswith("-----BEGIN OPENSSH ") and cred.rstrip().endswith("-----")


def test_broken_kits_for_the_checks_flip_makes(s3: Any) -> None:
    kits.write_nvflare_kits(s3, BUCKET, DATE, ["Trust_1", "Trust_2"])
    prefix = f"fl-flare-participant-kits/{DATE}/net-1/services/"
    kits.write_foreign_fqsn(s3, BUCKET, DATE, "Trust_1", "Trust_2")
    assert json.loads(body(s3, prefix + "Trust_1/startup/fed_client.json"))["client"][
        "fqsn"] == "Trust_2"
    kits.write_empty_fed_client(s3, BUCKET, DATE, "Trust_2")
    assert body(s3, prefix + "Trust_2/startup/fed_client.json") == ""
    kits.remove_kit_file(s3, BUCKET, DATE, "Trust_2", "startup/client.key")
    assert "startup/client.key" not in keys(s3, prefix + "Trust_2/")


def test_contents_differ_per_slot_and_date_but_are_reproducible() -> None:
    a = kits.nvflare_slot_files(DATE, "Trust_1")
    assert a == kits.nvflare_slot_files(DATE, "Trust_1")
    assert a["startup/client.key"] != kits.nvflare_slot_files(DATE, "Trust_2")["startup/client.key"]
    assert a["startup/client.crt"] != kits.nvflare_slot_files("2025-07-01", "Trust_1")[
        "startup/client.crt"]
