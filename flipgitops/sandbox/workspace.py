"""The demo's throw-away working directory: a copy of the dev manifest bent to the sandbox.

The demo runs the real CLI from this directory, so the copy must be a manifest the CLI accepts
as it is (same schema line, same `environment: dev`), only with every trust host pointed at a
tree under the temporary directory and at the stand-in container CLI: nothing the demo does
may touch the machine outside that directory.
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from flipgitops.errors import FlipGitopsError

STANDIN_NAME = "flipgitops-docker-standin"

_SEMVER = re.compile(r"^v(\d+)\.(\d+)\.(\d+)(.*)$")


def source_manifest() -> Path:
    """The repository's `environments/dev.yaml`, which the demo copies.

    Looked up beside the package (a source checkout) rather than in the current directory, so
    running the demo from inside another project's repository never picks up its manifest.
    """
    path = Path(__file__).resolve().parents[2] / "environments" / "dev.yaml"
    if not path.is_file():
        raise FlipGitopsError(
            f"{path} not found: the demo copies the dev manifest of a flipgitops checkout; "
            "run it from a source checkout (uv run flipgitops demo)"
        )
    return path


def standin_cli() -> Path:
    """The stand-in container CLI installed next to this Python (a console script)."""
    path = Path(sys.executable).parent / STANDIN_NAME
    if not path.is_file():
        raise FlipGitopsError(
            f"{path} not found: the sandbox needs the `{STANDIN_NAME}` console script "
            "(reinstall the package: uv sync)"
        )
    return path


def _yaml() -> YAML:
    yaml = YAML()  # round-trip: keeps comments (the schema line) and key order
    yaml.preserve_quotes = True
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def write_sandbox_manifest(source: Path, workdir: Path, docker: Path) -> Path:
    """Write `<workdir>/environments/dev.yaml` with hosts confined to `<workdir>/hosts/`.

    Every trust host becomes `connection: local`, with its own `flip_root` and the stand-in
    as its container CLI. Returns the written path.
    """
    text = source.read_text(encoding="utf-8")
    yaml = _yaml()
    data: Any = yaml.load(text)
    for trust in data.get("trusts") or []:
        host = trust.get("host")
        if host is None:
            continue
        host["connection"] = "local"
        host["flip_root"] = str(workdir / "hosts" / str(trust["name"]) / "flip")
        host["docker"] = str(docker)
    out = io.StringIO()
    yaml.dump(data, out)
    rendered = out.getvalue()
    first = text.splitlines()[0] if text else ""
    if first.startswith("#") and not rendered.startswith(first):
        rendered = first + "\n" + rendered
    target = workdir / "environments" / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(rendered, encoding="utf-8")
    return target


def bump_tag(tag: str) -> str:
    """The next minor release of a `vX.Y.Z` tag (another valid immutable tag otherwise)."""
    m = _SEMVER.match(tag)
    if m is None:
        return "v99.0.0"
    return f"v{m.group(1)}.{int(m.group(2)) + 1}.0"


def set_hub_tag(manifest: Path, new_tag: str) -> None:
    """Edit only the `hub_tag:` line, as a person would in a pull request."""
    text = manifest.read_text(encoding="utf-8")
    edited, n = re.subn(
        r"^(\s*hub_tag:\s*)(\"?)([^\"\s#]+)(\"?)",
        lambda m: f"{m.group(1)}{m.group(2)}{new_tag}{m.group(4)}",
        text,
        count=1,
        flags=re.MULTILINE,
    )
    if n != 1:
        raise FlipGitopsError(f"{manifest}: no hub_tag line to edit")
    manifest.write_text(edited, encoding="utf-8")
