"""compose.py: env files, interpolation and merging the way compose v2 does them."""

from __future__ import annotations

from pathlib import Path

import pytest

from flipgitops.sandbox.flip.compose import (
    ComposeError,
    Interpolator,
    MissingVariables,
    interpolation_environment,
    load_project,
    read_env_file,
)


def render(text: str, env: dict[str, str]) -> tuple[str, list[str]]:
    interp = Interpolator(env)
    return interp.render(text, "x"), [m.name for m in interp.missing]


@pytest.mark.parametrize(("text", "env", "want", "missing"), [
    ("${A}", {"A": "1"}, "1", []),
    ("$A-x", {"A": "1"}, "1-x", []),
    ("${A:-d}", {"A": ""}, "d", []),
    ("${A-d}", {"A": ""}, "", []),
    ("${A-d}", {}, "d", []),
    ("${A:+r}", {"A": "1"}, "r", []),
    ("${A:+r}", {"A": ""}, "", []),
    ("$${A}", {}, "${A}", []),
    ("${A}", {"A": ""}, "", ["A"]),
    ("${A}:${B}", {}, ":", ["A", "B"]),
    # FLIP's nested default (nvflare overlay): B only matters when A is unset.
    ("${A:-/opt/flip/data/trust-${B}}/net-1", {"A": "/d"}, "/d/net-1", []),
    ("${A:-/opt/flip/data/trust-${B}}/net-1", {"B": "2"}, "/opt/flip/data/trust-2/net-1", []),
    ("${A:-/opt/flip/data/trust-${B}}", {}, "/opt/flip/data/trust-", ["B"]),
    ("${A:?set A}", {}, "", ["A"]),
    ("${A?set A}", {"A": ""}, "", []),
])
def test_interpolation(text: str, env: dict[str, str], want: str, missing: list[str]) -> None:
    assert render(text, env) == (want, missing)


def test_a_lone_dollar_is_an_invalid_template() -> None:
    with pytest.raises(ComposeError, match=r"invalid interpolation format.*escape any \$"):
        Interpolator({}).render("pa$ word", "services.x.environment.P")


def test_env_file_parsing(tmp_path: Path) -> None:
    env = tmp_path / "kit"
    env.write_text(
        "# comment\nexport A=1\nB='lit ${A} # not a comment'\nC=\"q\\\"${A}\"\n"
        "D=v1== # trailing comment\nE=${A}x\nF\nNAME=St Thomas' Hospital\n\n"
    )
    got = read_env_file(env, {"F": "from-shell"})
    assert got == {"A": "1", "B": "lit ${A} # not a comment", "C": 'q"1', "D": "v1==",
                   "E": "1x", "F": "from-shell", "NAME": "St Thomas' Hospital"}
    env.write_text("BAD KEY=1\n")
    with pytest.raises(ComposeError, match="line 1: unexpected character"):
        read_env_file(env)


def test_precedence_environ_over_env_files_over_dot_env(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=dotenv\nB=dotenv\nC=dotenv\n")
    one, two = tmp_path / "one", tmp_path / "two"
    one.write_text("A=one\nB=one\n")
    two.write_text("B=two\n")
    assert interpolation_environment({}, [], tmp_path) == {"A": "dotenv", "B": "dotenv",
                                                           "C": "dotenv"}
    # As in compose, an explicit --env-file replaces the project's .env.
    assert interpolation_environment({"A": "shell"}, [one, two], tmp_path) == {
        "A": "shell", "B": "two"}


def test_merge_and_strict_refusal_names_every_variable(tmp_path: Path) -> None:
    base = tmp_path / "base.yml"
    over = tmp_path / "over.yml"
    base.write_text(
        "services:\n  s:\n    image: x/s:${TAG}\n    environment:\n      A: ${A}\n      B: b\n"
        "    volumes:\n      - ./one:/data\n      - named:/v\n    ports: ['1:1']\n"
        "volumes:\n  named:\n"
    )
    over.write_text(
        "services:\n  s:\n    environment:\n      - B=${B}\n      - C=c\n    volumes:\n"
        "      - ./two:/data\n    ports: ['2:2']\n  t:\n    image: x/t:${TAG}\n"
        "    depends_on: [s]\n"
    )
    with pytest.raises(MissingVariables) as caught:
        load_project([base, over], [], tmp_path, "p", {})
    assert caught.value.names == ["TAG", "A", "B"]
    assert "TAG: used by s, t" in str(caught.value)
    project = load_project([base, over], [], tmp_path, "p", {"TAG": "1", "A": "a", "B": "bb"})
    spec = project.services["s"]
    assert project.container_env("s") == {"A": "a", "B": "bb", "C": "c"}
    assert [v["target"] for v in spec["volumes"]] == ["/data", "/v"]
    assert spec["volumes"][0]["source"] == "./two"
    assert spec["ports"] == ["1:1", "2:2"]
    assert project.dependencies("t") == ["s"]
    before = project.config_hash("s")
    again = load_project([base, over], [], tmp_path, "p", {"TAG": "1", "A": "a", "B": "bb"})
    assert again.config_hash("s") == before
    changed = load_project([base, over], [], tmp_path, "p", {"TAG": "1", "A": "a2", "B": "bb"})
    assert changed.config_hash("s") != before
    assert changed.config_hash("t") == project.config_hash("t")


def test_compose_validation_errors(tmp_path: Path) -> None:
    file = tmp_path / "c.yml"
    file.write_text("services:\n  s:\n    image: x\n    volumes: ['undeclared:/v']\n")
    with pytest.raises(ComposeError, match='refers to undefined volume undeclared'):
        load_project([file], [], tmp_path, "p", {})
    file.write_text("services:\n  s:\n    image: 'Bad Image'\n")
    with pytest.raises(ComposeError, match="invalid reference format"):
        load_project([file], [], tmp_path, "p", {})
    with pytest.raises(ComposeError, match="no such file"):
        load_project([tmp_path / "absent.yml"], [], tmp_path, "p", {})
    with pytest.raises(ComposeError, match="invalid project name"):
        load_project([file], [], tmp_path, "Trust 1", {})
