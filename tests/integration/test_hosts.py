"""Trust hosts through real ansible-runner runs of the real playbooks (connection local).

Every host is a temporary flip_root on this machine whose container CLI is the docker
stand-in; an unreachable host is ssh to a closed loopback port.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from flipgitops.adapters.aws_session import Clients
from flipgitops.adapters.hosts import (
    HostResult,
    HostTarget,
    HostTask,
    gather_facts,
    run_host_action,
)
from flipgitops.adapters.secret_refs import SecretRefError, SecretRefs
from flipgitops.errors import HostError
from flipgitops.model.manifest import TrustServices
from flipgitops.model.observed import ObservedHost
from flipgitops.model.plan import ActionKind as K
from flipgitops.sandbox.moto_server import MotoServer
from tests.hostfixtures import (
    host_vars,
    make_keys,
    make_local_host,
    make_unreachable_host,
    sha256_hex,
    write_trust_env,
)

pytestmark = pytest.mark.slow

TRUST_SERVICES = {"trust-api", "imaging-api", "data-access-api", "fl-client", "orthanc"}


@pytest.fixture(autouse=True)
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Route tempfile (hence ansible-runner's private data dirs) under this test's tmp_path."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    yield scratch
    assert not list(scratch.glob("flipgitops-ansible-*")), "a private_data_dir was left behind"


def target(tmp_path: Path, name: str) -> HostTarget:
    return HostTarget(trust=name, host=make_local_host(tmp_path, name), fl_kit_slot=name)


def act(kind: str, targets: list[HostTarget], tmp_path: Path, *, check: bool = False,
        secrets: dict[str, dict[str, str]] | None = None, **var_overrides: object
        ) -> dict[str, HostResult]:
    tasks = [
        HostTask(target=t, vars=host_vars(t.trust, **var_overrides),
                 secrets=(secrets or {}).get(t.trust, {}))
        for t in targets
    ]
    return run_host_action(kind, tasks, base_dir=tmp_path, check=check)


def facts(t: HostTarget, tmp_path: Path) -> ObservedHost:
    return gather_facts([t], base_dir=tmp_path)[t.trust]


def deploy(t: HostTarget, tmp_path: Path, keys: dict[str, str], **overrides: object) -> None:
    for kind in (K.HOST_PROVISION, K.HOST_DELIVER, K.HOST_START_STACK):
        result = act(kind, [t], tmp_path, secrets={t.trust: keys}, **overrides)[t.trust]
        assert result.ok, result.message


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes | None]]:
    out: dict[str, tuple[int, int, bytes | None]] = {}
    for p in sorted(root.rglob("*")):
        st = p.lstat()
        out[str(p)] = (st.st_mode, st.st_mtime_ns, p.read_bytes() if p.is_file() else None)
    return out


def test_fresh_host_has_nothing_but_docker_and_nothing_to_stop(tmp_path: Path) -> None:
    t = target(tmp_path, "Trust_1")
    h = facts(t, tmp_path)
    assert h.reachable and h.reason is None
    assert h.docker_present
    assert not (h.flip_root_present or h.kit_present or h.env_file_present)
    assert h.trust_api_key_sha256 is None and h.containers == () and h.polling_ok is None
    stop = act(K.HOST_STOP_STACK, [t], tmp_path)["Trust_1"]
    assert stop.ok and not stop.changed


def test_missing_container_cli_is_reported(tmp_path: Path) -> None:
    host = make_local_host(tmp_path, "Trust_1", docker=str(tmp_path / "no-such-docker"))
    t = HostTarget("Trust_1", host, "Trust_1")
    assert not facts(t, tmp_path).docker_present
    result = act(K.HOST_PROVISION, [t], tmp_path)["Trust_1"]
    assert not result.ok and "not runnable" in result.message


def test_lifecycle_deploy_upgrade_rotate_restart_stop(tmp_path: Path) -> None:
    t = target(tmp_path, "Trust_1")
    keys = make_keys("gen1")
    deploy(t, tmp_path, keys)

    h = facts(t, tmp_path)
    assert h.reachable and h.flip_root_present and h.docker_present and h.kit_present
    assert h.env_file_present and h.env_file_mode == "0600"
    assert h.trust_api_key_sha256 == sha256_hex(keys["trust_api_key"])
    assert h.aes_key_sha256 == sha256_hex(keys["aes_key_base64"])
    assert (h.trust_name, h.hub_url) == ("Trust_1", "https://app.flip.example.org")
    assert (h.docker_tag, h.docker_fl_tag) == ("v2.3.0", "v2.3.0")
    assert {c.service for c in h.containers} == TRUST_SERVICES
    assert all(c.state == "running" and c.tag == "v2.3.0" for c in h.containers)
    assert h.polling_ok is True
    root = Path(t.host.flip_root)
    assert (root / "services" / "Trust_1" / "flipgitops-kit.json").is_file()
    assert stat.S_IMODE((root / "trust" / ".env").stat().st_mode) == 0o600

    # Level-based: a second pass changes nothing.
    for kind in (K.HOST_PROVISION, K.HOST_DELIVER, K.HOST_START_STACK):
        again = act(kind, [t], tmp_path, secrets={"Trust_1": keys})["Trust_1"]
        assert again.ok and not again.changed, (kind, again.message)
    verify = act(K.HOST_VERIFY_POLLING, [t], tmp_path)["Trust_1"]
    assert verify.ok and not verify.changed

    # Upgrade: start_stack alone moves env tags and containers (services may be the manifest's
    # model; a disabled service's container goes away).
    up = act(K.HOST_START_STACK, [t], tmp_path, docker_tag="v2.4.0", docker_fl_tag="v2.4.0",
             services=TrustServices(orthanc=False, xnat=True))
    assert up["Trust_1"].ok and up["Trust_1"].changed
    # Redeliver settings without secrets: the keys stay.
    redeliver = act(K.HOST_DELIVER, [t], tmp_path, docker_tag="v2.4.0", docker_fl_tag="v2.4.0",
                    hub_url="https://new-hub.example.org")["Trust_1"]
    assert redeliver.ok and redeliver.changed
    h = facts(t, tmp_path)
    assert (h.docker_tag, h.docker_fl_tag) == ("v2.4.0", "v2.4.0")
    assert {c.tag for c in h.containers} == {"v2.4.0"}
    assert {c.service for c in h.containers} == TRUST_SERVICES - {"orthanc"} | {"xnat"}
    assert h.hub_url == "https://new-hub.example.org"
    assert h.trust_api_key_sha256 == sha256_hex(keys["trust_api_key"])

    # Rotation: deliver the new key (a no_log change still counts), recreate trust-api.
    new = make_keys("gen2")
    rotated = act(K.HOST_DELIVER, [t], tmp_path, secrets={"Trust_1": new}, docker_tag="v2.4.0",
                  docker_fl_tag="v2.4.0", hub_url="https://new-hub.example.org")["Trust_1"]
    assert rotated.ok and rotated.changed
    restart = act(K.HOST_RESTART_TRUST_API, [t], tmp_path)["Trust_1"]
    assert restart.ok and restart.changed
    h = facts(t, tmp_path)
    assert h.trust_api_key_sha256 == sha256_hex(new["trust_api_key"])
    assert h.polling_ok is True

    # Stop: no containers, no polling; stopping again is a no-op; verify fails with a reason.
    stop = act(K.HOST_STOP_STACK, [t], tmp_path)["Trust_1"]
    assert stop.ok and stop.changed
    h = facts(t, tmp_path)
    assert h.containers == () and not h.stack_running and h.polling_ok is False
    assert not act(K.HOST_STOP_STACK, [t], tmp_path)["Trust_1"].changed
    failed = act(K.HOST_VERIFY_POLLING, [t], tmp_path, verify_retries=1, verify_delay=0)
    assert not failed["Trust_1"].ok
    assert "trust-api is not running" in failed["Trust_1"].message


def test_check_mode_changes_nothing(tmp_path: Path) -> None:
    t = target(tmp_path, "Trust_1")
    keys = make_keys("check")
    root = Path(t.host.flip_root)
    for kind in (K.HOST_PROVISION, K.HOST_DELIVER):
        dry = act(kind, [t], tmp_path, check=True, secrets={"Trust_1": keys})["Trust_1"]
        assert dry.ok and dry.changed and "would change" in dry.message, dry.message
    assert not root.exists()

    deploy(t, tmp_path, keys)
    before = snapshot(root)
    new = make_keys("check-2")
    plans = [
        act(K.HOST_DELIVER, [t], tmp_path, check=True, secrets={"Trust_1": new}),
        act(K.HOST_START_STACK, [t], tmp_path, check=True, docker_tag="v9.9.9"),
        act(K.HOST_STOP_STACK, [t], tmp_path, check=True),
    ]
    assert all(p["Trust_1"].ok and p["Trust_1"].changed for p in plans), plans
    assert snapshot(root) == before


def test_unreachable_host_is_unknown_and_fails_alone(tmp_path: Path) -> None:
    ok = target(tmp_path, "Trust_1")
    down = HostTarget("Trust_2", make_unreachable_host(tmp_path, "Trust_2"), "Trust_2")
    keyless = HostTarget("Trust_3", make_unreachable_host(tmp_path, "Trust_3").model_copy(
        update={"ssh_key": "env:FLIPGITOPS_TEST_NO_SUCH_KEY"}), "Trust_3")
    observed = gather_facts([ok, down], base_dir=tmp_path)
    assert observed["Trust_1"].reachable
    assert observed["Trust_2"].reachable is False
    assert observed["Trust_2"].reason and "127.0.0.1" in observed["Trust_2"].reason
    results = act(K.HOST_PROVISION, [ok, down, keyless], tmp_path)
    assert results["Trust_1"].ok
    assert not results["Trust_2"].ok and results["Trust_2"].message.startswith("unreachable: ")
    assert not results["Trust_3"].ok
    assert "FLIPGITOPS_TEST_NO_SUCH_KEY is not set" in results["Trust_3"].message


def test_ssh_keys_resolve_from_ssm_and_secrets_manager(moto: MotoServer, tmp_path: Path) -> None:
    """ssm:/ and secretsmanager:name#key references reach ssh as a private key file; a bad
    reference fails only its own host, naming the reference and never the value."""
    key = "\n".join(["-----BEGIN OPENSSH " + "PRIVATE KEY-----", "b3BlbnNzaC1rZXktdjEAAAAA" * 3,
                     "-----END OPENSSH " + "PRIVATE KEY-----"])
    clients = Clients(region="eu-west-2")
    clients.ssm.put_parameter(Name="/flip/dev/ssh", Value=key, Type="SecureString")
    clients.secretsmanager.create_secret(Name="flip/ssh", SecretString=json.dumps({"t3": key}))

    def ssh_target(name: str, ref: str) -> HostTarget:
        host = make_unreachable_host(tmp_path, name).model_copy(update={"ssh_key": ref})
        return HostTarget(name, host, name, region="eu-west-2")

    targets = [ssh_target("Trust_2", "ssm:/flip/dev/ssh"),
               ssh_target("Trust_3", "secretsmanager:flip/ssh#t3"),
               ssh_target("Trust_4", "ssm:/flip/dev/missing"),
               ssh_target("Trust_5", "secretsmanager:flip/ssh#nokey")]
    observed = gather_facts(targets, base_dir=tmp_path)
    reasons = {name: h.reason or "" for name, h in observed.items()}
    for name in ("Trust_2", "Trust_3"):  # the key resolved: ssh itself was refused
        assert not observed[name].reachable and "127.0.0.1" in reasons[name], reasons[name]
        assert "ssh_key" not in reasons[name], reasons[name]
    assert "/flip/dev/missing does not exist" in reasons["Trust_4"]
    assert "'nokey'" in reasons["Trust_5"]
    assert not [n for n, r in reasons.items() if "PRIVATE KEY" in r or "b3BlbnNz" in r]


def test_a_secret_reference_is_fetched_once_per_run(moto: MotoServer) -> None:
    clients = Clients(region="eu-west-2")
    clients.ssm.put_parameter(Name="/flip/k", Value="s3cr3t-value", Type="SecureString")
    refs = SecretRefs(clients=clients)
    assert refs.resolve("ssm:/flip/k") == "s3cr3t-value"
    clients.ssm.delete_parameter(Name="/flip/k")
    assert refs.resolve("ssm:/flip/k") == "s3cr3t-value", "500 trusts sharing a key cost one call"
    assert "s3cr3t" not in repr(refs)
    with pytest.raises(SecretRefError, match="/flip/k does not exist"):
        SecretRefs(clients=clients).resolve("ssm:/flip/k")


def test_env_file_mode_drift_is_seen_and_fixed(tmp_path: Path) -> None:
    t = target(tmp_path, "Trust_1")
    keys = make_keys("mode")
    env = write_trust_env(t.host, "Trust_1", keys, mode=0o644)
    h = facts(t, tmp_path)
    assert h.kit_present and h.env_file_mode == "0644"
    assert h.trust_api_key_sha256 == sha256_hex(keys["trust_api_key"])
    assert act(K.HOST_DELIVER, [t], tmp_path, secrets={"Trust_1": keys})["Trust_1"].ok
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert facts(t, tmp_path).env_file_mode == "0600"


def test_bad_requests_are_refused_before_running(tmp_path: Path) -> None:
    t = target(tmp_path, "Trust_1")
    with pytest.raises(HostError):
        run_host_action("hub.redeploy", [], base_dir=tmp_path)
    missing = run_host_action(K.HOST_DELIVER, [HostTask(t, {"trust_name": "Trust_1"})],
                              base_dir=tmp_path)
    assert set(missing) == {"Trust_1"}
    assert not missing["Trust_1"].ok and "missing vars" in missing["Trust_1"].message
    half = act(K.HOST_DELIVER, [t], tmp_path, secrets={"Trust_1": {"trust_api_key": "x" * 40}})
    assert not half["Trust_1"].ok
    with pytest.raises(HostError):
        run_host_action(K.HOST_PROVISION, [HostTask(t, {}), HostTask(t, {})], base_dir=tmp_path)
    assert not Path(t.host.flip_root).exists()


def test_failing_host_is_isolated_and_secrets_never_leak(
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    private_tmp: Path,
) -> None:
    caplog.set_level(logging.DEBUG)
    t = target(tmp_path, "Trust_1")
    t4 = target(tmp_path, "Trust_4")
    keys = make_keys("leak-canary")
    keys4 = make_keys("leak-canary-4")
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    bad = HostTarget("Trust_2", make_local_host(tmp_path, "Trust_2").model_copy(
        update={"flip_root": str(blocker / "flip")}), "Trust_2")
    bad_keys = make_keys("leak-canary-2")
    secrets = {"Trust_1": keys, "Trust_2": bad_keys, "Trust_4": keys4}
    hosts = [t, bad, t4]
    collected: list[object] = []
    for kind in (K.HOST_PROVISION, K.HOST_DELIVER, K.HOST_START_STACK, K.HOST_VERIFY_POLLING):
        results = act(kind, hosts, tmp_path, secrets=secrets, verify_retries=1, verify_delay=0)
        assert results["Trust_1"].ok and results["Trust_4"].ok, results
        assert not results["Trust_2"].ok and results["Trust_2"].message.startswith("failed: ")
        collected.append(results)
    collected.append(act(K.HOST_DELIVER, hosts, tmp_path, check=True, secrets=secrets))
    observed = gather_facts(hosts, base_dir=tmp_path)
    collected.append(observed)
    for good, good_keys in ((t, keys), (t4, keys4)):
        assert observed[good.trust].polling_ok is True
        assert observed[good.trust].trust_api_key_sha256 == sha256_hex(good_keys["trust_api_key"])
    assert observed["Trust_2"].reachable and not observed["Trust_2"].flip_root_present

    out, err = capfd.readouterr()
    env_files = {Path(h.host.flip_root) / "trust" / ".env" for h in (t, t4)}
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file() and p not in env_files]
    assert leftovers, "expected the kit marker, compose file and stand-in state"
    for secret in (*keys.values(), *bad_keys.values(), *keys4.values()):
        assert secret not in repr(collected)
        assert secret not in out and secret not in err
        assert secret not in caplog.text
        for p in leftovers:
            assert secret.encode() not in p.read_bytes(), p
    assert keys["trust_api_key"] in (Path(t.host.flip_root) / "trust" / ".env").read_text()
    assert not any(p.startswith("flipgitops-ansible-") for p in os.listdir(private_tmp))
