"""A whole FLIP world on this machine, for `flipgitops demo` and the end-to-end tests.

A moto server plays AWS, the stand-in FLIP (`sandbox/flip/`) plays FLIP's hub (one-off
tasks, flip-api, the image registry, FL kits) and trust side (a FLIP checkout, the container
CLI, trust-api), and trust hosts are directories on this machine reached with Ansible's
`connection: local`. The manifest lives in a real git repository, and flipgitops runs as a
real subprocess with the environment an operator's shell would have (AWS_* for the emulator,
FLIPGITOPS_ENDPOINTS for the stand-in hub). Nothing outlives `Sandbox.close()`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML

from flipgitops.sandbox.flip import trust_api
from flipgitops.sandbox.flip.checkout import FlipCheckout, make_flip_checkout
from flipgitops.sandbox.flip.seed import SeedResult, seed_hub
from flipgitops.sandbox.flip.world import StandinHub, write_world
from flipgitops.sandbox.moto_server import MOTO_ACCOUNT_ID, SANDBOX_ENV, MotoServer, moto_server

REGION = "eu-west-2"
SCHEMA_COMMENT = "# yaml-language-server: $schema=../schemas/flip-environment.schema.json"
DOMAIN = "dev.flip.example.org"
FL_HOST = "fl.dev.flip.example.org"
KIT_DATE = "2025-06-01"


def standin_docker() -> str:
    """The stand-in container CLI installed beside this interpreter."""
    return str(Path(sys.executable).parent / "flip-standin-docker")


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class TrustSpec:
    name: str
    code: str
    public_ip: str
    kind: str = "on-prem"
    state: str = "active"
    generation: int = 1
    slot: str | None = None
    region: str | None = None


DEFAULT_TRUSTS = (
    TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London"),
    TrustSpec("Trust_2", "KCH", "203.0.113.12", kind="aws"),
)


@dataclass
class Sandbox:
    root: Path
    moto: MotoServer
    hub: StandinHub
    checkout: FlipCheckout
    repo: Path
    env_name: str
    seed: SeedResult | None = None
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)

    # -- paths and processes ---------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.repo / "environments" / f"{self.env_name}.yaml"

    def flip_root(self, trust: str) -> Path:
        return self.root / "hosts" / trust / "flip"

    def daemon_dir(self, trust: str) -> Path:
        return self.root / "hosts" / trust / "docker"

    def docker(self, trust: str) -> str:
        return (f"{standin_docker()} --daemon-dir {self.daemon_dir(trust)} "
                f"--world {self.root / 'world.json'}")

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "FLIPGITOPS_")) or k == "AWS_CA_BUNDLE"}
        env.update(SANDBOX_ENV)
        env.update({"AWS_ENDPOINT_URL": self.moto.url, "NO_COLOR": "1",
                    "FLIPGITOPS_ENDPOINTS": self.hub.endpoints_json})
        env.update(extra or {})
        return env

    def cli(self, *args: str, extra_env: Mapping[str, str] | None = None,
            timeout: float = 900, stdin: str | None = None) -> Run:
        proc = subprocess.run([sys.executable, "-m", "flipgitops", *args], cwd=self.repo,
                              env=self.environ(extra_env), capture_output=True, text=True,
                              timeout=timeout, input=stdin)
        return Run(proc.returncode, proc.stdout, proc.stderr)

    # -- the manifest -------------------------------------------------------------------------

    def manifest_doc(self, trusts: Sequence[TrustSpec], *, registry: str = "database",
                     allowlist: str = "aws-api", hub_tag: str = "v2.3.0",
                     fl_tag: str = "v2.3.0", flip_ref: str = "v2.3.0",
                     kit_date: str = KIT_DATE) -> dict[str, Any]:
        docs = []
        for t in trusts:
            doc: dict[str, Any] = {"name": t.name, "code": t.code, "kind": t.kind,
                                   "public_ip": t.public_ip, "state": t.state,
                                   "credentials_generation": t.generation}
            if t.region:
                doc["region"] = t.region
            if t.slot or registry == "secret":
                doc["fl_kit_slot"] = t.slot or t.name
            if t.kind != "tre":
                doc["host"] = {"connection": "local", "flip_root": str(self.flip_root(t.name)),
                               "docker": self.docker(t.name)}
                doc["settings"] = {"NUM_AVAILABLE_GPUS": "0", "POLL_INTERVAL_SECONDS": "1"}
            docs.append(doc)
        hub: dict[str, Any] = {
            "domain": DOMAIN, "fl_backend": "nvflare", "trust_registry": registry,
            "images": {"registry": "ghcr.io/londonaicentre", "hub_tag": hub_tag,
                       "fl_tag": fl_tag},
            "fl_server": {"port": 8002, "hostname": FL_HOST,
                          "security_group": "flip-fl-server-nlb", "allowlist": allowlist},
            "fl_kits": {"bucket": "flipdev-aicentre", "date": kit_date},
            "database": {"deletion_protection": False, "final_snapshot": False,
                         "backup_retention_days": 1},
            "cognito": {"mfa": "optional"},
        }
        return {"version": 1, "environment": self.env_name,
                "aws": {"account_id": MOTO_ACCOUNT_ID, "region": REGION},
                "state": {"bucket": f"flip-gitops-state-{self.env_name}", "prefix": "flipgitops"},
                "flip": {"checkout": os.path.relpath(self.checkout.root, self.manifest_path.parent),
                         "ref": flip_ref},
                "hub": hub, "trusts": docs,
                "policy": {"lockstep_fl_images": True, "max_trust_removals": 1,
                           "immutable_tags": True}}

    def write_manifest(self, doc: Mapping[str, Any], *, commit: str | None = None) -> Path:
        path = self.manifest_path
        path.parent.mkdir(parents=True, exist_ok=True)
        yaml = YAML()
        yaml.default_flow_style = False
        with path.open("w", encoding="utf-8") as fh:
            fh.write(SCHEMA_COMMENT + "\n")
            yaml.dump(json.loads(json.dumps(doc)), fh)
        if commit:
            _git(self.repo, "add", "-A")
            _git(self.repo, "commit", "-q", "-m", commit, "--allow-empty")
        return path

    def load_manifest(self) -> Any:
        from flipgitops.engine.manifests import load_manifest

        return load_manifest(self.manifest_path)

    # -- teardown -----------------------------------------------------------------------------

    def stop_trust_processes(self) -> int:
        hosts = self.root / "hosts"
        stopped = 0
        if hosts.is_dir():
            for host in hosts.iterdir():
                if (host / "docker").is_dir():
                    stopped += trust_api.stop_all(host / "docker")
        return stopped

    def close(self) -> None:
        self.stop_trust_processes()
        self._stack.close()


def _git(repo: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "sandbox", "GIT_AUTHOR_EMAIL": "sandbox@example.org",
           "GIT_COMMITTER_NAME": "sandbox", "GIT_COMMITTER_EMAIL": "sandbox@example.org"}
    subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True)


@contextmanager
def sandbox(root: Path, *, env_name: str = "dev", trusts: Sequence[TrustSpec] = DEFAULT_TRUSTS,
            registry: Literal["database", "secret"] = "database", allowlist: str = "aws-api",
            existing: Sequence[str] | Literal["all"] = (), moto: MotoServer | None = None,
            seed: bool = True, kit_dates: list[str] | None = None) -> Iterator[Sandbox]:
    """A running world; ``existing`` names trusts FLIP's own procedures already registered
    (no flipgitops state anywhere). The caller may pass a moto server it keeps across tests."""
    root.mkdir(parents=True, exist_ok=True)
    stack = ExitStack()
    box: Sandbox | None = None
    try:
        server = moto if moto is not None else stack.enter_context(moto_server())
        hub = stack.enter_context(StandinHub(server.url, REGION, domain=DOMAIN, fl_host=FL_HOST,
                                             fl_port=8002, era=registry))
        write_world(root / "world.json", {f"https://{DOMAIN}": hub.hub_url})
        checkout = make_flip_checkout(root / "FLIP")
        repo = root / "repo"
        (repo / "environments").mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q", "-b", "main")
        box = Sandbox(root=root, moto=server, hub=hub, checkout=checkout, repo=repo,
                      env_name=env_name, _stack=stack)
        box.write_manifest(box.manifest_doc(trusts, registry=registry, allowlist=allowlist),
                           commit="the environment")
        if seed:
            box.seed = seed_hub(box.load_manifest(), hub, existing=existing,
                                kit_dates=kit_dates)
        yield box
    finally:
        if box is not None:
            box.stop_trust_processes()
        stack.close()
        shutil.rmtree(root / "hosts", ignore_errors=True)
