"""FLIPGITOPS_WAITS (the bounds of waits, for slow hubs and the sandbox) and the stand-in's
two new failure modes: an image the registry lists but Fargate cannot pull, and a database
that refuses a script's own connection."""

from __future__ import annotations

import pytest

from flipgitops.adapters.waiting import Waits, waits_from_env
from flipgitops.errors import AdapterError
from flipgitops.sandbox.flip.hub import HubState
from flipgitops.sandbox.flip.registry import ImageRegistry
from flipgitops.sandbox.flip.scripts import run_command


def test_waits_default_to_flips_bounds_and_take_overrides() -> None:
    assert waits_from_env({}) == Waits()
    w = waits_from_env({"FLIPGITOPS_WAITS": '{"stable_timeout": 12, "interval": 0.5}'})
    assert (w.stable_timeout, w.interval, w.task_timeout) == (12.0, 0.5, Waits().task_timeout)


@pytest.mark.parametrize(("value", "named"), [
    ("nope", "FLIPGITOPS_WAITS is not valid JSON"), ("[1]", "JSON object, not list"),
    ('{"stable": 1}', "'stable'"),
    ('{"interval": 0}', "interval"), ('{"interval": true}', "interval")])
def test_malformed_waits_are_named(value: str, named: str) -> None:
    with pytest.raises(AdapterError, match=named):
        waits_from_env({"FLIPGITOPS_WAITS": value})


def test_an_arm_only_image_passes_the_manifest_check_but_cannot_be_pulled() -> None:
    reg = ImageRegistry()
    reg.add("londonaicentre/flip-api", "v2.4.0", platforms=("linux/arm64",))
    assert reg.digest("londonaicentre/flip-api", "v2.4.0") is not None  # FLIP's check: 200
    assert reg.pull_failure("ghcr.io/londonaicentre/flip-api:v2.4.0") is not None
    assert not reg.has_image("ghcr.io/londonaicentre/flip-api:v2.4.0")
    reg.add("londonaicentre/flip-api", "v2.4.1")
    assert reg.has_image("ghcr.io/londonaicentre/flip-api:v2.4.1")


def test_a_refused_connection_drops_nothing_and_prints_no_evidence() -> None:
    state = HubState()
    state.refuse_connections("FATAL: PAM authentication failed for user \"flip\"")
    script = "DROP SCHEMA public CASCADE; CREATE SCHEMA public;"
    run = run_command(["uv", "run", "python", "-c", script, "--generation", "2"], {}, state,
                      put_parameter=lambda _n, _v: None, slot_names=lambda _r: [])
    assert run.exit_code == 1 and state.schema_exists and state.tables_exist
    assert not any("schema-reset" in line for line in run.lines)
    assert ("schema_drop",) not in state.events
