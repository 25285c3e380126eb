"""`--allow` accepts overridable guards only: a typo or a never-overridable guard is a usage
error (exit 64) naming it, instead of an option that silently accepts nothing."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from flipgitops.cli import cli
from flipgitops.core.guards import GUARDS, allow_problem


@pytest.mark.parametrize("guard", [g for g in GUARDS if g.overridable], ids=lambda g: g.id)
def test_every_overridable_guard_may_be_allowed(guard: object) -> None:
    assert allow_problem(guard.id) is None  # type: ignore[attr-defined]


@pytest.mark.parametrize("guard", [g for g in GUARDS if not g.overridable], ids=lambda g: g.id)
def test_a_never_overridable_guard_is_refused(guard: object) -> None:
    problem = allow_problem(guard.id)  # type: ignore[attr-defined]
    assert problem is not None and "not overridable" in problem


@pytest.mark.parametrize(("given", "hint"), [("fg003", "did you mean FG003?"),
                                             ("FG999", "overridable guards: FG001"),
                                             ("FG03", "is not a guard")])
def test_an_unknown_id_is_refused_with_a_hint(given: str, hint: str) -> None:
    problem = allow_problem(given)
    assert problem is not None and hint in problem


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_the_cli_refuses_it_before_any_work(command: str) -> None:
    from flipgitops.cli import main

    with pytest.raises(SystemExit) as exited:
        main([command, "--env", "nowhere", "--allow", "FG02"])
    assert exited.value.code == 64
    result = CliRunner().invoke(cli, [command, "--env", "nowhere", "--allow", "FG006"])
    assert "FG006" in result.output and "not overridable" in result.output
