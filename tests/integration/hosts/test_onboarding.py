"""A trust onboarded on a local host, step by step, against the stand-in FLIP.

provision → deploy_release → write_kit_file → deliver_fl_kit → start_stack → verify, each
through its executor (one real ansible-runner run of the real playbook), then what FLIP's
side recorded is checked: the stand-in CLI refuses `up` when a variable is unset or a mount
is missing, so a recorded project means the kit file is complete.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import boto3
import git
import pytest

from flipgitops.adapters import kit_listing
from flipgitops.adapters.kit_source import S3KitSource
from flipgitops.model.actions import (
    ActionKind,
    DeliverFlKitParams,
    StartStackParams,
    WriteKitFileParams,
)
from flipgitops.sandbox.flip import kits as standin_kits
from flipgitops.sandbox.flip.daemon import Daemon, recorded_environment
from flipgitops.sandbox.moto_server import MotoServer
from tests.integration.hosts.hostsandbox import (
    BUCKET,
    REGION,
    HostWorld,
    act,
    bare_world,
    kit_fingerprint,
    onboard,
    run_action,
)
from tests.leaksearch import grep_tree
from tests.unit.hosts.hostworld import KIT_DATE

K = ActionKind


def tracked_trust_files(checkout: Path, ref: str) -> dict[str, bytes]:
    repo = git.Repo(checkout)
    tree = repo.commit(ref).tree / "trust"
    return {str(b.path)[len("trust/"):]: b.data_stream.read() for b in tree.traverse()
            if isinstance(b, git.Blob)}


@pytest.mark.slow
def test_onboarding_runs_flips_stack_with_flips_kit(host_world: HostWorld, clean_tmp: None
                                                     ) -> None:
    world = host_world
    root = world.flip_root()
    # A stray file from some earlier kit: FLIP's sync wipes net-1 first.
    stray = root / "fl-kit" / "net-1" / "services" / "Trust_9" / "startup" / "old.key"
    stray.parent.mkdir(parents=True)
    stray.write_text("left over\n")

    outcomes = onboard(world)
    assert world.escrow.writes == ["Trust_1"]  # trust-local credentials minted and escrowed
    print("\nmodule invocations per host per onboarding:", world.hosts.module_invocations)
    assert world.hosts.module_invocations == {"Trust_1": 6}
    assert all(o.changed for k, o in outcomes.items() if k != "host.verify")

    # trust/ is exactly the checkout's tracked files at the ref, plus the kit file.
    kit_file = root / "trust" / ".env.C1X.production"
    on_host = {str(p.relative_to(root / "trust")): p.read_bytes()
               for p in (root / "trust").rglob("*") if p.is_file() and p != kit_file}
    assert on_host == tracked_trust_files(world.checkout.root, world.manifest.flip.ref)
    assert stat.S_IMODE(kit_file.stat().st_mode) == 0o600
    assert (root / "config" / "observability" / "alloy" / "config.alloy").is_file()

    # The stand-in recorded project trust1 (it refuses `up` with an unset variable), with
    # the FL client, which got none of the hub credentials.
    project = Daemon(world.daemon_dir()).project("trust1")
    assert {"trust-api", "fl-client-net-1", "imaging-api"} <= set(project["containers"])
    fl_env = recorded_environment(world.daemon_dir(), "trust1", "fl-client-net-1")
    assert "TRUST_INTERNAL_SERVICE_KEY" in fl_env
    assert not {"TRUST_API_KEY", "AES_KEY_BASE64", "CENTRAL_HUB_API_URL"} & set(fl_env)
    assert {"TRUST_API_KEY", "AES_KEY_BASE64"} <= set(
        recorded_environment(world.daemon_dir(), "trust1", "trust-api"))

    # The FL kit is the bucket's slice byte for byte, with FLIP's dirs, and nothing else.
    net1 = root / "fl-kit" / "net-1"
    assert not stray.exists() and not (net1 / "services" / "Trust_9").exists()
    s3 = boto3.client("s3", endpoint_url=world.hub.moto_url, region_name=REGION)
    prefix = f"{standin_kits.nvflare_prefix(KIT_DATE)}Trust_1/"
    expected = {o["Key"][len(prefix):]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
                for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]}
    slot = net1 / "services" / "Trust_1"
    found = {str(p.relative_to(slot)): p.read_bytes() for p in slot.rglob("*") if p.is_file()}
    assert found == expected
    assert (slot / "transfer").is_dir() and not any((slot / "transfer").iterdir())
    assert stat.S_IMODE((slot / "startup" / "client.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((slot / "startup" / "start.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((slot / "startup" / "fed_client.json").stat().st_mode) == 0o644
    if os.geteuid() == 0:
        assert {p.stat().st_uid for p in slot.rglob("*")} == {1000}
    assert sorted(p.name for p in net1.iterdir()) == ["services"]

    # No secret anywhere but the 0600 kit file (the stand-in records hashes only).
    leaks = grep_tree(world.root, world.secrets(), skip={kit_file})
    assert leaks == []
    assert [n for n in os.listdir("/tmp") if n.startswith(f"flipgitops-ansible-{os.getpid()}-")] \
        == []

    # No process holds a secret in its argv (trust-api's get theirs in the environment).
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            assert not [s for s in world.secrets() if s.encode() in cmdline]

    # A second pass changes nothing.
    again = onboard(world)
    assert not any(o.changed for o in again.values()), {k: o.message for k, o in again.items()}
    assert world.escrow.writes == ["Trust_1"]  # minted once

    # A new kit in the bucket: redelivered, and the FL client (which mounted the old,
    # wiped directories) is recreated on it; trust-api is left alone.
    ids = {s: c["id"] for s, c in Daemon(world.daemon_dir()).project("trust1")[
        "containers"].items()}
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}startup/client.crt", Body=b"a new certificate\n")
    outcome = run_action(world, act(K.HOST_DELIVER_FL_KIT, "Trust_1", DeliverFlKitParams(
        date=KIT_DATE, slot="Trust_1", slot_number=1, backend="nvflare",
        source_fingerprint=kit_fingerprint(world))))
    assert outcome.ok and outcome.changed, outcome.message
    assert (slot / "startup" / "client.crt").read_bytes() == b"a new certificate\n"
    outcome = run_action(world, act(K.HOST_START_STACK, "Trust_1", StartStackParams(
        project="trust1", hub_tag="v2.3.0", fl_tag="v2.3.0")))
    assert outcome.ok and "FL client recreated" in outcome.message, outcome.message
    now = {s: c["id"] for s, c in Daemon(world.daemon_dir()).project("trust1")[
        "containers"].items()}
    assert now["fl-client-net-1"] != ids["fl-client-net-1"]
    assert now["trust-api"] == ids["trust-api"]


def test_a_kit_naming_another_slot_is_refused_before_the_host_changes(
        host_world: HostWorld) -> None:
    world = host_world
    s3 = boto3.client("s3", endpoint_url=world.hub.moto_url, region_name=REGION)
    standin_kits.write_foreign_fqsn(s3, BUCKET, KIT_DATE, "Trust_1", "Trust_2")
    net1 = world.flip_root() / "fl-kit" / "net-1"
    keep = net1 / "services" / "Trust_1" / "startup" / "client.key"
    keep.parent.mkdir(parents=True)
    keep.write_text("the kit in use\n")
    outcome = run_action(world, act(K.HOST_DELIVER_FL_KIT, "Trust_1", DeliverFlKitParams(
        date=KIT_DATE, slot="Trust_1", slot_number=1, backend="nvflare",
        source_fingerprint=kit_fingerprint(world))))
    assert not outcome.ok
    key = f"{standin_kits.nvflare_prefix(KIT_DATE)}Trust_1/startup/fed_client.json"
    assert f"s3://{BUCKET}/{key}" in outcome.message and "Trust_2" in outcome.message
    assert keep.read_text() == "the kit in use\n"
    assert world.hosts.module_invocations == {}  # the host was never contacted


def test_dry_run_contacts_no_host_and_escrows_nothing(host_world: HostWorld) -> None:
    world = host_world
    from flipgitops.engine.ports_hosts import dry_run_hosts

    world.hosts = dry_run_hosts(world.hosts)  # type: ignore[assignment]
    outcome = run_action(world, act(K.HOST_WRITE_KIT_FILE, "Trust_1",
                             WriteKitFileParams(credentials_generation=1)), dry_run=True)
    assert outcome.ok and outcome.changed and "would" in outcome.message
    assert world.escrow.writes == [] and not world.flip_root().exists()


def test_a_flower_kit_lands_as_flip_lays_it_out(tmp_path: Path, moto: MotoServer) -> None:
    world = bare_world(tmp_path, backend="flower")
    s3 = boto3.client("s3", endpoint_url=moto.url, region_name=REGION)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    standin_kits.write_flower_kits(s3, BUCKET, KIT_DATE, 3)
    world.kits = S3KitSource(s3)
    net1 = world.flip_root() / "fl-kit" / "net-1"
    (net1 / "keys").mkdir(parents=True)
    (net1 / "keys" / "supernode_credentials_3").write_text("another trust's key\n")
    objects = s3.list_objects_v2(Bucket=BUCKET)["Contents"]
    found, _ = kit_listing.slices("flower", KIT_DATE, objects, ["Trust_1"])
    outcome = run_action(world, act(K.HOST_DELIVER_FL_KIT, "Trust_1", DeliverFlKitParams(
        date=KIT_DATE, slot="Trust_1", slot_number=1, backend="flower",
        source_fingerprint=found["Trust_1"].fingerprint or "")))
    assert outcome.ok and outcome.changed, outcome.message
    files = sorted(str(p.relative_to(net1)) for p in net1.rglob("*") if p.is_file())
    assert files == ["certificates/ca.crt", "keys/supernode_credentials_1"]
    creds = net1 / "keys" / "supernode_credentials_1"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o640
    if os.geteuid() == 0:  # owner 1000, group of FLIP's Flower client (49999)
        assert (creds.stat().st_uid, creds.stat().st_gid) == (1000, 49999)
    assert world.state.ledger.delivered_kits == {"Trust_1": found["Trust_1"].fingerprint}
