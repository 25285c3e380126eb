"""FL participant kits on trust hosts, and `flipgitops kit`, end to end (issue 16).

The kit bucket is the stand-in's (FLIP's S3 layout, per-slot contents that differ by slot and
date); hosts are local directories on the stand-in container CLI. What a host holds is read
from its files and compared with the bucket's objects, byte for byte; the archive
`flipgitops kit` writes is compared with a host onboarded the same way.
"""

from __future__ import annotations

import json
import os
import stat
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from flipgitops.sandbox.environment import KIT_DATE, REGION, TrustSpec, sandbox
from flipgitops.sandbox.flip import kits as standin_kits
from flipgitops.sandbox.moto_server import MotoServer
from tests.e2e.hostside import Operator, bucket_slice, file_tree, kit_values

D1, D2, D3 = KIT_DATE, "2025-07-01", "2025-08-01"
BUCKET = "flipdev-aicentre"
TRUSTS = (TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London"),
          TrustSpec("Trust_2", "KCH", "203.0.113.12"),
          TrustSpec("Trust_3", "UCLH", "203.0.113.13", kind="tre"))
CODES = {t.name: t.code for t in TRUSTS}


def nvflare_expected(moto_url: str, date: str, slot: str) -> dict[str, tuple[str, int, Any]]:
    """What FLIP's s3.yml leaves under net-1 for ``slot``: the bucket's slot directory byte
    for byte, local/ and transfer/ present (transfer/ empty), keys private, scripts
    executable, the rest world-readable, directories 0755."""
    files = bucket_slice(moto_url, BUCKET, f"{standin_kits.nvflare_prefix(date)}{slot}/")
    out: dict[str, tuple[str, int, Any]] = {"services": ("d", 0o755, None),
                                            f"services/{slot}": ("d", 0o755, None)}
    for rel, body in files.items():
        path = f"services/{slot}/{rel}"
        parent = path.rsplit("/", 1)[0]
        out.setdefault(parent, ("d", 0o755, None))
        mode = 0o600 if rel.endswith(".key") else 0o755 if rel.endswith(".sh") else 0o644
        out[path] = ("f", mode, body)
    for d in ("local", "transfer"):
        out.setdefault(f"services/{slot}/{d}", ("d", 0o755, None))
    return out


def archive_of(path: Path) -> dict[str, tuple[str, int, bytes | None]]:
    with tarfile.open(path, mode="r:gz") as tar:
        return {m.name: ("d" if m.isdir() else "f", m.mode,
                         tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
                for m in tar.getmembers()}


def net1(op: Operator, trust: str) -> Path:
    return op.box.flip_root(trust) / "fl-kit" / "net-1"


def slot_of(op: Operator, trust: str) -> str:
    return kit_values(op.kit_file(trust, CODES[trust]))["FL_KIT_SLOT"]


def host_snapshot(op: Operator, trust: str) -> tuple[Any, bytes, dict[str, str]]:
    """Everything of a host a kit delivery could touch: the kit tree, the kit file, the
    containers."""
    kit = op.kit_file(trust, CODES[trust])
    project = f"trust{kit_values(kit)['FL_KIT_SLOT_NUMBER']}"
    return file_tree(net1(op, trust)), kit.read_bytes(), op.container_ids(trust, project)


def assert_archive_matches_host(op: Operator, archive: Path, trust: str) -> None:
    """The archive holds what the host holds: the same kit file and the same FL kit."""
    assert stat.S_IMODE(archive.stat().st_mode) == 0o600
    got = archive_of(archive)
    name = f".env.{CODES[trust]}.development"
    assert got.pop(name) == ("f", 0o600, op.kit_file(trust, CODES[trust]).read_bytes())
    kit = {n[len("fl-kit/net-1/"):]: v for n, v in got.items() if n.startswith("fl-kit/net-1/")}
    assert set(got) - set(f"fl-kit/net-1/{k}" for k in kit) == {"fl-kit", "fl-kit/net-1"}
    assert kit == file_tree(net1(op, trust))


@pytest.mark.slow
@pytest.mark.long  # the long lane: `pytest -m long`
def test_nvflare_kits_reach_every_host_and_the_kit_export(tmp_path: Path,
                                                         moto: MotoServer) -> None:
    with sandbox(tmp_path / "box", trusts=TRUSTS, moto=moto, kit_dates=[D1, D2, D3]) as box:
        op = Operator(box)
        try:
            _nvflare(op)
        finally:
            print("\n" + op.report_timings())


def _nvflare(op: Operator) -> None:
    box = op.box
    # A stray from some earlier kit on Trust_1's host: FLIP's sync wipes net-1 first.
    stray = net1(op, "Trust_1") / "services" / "Trust_9" / "startup" / "old.key"
    stray.parent.mkdir(parents=True)
    stray.write_text("another slot's key\n")
    (net1(op, "Trust_1") / "notes.txt").write_text("left by hand\n")

    plan = op.json("plan", "--env", "dev", expect=2)
    tre_notes = [n for n in plan["notes"] if "Trust_3" in n]
    assert any("flipgitops kit --env dev --trust Trust_3 --out" in n for n in tre_notes), \
        plan["notes"]
    op.cli("apply", "--env", "dev", "--yes", expect=0)

    # Each host holds its slot's slice of the bucket, byte for byte, and nothing else.
    for trust in ("Trust_1", "Trust_2"):
        slot = slot_of(op, trust)
        assert file_tree(net1(op, trust)) == nvflare_expected(box.moto.url, D1, slot), trust
        fed = json.loads((net1(op, trust) / "services" / slot / "startup" /
                          "fed_client.json").read_text())
        assert fed["client"]["fqsn"] == slot
        assert kit_values(op.kit_file(trust, CODES[trust]))["FLARE_KIT_DATE"] == D1
        if os.geteuid() == 0:
            assert {p.stat().st_uid for p in net1(op, trust).rglob("*")} == {1000}
    assert not stray.exists()

    # flipgitops kit: the archive is what the host received; never overwritten silently.
    archive = box.root / "Trust_1-kit.tar.gz"
    op.cli("kit", "--env", "dev", "--trust", "Trust_1", "--out", str(archive), expect=0)
    assert_archive_matches_host(op, archive, "Trust_1")
    first = archive.read_bytes()
    refused = op.cli("kit", "--env", "dev", "--trust", "Trust_1", "--out", str(archive),
                     expect=1)
    assert "already exists: pass --force" in refused.err and archive.read_bytes() == first
    op.cli("kit", "--env", "dev", "--trust", "Trust_1", "--out", str(archive), "--force",
           expect=0)
    assert_archive_matches_host(op, archive, "Trust_1")
    # The TRE gets the same hand-off (its kit file with FLIP's default paths).
    tre = box.root / "Trust_3-kit.tar.gz"
    op.cli("kit", "--env", "dev", "--trust", "Trust_3", "--out", str(tre), expect=0)
    got = archive_of(tre)
    tre_kit = got.pop(".env.UCLH.development")
    assert tre_kit[1] == 0o600
    values = {k: v for k, _, v in (line.partition("=") for line in
                                   (tre_kit[2] or b"").decode().splitlines())
              if k and not k.startswith("#")}
    assert values["FL_KIT_DIR"] == "/opt/flip/fl-kit" and values["TRUST_NAME"] == "Trust_3"
    tre_slot = values["FL_KIT_SLOT"]
    kit = {n[len("fl-kit/net-1/"):]: v for n, v in got.items() if n.startswith("fl-kit/net-1/")}
    assert kit == nvflare_expected(box.moto.url, D1, tre_slot)

    # A kit file edited by hand on a host: drift reports it, apply puts the bucket's back.
    crt = net1(op, "Trust_1") / "services" / slot_of(op, "Trust_1") / "startup" / "client.crt"
    crt.write_bytes(crt.read_bytes() + b"# edited\n")
    report = op.json("drift", "--env", "dev", expect=2)
    assert any(f["fact"] == "host.fl_kit" and f["target"] == "host:Trust_1"
               for f in report["findings"]), report
    plan = op.json("plan", "--env", "dev", expect=2)
    assert {a["id"] for a in plan["actions"]} >= {"host.deliver_fl_kit:Trust_1"}
    op.cli("apply", "--env", "dev", "--yes", expect=0)
    assert file_tree(net1(op, "Trust_1")) == nvflare_expected(box.moto.url, D1,
                                                              slot_of(op, "Trust_1"))
    op.cli("plan", "--env", "dev", expect=0)

    # A new kit date: every active trust's host gets its new kit in one apply.
    op.edit_manifest("FL kits of July", hub__fl_kits__date=D2)
    plan = op.json("plan", "--env", "dev", expect=2)
    ids = {a["id"] for a in plan["actions"]}
    assert {"host.deliver_fl_kit:Trust_1", "host.deliver_fl_kit:Trust_2"} <= ids, ids
    assert any("Trust_3" in n and "flipgitops kit" in n for n in plan["notes"]), plan["notes"]
    op.cli("apply", "--env", "dev", "--yes", expect=0)
    for trust in ("Trust_1", "Trust_2"):
        assert file_tree(net1(op, trust)) == nvflare_expected(box.moto.url, D2,
                                                              slot_of(op, trust)), trust
        assert kit_values(op.kit_file(trust, CODES[trust]))["FLARE_KIT_DATE"] == D2
    op.cli("plan", "--env", "dev", expect=0)

    # One active trust unreachable during a kit change: FG010 blocks.
    doc = box.manifest_path.read_text()
    op.edit_manifest("Trust_2 over ssh", hub__fl_kits__date=D3,
                     trusts__1__host={"connection": "ssh", "address": "127.0.0.1",
                                      "flip_root": str(box.flip_root("Trust_2")),
                                      "docker": box.docker("Trust_2")})
    blocked = op.json("plan", "--env", "dev", expect=3)
    assert [(v["guard"], v["target"]) for v in blocked["violations"]] == [("FG010", "Trust_2")]

    # A kit naming another slot is refused before anything on that host changes.
    box.manifest_path.write_text(doc)
    op.edit_manifest("FL kits of August", hub__fl_kits__date=D3)
    s3 = boto3.client("s3", endpoint_url=box.moto.url, region_name=REGION)
    slot2 = slot_of(op, "Trust_2")
    standin_kits.write_foreign_fqsn(s3, BUCKET, D3, slot2, slot_of(op, "Trust_1"))
    before = host_snapshot(op, "Trust_2")
    run = op.cli("apply", "--env", "dev", "--yes", expect=1)
    key = f"s3://{BUCKET}/{standin_kits.nvflare_prefix(D3)}{slot2}/startup/fed_client.json"
    assert key in run.text, run.text[-3000:]
    assert host_snapshot(op, "Trust_2") == before
    assert file_tree(net1(op, "Trust_1")) == nvflare_expected(box.moto.url, D3,
                                                              slot_of(op, "Trust_1"))

    op.assert_no_leaks(op.minted_secrets(), allowed=[
        op.kit_file("Trust_1", "GSTT"), op.kit_file("Trust_2", "KCH")])


@pytest.mark.slow
@pytest.mark.long  # the long lane: `pytest -m long`
def test_flower_kits_reach_the_host_and_the_kit_export(tmp_path: Path,
                                                      moto: MotoServer) -> None:
    trust = TrustSpec("Trust_1", "GSTT", "203.0.113.11")
    with sandbox(tmp_path / "box", trusts=[trust], moto=moto, kit_dates=[D1, D2],
                 fl_backend="flower") as box:
        op = Operator(box)
        try:
            keys = net1(op, "Trust_1") / "keys"
            keys.mkdir(parents=True)
            (keys / "supernode_credentials_7").write_text("another trust's key\n")
            op.cli("apply", "--env", "dev", "--yes", expect=0)
            for date in (D1, D2):
                if date == D2:
                    op.edit_manifest("Flower kits of July", hub__fl_kits__date=D2)
                    plan = op.json("plan", "--env", "dev", expect=2)
                    assert "host.deliver_fl_kit:Trust_1" in {a["id"] for a in plan["actions"]}
                    op.cli("apply", "--env", "dev", "--yes", expect=0)
                number = kit_values(op.kit_file("Trust_1", "GSTT"))["FL_KIT_SLOT_NUMBER"]
                bucket = bucket_slice(box.moto.url, BUCKET, standin_kits.flower_prefix(date))
                creds = f"keys/supernode_credentials_{number}"
                assert file_tree(net1(op, "Trust_1")) == {
                    "certificates": ("d", 0o755, None),
                    "certificates/ca.crt": ("f", 0o644, bucket["certificates/ca.crt"]),
                    "keys": ("d", 0o755, None),
                    creds: ("f", 0o640, bucket[creds]),
                }
                assert kit_values(op.kit_file("Trust_1", "GSTT"))["FLOWER_KIT_DATE"] == date
                op.cli("plan", "--env", "dev", expect=0)
            archive = box.root / "kit.tar.gz"
            op.cli("kit", "--env", "dev", "--trust", "Trust_1", "--out", str(archive), expect=0)
            assert_archive_matches_host(op, archive, "Trust_1")
            op.assert_no_leaks(op.minted_secrets(), allowed=[op.kit_file("Trust_1", "GSTT")])
        finally:
            print("\n" + op.report_timings())
