"""What an operator reads to judge a FLIP deployment, for the registry's end-to-end tests.

AWS through boto3 (against the sandbox's moto server), the stand-in hub's own tables
(`HubState`), files and the container CLI on trust hosts. Never flipgitops' own observe:
a check that read the world through the code under test could not catch that code being
wrong. FLIP's names are written out here with the FLIP file they come from, not imported
from `flipgitops.model.flip`, for the same reason.

Also the secret hunt: every CLI run's output and the argument lists seen while it ran are
kept, so a test can search them (and journals, logs, plan files, /tmp) for minted values.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from flipgitops.sandbox.environment import REGION, Run, Sandbox, standin_docker

CLUSTER = "flip-cluster"
FLIP_API_SERVICE = "flip-api"
SECRET = "FLIP_API"
SG_NAME = "flip-fl-server-nlb"
FL_PORT = 8002
# deploy/providers/AWS/scripts/register-trusts.sh@03bb6813: the SSM hand-off of the kit.
EPHEMERAL_PREFIX = "/flip/trust-kits/ephemeral"
REGISTER_STARTED_BY = "register-trusts"
# scripts/delete-trust.sh@05600a0d.
DELETE_STARTED_BY = "delete-trust"
FAULT_EXIT = 75  # engine/apply.py's FLIPGITOPS_FAULT_EXIT_AFTER exit code
# trust/trust-api/trust_api/services/task_poller.py@03dc1c54.
AUTHENTICATED = "Authenticated to hub as trust '{name}'"
# flipgitops' escrow and state layout (docs/architecture.md §4).
LOCAL_KEYS_NOTE = "trust-local credentials"


def delete_command(name: str) -> list[str]:
    """delete-trust.sh@05600a0d's container override."""
    return ["uv", "run", "python", "-m", "flip_api.scripts.delete_trust", "--name", name]


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Key:
    """A secret value that never shows itself: pytest prints the repr of everything an
    assert compared or passed, so tests compare ``digest`` and pass ``Key`` objects."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def __repr__(self) -> str:
        return f"Key(sha256:{self.digest[:12]})"

    @property
    def digest(self) -> str:
        return sha256(self._value)

    def reveal(self) -> str:
        return self._value


# --- running the CLI, with the argument lists of every process seen meanwhile ---------------


class ArgvSampler:
    """Reads /proc/*/cmdline every few milliseconds while a CLI run lasts (a key on an
    argument list is visible to every user of the host). Also notes the pids of processes
    working in the sandbox's repository (flipgitops itself) to find their leftovers."""

    def __init__(self, cwd: Path, interval: float = 0.02) -> None:
        self.cwd = str(cwd)
        self.interval = interval
        self.argv: set[bytes] = set()
        self.pids: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="argv-sampler", daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)

    def sample(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                    raw = fh.read()
                if raw:
                    self.argv.add(raw)
                if b"flipgitops" in raw and os.readlink(f"/proc/{entry.name}/cwd") == self.cwd:
                    self.pids.add(int(entry.name))
            except OSError:
                continue

    def __enter__(self) -> ArgvSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Transcript:
    """Every CLI run of a test: its output and the argv seen while it ran."""

    runs: list[tuple[tuple[str, ...], Run]] = field(default_factory=list)
    argv: set[bytes] = field(default_factory=set)
    pids: set[int] = field(default_factory=set)
    seconds: float = 0.0

    def cli(self, box: Sandbox, *args: str, env: Mapping[str, str] | None = None,
            sample: bool = True) -> Run:
        started = time.monotonic()
        if sample:
            with ArgvSampler(box.repo) as sampler:
                run = box.cli(*args, extra_env=env)
            self.argv |= sampler.argv
            self.pids |= sampler.pids
        else:
            run = box.cli(*args, extra_env=env)
        self.seconds += time.monotonic() - started
        self.runs.append((args, run))
        return run

    def texts(self) -> dict[str, str]:
        out = {}
        for i, (args, run) in enumerate(self.runs):
            out[f"run {i} ({' '.join(args[:3])}) stdout"] = run.out
            out[f"run {i} ({' '.join(args[:3])}) stderr"] = run.err
        return out


# --- AWS, as boto3 shows it -----------------------------------------------------------------


class Aws:
    def __init__(self, box: Sandbox) -> None:
        self.box = box
        kw: dict[str, Any] = {"endpoint_url": box.moto.url, "region_name": REGION}
        self.sm = boto3.client("secretsmanager", **kw)
        self.ecs = boto3.client("ecs", **kw)
        self.ssm = boto3.client("ssm", **kw)
        self.ec2 = boto3.client("ec2", **kw)
        self.s3 = boto3.client("s3", **kw)
        self.logs = boto3.client("logs", **kw)
        self.env = box.env_name
        self.bucket = f"flip-gitops-state-{box.env_name}"

    # FLIP_API
    def secret_string(self) -> str:
        return str(self.sm.get_secret_value(SecretId=SECRET)["SecretString"])

    def secret(self) -> dict[str, Any]:
        data = json.loads(self.secret_string())
        assert isinstance(data, dict)
        return data

    def trust_hashes(self) -> dict[str, str]:
        """`trust_api_key_hashes`: a JSON-encoded string as E2's Terraform writes it
        (main.tf@01328ab0), or an object."""
        raw = self.secret().get("trust_api_key_hashes")
        if raw is None:
            return {}
        value = json.loads(raw) if isinstance(raw, str) else raw
        assert isinstance(value, dict)
        return {str(k): str(v) for k, v in value.items()}

    # flip-api on ECS
    def service(self) -> dict[str, Any]:
        got = self.ecs.describe_services(cluster=CLUSTER, services=[FLIP_API_SERVICE])
        return dict(got["services"][0])

    def deployments(self) -> list[tuple[str, str]]:
        return sorted((str(d["id"]), str(d["taskDefinition"]))
                      for d in self.service()["deployments"])

    def task_definition(self, arn: str) -> dict[str, Any]:
        return dict(self.ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"])

    def revisions(self) -> list[str]:
        return list(self.ecs.list_task_definitions(familyPrefix=FLIP_API_SERVICE)[
            "taskDefinitionArns"])

    def trust_names(self, arn: str | None = None) -> list[str] | None:
        """TRUST_NAMES in the flip-api container's environment (E2's locals.tf@01328ab0)
        of ``arn``, by default the service's current task definition."""
        td = self.task_definition(arn or str(self.service()["taskDefinition"]))
        for container in td["containerDefinitions"]:
            if container["name"] == FLIP_API_SERVICE:
                for item in container.get("environment", []):
                    if item["name"] == "TRUST_NAMES":
                        names = json.loads(item["value"])
                        assert isinstance(names, list)
                        return [str(n) for n in names]
        return None

    def tasks(self, started_by: str) -> list[dict[str, Any]]:
        arns: list[str] = []
        for status in ("RUNNING", "STOPPED"):
            arns += self.ecs.list_tasks(cluster=CLUSTER, startedBy=started_by,
                                        desiredStatus=status)["taskArns"]
        if not arns:
            return []
        return [dict(t) for t in self.ecs.describe_tasks(cluster=CLUSTER, tasks=arns)["tasks"]]

    @staticmethod
    def command(task: Mapping[str, Any]) -> list[str]:
        for override in task.get("overrides", {}).get("containerOverrides", []):
            if override.get("name") == FLIP_API_SERVICE:
                return list(override.get("command", []))
        return []

    # SSM
    def parameters(self, path: str) -> list[str]:
        names: list[str] = []
        pager = self.ssm.get_paginator("describe_parameters")
        for page in pager.paginate():
            names += [p["Name"] for p in page["Parameters"] if p["Name"].startswith(path)]
        return sorted(names)

    def parameter(self, name: str) -> str | None:
        try:
            got = self.ssm.get_parameter(Name=name, WithDecryption=True)
        except self.ssm.exceptions.ParameterNotFound:
            return None
        return str(got["Parameter"]["Value"])

    def escrow_kit(self, trust: str) -> dict[str, Any] | None:
        raw = self.parameter(f"/flipgitops/{self.env}/trusts/{trust}/kit")
        return None if raw is None else dict(json.loads(raw))

    def escrow_local(self, trust: str) -> dict[str, str] | None:
        raw = self.parameter(f"/flipgitops/{self.env}/trusts/{trust}/local")
        return None if raw is None else dict(json.loads(raw))

    def escrow_key(self, trust: str) -> Key | None:
        """The escrowed kit's trust API key (never shown)."""
        kit = self.escrow_kit(trust)
        return None if kit is None else Key(str(kit["trust_api_key"]))

    def escrow_digest(self, trust: str) -> str | None:
        key = self.escrow_key(trust)
        return None if key is None else key.digest

    def escrowed(self, trust: str) -> dict[str, bool]:
        """Which of the trust's escrow parameters exist (their values are never shown)."""
        base = f"/flipgitops/{self.env}/trusts/{trust}"
        return {part: self.parameter(f"{base}/{part}") is not None for part in ("kit", "local")}

    # flipgitops' state in S3
    def state_object(self, key: str) -> str | None:
        try:
            body = self.s3.get_object(Bucket=self.bucket, Key=f"flipgitops/{key}")["Body"]
        except self.s3.exceptions.NoSuchKey:
            return None
        return str(body.read().decode())

    def ledger(self) -> dict[str, Any]:
        raw = self.state_object(f"ledger/{self.env}.json")
        return {} if raw is None else dict(json.loads(raw))

    def lock(self) -> dict[str, Any] | None:
        raw = self.state_object(f"locks/{self.env}.json")
        return None if raw is None else dict(json.loads(raw))

    def journals(self) -> dict[str, str]:
        keys: list[str] = []
        pager = self.s3.get_paginator("list_objects_v2")
        for page in pager.paginate(Bucket=self.bucket, Prefix=f"flipgitops/runs/{self.env}/"):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return {k: str(self.s3.get_object(Bucket=self.bucket, Key=k)["Body"].read().decode())
                for k in sorted(keys)}

    def journal_events(self, key: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.journals()[key].splitlines() if line]

    # the NLB's security group
    def ingress_cidrs(self) -> list[str]:
        groups = self.ec2.describe_security_groups(
            Filters=[{"Name": "tag:Name", "Values": [SG_NAME]}])["SecurityGroups"]
        assert len(groups) == 1, groups
        return sorted(r["CidrIp"] for p in groups[0]["IpPermissions"]
                      if p.get("FromPort") == FL_PORT for r in p.get("IpRanges", []))

    def trust_cidrs(self, baseline: Iterable[str]) -> list[str]:
        """The rules beyond those FLIP's Terraform made (``baseline``: the NAT's /32 from
        `fl_server_ingress`, read before the test changed anything); duplicates kept."""
        seen = set(baseline)
        return [c for c in self.ingress_cidrs() if c not in seen]

    # CloudWatch
    def log_texts(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for group in self.logs.describe_log_groups()["logGroups"]:
            name = group["logGroupName"]
            events = self.logs.filter_log_events(logGroupName=name).get("events", [])
            out[f"logs {name}"] = "\n".join(e["message"] for e in events)
        return out


# --- the stand-in hub (FLIP's side) ---------------------------------------------------------


def auth_status(box: Sandbox, key: Key) -> int:
    """What flip-api answers a trust presenting ``key`` (GET /api/tasks/pending with the
    header flip-api's TRUST_API_KEY_HEADER names)."""
    header = box.hub.state.api_key_header()
    req = urllib.request.Request(f"{box.hub.api_url}/tasks/pending",
                                 headers={header: key.reveal()})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def hub_trust_names(box: Sandbox) -> list[str]:
    return sorted(t.name for t in box.hub.state.trusts())


def registrations(box: Sandbox, name: str) -> int:
    return sum(1 for e in box.hub.state.events if e == ("register", name))


# --- trust hosts -----------------------------------------------------------------------------


def kit_file(box: Sandbox, trust: str, code: str) -> Path:
    return box.flip_root(trust) / "trust" / f".env.{code}.development"


def kit_values(box: Sandbox, trust: str, code: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in kit_file(box, trust, code).read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def host_key(box: Sandbox, trust: str, code: str) -> Key:
    """TRUST_API_KEY in the host's kit file (never shown)."""
    return Key(kit_values(box, trust, code)["TRUST_API_KEY"])


def trust_api_logs(box: Sandbox, trust: str) -> str:
    """Every container log on the host (docker's json-file lines), decoded."""
    lines = []
    for path in sorted((box.daemon_dir(trust) / "containers").glob("*/json.log")):
        for raw in path.read_text().splitlines():
            try:
                lines.append(str(json.loads(raw).get("log", "")))
            except ValueError:
                lines.append(raw)
    return "".join(lines)


def containers(box: Sandbox, trust: str) -> list[dict[str, Any]]:
    """`docker compose -p trust<N> ps -a --format json` for every project on the host."""
    import subprocess

    out: list[dict[str, Any]] = []
    projects = box.daemon_dir(trust) / "projects"
    for project in sorted(p.stem for p in projects.glob("*.json")) if projects.is_dir() else []:
        proc = subprocess.run(
            [standin_docker(), "--daemon-dir", str(box.daemon_dir(trust)), "--world",
             str(box.root / "world.json"), "compose", "-p", project, "ps", "-a", "--format",
             "json"], capture_output=True, text=True, check=True, timeout=60)
        out += [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    return out


def running(box: Sandbox, trust: str) -> list[str]:
    return sorted(c["Service"] for c in containers(box, trust) if c.get("State") == "running")


# --- the secret hunt -------------------------------------------------------------------------


@dataclass
class Minted:
    """Every secret value seen in the escrow, FLIP_API and host kit files during a test,
    by a label that never contains the value."""

    values: dict[str, str] = field(default_factory=dict)

    def add(self, label: str, value: object) -> None:
        if isinstance(value, str) and len(value) >= 12:
            self.values.setdefault(value, label)

    def collect(self, aws: Aws, trusts: Iterable[str]) -> None:
        secret = aws.secret()
        for key in ("aes_key", "internal_service_key"):
            self.add(f"FLIP_API {key}", secret.get(key))
        for name in trusts:
            kit = aws.escrow_kit(name) or {}
            for key in ("trust_api_key", "trust_internal_service_key"):
                self.add(f"{name} {key}", kit.get(key))
            for key, value in (aws.escrow_local(name) or {}).items():
                self.add(f"{name} {LOCAL_KEYS_NOTE} {key}", value)

    def found_in(self, texts: Mapping[str, str | bytes]) -> list[str]:
        hits = []
        for where, text in texts.items():
            blob = text.encode() if isinstance(text, str) else text
            for value, label in self.values.items():
                if value.encode() in blob:
                    hits.append(f"{label} in {where}")
        return hits


def tmp_files(since: float, *, roots: Iterable[Path | str] = ("/tmp",),
              skip: Iterable[Path] = ()) -> Iterator[tuple[str, bytes]]:
    """Files under ``roots`` changed since ``since`` (the hosts' kit files are skipped: they
    are the one place a key belongs)."""
    skipped = {str(p) for p in skip}
    for top, dirs, files in (w for root in roots for w in os.walk(root)):
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(top, d))]
        for name in files:
            path = os.path.join(top, name)
            if path in skipped:
                continue
            try:
                st = os.lstat(path)
                if st.st_mtime < since or not os.path.isfile(path) or st.st_size > 8 << 20:
                    continue
                with open(path, "rb") as fh:
                    yield path, fh.read()
            except OSError:
                continue


def leftover_runner_dirs(pids: Iterable[int]) -> list[str]:
    """ansible-runner private dirs (adapters/hosts.py: /tmp/flipgitops-ansible-<pid>-*) of
    the given flipgitops processes that are still on disk."""
    wanted = tuple(f"flipgitops-ansible-{pid}-" for pid in pids)
    return sorted(e.name for e in os.scandir("/tmp") if wanted and e.name.startswith(wanted))


@contextmanager
def timed(label: str, sink: dict[str, float]) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        sink[label] = round(time.monotonic() - started, 1)
