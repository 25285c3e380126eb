"""Issue 19: manifest text is never executed.

Values travel into Ansible, which evaluates `{{ }}` in anything it templates, and into
commands on hosts and in the hub's one-off tasks. Two layers, each tested on its own:

- validation refuses template syntax in every string of a manifest: every string field the
  model has (all defaults filled in) and every mapping key, one at a time, is replaced by
  the payload of the issue and must be refused at its own location;
- with validation bypassed (a Manifest built in memory, as an attacker who got past review
  or a future field nobody validated would have it), a whole onboarding on the sandbox (the
  stand-in FLIP, a local trust host through real ansible-runner runs) plans (host facts) and
  applies with the payload in every free-text field that reaches a host or a hub task —
  flip_root, the trust's region, settings values — and nothing is ever run: the marker file
  the payload would create never appears, and the values arrive byte for byte;
- hub text (domain, registry, FL hostname, the API key header, image tags, the trust code)
  reaches the kit file and the facts run as data, on a host of its own.
"""

from __future__ import annotations

import io
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from flipgitops.core.parse import parse_manifest
from flipgitops.core.planner import plan as make_plan
from flipgitops.engine.apply import Interrupt, Run, execute
from flipgitops.engine.executors import load_executors
from flipgitops.engine.ports_hosts import HostTarget
from flipgitops.engine.wiring import Wiring
from flipgitops.errors import ManifestError
from flipgitops.model.actions import ActionKind, WriteKitFileParams
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Plan, PlanOptions
from flipgitops.sandbox.environment import TrustSpec, sandbox
from flipgitops.sandbox.moto_server import MotoServer
from tests.conftest import REPO_ROOT
from tests.integration.hosts.hostsandbox import act, bare_world, run_action

MARKER_DIR = Path("/tmp")


def payload(marker: Path) -> str:
    """The issue's payload, aimed at a marker file instead of `id > /tmp/x`."""
    return "{{ lookup('pipe', 'id > " + str(marker) + "; echo /opt/flip') }}"


@pytest.fixture
def marker() -> Iterator[Path]:
    path = MARKER_DIR / f"flipgitops-pwned-{secrets.token_hex(6)}"
    yield path
    path.unlink(missing_ok=True)


# --- validation ------------------------------------------------------------------------------


def _full_manifest() -> dict[str, Any]:
    """environments/prod.yaml with every optional field filled in (model defaults)."""
    yaml = YAML(typ="safe")
    data = yaml.load((REPO_ROOT / "environments" / "prod.yaml").read_text())
    data["hub"]["terraform"] = {"dir": "../FLIP/deploy/providers/AWS",
                                "backend_config": {"bucket": "tfstate"}}
    full = Manifest.model_validate(data).model_dump(mode="json", exclude_none=True)
    full["hub"]["fl_server"]["hostname"] = "fl.flip.example.org"
    return full


def _strings(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], bool]]:
    """(path, is_key) of every string value and every mapping key."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*path, key), True
            yield from _strings(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _strings(value, (*path, i))
    elif isinstance(node, str):
        yield path, False


def _dotted(path: tuple[Any, ...]) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _with(data: dict[str, Any], path: tuple[Any, ...], is_key: bool, text: str) -> Any:
    import copy

    doc = copy.deepcopy(data)
    parent: Any = doc
    for part in path[:-1]:
        parent = parent[part]
    if is_key:
        parent[text] = parent.pop(path[-1])
        return doc, (*path[:-1], text)
    parent[path[-1]] = text
    return doc, path


@pytest.mark.slow
def test_template_syntax_is_refused_in_every_string_and_key_of_a_manifest() -> None:
    data = _full_manifest()
    seen: set[tuple[Any, ...]] = set()
    spots = []
    for path, is_key in _strings(data):  # each field once, whichever trust has it first
        shape = (tuple("*" if isinstance(p, int) else p for p in path), is_key)
        if shape not in seen:
            seen.add(shape)
            spots.append((path, is_key))
    assert len(spots) > 120, len(spots)  # every section's fields and keys
    evil = payload(Path("/tmp/x"))
    missed: list[str] = []
    for path, is_key in spots:
        doc, where = _with(data, path, is_key, evil)
        out = io.StringIO()
        YAML().dump(doc, out)
        try:
            parse_manifest(out.getvalue(), "environments/prod.yaml")
        except ManifestError as exc:
            at = [p for p in exc.problems if p.location == _dotted(where)]
            if at and all("lookup" not in p.message for p in exc.problems) and any(
                    "template syntax" in p.message or "not one of" in p.message
                    or "must be one of" in p.message or "Input should be" in p.message
                    for p in at):
                continue
            missed.append(f"{_dotted(where)}: {[str(p) for p in exc.problems]}")
            continue
        missed.append(f"{_dotted(where)}: accepted")
    assert missed == [], "\n".join(missed)


# --- a whole onboarding, validation bypassed -------------------------------------------------


def _apply_in_process(manifest: Manifest, path: Path) -> Any:
    """What `apply --yes` does, minus `load_env` (which would refuse the manifest)."""
    wiring = Wiring.for_manifest(manifest, path)
    options = PlanOptions()
    interrupt = Interrupt()

    def observe_and_plan() -> tuple[ObservedState, Plan]:
        observed = wiring.observe()
        return observed, make_plan(manifest, observed, options)

    run_id = wiring.acquire_lock()
    try:
        run = Run(manifest=manifest, manifest_path=path, options=options,
                  observe_and_plan=observe_and_plan,
                  context=lambda o, p: wiring.context(o, p, dry_run=False, options=options,
                                                      run_id=run_id, interrupt=interrupt,
                                                      report=lambda _s: None),
                  journal=wiring.journal(run_id), interrupt=interrupt,
                  record_converged=wiring.record_converged, run_id=run_id)
        return execute(run)
    finally:
        wiring.release_lock(run_id)


@pytest.mark.slow
def test_a_whole_onboarding_runs_no_manifest_text(moto: MotoServer, tmp_path: Path,
                                                  marker: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    load_executors()
    evil = payload(marker)
    trusts = (TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London"),)
    with sandbox(tmp_path / "world", trusts=trusts, moto=moto) as box:
        for key, value in box.environ().items():
            monkeypatch.setenv(key, value)
        doc = box.manifest_doc(trusts)
        doc["trusts"][0]["region"] = evil
        root = box.root / "hosts" / "Trust_1" / evil / "flip"
        doc["trusts"][0]["host"]["flip_root"] = str(root)
        doc["trusts"][0]["settings"].update(
            {"ORTHANC_USERNAME": evil, "OMOP_POSTGRES_DB": evil,
             "COHORT_QUERY_THRESHOLD": "{% for x in range(3) %}{{ x }}{% endfor %}"})
        manifest = Manifest.model_validate(doc)
        with pytest.raises(ManifestError):  # the reviewed file would never get this far
            parse_manifest(box.manifest_path.read_text().replace("London", evil),
                           str(box.manifest_path))
        wiring = Wiring.for_manifest(manifest, box.manifest_path)
        facts = wiring.observe().hosts["Trust_1"]  # plan: facts of a host not set up yet
        assert facts.reachable, facts.reason
        assert not marker.exists(), "gathering facts ran manifest text"

        result = _apply_in_process(manifest, box.manifest_path)
        assert not marker.exists(), "applying ran manifest text"
        assert result.exit_code == 0 and result.converged, (result.message, result.failed)
        kit = (root / "trust" / ".env.GSTT.development").read_text()
        assert f"ORTHANC_USERNAME={evil}\n" in kit and f"OMOP_POSTGRES_DB={evil}\n" in kit
        assert "COHORT_QUERY_THRESHOLD={% for x in range(3) %}{{ x }}{% endfor %}\n" in kit
        after = wiring.observe()
        assert after.hosts["Trust_1"].kit_file.values["ORTHANC_USERNAME"] == evil
        assert make_plan(manifest, after).in_sync
        row = box.hub.state.trust("Trust_1")
        assert row is not None and row.region == evil
    assert not marker.exists()


# --- hub text on a host ----------------------------------------------------------------------


@pytest.mark.slow
def test_hub_text_reaches_the_kit_file_and_facts_as_data(tmp_path: Path, marker: Path) -> None:
    load_executors()
    evil = payload(marker)
    world = bare_world(tmp_path, domain=evil, registry=evil,
                       fl_server={"port": 8002, "hostname": evil},
                       trust_api_key_header=evil)
    outcome = run_action(world, act(ActionKind.HOST_WRITE_KIT_FILE, "Trust_1",
                                    WriteKitFileParams(credentials_generation=1)))
    assert outcome.ok, outcome.message
    trust = world.manifest.trusts[0]
    facts = world.hosts.gather([HostTarget.of(world.manifest, trust)])["Trust_1"]
    assert facts.reachable, facts.reason
    assert not marker.exists(), "a hub value was templated"
    kit = (world.flip_root() / "trust" / ".env.C1X.production").read_text()
    for line in (f"CENTRAL_HUB_API_URL=https://{evil}/api", f"DOCKER_REGISTRY={evil}/",
                 f"TRUST_API_KEY_HEADER={evil}"):
        assert line + "\n" in kit, line
    assert facts.kit_file.values["TRUST_API_KEY_HEADER"] == evil
    # a trust code is a file name on the host: a payload there is refused, never run
    evil_code = world.manifest.model_copy(update={"trusts": [trust.model_copy(
        update={"code": evil})]})
    world.manifest = evil_code
    bad = run_action(world, act(ActionKind.HOST_WRITE_KIT_FILE, "Trust_1",
                                WriteKitFileParams(credentials_generation=1)))
    assert not marker.exists(), "a trust code was templated"
    assert not bad.ok
    assert not [p for p in Path(os.sep, "tmp").glob("x; echo*")]
