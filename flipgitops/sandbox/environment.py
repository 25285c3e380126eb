"""A whole FLIP world on this machine, for `flipgitops demo` and the end-to-end tests.

A moto server plays AWS, the stand-in FLIP (`sandbox/flip/`) plays FLIP's hub (one-off
tasks, flip-api, the image registry, FL kits) and trust side (a FLIP checkout, the container
CLI, trust-api), and trust hosts are directories on this machine reached with Ansible's
`connection: local` (or, given `host_fields`, any host the caller set up, e.g. sshd in a
network namespace: the hub then binds an address those hosts can reach). The manifest
lives in a real git repository, and flipgitops runs as a real subprocess with the environment
an operator's shell would have (AWS_* for the emulator, FLIPGITOPS_ENDPOINTS for the stand-in
hub). Nothing outlives `Sandbox.close()`.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ruamel.yaml import YAML

from flipgitops.adapters.waiting import WAITS_ENV
from flipgitops.sandbox.flip import trust_api
from flipgitops.sandbox.flip.checkout import FlipCheckout, make_flip_checkout
from flipgitops.sandbox.flip.cli_server import CliServer
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


# trust/.env.example@01292201's trust-local passwords an operator sets (its dev defaults
# replaced) and the three `make generate-xnat-credentials` mints.
_FLIP_LOCAL_PASSWORDS = (
    "ORTHANC_PASSWORD", "OMOP_POSTGRES_PASSWORD", "DATA_ACCESS_POSTGRES_PASSWORD",
    "XNAT_ADMIN_INITIAL_PASSWORD", "XNAT_ADMIN_PASSWORD", "XNAT_SERVICE_PASSWORD",
    "XNAT_DATASOURCE_PASSWORD", "XNAT_DATASOURCE_ADMIN_PASSWORD", "XNAT_ACTIVEMQ_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
)


@dataclass(frozen=True)
class FlipWayTrust:
    """One trust as FLIP's procedures left it (`Sandbox.set_up_the_flip_way`)."""

    name: str
    kind: str
    slot: str
    slot_number: int
    kit_file: Path | None  # None for a tre trust (its kit went out of band)
    secrets: tuple[str, ...] = field(repr=False)  # every secret value it was given
    verdict: str | None = None  # trust-api's first line about the hub


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
    # Where each host's flip_root and container-CLI state live (default <root>/hosts), and
    # per trust the manifest `host` fields that replace the local defaults (ssh hosts).
    hosts_root: Path | None = None
    host_fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # The stand-in container CLI's fork server (cli_server.py), if one runs for this world.
    cli_server: CliServer | None = None
    _stack: ExitStack = field(default_factory=ExitStack, repr=False)

    # -- paths and processes ---------------------------------------------------------------

    @property
    def manifest_path(self) -> Path:
        return self.repo / "environments" / f"{self.env_name}.yaml"

    @property
    def hosts_dir(self) -> Path:
        return self.hosts_root or self.root / "hosts"

    def flip_root(self, trust: str) -> Path:
        return self.hosts_dir / trust / "flip"

    def daemon_dir(self, trust: str) -> Path:
        return self.hosts_dir / trust / "docker"

    def docker(self, trust: str) -> str:
        """The host's `docker`: the thin client of this world's fork server when one runs
        (docker_client.py, the least Python start), else the whole stand-in CLI."""
        client = (" ".join(self.cli_server.client_command())
                  if self.cli_server is not None else standin_docker())
        return (f"{client} --daemon-dir {self.daemon_dir(trust)} "
                f"--world {self.root / 'world.json'}")

    def environ(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "FLIPGITOPS_")) or k == "AWS_CA_BUNDLE"}
        env.update(SANDBOX_ENV)
        env.update({"AWS_ENDPOINT_URL": self.moto.url, "NO_COLOR": "1",
                    "FLIPGITOPS_ENDPOINTS": self.hub.endpoints_json,
                    # The stand-in hub settles in about a second: look again every second
                    # at most (FLIP's hub, minutes to settle, keeps the default six).
                    WAITS_ENV: json.dumps({"interval": 1})})
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
                     kit_date: str = KIT_DATE, fl_backend: str = "nvflare") -> dict[str, Any]:
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
                               "docker": self.docker(t.name),
                               **self.host_fields.get(t.name, {})}
                doc["settings"] = {"NUM_AVAILABLE_GPUS": "0", "POLL_INTERVAL_SECONDS": "1"}
            docs.append(doc)
        hub: dict[str, Any] = {
            "domain": DOMAIN, "fl_backend": fl_backend, "trust_registry": registry,
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

    # -- a world FLIP's own procedures made ------------------------------------------------------

    def set_up_the_flip_way(self, *, ref: str = "v2.3.0", wrong_key: Sequence[str] = (),
                            edits: Mapping[str, str] | None = None,
                            timeout: float = 60.0) -> dict[str, FlipWayTrust]:
        """Give every trust the seeder registered what FLIP's own procedures leave it
        (`sandbox/flip/procedures.py`): for a hosted trust a FLIP clone at ``ref`` in its
        flip_root, the kit file FLIP's scripts write (with the kit the hub issued, the
        hub-shared block, XNAT credentials, the operator's host-local edits and ``edits``),
        the FL kit synced from the bucket, swarm, networks and the stack started as
        trust/Makefile starts it; its egress IP is the manifest's public_ip. No flipgitops
        state is written anywhere. ``wrong_key`` trusts get a kit file whose TRUST_API_KEY
        the hub does not accept (an operator pasted an old key). Returns, per trust, where
        things are and every secret value FLIP's procedures gave it (for leak searches)."""
        from flipgitops.sandbox.flip import procedures as fp
        from flipgitops.sandbox.flip.aws import client
        from flipgitops.sandbox.flip.flipnames import slot_number

        if self.seed is None:
            raise RuntimeError("seed the hub first (sandbox(..., seed=True, existing=...))")
        m = self.load_manifest()
        h = m.hub
        registry = h.images.registry.rstrip("/") + "/"
        date_key = "FLOWER_KIT_DATE" if h.fl_backend == "flower" else "FLARE_KIT_DATE"
        hub_env = {  # the hub's env file, as `make sync-trust-kit` reads it
            "AES_KEY_BASE64": self.seed.aes_key,
            "CENTRAL_HUB_API_URL": f"https://{h.domain}/api",
            "TRUST_API_KEY_HEADER": h.trust_api_key_header, "FL_BACKEND": h.fl_backend,
            "FLOWER_KIT_DATE": "", "FLARE_KIT_DATE": "", date_key: h.fl_kits.date,
            "DOCKER_TAG": h.images.hub_tag, "DOCKER_REGISTRY": registry,
            "DOCKER_FL_TAG": h.images.fl_tag, "DOCKER_FL_REGISTRY": registry,
            "NLB_SUBDOMAIN": h.fl_hostname, "FL_SERVER_PORT": str(h.fl_server.port),
        }
        s3 = client("s3", self.moto.url, m.aws.region)
        out: dict[str, FlipWayTrust] = {}
        for t in m.trusts:
            if t.name not in self.seed.trust_ids:
                continue
            kit = dict(self.seed.trust_kits.get(t.name) or {
                # E2 (secret era): the operator minted the keys (generate_trust_key), put the
                # hash in TF_VAR_TRUST_API_KEY_HASHES and left EXPECTED_TRUST_ID blank.
                "trust_id": "", "trust_api_key": self.seed.trust_keys[t.name],
                "trust_internal_service_key": secrets.token_urlsafe(32),
                "fl_kit_slot": t.fl_kit_slot,
                "fl_kit_slot_number": slot_number(t.fl_kit_slot or ""),
            })
            if t.name in wrong_key:
                kit["trust_api_key"] = secrets.token_urlsafe(32)
            slot, number = str(kit["fl_kit_slot"]), int(kit["fl_kit_slot_number"])
            held = [str(kit["trust_api_key"]), str(kit["trust_internal_service_key"])]
            if t.kind == "tre" or t.host is None:
                out[t.name] = FlipWayTrust(t.name, t.kind, slot, number, None, tuple(held))
                continue
            root = self.flip_root(t.name)
            trust_dir = fp.clone_release(self.checkout.root, root, ref)
            local = {k: secrets.token_urlsafe(24) for k in _FLIP_LOCAL_PASSWORDS}
            host_local = {"NUM_AVAILABLE_GPUS": "0", "POLL_INTERVAL_SECONDS": "1",
                          "FL_KIT_DIR": str(root / "fl-kit"),
                          "AICENTRE_BUCKET_NAME": h.fl_kits.bucket,
                          "OBSERVABILITY_CONFIG_DIR": str(root / "config" / "observability"),
                          **(edits or {})}
            values = fp.kit_values(kit, hub_env, local, host_local)
            kit_file = fp.write_kit_file(trust_dir, t.code, m.environment, name=t.name,
                                         region=t.region, values=values)
            fp.sync_fl_kit(s3, h.fl_kits.bucket, h.fl_kits.date, h.fl_backend, slot, number,
                           root / "fl-kit")
            fp.copy_observability(trust_dir, root / "config" / "observability")
            docker = shlex.split(self.docker(t.name))
            fp.init_swarm_and_networks(docker, number)
            self.hub.set_egress(t.name, t.public_ip)
            ec2 = t.kind == "aws"
            fp.up_trust(docker, trust_dir, kit_file, code=t.code, ec2=ec2)
            verdict = fp.wait_for_trust_api(docker, trust_dir, kit_file, code=t.code, ec2=ec2,
                                            timeout=timeout)
            out[t.name] = FlipWayTrust(t.name, t.kind, slot, number, kit_file,
                                       (*held, self.seed.aes_key, *local.values()),
                                       verdict)
        return out

    # -- teardown -----------------------------------------------------------------------------

    def stop_trust_processes(self) -> int:
        hosts = self.hosts_dir
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
            seed: bool = True, kit_dates: list[str] | None = None,
            hub_bind: str = "127.0.0.1", hub_advertise: str | None = None,
            hosts_root: Path | None = None,
            host_fields: Mapping[str, Mapping[str, Any]] | None = None,
            fl_backend: Literal["nvflare", "flower"] = "nvflare") -> Iterator[Sandbox]:
    """A running world; ``existing`` names trusts FLIP's own procedures already registered
    (no flipgitops state anywhere). The caller may pass a moto server it keeps across tests.

    ``hub_bind``/``hub_advertise``: where the stand-in hub listens and the address hosts are
    told (a veth address for hosts in network namespaces); ``hosts_root``: where the hosts'
    directories go (a path both the hosts' login users and root can reach);
    ``host_fields``: per trust, manifest `host` fields replacing the local defaults."""
    root.mkdir(parents=True, exist_ok=True)
    stack = ExitStack()
    box: Sandbox | None = None
    try:
        server = moto if moto is not None else stack.enter_context(moto_server())
        hub = stack.enter_context(StandinHub(server.url, REGION, domain=DOMAIN, fl_host=FL_HOST,
                                             fl_port=8002, era=registry, bind=hub_bind,
                                             advertise=hub_advertise))
        write_world(root / "world.json", {f"https://{DOMAIN}": hub.hub_url})
        cli = stack.enter_context(CliServer())
        checkout = make_flip_checkout(root / "FLIP")
        repo = root / "repo"
        (repo / "environments").mkdir(parents=True, exist_ok=True)
        _git(repo, "init", "-q", "-b", "main")
        box = Sandbox(root=root, moto=server, hub=hub, checkout=checkout, repo=repo,
                      env_name=env_name, hosts_root=hosts_root,
                      host_fields={k: dict(v) for k, v in (host_fields or {}).items()},
                      cli_server=cli, _stack=stack)
        box.write_manifest(box.manifest_doc(trusts, registry=registry, allowlist=allowlist,
                                            fl_backend=fl_backend),
                           commit="the environment")
        for t in trusts:  # 0755: the stand-in CLI would make it 0700 (root's) on first use,
            if t.kind != "tre":  # and an ssh host's login user must reach its flip_root
                (box.hosts_dir / t.name).mkdir(mode=0o755, parents=True, exist_ok=True)
        if seed:
            box.seed = seed_hub(box.load_manifest(), hub, existing=existing,
                                kit_dates=kit_dates)
        yield box
    finally:
        if box is not None:
            box.stop_trust_processes()
        stack.close()
        shutil.rmtree(hosts_root or root / "hosts", ignore_errors=True)
