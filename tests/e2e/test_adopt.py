"""`flipgitops adopt` end to end, against the stand-in FLIP, for each registry era.

The world is what FLIP's own procedures leave (`Sandbox.set_up_the_flip_way`): a hub seeded
with registered trusts, two hosts whose kit files, FL kits, trust/ checkout and stacks were
made the FLIP way (trust/Makefile up-trust and up-trust-ec2), a third host whose kit file
holds a key the hub does not accept, and a `tre` trust; no flipgitops state anywhere. The
manifest is a starting one, placeholders wherever adopt can find out. Then:

- `adopt` without --write writes nothing at all (no escrow, no ledger, no manifest change);
- `adopt --write` produces a manifest that validates, escrows the two good hosts' kits (and
  nothing for the tre trust or the wrong key), records the ledger, and names what it does
  not hold;
- `plan` then plans nothing (nothing rotated, restarted, redelivered or re-registered) and
  finds nothing out of sync but the wrong-key host, whose trust-api the hub rejects (so it
  exits 2, as drift does for that host); once the operator mends that host the FLIP way
  and adopts again, `plan` exits 0;
- the hub and the hosts are byte for byte as they were (hashed before and after);
- adopting again changes nothing; no secret appears in any output or in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flipgitops.sandbox.environment import DOMAIN, FlipWayTrust, Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.flip import procedures as fp
from flipgitops.sandbox.flip.aws import client
from flipgitops.sandbox.moto_server import MotoServer
from tests.e2e.hostside import set_kit_value

pytestmark = pytest.mark.slow

ENV = "stag"  # FLIP's PROD=stag: kit files .env.<CODE>.stag, the production compose files
TRUSTS = (
    TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London"),
    TrustSpec("Trust_2", "KCH", "203.0.113.12", kind="aws"),
    TrustSpec("Trust_3", "UCLH", "203.0.113.13"),
    TrustSpec("Trust_4", "TRE", "203.0.113.14", kind="tre"),
)
WRONG_KEY = "Trust_3"


def starting_manifest(box: Sandbox, registry: str) -> dict[str, Any]:
    """What an operator writes before adopting: the hub's names, each trust's name, kind,
    code and host; placeholders for everything adopt finds out (tags, ref, era, domain,
    bucket, date, IPs, regions, slots, settings). A tre trust keeps its real IP and (the
    secret registry needs one for every trust) its slot: no host can tell them."""
    doc = box.manifest_doc(list(TRUSTS), registry="database", hub_tag="v0.0.1",
                           fl_tag="v0.0.1", flip_ref="v2.4.0", kit_date="2000-01-01")
    hub = doc["hub"]
    hub.update(domain="placeholder.example.org")
    hub["fl_kits"]["bucket"] = "placeholder-bucket"
    hub["fl_server"].pop("hostname")
    hub.pop("database")
    hub.pop("cognito")
    if registry == "database":
        hub["admin_token"] = "env:FLIP_ADMIN_TOKEN"
    for i, t in enumerate(doc["trusts"]):
        t.pop("settings", None)
        t.pop("region", None)
        if t["kind"] != "tre":
            t["public_ip"] = f"198.51.100.{i + 101}"
        elif registry == "secret":
            t["fl_kit_slot"] = t["name"]
    return doc


@pytest.fixture
def world(request: pytest.FixtureRequest, tmp_path: Path,
          moto: MotoServer) -> Iterator[tuple[Sandbox, dict[str, FlipWayTrust]]]:
    registry = request.param
    specs = [TrustSpec(t.name, t.code, t.public_ip, kind=t.kind, region=t.region,
                       slot=t.name if registry == "secret" else None) for t in TRUSTS]
    with sandbox(tmp_path / "w", env_name=ENV, trusts=specs, registry=registry,
                 existing="all", moto=moto) as box:
        flipway = box.set_up_the_flip_way(wrong_key=[WRONG_KEY])
        box.write_manifest(starting_manifest(box, registry), commit="starting manifest")
        yield box, flipway


# --- snapshots --------------------------------------------------------------------------------


def _tree(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            h.update(f"{path.relative_to(root)} -> {os.readlink(path)}\n".encode())
        elif path.is_file():
            h.update(f"{path.relative_to(root)} {path.stat().st_mode:o} ".encode())
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def hosts_snapshot(box: Sandbox, flipway: dict[str, FlipWayTrust]) -> dict[str, Any]:
    """Every file under each host's flip root (kit file, trust/, FL kit, observability) and
    the container records of its daemon (a recreated container has a new record)."""
    out = {}
    for name, t in flipway.items():
        if t.kit_file is None:
            continue
        projects = box.daemon_dir(name) / "projects"
        out[name] = {"flip_root": _tree(box.flip_root(name)), "containers": _tree(projects),
                     "kit_file": hashlib.sha256(t.kit_file.read_bytes()).hexdigest(),
                     "mode": oct(t.kit_file.stat().st_mode & 0o777)}
    return out


def hub_snapshot(box: Sandbox) -> dict[str, Any]:
    url, region = box.moto.url, "eu-west-2"
    ecs, sm = client("ecs", url, region), client("secretsmanager", url, region)
    ec2, ssm = client("ec2", url, region), client("ssm", url, region)
    services = ecs.describe_services(cluster="flip-cluster", services=[
        "flip-api", "fl-api-net-1", "fl-server-net-1"])["services"]
    groups = ec2.describe_security_groups()["SecurityGroups"]
    params = ssm.get_parameters_by_path(Path="/flip", Recursive=True,
                                        WithDecryption=True)["Parameters"]
    events = [e for e in box.hub.state.events if e[0] in ("register", "delete", "task",
                                                          "schema_drop", "boot")]
    return {
        "secret": hashlib.sha256(sm.get_secret_value(SecretId="FLIP_API")["SecretString"]
                                 .encode()).hexdigest(),
        "services": sorted((s["serviceName"], s["taskDefinition"],
                            tuple(d["id"] for d in s["deployments"])) for s in services),
        "task_definitions": sorted(ecs.list_task_definitions()["taskDefinitionArns"]),
        "rules": sorted(json.dumps(g["IpPermissions"], sort_keys=True) for g in groups),
        "flip_parameters": sorted((p["Name"], p["Value"]) for p in params),
        "events": events,
    }


def escrow(box: Sandbox) -> dict[str, Any]:
    ssm = client("ssm", box.moto.url, "eu-west-2")
    params = ssm.get_parameters_by_path(Path=f"/flipgitops/{ENV}", Recursive=True,
                                        WithDecryption=True)["Parameters"]
    return {p["Name"]: (json.loads(p["Value"]), p["Version"]) for p in params}


def ledger(box: Sandbox) -> tuple[dict[str, Any] | None, str | None]:
    s3 = client("s3", box.moto.url, "eu-west-2")
    try:
        obj = s3.get_object(Bucket=f"flip-gitops-state-{ENV}", Key=f"flipgitops/ledger/{ENV}.json")
    except s3.exceptions.NoSuchKey:
        return None, None
    return json.loads(obj["Body"].read()), obj["ETag"]


def secrets_of(box: Sandbox, flipway: dict[str, FlipWayTrust]) -> list[str]:
    seed = box.seed
    assert seed is not None
    values = [seed.aes_key, seed.internal_service_key, seed.admin_token,
              *seed.trust_keys.values(), *(s for t in flipway.values() for s in t.secrets)]
    return sorted({v for v in values if v})


def kit_values(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            out[key] = value
    return out


def assert_no_secret(texts: list[str], secrets: list[str]) -> None:
    for text in texts:
        leaked = [s[:4] + "…" for s in secrets if s in text]
        assert not leaked, f"secret values {leaked} in output"


# --- the tests ---------------------------------------------------------------------------------


@pytest.mark.parametrize("world", ["database", "secret"], indirect=True)
def test_adopt_takes_over_a_flip_deployment_without_touching_a_trust(
        world: tuple[Sandbox, dict[str, FlipWayTrust]]) -> None:
    box, flipway = world
    assert box.load_manifest().hub.trust_registry == "database"  # the starting guess
    env = {"FLIP_ADMIN_TOKEN": box.hub.admin_token}
    seed = box.seed
    assert seed is not None
    real_registry = seed.era
    secrets = secrets_of(box, flipway)
    outputs: list[str] = []
    hosts_before, hub_before = hosts_snapshot(box, flipway), hub_snapshot(box)
    manifest_before = box.manifest_path.read_text()
    assert flipway[WRONG_KEY].verdict and "401" in flipway[WRONG_KEY].verdict
    for name in ("Trust_1", "Trust_2"):
        assert "Authenticated to hub as trust" in (flipway[name].verdict or "")

    if real_registry == "database":
        # without --write nothing at all is written
        dry = box.cli("adopt", "--env", ENV, extra_env=env)
        outputs.append(dry.text)
        assert dry.code == 0, dry.text
        assert "+  ref: v2.3.0" in dry.out and "-  ref: v2.4.0" in dry.out
        assert "nothing was written" in dry.out
        assert box.manifest_path.read_text() == manifest_before
        assert escrow(box) == {} and ledger(box) == (None, None)

    first = box.cli("adopt", "--env", ENV, "--write", "--format", "json", extra_env=env)
    outputs.append(first.text)
    report = json.loads(first.out)
    assert first.code == 0, report["invalid"] or report["fatal"] or first.err
    verdicts = {t["name"]: t["verdict"] for t in report["trusts"]}
    assert verdicts == {"Trust_1": "held", "Trust_2": "held", "Trust_3": "not held",
                        "Trust_4": "not held"}, report["trusts"]
    wrong = next(t for t in report["trusts"] if t["name"] == WRONG_KEY)
    assert any("does not match the hub's" in r for r in wrong["reasons"]), wrong
    assert "cannot redeliver" in report["not_held_means"]
    assert report["predicted_plan"]["actions"] == []
    assert report["written"]["manifest"] is True

    # the manifest describes what runs, and validates
    adopted = box.load_manifest()
    assert adopted.hub.trust_registry == real_registry
    assert adopted.flip.ref == "v2.3.0"
    assert (adopted.hub.images.hub_tag, adopted.hub.images.fl_tag) == ("v2.3.0", "v2.3.0")
    assert adopted.hub.domain == DOMAIN
    assert adopted.hub.fl_kits.date == "2025-06-01"
    assert adopted.hub.fl_kits.bucket == "flipdev-aicentre"
    for spec in TRUSTS:
        t = adopted.trust(spec.name)
        assert t is not None and t.public_ip == spec.public_ip and t.region == spec.region
        if spec.kind != "tre":
            assert t.fl_kit_slot == spec.name
            assert t.settings["NUM_AVAILABLE_GPUS"] == "0"
            assert t.settings["BASE_IMAGES_DOWNLOAD_DIR"] == "./data/trust"
    valid = box.cli("validate", str(box.manifest_path))
    assert valid.code == 0, valid.text

    # the escrow holds the two good hosts' kits, as their kit files have them; nothing else
    held = escrow(box)
    assert sorted(held) == [f"/flipgitops/{ENV}/trusts/{n}/{k}"
                            for n in ("Trust_1", "Trust_2") for k in ("kit", "local")]
    for name in ("Trust_1", "Trust_2"):
        kit_file = flipway[name].kit_file
        assert kit_file is not None
        values = kit_values(kit_file)
        kit, _ = held[f"/flipgitops/{ENV}/trusts/{name}/kit"]
        assert kit["trust_api_key"] == values["TRUST_API_KEY"] == seed.trust_keys[name]
        assert kit["trust_internal_service_key"] == values["TRUST_INTERNAL_SERVICE_KEY"]
        assert (kit["fl_kit_slot"], kit["fl_kit_slot_number"]) == (name, int(name[-1]))
        assert kit["trust_id"] == values["EXPECTED_TRUST_ID"]
        local, _ = held[f"/flipgitops/{ENV}/trusts/{name}/local"]
        assert local and all(values[k] == v for k, v in local.items())
    doc, etag = ledger(box)
    assert doc is not None
    entries = doc["trusts"]
    assert {n: (e["held"], e["source"]) for n, e in entries.items()} == {
        "Trust_1": (True, "adopt"), "Trust_2": (True, "adopt"),
        "Trust_3": (False, "adopt"), "Trust_4": (False, "adopt")}

    # plan leaves the world alone. The trusts FLIP set up are in sync (the TRE whose key
    # flipgitops does not hold is a note, not drift); the one finding is the host whose kit
    # key the hub rejects: its trust-api gets 401s, so plan (like drift) exits 2 for it.
    plan = box.cli("plan", "--env", ENV, extra_env=env)
    outputs.append(plan.text)
    assert plan.code == 2, plan.text
    assert "Plan: 0 actions" in plan.out
    assert "Trust_4 is registered on the hub but its key is not held by flipgitops" in plan.out
    advisories = plan.out.split("Advisories (reported, never acted on):\n", 1)[1]
    advisories = advisories.split("\n\n", 1)[0].strip().splitlines()
    assert advisories and all(WRONG_KEY in line for line in advisories), advisories
    assert any("rejected by the hub" in line for line in advisories), advisories

    # adopting again changes nothing
    again = box.cli("adopt", "--env", ENV, "--write", "--format", "json", extra_env=env)
    outputs.append(again.text)
    assert again.code == 0, again.text
    second = json.loads(again.out)
    assert second["diff"] == "" and second["edits"] == []
    assert second["written"]["escrow"] == [] and second["written"]["ledger"] == []
    assert sorted(second["written"]["escrow_unchanged"]) == ["Trust_1", "Trust_2"]
    assert second["written"]["manifest"] is False
    assert {k: v[1] for k, v in escrow(box).items()} == {k: v[1] for k, v in held.items()}
    assert ledger(box)[1] == etag

    # nothing on the hub or any host changed, and no secret was shown anywhere
    assert hosts_snapshot(box, flipway) == hosts_before
    assert hub_snapshot(box) == hub_before
    for name, t in flipway.items():
        if t.kit_file is not None:
            assert not (box.flip_root(name) / ".flipgitops").exists()
    assert_no_secret([*outputs, box.manifest_path.read_text()], secrets)

    # The operator mends the wrong-key host the FLIP way (the hub's key back in its kit
    # file, `make up-trust` again); adopt then holds it too, and plan finds the deployment,
    # FLIP-made from end to end, in sync: exit 0.
    bad = flipway[WRONG_KEY]
    assert bad.kit_file is not None
    set_kit_value(bad.kit_file, "TRUST_API_KEY", seed.trust_keys[WRONG_KEY])
    docker = shlex.split(box.docker(WRONG_KEY))
    fp.up_trust(docker, bad.kit_file.parent, bad.kit_file, code="UCLH", ec2=False)
    verdict = fp.wait_for_trust_api(docker, bad.kit_file.parent, bad.kit_file, code="UCLH",
                                    ec2=False)
    assert "Authenticated to hub as trust 'Trust_3'" in verdict, verdict
    mended = box.cli("adopt", "--env", ENV, "--write", "--format", "json", extra_env=env)
    assert mended.code == 0, mended.text
    written = json.loads(mended.out)["written"]
    assert written["ledger"] == [WRONG_KEY], mended.out
    assert written["escrow"] == [f"/flipgitops/{ENV}/trusts/{WRONG_KEY}/kit",
                                 f"/flipgitops/{ENV}/trusts/{WRONG_KEY}/local"], mended.out
    in_sync = box.cli("plan", "--env", ENV, extra_env=env)
    assert in_sync.code == 0, in_sync.text
    assert "Plan: 0 actions" in in_sync.out and "Advisories" not in in_sync.out
    assert_no_secret([mended.text, in_sync.text, box.manifest_path.read_text()], secrets)
