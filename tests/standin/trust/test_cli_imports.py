"""The stand-in container CLI starts light: a host step runs about twenty of its commands,
each a Python process, so what a command imports is most of what it costs. The read-only
commands must not load the compose file reader, `compose up`, the trust-api poller or
dataclasses; refusals raised by lazily imported modules are still printed, exit 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("flipgitops.sandbox.flip.compose", "flipgitops.sandbox.flip.compose_up",
         "flipgitops.sandbox.flip.trust_api", "dataclasses")
PROBE = """
import json, sys
from flipgitops.sandbox.flip.container_cli import main
code = main(sys.argv[2:])
print(json.dumps({"code": code, "loaded": [m for m in sys.argv[1].split(",")
                                           if m in sys.modules]}), file=sys.stderr)
"""


def _run(daemon: Path, *args: str) -> tuple[int, list[str], str]:
    proc = subprocess.run([sys.executable, "-c", PROBE, ",".join(HEAVY), "--daemon-dir",
                           str(daemon), *args], capture_output=True, text=True, timeout=60,
                          check=False)
    *said, last = proc.stderr.strip().splitlines()
    got = json.loads(last)
    return got["code"], got["loaded"], "\n".join(said)


def test_read_only_commands_import_nothing_heavy(tmp_path: Path) -> None:
    daemon = tmp_path / "docker"
    for args in (["version"], ["info", "--format", "{{.Swarm.LocalNodeState}}"],
                 ["network", "ls"], ["compose", "version"],
                 ["compose", "-p", "trust1", "ps", "--format", "json", "-a"],
                 ["compose", "-p", "trust1", "logs", "--no-color"]):
        code, loaded, said = _run(daemon, *args)
        assert code == 0, (args, said)
        assert loaded == [], (args, loaded)


def test_a_refusal_of_a_lazily_imported_module_is_printed_and_exits_1(tmp_path: Path) -> None:
    code, _, said = _run(tmp_path / "docker", "compose", "-p", "Not_Valid", "ps")
    assert code == 1 and 'invalid project name "Not_Valid"' in said
    code, _, said = _run(tmp_path / "docker", "nonsense")
    assert code == 1 and "'nonsense' is not a docker command the stand-in plays" in said
