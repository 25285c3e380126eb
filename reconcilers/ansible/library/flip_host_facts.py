#!/usr/bin/python
"""Ansible module: read a FLIP trust host's state without letting a secret leave the host.

It runs ON the trust host. The trust env file holds TRUST_API_KEY and AES_KEY_BASE64; this
module reads them there and returns only their sha256 hex, so the plaintext never reaches the
controller, Ansible events or artifacts (a registered `slurp` would carry it). It also asks the
host's container CLI for the trust stack (`compose ps --format json`) and greps trust-api's
recent logs for a successful poll, returning only the verdict: logs stay on the host too.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import stat
import subprocess

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: flip_host_facts
short_description: Facts about a FLIP trust host (hashes only, never secret values)
options:
  flip_root: {type: path, required: true}
  kit_slot: {type: str, required: true}
  docker: {type: str, default: docker}
  compose_project: {type: str, default: trust}
  poll_window_minutes: {type: int, default: 10}
  poll_regex: {type: str, required: true}
  check_polling: {type: bool, default: true}
"""

HASHED = {"TRUST_API_KEY": "trust_api_key_sha256", "AES_KEY_BASE64": "aes_key_sha256"}
PLAIN = {
    "TRUST_NAME": "trust_name",
    "CENTRAL_HUB_API_URL": "hub_url",
    "DOCKER_TAG": "docker_tag",
    "DOCKER_FL_TAG": "docker_fl_tag",
}
TIMEOUT = 120


def read_env(path):
    values = {}
    with open(path, encoding="utf-8") as fh:
        for raw in fh:
            line = raw.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            key, value = line.split("=", 1)
            key = key.strip()
            if key.startswith("export "):
                key = key[len("export "):].strip()
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            values[key] = value
    return values


def run(argv):
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 127, "", exc.__class__.__name__
    return proc.returncode, proc.stdout, proc.stderr


def parse_ps(text):
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    out = []
    for row in rows:
        image = row.get("Image", "")
        out.append({"service": row.get("Service", ""), "image": image, "state": row.get("State", "")})
    return out


def env_facts(env_file, facts):
    try:
        st = os.stat(env_file)
    except (FileNotFoundError, NotADirectoryError):
        return
    except OSError as exc:
        facts["reason"] = "trust env file not readable (%s)" % exc.__class__.__name__
        return
    facts["env_file_present"] = True
    facts["env_file_mode"] = "%04o" % stat.S_IMODE(st.st_mode)
    try:
        values = read_env(env_file)
    except (OSError, UnicodeDecodeError) as exc:
        facts["reason"] = "trust env file unreadable (%s)" % exc.__class__.__name__
        return
    for key, name in HASHED.items():
        if values.get(key):
            facts[name] = hashlib.sha256(values[key].encode("utf-8")).hexdigest()
    for key, name in PLAIN.items():
        if key in values:
            facts[name] = values[key]


def stack_facts(module, facts, compose_file, env_file):
    p = module.params
    try:
        docker = shlex.split(p["docker"])
    except ValueError:
        docker = []
    if not docker:
        facts["reason"] = "host.docker is empty or malformed"
        return
    rc, _, _ = run(docker + ["version"])
    facts["docker_present"] = rc == 0
    if rc != 0:
        facts["polling_detail"] = "the container CLI is not runnable"
        return
    if not os.path.isfile(compose_file):
        facts["polling_detail"] = "the trust stack is not deployed (no compose file)"
        return
    base = docker + ["compose", "-p", p["compose_project"], "-f", compose_file]
    if facts["env_file_present"]:
        base += ["--env-file", env_file]
    rc, out, err = run(base + ["ps", "--format", "json"])
    if rc != 0:
        facts["reason"] = "compose ps failed (rc=%d)" % rc
        facts["polling_detail"] = facts["reason"]
        return
    try:
        facts["containers"] = parse_ps(out)
    except ValueError:
        facts["reason"] = "compose ps printed something that is not JSON"
        facts["polling_detail"] = facts["reason"]
        return
    if not p["check_polling"]:
        return
    running = any(c["service"] == "trust-api" and c["state"] == "running" for c in facts["containers"])
    if not running:
        facts["polling_ok"] = False
        facts["polling_detail"] = "trust-api is not running"
        return
    since = "%dm" % p["poll_window_minutes"]
    rc, out, err = run(base + ["logs", "--no-color", "--since", since, "trust-api"])
    pattern = re.compile(p["poll_regex"])
    facts["polling_ok"] = rc == 0 and any(pattern.search(line) for line in (out + err).splitlines())
    if not facts["polling_ok"]:
        facts["polling_detail"] = "no successful poll logged in the last %s" % since


def main():
    module = AnsibleModule(
        argument_spec=dict(
            flip_root=dict(type="path", required=True),
            kit_slot=dict(type="str", required=True),
            docker=dict(type="str", default="docker"),
            compose_project=dict(type="str", default="trust"),
            poll_window_minutes=dict(type="int", default=10),
            poll_regex=dict(type="str", required=True),
            check_polling=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    root = module.params["flip_root"]
    trust_dir = os.path.join(root, "trust")
    env_file = os.path.join(trust_dir, ".env")
    compose_file = os.path.join(trust_dir, "compose.yml")
    kit = os.path.join(root, "services", module.params["kit_slot"])
    facts = {
        "flip_root_present": all(
            os.path.isdir(os.path.join(root, d)) for d in ("services", "trust", "data")
        ),
        "kit_present": all(os.path.isdir(os.path.join(kit, d)) for d in ("startup", "local", "transfer")),
        "env_file_present": False,
        "env_file_mode": None,
        "trust_api_key_sha256": None,
        "aes_key_sha256": None,
        "trust_name": None,
        "hub_url": None,
        "docker_tag": None,
        "docker_fl_tag": None,
        "docker_present": False,
        "containers": [],
        "polling_ok": None,
        "reason": None,
        "polling_detail": None,
    }
    env_facts(env_file, facts)
    stack_facts(module, facts, compose_file, env_file)
    module.exit_json(changed=False, flip=facts)


if __name__ == "__main__":
    main()
