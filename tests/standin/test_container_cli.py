"""The container CLI stand-in against FLIP-shaped files: refusals, records, recreates, hashes."""

from __future__ import annotations

import json
import re
import shutil
import stat
from pathlib import Path

import git
from standin_helpers import SERVICES, Host, Kit, trust_env

from flipgitops.sandbox.flip.checkout import FlipCheckout, render_kit, write_kit
from flipgitops.sandbox.flip.daemon import recorded_environment, set_host_gpus, value_digest

HUB_KEYS = {"TRUST_API_KEY", "AES_KEY_BASE64", "CENTRAL_HUB_API_URL", "TRUST_API_KEY_HEADER"}


def _labels(row: dict[str, str]) -> dict[str, str]:
    # compose joins labels with ","; a label value here may itself hold "," (config_files).
    pairs = re.findall(r"(com\.docker\.compose\.[a-z_.-]+)=(.*?)(?=,com\.docker\.|$)",
                       row["Labels"])
    return dict(pairs)


def test_up_refuses_naming_every_missing_variable_and_records_nothing(
        host: Host, kit: Kit, checkout: FlipCheckout) -> None:
    host.ready_network()
    lines = render_kit({**kit.values, "TRUST_API_KEY": ""}).splitlines()
    lines = [line for line in lines if not line.startswith("POLL_INTERVAL_SECONDS=")]
    write_kit(kit.path, "\n".join(lines) + "\n")
    env = trust_env()
    del env["DOCKER_FL_CLIENT_NAME"]
    result = host.compose(kit, checkout.compose_files(), "up", "-d", env=env)
    assert result.rc == 1
    first = result.err.splitlines()[0]
    named = first.split("empty: ", 1)[1].split(". ", 1)[0].split(", ")
    assert sorted(named) == ["DOCKER_FL_CLIENT_NAME", "POLL_INTERVAL_SECONDS", "TRUST_API_KEY"]
    assert "TRUST_API_KEY: used by trust-api" in result.err
    assert host.ps() == {}
    assert list((host.daemon_dir / "projects").iterdir()) == []
    assert list((host.daemon_dir / "containers").iterdir()) == []
    assert host.pids() == []


def test_up_records_flips_project_and_who_sees_which_secret(
        host: Host, kit: Kit, checkout: FlipCheckout) -> None:
    host.ready_network()
    result = host.compose(kit, checkout.compose_files(), "up", "-d", "--pull", "always")
    assert result.rc == 0, result.err
    rows = host.ps()
    assert set(rows) == SERVICES
    row = rows["fl-client-net-1"]
    assert (row["Name"], row["Project"], row["State"]) == (
        "trust1-fl-client-net-1-1", "trust1", "running")
    assert row["Image"] == "ghcr.io/londonaicentre/flare-fl-client:v2.4.0"
    labels = _labels(row)
    assert labels["com.docker.compose.project"] == "trust1"
    assert labels["com.docker.compose.service"] == "fl-client-net-1"
    assert re.fullmatch(r"[0-9a-f]{64}", labels["com.docker.compose.config-hash"])
    fl_env = recorded_environment(host.daemon_dir, "trust1", "fl-client-net-1")
    api_env = recorded_environment(host.daemon_dir, "trust1", "trust-api")
    assert not HUB_KEYS & set(fl_env)
    assert "TRUST_INTERNAL_SERVICE_KEY" in fl_env
    assert set(fl_env) >= {"FL_SITE_PRIVACY_POLICY", "NET_ID", "IMAGES_DIR"}
    assert set(api_env) >= HUB_KEYS
    assert api_env["TRUST_API_KEY"] == value_digest(kit.values["TRUST_API_KEY"])
    assert "EXPECTED_TRUST_ID" not in api_env  # FLIP's compose does not pass it
    for path in host.daemon_dir.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (0o700 if path.is_dir() else 0o600), path
    assert " Container trust1-trust-api-1  Started" in result.err


def test_network_and_swarm_refusals_match_docker(
        host: Host, kit: Kit, checkout: FlipCheckout) -> None:
    assert host.docker("info", "--format", "{{.Swarm.LocalNodeState}}").out == "inactive\n"
    missing = host.docker("network", "inspect", "deploy_trust-network-1")
    assert missing.rc == 1 and "network deploy_trust-network-1 not found" in missing.err
    up = host.compose(kit, checkout.compose_files(), "up", "-d")
    assert up.rc == 1
    assert up.err.strip() == (
        "network deploy_trust-network-1 declared as external, but could not be found")
    overlay = host.docker("network", "create", "--driver", "overlay", "--attachable",
                          "deploy_trust-network-1")
    assert overlay.rc == 1 and "This node is not a swarm manager" in overlay.err
    assert host.docker("swarm", "init", "--advertise-addr", "127.0.0.1").rc == 0
    assert host.docker("info", "--format", "{{.Swarm.LocalNodeState}}").out == "active\n"
    assert host.docker("swarm", "init").rc == 1
    created = host.docker("network", "create", "--driver", "overlay", "--attachable",
                          "deploy_trust-network-1")
    assert created.rc == 0
    again = host.docker("network", "create", "--driver", "overlay", "deploy_trust-network-1")
    assert again.rc == 1 and "already exists" in again.err
    inspect = host.docker("network", "inspect", "deploy_trust-network-1")
    assert inspect.rc == 0 and json.loads(inspect.out)[0]["Driver"] == "overlay"
    assert host.compose(kit, checkout.compose_files(), "up", "-d").rc == 0
    busy = host.docker("network", "rm", "deploy_trust-network-1")
    assert busy.rc == 1 and "has active endpoints" in busy.err
    assert host.compose(kit, checkout.compose_files(), "down", "--remove-orphans").rc == 0
    assert host.docker("network", "rm", "deploy_trust-network-1").rc == 0


def test_a_kit_change_recreates_only_the_services_that_use_it(
        host: Host, kit: Kit, checkout: FlipCheckout) -> None:
    host.ready_network()
    files = checkout.compose_files()
    assert host.compose(kit, files, "up", "-d").rc == 0
    before = host.ps()

    def hashes() -> dict[str, str]:
        out = host.compose(kit, files, "config", "--hash", "*")
        assert out.rc == 0, out.err
        return dict(line.split(" ", 1) for line in out.out.splitlines())

    recorded = {s: _labels(r)["com.docker.compose.config-hash"] for s, r in before.items()}
    assert hashes() == recorded
    kit.rewrite(POLL_INTERVAL_SECONDS="2")
    after_change = hashes()
    assert {s for s in SERVICES if after_change[s] != recorded[s]} == {"trust-api"}
    single = host.compose(kit, files, "config", "--hash", "trust-api")
    assert single.out == f"trust-api {after_change['trust-api']}\n"
    result = host.compose(kit, files, "up", "-d")
    assert result.rc == 0, result.err
    assert re.findall(r"Container (\S+)  Recreated", result.err) == ["trust1-trust-api-1"]
    assert sorted(re.findall(r"Container trust1-(\S+)-1  Running", result.err)) == sorted(
        SERVICES - {"trust-api"})
    after = host.ps()
    assert after["trust-api"]["ID"] != before["trust-api"]["ID"]
    assert all(after[s]["ID"] == before[s]["ID"] for s in SERVICES - {"trust-api"})
    assert hashes() == {s: _labels(r)["com.docker.compose.config-hash"]
                        for s, r in after.items()}


def test_release_upgrade_recreates_the_fl_client_only(
        host: Host, kit: Kit, checkout: FlipCheckout, tmp_path: Path) -> None:
    """v2.3.0 -> v2.4.0 changes the nvflare overlay (and a bind-mounted file compose ignores)."""
    host.ready_network()
    old = tmp_path / "trust-v2.3.0"
    repo = git.Repo(checkout.root)
    for rel in repo.git.ls_tree("-r", "--name-only", "v2.3.0", "trust/").splitlines():
        target = old.parent / rel.replace("trust/", "trust-v2.3.0/", 1)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(repo.git.show(f"v2.3.0:{rel}") + "\n")
    old_files = [old / "deploy" / f.name for f in checkout.compose_files()]
    assert host.compose(kit, old_files, "up", "-d").rc == 0
    upgrade = host.compose(kit, checkout.compose_files(), "up", "-d")
    assert upgrade.rc == 0, upgrade.err
    assert re.findall(r"Container (\S+)  Recreated", upgrade.err) == ["trust1-fl-client-net-1-1"]


def test_orphans_gpu_kit_mounts_and_ports(
        host: Host, kit: Kit, checkout: FlipCheckout) -> None:
    host.ready_network()
    files = checkout.compose_files()
    gpu = host.compose(kit, checkout.compose_files(gpu=True), "up", "-d")
    assert gpu.rc == 1
    assert 'could not select device driver "nvidia" with capabilities: [[gpu]]' in gpu.err
    shutil.rmtree(Path(kit.values["FL_KIT_DIR"]) / "net-1" / "services" / "Trust_1" / "startup")
    nokit = host.compose(kit, files, "up", "-d")
    assert nokit.rc == 1 and "bind source path does not exist" in nokit.err
    assert "Trust_1/startup" in nokit.err and host.ps() == {}
    (Path(kit.values["FL_KIT_DIR"]) / "net-1" / "services" / "Trust_1" / "startup").mkdir()
    set_host_gpus(host.daemon_dir, 1)
    assert host.compose(kit, checkout.compose_files(gpu=True), "up", "-d").rc == 0
    base_only = files[:1]
    kept = host.compose(kit, base_only, "up", "-d")
    assert "Found orphan containers ([trust1-fl-client-net-1-1])" in kept.err
    assert "fl-client-net-1" in host.ps()
    removed = host.compose(kit, base_only, "up", "-d", "--remove-orphans")
    assert removed.rc == 0 and "trust1-fl-client-net-1-1  Removed" in removed.err
    assert "fl-client-net-1" not in host.ps()
    host.docker("network", "create", "--driver", "overlay", "deploy_trust-network-2")
    clash = host.compose(kit, files, "up", "-d", project="trust2", env=trust_env(slot=2))
    assert clash.rc == 1 and "port is already allocated" in clash.err
    assert host.ps("trust2") == {}


def test_logs_stop_and_down(host: Host, kit: Kit, checkout: FlipCheckout) -> None:
    host.ready_network()
    files = checkout.compose_files()
    assert host.compose(kit, files, "up", "-d").rc == 0
    stop = host.docker("compose", "-p", "trust1", "stop", "orthanc")
    assert stop.rc == 0 and "trust1-orthanc-1  Stopped" in stop.err
    running = host.ps(all_=False)
    assert "orthanc" not in running and "omop-db" in running
    assert host.ps()["orthanc"]["Status"].startswith("Exited (0)")
    assert host.docker("stop", "trust1-loki-1").out == "trust1-loki-1\n"
    assert host.ps()["loki"]["State"] == "exited"
    restart = host.compose(kit, files, "up", "-d")
    assert "trust1-orthanc-1  Started" in restart.err
    assert {r["State"] for r in host.ps().values()} == {"running"}
    down = host.docker("compose", "-p", "trust1", "down", "--remove-orphans")
    assert down.rc == 0 and down.err.count("Removed") == len(SERVICES)
    assert host.ps() == {} and list((host.daemon_dir / "containers").iterdir()) == []
    unknown = host.docker("compose", "-p", "trust1", "up")
    assert unknown.rc == 1 and "run `compose up -d`" in unknown.err
    bad = host.docker("frobnicate")
    assert bad.rc == 1 and "is not a docker command" in bad.err
