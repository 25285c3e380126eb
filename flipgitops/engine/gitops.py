"""``flipgitops changed``: which environments a commit range touches (a CI matrix input).

An environment is "changed" when ``environments/<env>.yaml`` differs between the commits,
including when it was added or deleted: a deleted prod manifest must not pass unnoticed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from flipgitops.adapters import git as git_adapter
from flipgitops.engine.output import Echo
from flipgitops.model.plan import FORMAT_VERSION

_ENV_FILE = re.compile(r"^environments/([^/]+)\.ya?ml$")


def changed_environments(paths: list[str]) -> list[str]:
    return sorted({m.group(1) for p in paths if (m := _ENV_FILE.match(p))})


def run_changed(base: str, head: str, fmt: str, echo: Echo, repo_dir: Path | None = None) -> int:
    root = git_adapter.repo_root(repo_dir or Path.cwd())
    envs = changed_environments(git_adapter.changed_files(root, base, head))
    if fmt == "json":
        echo(json.dumps({"format_version": FORMAT_VERSION, "environments": envs},
                        sort_keys=True))
    else:
        for env in envs:
            echo(env)
    return 0
