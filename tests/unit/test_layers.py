"""The layers of docs/architecture.md §1, checked on the source (AST, no import is run).

`core/` and `model/` are pure: no AWS, Ansible, git, processes, sockets, URLs or `os`, and
nothing of the layers above them. The stand-in FLIP never shares a constant with the code
it plays against (core, FLIP's conventions in model/flip.py, adapters, engine). The engine
never prints or prompts (ui, cli). Imports inside functions and under TYPE_CHECKING count
too: a lazy import is still a dependency.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "flipgitops"

PURE = ("boto3", "botocore", "ansible_runner", "git", "subprocess", "socket", "urllib", "os",
        "flipgitops.adapters", "flipgitops.engine", "flipgitops.sandbox", "flipgitops.ui",
        "flipgitops.cli")
RULES: dict[str, tuple[str, ...]] = {
    "core": PURE,
    "model": PURE,
    "sandbox/flip": ("flipgitops.core", "flipgitops.model.flip", "flipgitops.adapters",
                     "flipgitops.engine"),
    "engine": ("flipgitops.ui", "flipgitops.cli"),
}


@dataclass(frozen=True)
class Violation:
    file: str
    line: int
    module: str
    rule: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: imports {self.module} ({self.rule} may not)"


def imported(path: Path, package_root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every import in ``path``, relative ones resolved."""
    # the package a relative import starts from (also for __init__.py: its own package)
    here = list(path.relative_to(package_root.parent).parts[:-1])
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # `from flipgitops import adapters`
                yield node.lineno, f"{module}.{alias.name}"


def _matches(module: str, banned: str) -> bool:
    return module == banned or module.startswith(banned + ".")


def violations(package_root: Path, rules: dict[str, tuple[str, ...]] = RULES) -> list[Violation]:
    found: list[Violation] = []
    for area, banned in rules.items():
        for path in sorted((package_root / area).rglob("*.py")):
            seen: set[tuple[int, str]] = set()
            for line, module in imported(path, package_root):
                for b in banned:
                    if _matches(module, b) and (line, b) not in seen:
                        seen.add((line, b))
                        found.append(Violation(str(path.relative_to(package_root.parent)),
                                               line, module, f"flipgitops/{area}/"))
    return found


def test_the_package_keeps_its_layers() -> None:
    found = violations(PACKAGE)
    assert not found, "layer violations:\n" + "\n".join(map(str, found))


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "flipgitops"
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.mark.parametrize(("rel", "text", "module"), [
    ("core/diff.py", "import os\n", "os"),
    ("core/diff.py", "import os.path\n", "os.path"),
    ("model/plan.py", "from urllib.parse import urlsplit\n", "urllib.parse"),
    ("core/planner/hosts.py", "def f():\n    import boto3\n", "boto3"),
    ("core/planner/hosts.py", "from ...adapters import hosts\n", "flipgitops.adapters"),
    ("core/render/md.py", "from flipgitops import engine\n", "flipgitops.engine"),
    ("core/x.py", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                  "    from flipgitops.ui import progress\n", "flipgitops.ui"),
    ("sandbox/flip/hub.py", "from flipgitops.model.flip import TRUST_API_SERVICE\n",
     "flipgitops.model.flip"),
    ("sandbox/flip/seed.py", "from flipgitops.core import kitfile\n", "flipgitops.core"),
    ("engine/apply.py", "from flipgitops.cli import main\n", "flipgitops.cli"),
    ("engine/apply.py", "from ..ui import progress\n", "flipgitops.ui"),
])
def test_each_kind_of_violation_is_found(tmp_path: Path, rel: str, text: str,
                                         module: str) -> None:
    root = _tree(tmp_path, {"__init__.py": "", rel: text})
    (found,) = violations(root)
    assert found.file == f"flipgitops/{rel}" and found.module.startswith(module), found


def test_what_each_layer_may_import_is_not_a_violation(tmp_path: Path) -> None:
    root = _tree(tmp_path, {
        "core/diff.py": "import deepdiff\nimport ossaudiodev\nfrom flipgitops.model import plan\n"
                        "from . import facts\nimport gitdb\n",
        "sandbox/flip/seed.py": "from flipgitops.model.manifest import Manifest\nimport os\n",
        "engine/apply.py": "import subprocess\nfrom flipgitops.adapters import hosts\n",
        "adapters/hosts.py": "from flipgitops.ui import progress\n",
    })
    assert violations(root) == []
