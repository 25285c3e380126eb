"""Hub operations as FLIP does them, through the real CLI against the sandbox (moto, the
stand-in hub, a local trust host), one onboarded trust carried through:

- `status` healthy in text, markdown and json (exit 0);
- the internal service key: drift when sha256(key) != hash; a generation bump rotates it
  (FG007 until --fl-quiesced; both keys written, fl-server and flip-api redeployed), and the
  key is never printed nor left in flipgitops' state;
- deploy-centralhub: a tag the registry lacks exits 1 before any service changes; an image
  the registry lists but Fargate cannot pull never stabilises and is rolled back to the
  previous revision (exit 1 naming it); a good tag is deployed, stable, health 200;
- `status` after trust-api was stopped by hand exits 2 and names the trust, in all formats.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import subprocess
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

from flipgitops.sandbox.environment import REGION, Run, Sandbox, TrustSpec, sandbox
from flipgitops.sandbox.flip.registry import split_image
from flipgitops.sandbox.moto_server import MotoServer

pytestmark = [pytest.mark.slow, pytest.mark.long]  # the long lane: `pytest -m long`
# The stand-in settles in about a second: wait for it, not for FLIP's 20 minutes.
WAITS = {"FLIPGITOPS_WAITS": json.dumps({"stable_timeout": 20, "task_timeout": 60,
                                         "interval": 0.5})}
SERVICES = ["flip-api", "fl-api-net-1", "fl-server-net-1"]


class World:
    def __init__(self, box: Sandbox, moto: MotoServer) -> None:
        self.box = box
        self.ecs = boto3.client("ecs", region_name=REGION, endpoint_url=moto.url)
        self.sm = boto3.client("secretsmanager", region_name=REGION, endpoint_url=moto.url)
        self.s3 = boto3.client("s3", region_name=REGION, endpoint_url=moto.url)
        self.outputs: list[str] = []
        self.timings: list[tuple[str, float]] = []

    def cli(self, *args: str) -> Run:
        started = time.monotonic()
        r = self.box.cli(*args, extra_env=WAITS)
        self.timings.append((" ".join(args[:1] + args[3:]), time.monotonic() - started))
        self.outputs.append(r.text)
        return r

    def retag(self, tag: str, message: str) -> None:
        doc = self.box.manifest_doc([TRUST], hub_tag=tag, fl_tag=tag)
        self.box.write_manifest(doc, commit=message)

    def services(self) -> dict[str, dict[str, Any]]:
        found = self.ecs.describe_services(cluster="flip-cluster", services=SERVICES)
        return {s["serviceName"]: s for s in found["services"]}

    def hub_state(self) -> tuple[dict[str, str], list[str]]:
        """Each service's task definition, and every ACTIVE revision."""
        active = []
        for family in SERVICES:
            active += self.ecs.list_task_definitions(familyPrefix=family,
                                                     status="ACTIVE")["taskDefinitionArns"]
        return ({n: s["taskDefinition"] for n, s in self.services().items()}, sorted(active))

    def secret(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(
            self.sm.get_secret_value(SecretId="FLIP_API")["SecretString"])
        return doc

    def publish(self, tag: str, platforms: tuple[str, ...] = ("linux/amd64",)) -> None:
        assert self.box.seed is not None
        for image in self.box.seed.images.values():
            _, repo, _ = split_image(image)
            self.box.hub.registry.add(repo, tag, platforms=platforms)

    def state_objects(self) -> str:
        bucket = "flip-gitops-state-dev"
        keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        return "".join(self.s3.get_object(Bucket=bucket, Key=k)["Body"].read().decode()
                       for k in keys)


TRUST = TrustSpec("Trust_1", "GSTT", "203.0.113.11", region="London")


def _status_all(w: World) -> tuple[Run, Run, Run]:
    return (w.cli("status", "--env", "dev"), w.cli("status", "--env", "dev", "--format",
                                                  "markdown"),
            w.cli("status", "--env", "dev", "--format", "json"))


def test_hub_operations_end_to_end(tmp_path: Path, moto: MotoServer) -> None:
    started = time.monotonic()
    with sandbox(tmp_path, trusts=[TRUST], moto=moto) as box:
        w = World(box, moto)
        r = w.cli("apply", "--env", "dev", "--yes")
        assert r.code == 0, r.text

        # --- status: healthy, three formats ---------------------------------------------
        text, markdown, js = _status_all(w)
        assert (text.code, markdown.code, js.code) == (0, 0, 0), text.text
        assert "healthy (" in text.out.splitlines()[-1]
        assert "stable on v2.3.0" in text.out and "Trust_1" in text.out
        assert markdown.out.startswith("### flipgitops status for `dev`: healthy")
        report = json.loads(js.out)
        assert report["healthy"] is True and report["failing"] == []
        assert {row["section"] for row in report["rows"]} == {"hub", "Trust_1"}

        # --- the internal service key ----------------------------------------------------
        old = w.secret()
        old_key = old["internal_service_key"]
        w.sm.put_secret_value(SecretId="FLIP_API", SecretString=json.dumps(
            {**old, "internal_service_key_hash": hashlib.sha256(b"another key").hexdigest()}))
        r = w.cli("drift", "--env", "dev")
        assert r.code == 2 and "internal" in r.out.lower(), r.text
        doc = box.manifest_doc([TRUST])
        doc["hub"]["internal_service_key_generation"] = 2
        box.write_manifest(doc, commit="rotate the internal service key")
        r = w.cli("plan", "--env", "dev")
        assert r.code == 3 and "FG007" in r.out and "hub.rotate_internal_key" in r.out, r.text
        before = {n: s["deployments"][0]["id"] for n, s in w.services().items()}
        r = w.cli("apply", "--env", "dev", "--yes", "--fl-quiesced")
        assert r.code == 0, r.text
        new = w.secret()
        key = new["internal_service_key"]
        assert key != old_key and hashlib.sha256(key.encode()).hexdigest() == \
            new["internal_service_key_hash"]
        assert new["aes_key"] == old["aes_key"]
        after = {n: s["deployments"][0]["id"] for n, s in w.services().items()}
        assert after["fl-server-net-1"] != before["fl-server-net-1"]
        assert after["flip-api"] != before["flip-api"]
        assert after["fl-api-net-1"] == before["fl-api-net-1"]
        assert w.cli("drift", "--env", "dev").code == 0

        # --- deploy-centralhub: a tag the registry lacks -----------------------------------
        before_state = w.hub_state()
        w.retag("v2.9.9", "a tag nobody built")
        r = w.cli("apply", "--env", "dev", "--yes", "--fl-quiesced")
        assert r.code == 1, r.text
        assert "ghcr.io/londonaicentre/flip-api:v2.9.9 not found" in r.err
        assert "no service was changed" in r.err
        assert w.hub_state() == before_state

        # --- an image Fargate cannot pull: never stable, rolled back -------------------------
        w.publish("v2.5.0", platforms=("linux/arm64",))
        w.retag("v2.5.0", "an arm64-only build")
        r = w.cli("apply", "--env", "dev", "--yes", "--fl-quiesced")
        assert r.code == 1, r.text
        assert "did not stabilise" in r.err
        for name, arn in before_state[0].items():  # each named with its previous revision
            assert "rolled back" in r.err and f"{name} to {arn.rsplit('/', 1)[-1]}" in r.err
        assert "NOT rolled back" not in r.err
        services, active = w.hub_state()
        assert services == before_state[0]  # back on the previous revisions
        assert active == before_state[1]  # the failed revisions deregistered
        assert w.cli("status", "--env", "dev").code == 0  # the hub still serves the old one

        # --- a good release: deployed, stable, health 200 -----------------------------------
        w.publish("v2.4.0")
        w.retag("v2.4.0", "release v2.4.0")
        r = w.cli("apply", "--env", "dev", "--yes", "--fl-quiesced")
        assert r.code == 0, r.text
        assert "stable; /api/health 200" in r.text
        for name, svc in w.services().items():
            td = w.ecs.describe_task_definition(taskDefinition=svc["taskDefinition"])
            image = next(c["image"] for c in td["taskDefinition"]["containerDefinitions"]
                         if c["name"] == name)
            assert image.endswith(":v2.4.0") and svc["taskDefinition"] not in before_state[0]
        assert box.hub.state.loaded is not None and box.hub.state.loaded.image_tag == "v2.4.0"
        r = w.cli("status", "--env", "dev")
        assert r.code == 0 and r.out.count("stable on v2.4.0") == 3, r.text

        # --- trust-api stopped by hand -------------------------------------------------------
        docker = shlex.split(box.docker("Trust_1"))
        stopped = subprocess.run([*docker, "stop", "trust1-trust-api-1"], capture_output=True,
                                 text=True, timeout=60)
        assert stopped.returncode == 0, stopped.stderr
        text, markdown, js = _status_all(w)
        assert (text.code, markdown.code, js.code) == (2, 2, 2), text.text
        assert "UNHEALTHY: Trust_1 (stack, authentication)" in text.out
        assert "not running: trust-api" in text.out
        assert "UNHEALTHY: Trust\\_1" in markdown.out.splitlines()[0]
        report = json.loads(js.out)
        assert report["healthy"] is False and report["failing"] == ["Trust_1"]

        # --- the rotated key was never printed nor kept by flipgitops ------------------------
        assert not any(key in out or old_key in out for out in w.outputs)
        assert key not in w.state_objects()
    timings = ", ".join(f"{what} {secs:.0f}s" for what, secs in w.timings)
    print(f"\nwall: hub lifecycle e2e {time.monotonic() - started:.0f}s ({timings})")
