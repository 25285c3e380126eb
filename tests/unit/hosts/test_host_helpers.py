"""The host modules' pure helpers (flipgitops_host): FLIP's log lines, compose's
output, the FL kit's digest and strays, endpoint overrides."""

from __future__ import annotations

from pathlib import Path

from flipgitops.adapters import hosts_build
from flipgitops.reconcilers.ansible.flipgitops_host import compose, facts, flkit

LINES = hosts_build.log_lines()
START = ("INFO:     Starting task poller (key-only auth), polling every 5s from "
         "https://x/api. Identity is reported by the hub on first contact.")


def test_trust_api_lines_since_its_last_start() -> None:
    log = "\n".join([
        START, "INFO:     Authenticated to hub as trust 'Trust_1' (id-1).",
        START,  # restarted: what came before is another process's
        "WARNING:  Unexpected status 401 polling for tasks",
        "ERROR:    Heartbeat rejected by hub: HTTP 401 — {\"detail\":\"Invalid API key\"}",
    ])
    got, rejected = compose.trust_api_evidence(log, LINES)
    assert got["authenticated_as"] is None and got["unauthorized"] and got["heartbeat_rejected"]
    assert got["last_error"].startswith("Heartbeat rejected by hub: HTTP 401")
    assert not rejected
    got, rejected = compose.trust_api_evidence(
        f"{START}\nINFO:     Authenticated to hub as trust \"O'Brien's\" (id-2).\n", LINES)
    assert got["authenticated_as"] == "O'Brien's" and got["trust_id"] == "id-2"
    _, rejected = compose.trust_api_evidence(
        f"{START}\nAuthenticated to hub as trust 'T' (i).\nUnexpected status 401 polling for "
        "tasks\n", LINES)
    assert rejected  # revoked after it authenticated


def test_compose_output() -> None:
    row = '{"Service":"trust-api","Image":"ghcr.io/x/trust-api:v2","State":"running",' \
          '"Labels":"com.docker.compose.config-hash=abc,com.docker.compose.project=trust1"}'
    assert compose.json_rows(row + "\n" + row) == compose.json_rows(f"[{row},{row}]")
    assert compose.containers(compose.json_rows(row)) == [
        {"service": "trust-api", "image": "ghcr.io/x/trust-api:v2", "state": "running",
         "config_hash": "abc"}]
    assert compose.config_hashes("trust-api abc\nloki def\n") == {"trust-api": "abc",
                                                                 "loki": "def"}


def test_fl_kit_digest_ignores_what_the_client_writes_and_names_strays(tmp_path: Path) -> None:
    net1 = tmp_path / "net-1"
    slot = net1 / "services" / "Trust_1"
    (slot / "startup").mkdir(parents=True)
    (slot / "local").mkdir()
    (slot / "transfer").mkdir()
    (slot / "startup" / "fed_client.json").write_text('{"client": {"fqsn": "Trust_1"}}')
    before = flkit.content_sha256(str(net1), hosts_build.FL_RUNTIME_PATHS)
    (slot / "local" / "resources.json").write_text("{}")  # the entrypoint's envsubst
    (slot / "transfer" / "job").write_text("x")
    assert flkit.content_sha256(str(net1), hosts_build.FL_RUNTIME_PATHS) == before
    (slot / "startup" / "fed_client.json").chmod(0o600)
    assert flkit.content_sha256(str(net1), hosts_build.FL_RUNTIME_PATHS) != before
    assert flkit.fqsn(str(slot)) == "Trust_1"
    (net1 / "services" / "Trust_2").mkdir()
    (net1 / "keys").mkdir()
    assert flkit.stray(str(net1), ["services/Trust_1"]) == ["keys", "services/Trust_2"]
    assert flkit.content_sha256(str(tmp_path / "absent"), []) is None


def test_endpoint_overrides_by_host_and_port_or_host() -> None:
    assert facts._address("app.x:443", {"app.x:443": "127.0.0.1:8123"}) == ("127.0.0.1", 8123)
    assert facts._address("fl.x:8002", {"fl.x": "10.0.0.2"}) == ("10.0.0.2", 8002)
    assert facts._address("fl.x:8002", {}) == ("fl.x", 8002)
    assert facts.reaches(None, {}) is None
