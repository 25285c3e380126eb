"""The world starts and stops as one thing, says where it is, and stays independent."""

from __future__ import annotations

import ast
import re
import socket
import threading
from pathlib import Path

import pytest
from hubworld import REGION, http

from flipgitops.sandbox.flip import kits
from flipgitops.sandbox.flip.world import StandinHub, StandinHubError
from flipgitops.sandbox.moto_server import MotoServer

PACKAGE = Path(kits.__file__).parent


def ours() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("standin-hub")]


def refused(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_endpoints_name_every_server(moto: MotoServer) -> None:
    with StandinHub(moto.url, REGION, domain="app.flip.example.org", fl_port=8002) as hub:
        e = hub.endpoints
        assert e["hub"] == f"http://127.0.0.1:{hub.api_port}"
        assert e["registries"] == {"ghcr.io": f"http://127.0.0.1:{hub.registry_port}"}
        assert e["resolve"] == {
            "app.flip.example.org:443": f"127.0.0.1:{hub.api_port}",
            "fl.app.flip.example.org:8002": f"127.0.0.1:{hub.fl_port_local}"}
        assert e["egress_probe"] == f"{e['hub']}/sandbox/egress/{{trust}}"
        host, port = e["resolve"]["fl.app.flip.example.org:8002"].split(":")
        with socket.create_connection((host, int(port)), timeout=2):
            pass
        assert http("GET", e["registries"]["ghcr.io"] + "/v2/")[0] == 200


def test_nothing_outlives_the_world(moto: MotoServer) -> None:
    before = ours()
    with StandinHub(moto.url, REGION) as hub:
        ports = [hub.api_port, hub.registry_port, hub.fl_port_local]
        http("GET", f"{hub.api_url}/health")  # a handler thread ran
        assert len(ours()) >= 4
    assert ours() == before == []
    assert all(refused(p) for p in ports)


def test_the_world_refuses_real_aws() -> None:
    with pytest.raises(StandinHubError, match="not an AWS emulator"):
        StandinHub("https://ecs.eu-west-2.amazonaws.com", REGION)


def test_the_world_can_bind_another_address(moto: MotoServer) -> None:
    with StandinHub(moto.url, REGION, bind="0.0.0.0", advertise="127.0.0.1") as hub:
        assert hub.endpoints["hub"] == f"http://127.0.0.1:{hub.api_port}"
        assert http("GET", f"{hub.api_url}/health")[0] == 503  # not booted, but reachable


FORBIDDEN = ("flipgitops.model.flip", "flipgitops.core", "flipgitops.adapters",
             "flipgitops.engine")


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


def test_the_stand_in_shares_no_constant_with_the_code_under_test() -> None:
    files = sorted(PACKAGE.glob("*.py"))
    assert len(files) >= 10
    for path in files:
        found = imports(path)
        bad = [n for n in found if n.startswith(FORBIDDEN)]
        assert bad == [], f"{path.name} imports {bad}"
        model = [n for n in found if n.startswith("flipgitops.model")]
        assert model == [] or (path.name == "seed.py" and all(
            n.startswith("flipgitops.model.manifest") for n in model)), path.name


def test_no_private_key_marker_is_committed() -> None:
    marker = re.compile("BEGIN [A-Z ]*" + "PRIVATE" + " KEY")
    for path in [*PACKAGE.glob("*.py"), *Path(__file__).parent.glob("*.py")]:
        assert not marker.search(path.read_text()), path
    assert marker.search(kits.pem(kits.private_key_label("RSA"), "d", "s"))  # made at run time
