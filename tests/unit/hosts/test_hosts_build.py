"""adapters/hosts_build: the inventory and every step's module arguments, built in Python."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from pydantic import SecretStr

from flipgitops.adapters import hosts_build as build
from flipgitops.engine.ports_hosts import (
    FlKitInput,
    FlKitSlice,
    HostTarget,
    KitFile,
    KitFileInput,
    ProvisionInput,
    StackInput,
    VerifyInput,
)
from flipgitops.model.actions import HOST_KINDS, KINDS, ActionKind
from tests.unit.hosts.hostworld import make_manifest, trust_entry

EVIL = "{{ lookup('pipe', 'id > /tmp/flipgitops-pwned') }}"


def _target(tmp_path: Path, **kw: object) -> HostTarget:
    m = make_manifest([trust_entry(flip_root=str(tmp_path / "flip"), **kw)])  # type: ignore[arg-type]
    return HostTarget.of(m, m.trusts[0], tmp_path)


class _UnsafeLoader(yaml.SafeLoader):
    pass


_UnsafeLoader.add_constructor("!unsafe", lambda loader, node: ("UNSAFE",
                                                               loader.construct_scalar(node)))


def test_inventory_marks_every_string_unsafe_and_holds_no_secret(tmp_path: Path) -> None:
    ssh = _target(tmp_path, connection="ssh", host={"address": "10.0.0.5:2222",
                                                    "user": EVIL, "ssh_key": "env:K",
                                                    "become_password": "env:P"})
    local = _target(tmp_path)
    hosts = {"Trust_1": build.host_vars(ssh, python="/py", known_hosts="/k",
                                        key_file="/proc/1/fd/3"),
             "Trust_2": build.host_vars(local, python="/venv/bin/python", known_hosts=None,
                                        key_file=None)}
    text = build.inventory_yaml(build.inventory(hosts))
    data = yaml.load(text, Loader=_UnsafeLoader)
    h1 = data["all"]["hosts"]["Trust_1"]
    assert h1["ansible_user"] == ("UNSAFE", EVIL)
    assert h1["ansible_host"] == ("UNSAFE", "10.0.0.5") and h1["ansible_port"] == 2222
    assert h1["ansible_become"] is True
    assert h1["ansible_ssh_private_key_file"] == ("UNSAFE", "/proc/1/fd/3")
    assert "StrictHostKeyChecking=accept-new" in h1["ansible_ssh_common_args"][1]
    assert data["all"]["hosts"]["Trust_2"] == {
        "ansible_connection": ("UNSAFE", "local"),
        "ansible_python_interpreter": ("UNSAFE", "/venv/bin/python")}
    assert "become_pass" not in text and "env:P" not in text


def test_every_host_kind_has_a_host_entry_and_a_playbook() -> None:
    from flipgitops.reconcilers import ansible as content
    from flipgitops.reconcilers.ansible.flipgitops_host import runner

    root = content.content()
    for kind in HOST_KINDS:
        step = KINDS[kind].host_step
        assert (root / "playbooks" / f"{step}.yml").is_file(), step
        assert step in runner.ENTRIES, kind
    for step in (build.FACTS_STEP, build.READ_SECRETS_STEP, build.STEPS_STEP):
        assert (root / "playbooks" / f"{step}.yml").is_file(), step
        assert step in runner.ENTRIES, step


def test_only_steps_with_keys_carry_a_secret_part(tmp_path: Path) -> None:
    target = _target(tmp_path)
    kit = FlKitSlice(backend="nvflare", date="2025-06-01", slot="Trust_1", slot_number=1,
                     source="s3://b/p", fingerprint="f",
                     files=(KitFile("services/Trust_1/startup/client.key", 0o600, b"pk-xyzzy"),),
                     dirs=("services/Trust_1/local", "services/Trust_1/transfer"))
    entry, spec, secret = build.host_call(ActionKind.HOST_DELIVER_FL_KIT, target,
                                             FlKitInput(kit=kit, fl_kit_dir="/x/fl-kit"))
    assert entry == "deliver_fl_kit" and secret is not None
    import base64

    packed = base64.b64encode(b"pk-xyzzy").decode()
    assert packed not in json.dumps(spec) and "xyzzy" not in json.dumps(spec)
    assert secret["files"][0] == ["services/Trust_1/startup/client.key", "0600", packed]
    assert spec["owner"] == "1000" and spec["record"]["source_fingerprint"] == "f"
    _entry, spec, secret = build.host_call(ActionKind.HOST_WRITE_KIT_FILE, target,
                                             KitFileInput(SecretStr("TRUST_API_KEY=s3cr3t\n")))
    assert secret == {"content": "TRUST_API_KEY=s3cr3t\n"} and "s3cr3t" not in json.dumps(spec)
    for kind, step in ((ActionKind.HOST_START_STACK, StackInput()),
                       (ActionKind.HOST_VERIFY, VerifyInput("Trust_1"))):
        assert build.host_call(kind, target, step)[2] is None
    with pytest.raises(build.BuildError):
        build.host_call(ActionKind.HOST_VERIFY, target, StackInput())


def test_provision_follows_flips_owners(tmp_path: Path) -> None:
    root = "/opt/flip"
    profile = {"BASE_IMAGES_DOWNLOAD_DIR": f"{root}/data/trust-2", "FL_KIT_DIR": f"{root}/fl-kit",
               "XNAT_DATA_DIR": f"{root}/xnat", "LOKI_DATA_VOLUME": f"{root}/volumes/loki",
               "GRAFANA_DATA_VOLUME": "trust-local-grafana-data"}
    dirs = {d[0]: d[1:] for d in build.provision_dirs(root, profile, "nvflare", "ubuntu")}
    assert dirs[root] == ["0755", "ubuntu", None]
    assert dirs[f"{root}/data/trust-2"] == ["0755", "1000", None]
    assert dirs[f"{root}/data/trust-2/net-1"] == ["0755", "1000", None]
    assert dirs[f"{root}/fl-kit"] == ["0755", "1000", None]
    assert dirs[f"{root}/xnat/xnat-data/archive"] == ["0755", "1001", None]
    assert dirs[f"{root}/volumes/loki"] == ["0755", "10001", None]
    assert not any("grafana" in p for p in dirs)  # a named volume, not a bind dir
    flower = {d[0]: d[1:] for d in build.provision_dirs(root, profile, "flower", None)}
    assert flower[f"{root}/data/trust-2/net-2"] == ["0775", "1000", "49999"]
    target = _target(tmp_path, connection="ssh", host={"address": "h"})
    _, spec, _ = build.host_call(ActionKind.HOST_PROVISION, target,
                                   ProvisionInput(profile=profile, slot_number=2))
    assert spec["install_docker"] is True and spec["network"] == "deploy_trust-network-2"
    local = _target(tmp_path)
    assert build.host_call(ActionKind.HOST_PROVISION, local,
                             ProvisionInput(profile={}))[1]["install_docker"] is False


def test_a_local_cli_path_is_relative_to_the_manifest_and_roots_are_absolute(
        tmp_path: Path) -> None:
    m = make_manifest([trust_entry(flip_root="/srv/t1", docker="bin/docker --daemon-dir d")])
    target = HostTarget.of(m, m.trusts[0], tmp_path)
    assert build.flip_root(target) == "/srv/t1"
    assert build.docker_argv(target) == [str(tmp_path / "bin/docker"), "--daemon-dir", "d"]
    m = make_manifest([trust_entry(flip_root="hosts/t1")])
    with pytest.raises(build.BuildError, match="absolute"):
        build.flip_root(HostTarget.of(m, m.trusts[0], tmp_path))


def test_facts_spec_uses_the_endpoint_overrides(tmp_path: Path) -> None:
    target = _target(tmp_path)
    spec = build.facts_spec(target, {"resolve": {"a:443": "127.0.0.1:9"},
                                     "egress_probe": "http://127.0.0.1:1/{trust}"})
    assert spec["endpoints"]["hub"] == "app.flip.example.org:443"
    assert spec["endpoints"]["fl"] == "fl.app.flip.example.org:8002"
    assert spec["endpoints"]["egress_probe"] == "http://127.0.0.1:1/{trust}"
    assert build.facts_spec(target, {})["endpoints"]["egress_probe"] == \
        build.DEFAULT_EGRESS_PROBE


def test_relative_kit_paths_are_relative_to_the_trust_dir_like_compose(tmp_path: Path) -> None:
    target = _target(tmp_path)
    dirs = [d[0] for d in build.provision_dirs("/opt/flip", {
        "BASE_IMAGES_DOWNLOAD_DIR": "./data/trust", "FL_KIT_DIR": "../kits",
        "LOKI_DATA_VOLUME": "trust-local-loki-data"}, "nvflare", None)]
    assert "/opt/flip/trust/data/trust" in dirs and "/opt/flip/kits" in dirs
    assert not any(d.startswith(("./", "../")) or not d.startswith("/") for d in dirs)
    kit = FlKitSlice(backend="nvflare", date="d", slot="Trust_1", slot_number=1, source="s",
                     fingerprint="f", files=())
    _, spec, _ = build.host_call(ActionKind.HOST_DELIVER_FL_KIT, target,
                                   FlKitInput(kit=kit, fl_kit_dir="fl-kit"))
    assert spec["fl_kit_dir"] == f"{build.flip_root(target)}/trust/fl-kit"


def test_endpoint_overrides_come_from_flipgitops_endpoints(monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    from flipgitops.adapters.hosts import host_endpoints
    from flipgitops.errors import HostError

    monkeypatch.delenv("FLIPGITOPS_ENDPOINTS", raising=False)
    assert host_endpoints() == {"resolve": {}, "egress_probe": None}
    monkeypatch.setenv("FLIPGITOPS_ENDPOINTS", json.dumps({
        "resolve": {"app.flip.example.org:443": "127.0.0.1:8123"},
        "egress_probe": "http://127.0.0.1:8123/sandbox/egress/{trust}"}))
    assert host_endpoints()["resolve"] == {"app.flip.example.org:443": "127.0.0.1:8123"}
    monkeypatch.setenv("FLIPGITOPS_ENDPOINTS", "{not json")
    with pytest.raises(HostError, match="FLIPGITOPS_ENDPOINTS"):
        host_endpoints()
