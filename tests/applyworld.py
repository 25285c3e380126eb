"""A whole FLIP world for apply tests: a seeded hub on the moto server, local trust hosts, a
manifest committed in a real git repository, and the real CLI run as a subprocess.

Used by tests/e2e/test_apply_*.py and tests/reliability/*: every check reads the world the
way an operator would (boto3 against the emulator, the files on the trust hosts), never
through flipgitops' own observe, so a bug there cannot hide a bug in apply.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hostfixtures import make_local_host

from flipgitops.adapters.aws_session import Clients
from flipgitops.core.validate import SCHEMA_COMMENT
from flipgitops.engine.manifests import load_manifest
from flipgitops.model.manifest import Manifest
from flipgitops.sandbox.moto_server import MOTO_ACCOUNT_ID
from flipgitops.sandbox.seed import SeedResult, seed_hub

REGION = "eu-west-2"
REPO_ROOT = Path(__file__).resolve().parent.parent
TRUST_IPS = {"Trust_1": "203.0.113.11", "Trust_2": "203.0.113.12", "Trust_3": "203.0.113.13"}


@dataclass
class Run:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def trust_doc(tmp_path: Path, name: str, *, tre: bool = False) -> dict[str, Any]:
    """An on-prem trust with a local host, or (``tre``) a hub-side-only trust: no Ansible."""
    doc: dict[str, Any] = {
        "name": name,
        "kind": "tre" if tre else "on-prem",
        "public_ip": TRUST_IPS[name],
        "fl_kit_slot": name,
        "state": "active",
        "credentials_generation": 1,
        "services": {"orthanc": True, "xnat": False},
    }
    if not tre:
        doc["host"] = make_local_host(tmp_path, name).model_dump(mode="json", exclude_none=True)
    return doc


def manifest_doc(tmp_path: Path, env: str, trusts: list[str], *,
                 tre: bool = False) -> dict[str, Any]:
    prod = env == "prod"
    return {
        "version": 1,
        "environment": env,
        "aws": {"account_id": MOTO_ACCOUNT_ID, "region": REGION},
        "state": {"bucket": f"flip-gitops-state-{env}", "prefix": "flipgitops"},
        "hub": {
            "domain": f"{env}.flip.example.org",
            "fl_backend": "nvflare",
            "images": {"registry": "ghcr.io/londonaicentre", "hub_tag": "v2.3.0",
                       "fl_tag": "v2.3.0"},
            "database": {"deletion_protection": prod, "final_snapshot": prod,
                         "backup_retention_days": 7 if prod else 1, "generation": 1},
        },
        "trusts": [trust_doc(tmp_path, n, tre=tre) for n in trusts],
        "policy": {"lockstep_fl_images": True, "max_trust_removals": 1,
                   "immutable_tags": True},
    }


class World:
    """One environment: ``doc`` is the manifest as a dict; ``save`` writes and commits it."""

    def __init__(self, tmp_path: Path, env: str = "dev",
                 trusts: tuple[str, ...] = ("Trust_1", "Trust_2"), *, tre: bool = False) -> None:
        self.tmp_path = tmp_path
        self.repo = tmp_path / "repo"
        self.path = self.repo / "environments" / f"{env}.yaml"
        self.path.parent.mkdir(parents=True)
        self.env = env
        self.doc = manifest_doc(tmp_path, env, list(trusts), tre=tre)
        self._git("init", "-q", "-b", "main")
        self.save("initial manifest")
        self.clients = Clients(region=REGION)
        self.seed: SeedResult | None = None

    # --- manifest ---------------------------------------------------------------------

    def save(self, message: str = "edit manifest") -> None:
        text = SCHEMA_COMMENT + "\n" + json.dumps(self.doc, indent=2) + "\n"
        self.path.write_text(text, encoding="utf-8")
        self._git("add", "-A")
        self._git("commit", "-q", "-m", message)

    def manifest(self) -> Manifest:
        return load_manifest(self.path)

    def trust(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = next(t for t in self.doc["trusts"] if t["name"] == name)
        return found

    def seed_hub(self, *, trusts: bool = False) -> SeedResult:
        """The hub as FLIP's Terraform leaves it; ``trusts`` False: none registered yet."""
        self.seed = seed_hub(self.manifest(), self.clients, trusts=trusts)
        return self.seed

    def head(self) -> str:
        return self._git("rev-parse", "HEAD").strip()

    def _git(self, *args: str) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
               "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org"}
        return subprocess.run(["git", *args], cwd=self.repo, env=env, check=True,
                              capture_output=True, text=True).stdout

    # --- the CLI ----------------------------------------------------------------------

    def cli(self, *args: str, extra_env: dict[str, str] | None = None,
            timeout: float = 600) -> Run:
        """``python -m flipgitops <args> --env <manifest path>`` as CI would run it."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FLIPGITOPS_FAULT")}
        env.update(extra_env or {})
        env["NO_COLOR"] = "1"
        proc = subprocess.run(
            [sys.executable, "-m", "flipgitops", *args, "--env", str(self.path)],
            cwd=self.repo, env=env, capture_output=True, text=True, timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        return Run(proc.returncode, proc.stdout, proc.stderr)

    def apply(self, *args: str, **kw: Any) -> Run:
        return self.cli("apply", "--yes", *args, **kw)

    def plan(self, *args: str) -> Run:
        return self.cli("plan", *args)

    # --- the world, read directly ----------------------------------------------------

    def group(self) -> dict[str, Any]:
        name = self.doc["hub"].get("fl_server", {}).get("security_group", "flip-fl-server-nlb")
        groups = self.clients.ec2.describe_security_groups(
            Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
        assert len(groups) == 1
        return dict(groups[0])

    def rules(self, port: int = 8002) -> list[tuple[str, str | None]]:
        """(cidr, description) of every ingress range on the FL port, duplicates kept."""
        out = []
        for perm in self.group().get("IpPermissions", []):
            if perm.get("FromPort") == port:
                out += [(r["CidrIp"], r.get("Description")) for r in perm.get("IpRanges", [])]
        return sorted(out, key=lambda r: (r[0], r[1] or ""))

    def secret(self) -> dict[str, Any]:
        value = self.clients.secretsmanager.get_secret_value(SecretId="FLIP_API")
        data: dict[str, Any] = json.loads(value["SecretString"])
        return data

    def secret_version(self) -> str:
        return str(self.clients.secretsmanager.get_secret_value(SecretId="FLIP_API")["VersionId"])

    def escrowed(self, trust: str) -> tuple[int, str] | None:
        try:
            p = self.clients.ssm.get_parameter(
                Name=f"/flipgitops/{self.env}/trusts/{trust}/api-key", WithDecryption=True)
        except self.clients.ssm.exceptions.ParameterNotFound:
            return None
        data = json.loads(p["Parameter"]["Value"])
        return int(data["generation"]), str(data["api_key"])

    def task_definitions(self) -> dict[str, str]:
        names = ["flip-api", "fl-api-net-1", "fl-server-net-1"]
        services = self.clients.ecs.describe_services(cluster="flip-cluster", services=names)
        return {s["serviceName"]: s["taskDefinition"] for s in services["services"]}

    def service_tags(self) -> dict[str, str]:
        out = {}
        for name, arn in self.task_definitions().items():
            td = self.clients.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
            image = next(c["image"] for c in td["containerDefinitions"] if c["name"] == name)
            out[name] = image.rsplit(":", 1)[1]
        return out

    def flip_root(self, trust: str) -> Path:
        return Path(self.trust(trust)["host"]["flip_root"])

    def host_env(self, trust: str) -> dict[str, str]:
        path = self.flip_root(trust) / "trust" / ".env"
        if not path.is_file():
            return {}
        pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
        return {k.strip(): v.strip() for k, v in pairs}

    def database(self) -> dict[str, Any]:
        dbs = self.clients.rds.describe_db_instances(DBInstanceIdentifier="flip-database")
        return dict(dbs["DBInstances"][0])

    def snapshots(self) -> list[dict[str, Any]]:
        resp = self.clients.rds.describe_db_snapshots(
            DBInstanceIdentifier="flip-database", SnapshotType="manual")
        return [dict(s) for s in resp["DBSnapshots"]]

    def state_objects(self) -> dict[str, str]:
        """Every object flipgitops wrote in its state bucket: key -> body."""
        bucket = f"flip-gitops-state-{self.env}"
        listed = self.clients.s3.list_objects_v2(Bucket=bucket).get("Contents", [])
        return {
            o["Key"]: self.clients.s3.get_object(Bucket=bucket, Key=o["Key"])["Body"]
            .read().decode()
            for o in listed
        }

    def journal_events(self) -> list[dict[str, Any]]:
        events = []
        for key, body in sorted(self.state_objects().items()):
            if "/runs/" in key:
                events += [json.loads(line) for line in body.splitlines() if line.strip()]
        return events

    def lock(self) -> dict[str, Any] | None:
        body = self.state_objects().get(f"flipgitops/locks/{self.env}.json")
        return None if body is None else dict(json.loads(body))
