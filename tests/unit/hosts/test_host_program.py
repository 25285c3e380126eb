"""The flipgitops host program (reconcilers/ansible/host_program.py), run by a real Python
reading it from stdin as the action plugin runs it (`python -I -S -`), and its runner's
masking and entries (flipgitops_host/runner.py)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flipgitops.reconcilers.ansible import host_program
from flipgitops.reconcilers.ansible.flipgitops_host import compose, masking, runner, steps

HOST_PACKAGE = Path(host_program.__file__).parent / "flipgitops_host"


def _run(program: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *host_program.COMMAND_FLAGS], input=program.decode(),
                          capture_output=True, text=True, timeout=60, check=False)


def _answer(program: bytes) -> dict[str, Any]:
    done = _run(program)
    return host_program.answer(done.returncode, done.stdout, done.stderr)


def test_a_steps_run_answers_in_one_json_document() -> None:
    done = _run(host_program.program("steps", {"steps": []}))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"changed": False, "steps": {}}


def test_a_bad_request_is_a_failure_that_says_what_is_wrong() -> None:
    assert _answer(host_program.program("steps", {})) == {
        "failed": True, "changed": False,
        "msg": "host program 'steps': argument 'steps' missing"}
    assert _answer(host_program.program("reboot", {"spec": {}})) == {
        "failed": True, "changed": False, "msg": "unknown host program entry 'reboot'"}


def test_the_program_imports_nothing_but_the_standard_library_and_its_own_package() -> None:
    # -I -S: no site-packages, so an import of ansible (or of flipgitops) would fail here.
    for path in sorted(HOST_PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module and node.module.split(".")[0] in sys.stdlib_module_names \
                    | {"__future__"}, (path.name, node.module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] in sys.stdlib_module_names, \
                        (path.name, alias.name)


def test_the_host_code_parses_as_python_3_7() -> None:
    """Trust hosts run what Python they have: the grammar must be 3.7's (no walrus, no
    match, no parenthesised context managers)."""
    for path in sorted(HOST_PACKAGE.glob("*.py")):
        ast.parse(path.read_text(encoding="utf-8"), filename=str(path), feature_version=(3, 7))
    ast.parse(host_program.BOOT, feature_version=(3, 7))


def _custom_program(runner_source: str, request: dict[str, Any]) -> bytes:
    """The real bootstrap with a one-module package of the test's own."""
    sources = {"flipgitops_host": "", "flipgitops_host.runner": runner_source}
    return host_program.assemble(host_program._pack(sources), request)


def test_nothing_a_step_or_its_children_print_corrupts_the_answer() -> None:
    noisy = ("import os, subprocess\n"
             "def run(request):\n"
             "    print('a stray print')\n"
             "    subprocess.run(['echo', 'a child on stdout'], check=True)\n"
             "    os.write(1, b'{not json\\n')\n"
             "    return {'changed': True, 'msg': request['args']['say']}\n")
    done = _run(_custom_program(noisy, {"entry": "x", "args": {"say": "fine"}}))
    assert json.loads(done.stdout) == {"changed": True, "msg": "fine"}
    assert "a stray print" in done.stderr and "a child on stdout" in done.stderr


def test_a_crash_is_reported_with_where_and_never_with_a_secret() -> None:
    crashing = (
        "def mask(value, secrets):\n"
        "    for s in secrets:\n"
        "        value = value.replace(s, '********')\n"
        "    return value\n"
        "def secret_values(secret):\n"
        "    return sorted((secret or {}).values(), key=len, reverse=True)\n"
        "def run(request):\n"
        "    raise RuntimeError('cannot use ' + request['args']['secret']['key'])\n")
    got = _answer(_custom_program(crashing, {"entry": "x",
                                             "args": {"secret": {"key": "sk-live-4242"}}}))
    assert got["failed"] is True
    assert got["msg"].startswith("the host program crashed: RuntimeError: cannot use ********")
    assert "<host>/flipgitops_host/runner.py:8" in got["msg"]
    assert "sk-live-4242" not in json.dumps(got)


def test_no_python_or_no_answer_is_a_failure_naming_the_cause() -> None:
    got = host_program.answer(127, "", "/bin/sh: 1: /usr/bin/python3: not found\n")
    assert got == {"failed": True, "changed": False, "msg": "the flipgitops host program did "
                   "not report (exit 127): /bin/sh: 1: /usr/bin/python3: not found"}
    assert host_program.answer(0, "Traceback", "")["failed"] is True
    assert host_program.answer(1, '{"changed": false}', "killed")["msg"].endswith("killed")
    assert host_program.answer(0, '{"changed": false}\n', "") == {"changed": False}


def test_secret_values_are_masked_in_everything_a_run_returns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def leaky(spec: Any) -> tuple[bool, str]:
        key = spec["TRUST_API_KEY"]  # the secret part, merged into the step's spec
        raise steps.StepError(f"compose said: bad key {key} for mode 0600")

    monkeypatch.setitem(runner.ENTRIES, "leaky", lambda args: runner.run_step(leaky, args))
    got = runner.run({"entry": "leaky", "args": {
        "spec": {}, "secret": {"TRUST_API_KEY": "tk-0123456789", "mode": "0600", "x": "ab"}}})
    assert got == {"failed": True, "changed": False,
                   "msg": "compose said: bad key ******** for mode ********"}
    # a `steps` run's parts are one JSON string each: only the whole string is a leaf
    assert masking.secret_values({"w": json.dumps({"mode": "0600"})}) == ['{"mode": "0600"}']


def test_values_read_for_the_controller_are_never_masked(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(runner.ENTRIES, "read", lambda args: {
        "changed": False, "msg": "read 1 key", "secrets": {"K": "the-value-itself"}})
    got = runner.run({"entry": "read", "args": {"spec": {},
                                                "secret": {"K": "the-value-itself"}}})
    assert got["secrets"] == {"K": "the-value-itself"}


FAKE_DOCKER = """#!/bin/sh
echo "$*" >> "{log}"
case "$1" in
  info) echo inactive ;;
  compose) echo "Docker Compose version v2.29.0" ;;
  network) [ "$2" = inspect ] && {{ [ -f "{net}" ] || exit 1; }}; touch "{net}" ;;
esac
"""


def test_what_a_run_established_is_not_asked_again_and_a_new_run_asks(tmp_path: Path) -> None:
    log, net = tmp_path / "calls.log", tmp_path / "network"
    docker = tmp_path / "docker"
    docker.write_text(FAKE_DOCKER.format(log=log, net=net), encoding="utf-8")
    docker.chmod(0o755)
    spec = {"docker": [str(docker)], "dirs": [], "swarm_advertise_addr": "127.0.0.1",
            "network": "deploy_trust-network-1"}
    compose.forget()
    try:
        assert steps.provision(spec) == (True, "provisioned")
        assert steps.ensure_network([str(docker)], "deploy_trust-network-1") is False
        facts: dict[str, Any] = {}
        from flipgitops.reconcilers.ansible.flipgitops_host import facts as host_facts

        host_facts.stack_facts({"docker": [str(docker)], "trust_dir": str(tmp_path)}, None,
                               facts)
        assert facts == {"docker_present": True, "swarm_active": True,
                         "compose_present": True}
        assert log.read_text(encoding="utf-8").splitlines() == [
            "info --format {{.Swarm.LocalNodeState}}", "compose version",
            "swarm init --advertise-addr 127.0.0.1", "network inspect deploy_trust-network-1",
            "network create --driver overlay --attachable deploy_trust-network-1"]
        compose.forget()  # a new run (runner.run) knows nothing: it asks
        host_facts.stack_facts({"docker": [str(docker)], "trust_dir": str(tmp_path)}, None,
                               facts)
        assert log.read_text(encoding="utf-8").splitlines()[5:] in (
            ["info --format {{.Swarm.LocalNodeState}}", "compose version"],
            ["compose version", "info --format {{.Swarm.LocalNodeState}}"])
        assert facts["swarm_active"] is False  # the fake's own answer, asked again
    finally:
        compose.forget()
