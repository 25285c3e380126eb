"""What the host program's facts report about an onboarded host, and each way it can drift.

One host is onboarded for the module (the stand-in FLIP runs its stack); each test changes
one thing the way an operator or an incident would, gathers facts in one real run, checks
the fact that must show it, and puts the host back.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from flipgitops.adapters import hosts_build
from flipgitops.engine.executors import Outcome, load_executors
from flipgitops.engine.ports_hosts import HostTarget
from flipgitops.model.actions import ActionKind, StartStackParams, StopStackParams, VerifyParams
from flipgitops.model.observed import ObservedHost
from flipgitops.reconcilers.ansible.flipgitops_host import stack
from flipgitops.sandbox.moto_server import SANDBOX_ENV, MotoServer
from tests.integration.hosts.hostsandbox import HostWorld, act, build_world, onboard, run_action

pytestmark = pytest.mark.slow
KIT = ".env.C1X.production"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, _moto_session: MotoServer
          ) -> Iterator[HostWorld]:
    _moto_session.reset()
    patch = pytest.MonkeyPatch()
    for key, value in SANDBOX_ENV.items():
        patch.setenv(key, value)
    load_executors()
    worlds = build_world(tmp_path_factory.mktemp("facts"), _moto_session)
    w = next(worlds)
    w.hub.set_egress("Trust_1", "203.0.113.10")
    onboard(w)
    yield w
    worlds.close()
    patch.undo()


def gather(world: HostWorld) -> ObservedHost:
    trust = world.manifest.trusts[0]
    return world.hosts.gather([HostTarget.of(world.manifest, trust, world.root)])["Trust_1"]


def start(world: HostWorld) -> None:
    outcome = run_action(world, act(ActionKind.HOST_START_STACK, "Trust_1", StartStackParams(
        project="trust1", hub_tag="v2.3.0", fl_tag="v2.3.0")))
    assert outcome.ok, outcome.message


def verify(world: HostWorld, timeout: float | None = None) -> Outcome:
    from flipgitops.engine import host_executors

    saved = host_executors.VERIFY_TIMEOUT_SECONDS
    host_executors.VERIFY_TIMEOUT_SECONDS = timeout or saved
    try:
        return run_action(world, act(ActionKind.HOST_VERIFY, "Trust_1",
                                     VerifyParams(expect_trust="Trust_1")))
    finally:
        host_executors.VERIFY_TIMEOUT_SECONDS = saved


def flip_way(world: HostWorld, *args: str) -> subprocess.CompletedProcess[str]:
    """The stand-in CLI run exactly as FLIP's trust/Makefile runs docker compose."""
    trust_dir = world.flip_root() / "trust"
    text = (trust_dir / KIT).read_text()
    values = dict(line.split("=", 1) for line in text.splitlines()
                  if line and not line.startswith("#"))
    recipe = hosts_build.stack_recipe(HostTarget.of(world.manifest, world.manifest.trusts[0]))
    inv = stack.invocation(values, recipe, action="inspect", override_present=False,
                           docker_gid=os.getgid())
    return subprocess.run([*inv["argv"], *args], cwd=trust_dir, env={**os.environ, **inv["env"]},
                          capture_output=True, text=True, check=True)


def test_an_onboarded_host(world: HostWorld) -> None:
    facts = gather(world)
    assert facts.reachable, facts.reason
    assert facts.flip_root_present and facts.docker_present and facts.compose_present
    assert facts.swarm_active is True and facts.network_present is True
    release = world.release.resolve(world.checkout.root, "v2.3.0")
    assert facts.release.ref == "v2.3.0" and facts.release.commit == release.commit
    assert facts.release.tree_sha256 == release.tree_sha256 and facts.release.intact is True
    assert facts.release.compose_files == release.compose_files
    kit = facts.kit_file
    assert kit.present and kit.mode == "0600" and kit.has_sentinel and kit.placeholders == ()
    assert kit.values["DOCKER_TAG"] == "v2.3.0" and kit.values["FL_KIT_SLOT_NUMBER"] == "1"
    escrowed = world.escrow.kits["Trust_1"].kit
    assert kit.secret_sha256["TRUST_API_KEY"] == escrowed.api_key_sha256
    assert kit.secret_sha256["AES_KEY_BASE64"] == hashlib.sha256(
        world.seed.aes_key.encode()).hexdigest()
    assert not set(kit.values) & set(kit.secret_sha256)
    fl = facts.fl_kit
    assert fl.present and fl.content_sha256 == fl.delivered_sha256 and fl.stray == ()
    assert fl.fqsn == "Trust_1" and fl.slot == "Trust_1" and fl.backend == "nvflare"
    assert facts.project == "trust1"
    api = facts.container("trust-api")
    assert api is not None and api.state == "running" and api.tag == "v2.3.0"
    assert {c.service: c.config_hash for c in facts.containers} == facts.expected_config
    assert facts.trust_api.authenticated_as == "Trust_1"
    assert facts.trust_api.trust_id == world.seed.trust_ids["Trust_1"]
    assert not facts.trust_api.unauthorized
    assert facts.egress_ip == "203.0.113.10"
    assert facts.reaches_hub is True and facts.reaches_fl is True
    dumped = facts.model_dump_json()
    assert not [s for s in world.secrets() if s in dumped]


def test_kit_file_and_fl_kit_drift(world: HostWorld) -> None:
    kit_file = world.flip_root() / "trust" / KIT
    original = kit_file.read_text()
    start_sh = world.flip_root() / "fl-kit/net-1/services/Trust_1/startup/start.sh"
    script = start_sh.read_bytes()
    stray = world.flip_root() / "fl-kit/net-1/services/Trust_2"
    try:
        kit_file.write_text(original.replace("DOCKER_TAG=v2.3.0", "DOCKER_TAG=v2.9.9"))
        os.chmod(kit_file, 0o644)
        start_sh.write_bytes(script + b"echo tampered\n")
        stray.mkdir()
        facts = gather(world)
        assert facts.kit_file.values["DOCKER_TAG"] == "v2.9.9"
        assert facts.kit_file.mode == "0644"
        # compose's view changes with the kit file; the running containers keep theirs
        api = facts.container("trust-api")
        assert api is not None and facts.expected_config["trust-api"] != api.config_hash
        assert facts.fl_kit.content_sha256 != facts.fl_kit.delivered_sha256
        assert facts.fl_kit.stray == ("services/Trust_2",)
    finally:
        kit_file.write_text(original)
        os.chmod(kit_file, 0o600)
        start_sh.write_bytes(script)
        stray.rmdir()
    facts = gather(world)
    assert facts.fl_kit.content_sha256 == facts.fl_kit.delivered_sha256
    assert facts.kit_file.mode == "0600"


def test_a_stopped_trust_api(world: HostWorld) -> None:
    flip_way(world, "stop", "trust-api")
    try:
        facts = gather(world)
        api = facts.container("trust-api")
        assert api is not None and api.state == "exited"
        assert facts.project == "trust1"
    finally:
        start(world)
    api = gather(world).container("trust-api")
    assert api is not None and api.state == "running"


def test_a_trust_api_the_hub_rejects(world: HostWorld) -> None:
    kit_file = world.flip_root() / "trust" / KIT
    original = kit_file.read_text()
    key = world.escrow.kits["Trust_1"].kit.trust_api_key
    assert key is not None
    try:
        kit_file.write_text(original.replace(key.get_secret_value(), "not-the-key-" + "x" * 30))
        start(world)  # compose recreates trust-api: its environment changed
        outcome = verify(world, timeout=8.0)
        assert not outcome.ok and "401" in outcome.message
        facts = gather(world)
        assert facts.trust_api.unauthorized and facts.trust_api.heartbeat_rejected
        assert facts.trust_api.authenticated_as is None  # not since this process started
        assert "Unexpected status 401" in (facts.trust_api.last_error or "") or \
            "Heartbeat rejected by hub: HTTP 401" in (facts.trust_api.last_error or "")
    finally:
        kit_file.write_text(original)
        start(world)
    outcome = verify(world)
    assert outcome.ok, outcome.message


def test_a_stack_started_by_hand_the_flip_way_is_the_same_stack(world: HostWorld) -> None:
    outcome = run_action(world, act(ActionKind.HOST_STOP_STACK, "Trust_1", StopStackParams()))
    assert outcome.ok and outcome.changed, outcome.message
    assert gather(world).containers == ()
    net = world.flip_root() / "trust"
    assert (net / KIT).is_file()
    flip_way(world, "up", "-d")  # what `make up-trust KIT=C1X PROD=true` runs
    facts = gather(world)
    assert facts.project == "trust1" and facts.container("trust-api") is not None
    assert {c.service: c.config_hash for c in facts.containers} == facts.expected_config
    outcome = run_action(world, act(ActionKind.HOST_START_STACK, "Trust_1", StartStackParams(
        project="trust1", hub_tag="v2.3.0", fl_tag="v2.3.0")))
    assert outcome.ok and not outcome.changed, outcome.message


def test_facts_of_a_host_with_nothing_on_it(world: HostWorld, tmp_path: Path) -> None:
    m = world.manifest.model_copy(deep=True)
    trust = m.trusts[0].model_copy(update={"host": m.trusts[0].host.model_copy(  # type: ignore[union-attr]
        update={"flip_root": str(tmp_path / "empty")})})
    facts = world.hosts.gather([HostTarget.of(m, trust, world.root)])["Trust_1"]
    assert facts.reachable and not facts.flip_root_present
    assert not facts.kit_file.present and not facts.fl_kit.present and facts.project is None
