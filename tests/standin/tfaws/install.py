"""Install the stand-in as ``registry.terraform.io/hashicorp/aws`` for one test.

Terraform's CLI config can install a provider from a local ``filesystem_mirror`` instead of
the registry (Terraform docs, "CLI Configuration File", provider_installation). The
*unpacked* layout is ``<mirror>/<hostname>/<namespace>/<type>/<version>/<os>_<arch>/`` with
the executable ``terraform-provider-<type>_v<version>`` in it. The executable is a script
written at run time whose shebang is this interpreter (the venv's, which has grpcio,
msgpack and cryptography) and which puts the repository on ``sys.path``: no path of this
machine is committed, and the lock file Terraform writes hashes that very script.

The version is 6.0.0 so FLIP's constraint ``~> 6.0`` selects it.
"""

from __future__ import annotations

import platform
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

SOURCE = "registry.terraform.io/hashicorp/aws"
VERSION = "6.0.0"
REPO_ROOT = Path(__file__).resolve().parents[3]


def platform_dir() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine)
    return f"{sys.platform}_{arch}"


@dataclass(frozen=True)
class Installed:
    mirror: Path
    executable: Path
    cli_config: Path

    def env(self) -> dict[str, str]:
        """What a Terraform run needs to find the stand-in (laid over os.environ)."""
        return {"TF_CLI_CONFIG_FILE": str(self.cli_config)}


def install(where: Path, *, python: str = sys.executable) -> Installed:
    mirror = where / "mirror"
    target = mirror / SOURCE / VERSION / platform_dir()
    target.mkdir(parents=True, exist_ok=True)
    exe = target / f"terraform-provider-aws_v{VERSION}"
    exe.write_text(
        f"#!{python}\n"
        '"""Stand-in hashicorp/aws provider (flipgitops tests/standin/tfaws)."""\n'
        "import sys\n"
        f"sys.path.insert(0, {str(REPO_ROOT)!r})\n"
        "from tests.standin.tfaws.server import main\n"
        "main()\n", encoding="utf-8")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    config = where / "terraformrc"
    config.write_text(
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f"    path    = {str(mirror)!r}\n".replace("'", '"')
        + f'    include = ["{SOURCE}"]\n'
        "  }\n"
        "  direct {\n"
        f'    exclude = ["{SOURCE}"]\n'
        "  }\n"
        "}\n", encoding="utf-8")
    return Installed(mirror, exe, config)
