"""Meta-tests over the action registry: every kind is complete, everywhere it must be.

Adding a kind means one `ActionKind` member, one `KINDS` entry (params, symbol, destructive,
host step) and one executor; these tests fail until all exist, so a half-added kind cannot
land (the cloud-custodian way: the registry is walked, not trusted).
"""

from __future__ import annotations

from importlib import resources

import pytest
from pydantic import ValidationError

from flipgitops.engine.executors import EXECUTORS, load_executors
from flipgitops.model.actions import HOST_KINDS, KINDS, Action, ActionKind, Params

SYMBOLS = set("+~-!?")


def test_every_kind_has_a_spec_a_params_model_and_a_symbol() -> None:
    assert set(KINDS) == set(ActionKind)
    for kind, spec in KINDS.items():
        assert issubclass(spec.params, Params), kind
        assert spec.symbol in SYMBOLS, kind
        assert spec.params.model_config.get("extra") == "forbid", kind


def test_every_kind_has_exactly_one_executor() -> None:
    load_executors()
    assert set(EXECUTORS) == set(ActionKind)


# Hub kinds whose actions of one wave run together: a wave's register_trust tasks start at
# once (FLIP's one-off tasks are independent per trust).
GROUPED_HUB_KINDS = {ActionKind.REGISTRY_REGISTER}


def test_host_kinds_are_grouped_and_have_a_playbook_shipped_in_the_package() -> None:
    load_executors()
    playbooks = resources.files("flipgitops.reconcilers.ansible") / "playbooks"
    for kind in HOST_KINDS:
        step = KINDS[kind].host_step
        assert step is not None
        assert (playbooks / f"{step}.yml").is_file(), step
        assert EXECUTORS[kind].grouped, kind
    for kind in set(ActionKind) - HOST_KINDS:
        assert EXECUTORS[kind].grouped == (kind in GROUPED_HUB_KINDS), kind


def test_only_data_destroying_kinds_are_destructive() -> None:
    destructive = {k for k, s in KINDS.items() if s.destructive}
    assert destructive == {ActionKind.REGISTRY_DELETE, ActionKind.DATABASE_RESET_SCHEMA}


def test_a_misspelled_kind_is_refused_naming_it() -> None:
    with pytest.raises(ValidationError, match=r"hub\.deplyo_image"):
        Action.model_validate({"id": "x", "kind": "hub.deplyo_image", "target": "hub"})


def test_missing_or_unknown_params_are_refused() -> None:
    with pytest.raises(ValidationError, match="ephemeral_parameter"):
        Action.model_validate({"id": "registry.register:T", "kind": "registry.register",
                               "target": "T", "params": {"name": "T", "code": "TT",
                                                         "credentials_generation": 1,
                                                         "database_generation": 1}})
    with pytest.raises(ValidationError, match="extra"):
        Action.model_validate({"id": "host.verify:T", "kind": "host.verify", "target": "T",
                               "params": {"expect_trust": "T", "surprise": 1}})


def test_params_arrive_typed_whatever_their_shape() -> None:
    raw = {"id": "host.verify:T", "kind": "host.verify", "target": "T",
           "params": {"expect_trust": "T"}}
    action = Action.model_validate(raw)
    assert type(action.params).__name__ == "VerifyParams"
    assert Action.model_validate_json(action.model_dump_json()) == action
