"""adapters/kit_source: one slot's FL kit slice from the kit bucket (moto, the stand-in's kits),
checked the way flip_fl_kit/tasks/s3.yml checks it."""

from __future__ import annotations

import re
from typing import Any

import boto3
import pytest

from flipgitops.adapters import kit_listing
from flipgitops.adapters.kit_source import KitSourceError, S3KitSource
from flipgitops.sandbox.flip import kits
from flipgitops.sandbox.moto_server import MotoServer
from tests.unit.hosts.hostworld import BUCKET, KIT_DATE

REGION = "eu-west-2"


@pytest.fixture
def s3(moto: MotoServer) -> Any:
    client = boto3.client("s3", endpoint_url=moto.url, region_name=REGION)
    client.create_bucket(Bucket=BUCKET,
                         CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


def _planned(s3: Any, backend: str, slot: str) -> str:
    prefix = kit_listing.listing_prefix(backend, KIT_DATE)  # type: ignore[arg-type]
    objects = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    found, _ = kit_listing.slices(backend, KIT_DATE, objects, [slot])  # type: ignore[arg-type]
    fingerprint = found[slot].fingerprint
    assert fingerprint
    return fingerprint


def test_an_nvflare_slot(s3: Any) -> None:
    kits.write_nvflare_kits(s3, BUCKET, KIT_DATE, ["Trust_1", "Trust_2"])
    got = S3KitSource(s3).fetch(BUCKET, KIT_DATE, "nvflare", "Trust_1", 1)
    expected = kits.nvflare_slot_files(KIT_DATE, "Trust_1")
    assert {f.path: f.data for f in got.files} == {
        f"services/Trust_1/{rel}": body.encode() for rel, body in expected.items()}
    modes = {f.path.rsplit("/", 1)[-1]: f.mode for f in got.files}
    assert modes["client.key"] == 0o600 and modes["start.sh"] == 0o755
    assert modes["fed_client.json"] == 0o644
    assert got.dirs == ("services/Trust_1/local", "services/Trust_1/transfer")
    assert got.fingerprint == _planned(s3, "nvflare", "Trust_1")
    assert "client.key" not in repr(got.files) or "bytes" in repr(got.files[0])
    assert "PRIVATE" not in repr(got)


def test_a_flower_slot_gets_only_its_two_files(s3: Any) -> None:
    kits.write_flower_kits(s3, BUCKET, KIT_DATE, 3)
    got = S3KitSource(s3).fetch(BUCKET, KIT_DATE, "flower", "Trust_2", 2)
    files = {f.path: f for f in got.files}
    assert set(files) == {"certificates/ca.crt", "keys/supernode_credentials_2"}
    assert files["keys/supernode_credentials_2"].mode == 0o640
    assert files["certificates/ca.crt"].mode == 0o644
    assert got.dirs == ()
    assert got.fingerprint == _planned(s3, "flower", "Trust_2")


def test_refusals_name_the_s3_key(s3: Any) -> None:
    kits.write_nvflare_kits(s3, BUCKET, KIT_DATE, ["Trust_1", "Trust_2"])
    source = S3KitSource(s3)
    prefix = f"s3://{BUCKET}/{kits.nvflare_prefix(KIT_DATE)}"
    with pytest.raises(KitSourceError, match=re.escape(
            f"{prefix}Trust_7/startup/fed_client.json does not exist")):
        source.fetch(BUCKET, KIT_DATE, "nvflare", "Trust_7", 7)
    kits.write_empty_fed_client(s3, BUCKET, KIT_DATE, "Trust_2")
    with pytest.raises(KitSourceError, match=re.escape(
            "Trust_2/startup/fed_client.json is missing or empty")):
        source.fetch(BUCKET, KIT_DATE, "nvflare", "Trust_2", 2)
    kits.write_foreign_fqsn(s3, BUCKET, KIT_DATE, "Trust_1", "Trust_2")
    with pytest.raises(KitSourceError,
                       match=re.escape("names client.fqsn 'Trust_2', not 'Trust_1'")):
        source.fetch(BUCKET, KIT_DATE, "nvflare", "Trust_1", 1)
    with pytest.raises(KitSourceError, match="supernode_credentials_4 does not exist"):
        kits.write_flower_kits(s3, BUCKET, KIT_DATE, 3)
        source.fetch(BUCKET, KIT_DATE, "flower", "Trust_4", 4)
    with pytest.raises(KitSourceError, match="NoSuchBucket"):
        source.fetch("no-such-bucket", KIT_DATE, "nvflare", "Trust_1", 1)
