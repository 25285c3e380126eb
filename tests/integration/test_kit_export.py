"""`engine/kit.run_kit` against a real moto server and the stand-in hub: the kit file from
the escrow (rendered by core/kitfile, the AES key from FLIP_API), the FL kit from the
bucket, trust-local credentials minted and escrowed once, and the refusals."""

from __future__ import annotations

import stat
import tarfile
from pathlib import Path

import boto3
import pytest

from flipgitops.adapters.aws_session import as_clients
from flipgitops.adapters.escrow import SsmEscrow
from flipgitops.core import kitfile
from flipgitops.engine.kit import KitExportError, run_kit
from flipgitops.model.kit import EscrowedKit, TrustKit
from flipgitops.sandbox.environment import REGION, TrustSpec, sandbox
from flipgitops.sandbox.flip import kits as standin_kits
from flipgitops.sandbox.moto_server import MotoServer

TRUSTS = (TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London"),
          TrustSpec("Trust_3", "UCLH", "203.0.113.13", kind="tre"),
          TrustSpec("Trust_4", "KCHX", "203.0.113.14"))


def read_archive(path: Path) -> dict[str, tuple[int, bytes | None]]:
    with tarfile.open(path, mode="r:gz") as tar:
        return {m.name: (m.mode, tar.extractfile(m).read() if m.isfile() else None)  # type: ignore[union-attr]
                for m in tar.getmembers()}


@pytest.mark.slow
def test_kit_export(tmp_path: Path, moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> None:
    with sandbox(tmp_path / "box", trusts=TRUSTS, existing=["Trust_1", "Trust_3"],
                 moto=moto) as box:
        assert box.seed is not None
        escrow = SsmEscrow(as_clients(None, REGION), "dev")
        for name in ("Trust_1", "Trust_3"):
            escrow.write_kit(name, EscrowedKit(
                kit=TrustKit.model_validate(box.seed.trust_kits[name]), credentials_generation=1))
        monkeypatch.setenv("FLIPGITOPS_ENDPOINTS", box.hub.endpoints_json)
        monkeypatch.chdir(box.repo)
        lines: list[str] = []

        # A TRE: its first hand-off mints its trust-local credentials and escrows them.
        assert escrow.read_local("Trust_3") is None
        out = tmp_path / "trust3.tar.gz"
        assert run_kit("dev", trust="Trust_3", out=out, force=False, status=lines.append) == out
        assert stat.S_IMODE(out.stat().st_mode) == 0o600
        local = escrow.read_local("Trust_3")
        assert local is not None
        got = read_archive(out)
        name = ".env.UCLH.development"
        assert got[name][0] == 0o600
        text = (got[name][1] or b"").decode()
        parsed = kitfile.parse(text).values
        kit = box.seed.trust_kits["Trust_3"]
        assert parsed["TRUST_API_KEY"] == kit["trust_api_key"]
        assert parsed["AES_KEY_BASE64"] == box.seed.aes_key
        assert parsed["FL_KIT_SLOT"] == kit["fl_kit_slot"]
        assert parsed["ORTHANC_PASSWORD"] == local.values["ORTHANC_PASSWORD"].get_secret_value()
        # No host: FLIP's default paths, which the TRE's operator repoints.
        assert parsed["FL_KIT_DIR"] == "/opt/flip/fl-kit"

        # The FL kit is the bucket's slice of the trust's slot, byte for byte.
        slot = kit["fl_kit_slot"]
        s3 = boto3.client("s3", endpoint_url=moto.url, region_name=REGION)
        prefix = f"{standin_kits.nvflare_prefix(box.seed.kit_dates[0])}{slot}/"
        bucket = box.seed.kit_bucket
        expected = {f"fl-kit/net-1/services/{slot}/{o['Key'][len(prefix):]}":
                    s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
                    for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)["Contents"]}
        files = {n: body for n, (_, body) in got.items() if body is not None and n != name}
        assert files == expected
        assert got[f"fl-kit/net-1/services/{slot}/transfer"] == (0o755, None)
        assert got[f"fl-kit/net-1/services/{slot}/startup/client.key"][0] == 0o600

        # Never overwritten without --force; with it, the same kit file (minted once).
        with pytest.raises(KitExportError, match="already exists: pass --force"):
            run_kit("dev", trust="Trust_3", out=out, force=False, status=lines.append)
        out.write_bytes(b"older")
        run_kit("dev", trust="Trust_3", out=out, force=True, status=lines.append)
        assert read_archive(out)[name][1] == text.encode()

        # Clear refusals: a trust flipgitops holds no kit for (not registered yet, or
        # adopted: FLIP registered it and flipgitops never held its keys), a trust not in
        # the manifest.
        with pytest.raises(KitExportError, match="holds no kit for Trust_4") as exc:
            run_kit("dev", trust="Trust_4", out=tmp_path / "t4.tar.gz", force=False,
                    status=lines.append)
        assert "registry.register" in str(exc.value)
        assert not (tmp_path / "t4.tar.gz").exists()
        with pytest.raises(KitExportError, match="not in the dev manifest"):
            run_kit("dev", trust="Trust_9", out=tmp_path / "t9.tar.gz", force=False,
                    status=lines.append)

        secrets = [box.seed.aes_key, *box.seed.trust_keys.values(),
                   *(v.get_secret_value() for v in local.values.values())]
        shown = "\n".join(lines)
        assert not [s for s in secrets if s in shown]
        assert list(tmp_path.glob("*.tar.gz")) == [out]
