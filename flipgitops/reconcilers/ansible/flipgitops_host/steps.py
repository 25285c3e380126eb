"""The host steps that change a trust host, each the procedure FLIP's own playbooks follow.

Every function takes the step's ``spec`` (built in Python by the controller,
adapters/hosts_build.py) and returns ``(changed, message)``; a failure raises StepError or
HostFileError with a message that names the path or the command, never a secret (messages
are scrubbed of the kit file's secret values before they leave).
"""

from __future__ import annotations

import base64
import json
import os
import time
import zlib
from typing import TYPE_CHECKING, Any

from . import compose, facts, flkit, fsutil, kitfile, stack, tree
from .masking import scrub

if TYPE_CHECKING:
    from collections.abc import Mapping


class StepError(Exception):
    """A step that cannot do what it must (the message says what and how to fix it)."""


def _ids(spec: Mapping[str, Any], key: str) -> tuple[int | None, int | None]:
    return fsutil.owner_ids(spec.get(key))


def _inside(root: str, rel: str) -> str:
    """`root/rel`, refusing paths that leave root (`..`, absolute, through a symlink)."""
    if not rel or rel.startswith("/") or any(p in ("", ".", "..") for p in rel.split("/")):
        raise StepError(f"refusing the path {rel!r}: not a plain relative path")
    path = os.path.join(root, rel)
    parent = os.path.realpath(os.path.dirname(path))
    if parent != os.path.realpath(root) and not parent.startswith(os.path.realpath(root) + "/"):
        raise StepError(f"refusing {path}: a parent directory leads outside {root}")
    return path


def _engine_state(docker: list[str]) -> tuple[int, str, str]:
    """`docker info --format {{.Swarm.LocalNodeState}}`: whether the CLI runs and reaches its
    daemon (rc 0) and the swarm state, in one command (each is a process start)."""
    got = compose.run([*docker, "info", "--format", "{{.Swarm.LocalNodeState}}"], timeout=60)
    if got[0] == 0:
        compose.learn("swarm", *docker, value=got[1].strip())
    return got


# --- provision (flip_base_packages, flip_docker, flip_trust_dirs, azure.yml's swarm init) --


def provision(spec: Mapping[str, Any]) -> tuple[bool, str]:
    docker = list(spec["docker"])
    changed = False
    rc, state, err = _engine_state(docker)
    if rc != 0 and spec.get("install_docker"):
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["apt-get", "update"],
                     ["apt-get", "install", "-y", "--no-install-recommends",
                      *spec["packages"]],
                     ["systemctl", "enable", "--now", "docker"]):
            rc, _, err = compose.run(argv, env=env, timeout=1800)
            if rc != 0:
                raise StepError(f"{' '.join(argv[:3])} failed: {compose.last_line(err)}")
        changed = True
        rc, state, err = _engine_state(docker)
    if rc != 0:
        raise StepError(f"the container CLI {' '.join(docker)!r} is not runnable on this host"
                        f" or does not reach its daemon ({compose.last_line(err) or 'no output'})"
                        "; install Docker and the compose plugin")
    rc, _, err = compose.run([*docker, "compose", "version"], timeout=60)
    if rc != 0:
        raise StepError(f"`{' '.join(docker)} compose` is not available: "
                        f"{compose.last_line(err)}")
    compose.learn("compose", *docker)
    for path, mode, owner, group in spec["dirs"]:
        uid, gid = fsutil.owner_ids(owner)
        if group is not None:
            gid = fsutil.owner_ids(group)[0]
        changed = fsutil.ensure_dir(path, int(mode, 8), uid, gid) or changed
    if state.strip() != "active":
        rc, _, err = compose.run([*docker, "swarm", "init", "--advertise-addr",
                                  spec["swarm_advertise_addr"]], timeout=120)
        if rc != 0:
            raise StepError(f"`docker swarm init` failed: {compose.last_line(err)}")
        compose.learn("swarm", *docker, value="active")
        changed = True
    if spec.get("network"):
        changed = ensure_network(docker, spec["network"]) or changed
    return changed, "provisioned"


def ensure_network(docker: list[str], name: str) -> bool:
    """trust/Makefile's create-networks for the trust's overlay network (not asked again
    when this run already saw it or made it)."""
    if compose.known("network", *docker, name):
        return False
    if compose.run([*docker, "network", "inspect", name], timeout=60)[0] == 0:
        compose.learn("network", *docker, name)
        return False
    rc, _, err = compose.run([*docker, "network", "create", "--driver", "overlay",
                              "--attachable", name], timeout=120)
    if rc != 0:
        raise StepError(f"`docker network create {name}` failed: {compose.last_line(err)}")
    compose.learn("network", *docker, name)
    return True


# --- deploy_release (FLIP's trust/ at a ref; flip_observability_config) ----------------------


def _unpack(blob: str) -> bytes:
    return zlib.decompress(base64.b64decode(blob))


def deploy_release(spec: Mapping[str, Any]) -> tuple[bool, str]:
    trust_dir, state_dir = spec["trust_dir"], spec["state_dir"]
    uid, gid = _ids(spec, "app_owner")
    changed = fsutil.ensure_dir(trust_dir, 0o755, uid, gid)
    fsutil.ensure_dir(state_dir, 0o700)
    marker_path = os.path.join(state_dir, "release.json")
    old = facts.read_json(marker_path) or {}
    new_paths = set()
    entries = []
    for rel, kind, blob in spec["files"]:
        new_paths.add(rel)
        data = _unpack(blob)
        path = _inside(trust_dir, rel)
        wanted = (rel, kind, tree.digest(data))
        entries.append(wanted)
        if tree.disk_entry(trust_dir, rel) == wanted:
            continue
        _make_parents(trust_dir, rel, uid, gid)
        if kind == tree.KIND_LINK:
            fsutil.write_link(path, data.decode("utf-8", "surrogateescape"))
        else:
            if os.path.isdir(path) and not os.path.islink(path):
                fsutil.remove(path)
            fsutil.atomic_write(path, data, 0o755 if kind == tree.KIND_EXEC else 0o644,
                                uid, gid)
        changed = True
    for rel in sorted(set(old.get("files") or []) - new_paths, reverse=True):
        path = _inside(trust_dir, str(rel))
        if os.path.lexists(path):
            fsutil.remove(path)
            _prune_empty(trust_dir, os.path.dirname(path))
            changed = True
    if tree.tree_sha256(entries) != spec["tree_sha256"]:
        raise StepError("the files received do not hash to the release's tree digest "
                        f"({spec['ref']}); nothing is recorded, rerun the deploy")
    marker = {"ref": spec["ref"], "commit": spec["commit"], "tree_sha256": spec["tree_sha256"],
              "files": sorted(new_paths)}
    if {k: old.get(k) for k in marker} != marker:
        fsutil.atomic_write(marker_path, (json.dumps(marker, indent=1) + "\n").encode(), 0o600)
        changed = True
    changed = _copy_observability(trust_dir, spec["observability"], uid, gid) or changed
    return changed, f"trust/ at {spec['ref']} ({spec['commit'][:12]})"


def _make_parents(root: str, rel: str, uid: int | None, gid: int | None) -> None:
    parts = rel.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        path = os.path.join(root, *parts[:i])
        if os.path.lexists(path) and not os.path.isdir(path):
            fsutil.remove(path)
        if not os.path.isdir(path):
            fsutil.ensure_dir(path, 0o755, uid, gid)


def _prune_empty(root: str, directory: str) -> None:
    root = os.path.realpath(root)
    while os.path.realpath(directory).startswith(root + "/"):
        try:
            os.rmdir(directory)
        except OSError:
            return
        directory = os.path.dirname(directory)


def _copy_observability(trust_dir: str, cfg: Mapping[str, Any], uid: int | None,
                        gid: int | None) -> bool:
    """flip_observability_config: FLIP's five files, 0644, into <flip_root>/config/…."""
    changed = fsutil.ensure_dir(cfg["dest"], 0o755, uid, gid)
    for rel in cfg["files"]:
        data = fsutil.read_bytes(os.path.join(trust_dir, cfg["src"], rel))
        if data is None:
            continue
        target = os.path.join(cfg["dest"], rel)
        _make_parents(cfg["dest"], rel, uid, gid)
        if fsutil.read_bytes(target) == data and tree.disk_entry(cfg["dest"], rel) == (
                rel, tree.KIND_FILE, tree.digest(data)):
            continue
        fsutil.atomic_write(target, data, 0o644, uid, gid)
        changed = True
    return changed


# --- write_kit_file (trust_kit_lib.write_secure) ---------------------------------------------


def write_kit_file(spec: Mapping[str, Any]) -> tuple[bool, str]:
    path = os.path.join(spec["trust_dir"], spec["kit_file"])
    data = spec["content"].encode("utf-8")
    uid, gid = _ids(spec, "app_owner")
    if not os.path.isdir(spec["trust_dir"]):
        fsutil.ensure_dir(spec["trust_dir"], 0o755, uid, gid)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as exc:
        raise fsutil.describe(exc, path, "read") from None
    same = st is not None and fsutil.read_bytes(path) == data and st.st_mode & 0o777 == 0o600 \
        and (not fsutil.is_root() or uid is None or st.st_uid == uid)
    if same:
        return False, f"{path} is current"
    fsutil.write_secure(path, data, 0o600, uid, gid)
    return True, f"wrote {path} (0600)"


# --- read_kit_secrets (adopt: the keys a FLIP-written kit file holds) ------------------------


def read_kit_secrets(spec: Mapping[str, Any]) -> tuple[dict[str, str], str]:
    """The values of ``spec["keys"]`` in the kit file, for the controller to check against
    the hub and escrow. Placeholders (`<run-make-…>`), empty values and values that are not
    UTF-8 text are left out (nothing a hub could have issued). The message holds key names
    and counts only."""
    path = os.path.join(spec["trust_dir"], spec["kit_file"])
    data = fsutil.read_bytes(path)
    if data is None:
        raise StepError(f"{path} does not exist: there is no kit file to read")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise StepError(f"{path} is not UTF-8 text: its keys cannot be read") from None
    cfg = spec["kitfile"]
    values, _order, placeholders, _ = kitfile.parse(text, cfg["sentinel"],
                                                    cfg["placeholder_prefix"])
    wanted = [str(k) for k in spec["keys"]]
    out = {k: values[k] for k in wanted if values.get(k) and k not in placeholders}
    absent = [k for k in wanted if k not in out]
    return out, (f"read {len(out)} of {len(wanted)} values from {path}"
                 + (f" (absent, empty or placeholders: {', '.join(absent)})" if absent else ""))


# --- deliver_fl_kit (flip_fl_kit/tasks/s3.yml) -----------------------------------------------


def deliver_fl_kit(spec: Mapping[str, Any]) -> tuple[bool, str]:
    kit_dir = spec["fl_kit_dir"]
    net1 = os.path.join(kit_dir, "net-1")
    record_path = os.path.join(spec["state_dir"], "fl-kit.json")
    record = spec["record"]
    old = facts.read_json(record_path) or {}
    if (old.get("source_fingerprint") == record["source_fingerprint"]
            and old.get("slot") == record["slot"] and old.get("backend") == record["backend"]
            and old.get("delivered_sha256")
            and flkit.content_sha256(net1, spec["runtime"]) == old["delivered_sha256"]):
        return False, f"the FL kit {record['date']} for {record['slot']} is in place"
    uid, _ = fsutil.owner_ids(spec.get("owner"))
    gid = fsutil.owner_ids(spec.get("group"))[0] if spec.get("group") else uid
    fsutil.ensure_dir(spec["state_dir"], 0o700)
    fsutil.ensure_dir(kit_dir, 0o755, uid, gid)
    fsutil.ensure_dir(net1, 0o755, uid, gid)
    fsutil.wipe_contents(net1)  # FLIP wipes net-1 before the sync, not only the slot dir
    for rel, mode, blob in spec["files"]:
        path = _inside(net1, rel)
        _make_parents(net1, rel, uid, gid)
        fsutil.write_secure(path, base64.b64decode(blob), int(mode, 8), uid, gid)
    for rel in spec["dirs"]:
        fsutil.ensure_dir(_inside(net1, rel), 0o755, uid, gid)
    check = spec.get("fqsn")
    if check and flkit.fqsn(os.path.join(net1, check["slot_dir"])) != check["slot"]:
        raise StepError(f"{os.path.join(net1, check['slot_dir'], 'startup/fed_client.json')} "
                        f"does not name client.fqsn {check['slot']}")
    delivered = flkit.content_sha256(net1, spec["runtime"])
    out = dict(record, delivered_sha256=delivered, delivered_at=time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    fsutil.atomic_write(record_path, (json.dumps(out, indent=1) + "\n").encode(), 0o600)
    return True, f"delivered the FL kit {record['date']} for {record['slot']} to {net1}"


# --- the stack (trust/Makefile up-trust / up-trust-ec2 / down-trust) -------------------------


def _kit(spec: Mapping[str, Any]) -> tuple[dict[str, str] | None, list[str]]:
    path = os.path.join(spec["trust_dir"], spec["kit_file"])
    text = fsutil.read_bytes(path)
    if text is None:
        return None, []
    cfg = spec["kitfile"]
    values, _, placeholders, _ = kitfile.parse(text.decode("utf-8", "surrogateescape"),
                                               cfg["sentinel"], cfg["placeholder_prefix"])
    return values, placeholders


def _secret_values(spec: Mapping[str, Any], values: Mapping[str, str] | None) -> list[str]:
    keys = set(spec["kitfile"]["secret_keys"])
    return [v for k, v in (values or {}).items() if k in keys]


def _override(spec: Mapping[str, Any]) -> bool:
    return os.path.isfile(os.path.join(spec["trust_dir"],
                                       spec["recipe"]["trust1_override"]["file"]))


def _snapshot(inv: Mapping[str, Any], cwd: str) -> list[tuple[str, str, str]]:
    rc, out, _ = compose.run([*inv["argv"][:inv["argv"].index("-p") + 2], "ps", "--format",
                              "json", "-a"], env=inv["env"], cwd=cwd)
    if rc != 0:
        return []
    try:
        rows = compose.json_rows(out)
    except ValueError:
        return []
    return sorted((str(r.get("ID", "")), str(r.get("State", "")),
                   compose.labels(r.get("Labels")).get("com.docker.compose.config-hash", ""))
                  for r in rows)


def start_stack(spec: Mapping[str, Any]) -> tuple[bool, str]:
    values, placeholders = _kit(spec)
    secrets = _secret_values(spec, values)
    try:
        stack.require_kit_file(values, placeholders, spec["kit_file"])
        assert values is not None
        inv = stack.invocation(values, spec["recipe"], action="up",
                               override_present=_override(spec), docker_gid=os.getgid())
    except stack.StackError as exc:
        raise StepError(str(exc)) from None
    docker = list(spec["docker"])
    # up-trust: mkdir -p $(or $(BASE_IMAGES_DOWNLOAD_DIR),./data/$(KIT))
    images = os.path.join(spec["trust_dir"], values.get("BASE_IMAGES_DOWNLOAD_DIR")
                          or os.path.join("data", spec["recipe"]["kit_code"]))
    if not os.path.isdir(images):
        fsutil.ensure_dir(images, 0o755)
    if not spec["recipe"].get("ec2"):  # up-trust's create-networks prerequisite
        ensure_network(docker, inv["network"])
    before = _snapshot(inv, spec["trust_dir"])
    rc, _, err = compose.run(inv["argv"], env=inv["env"], cwd=spec["trust_dir"],
                             timeout=spec.get("timeout", 1800))
    if rc != 0:
        raise StepError(scrub(f"`docker compose … -p {inv['project']} up` failed: "
                              f"{compose.last_line(err)}", secrets))
    if not before:  # `up` created the project's containers: no second look needed to say so
        compose.learn("created", inv["project"])  # verify: nothing to read in their logs yet
        return True, f"project {inv['project']} is up"
    recreated = _refresh_fl_client(spec, inv, secrets)
    after = _snapshot(inv, spec["trust_dir"])
    note = " (FL client recreated on its new kit)" if recreated else ""
    return before != after, f"project {inv['project']} is up{note}"


def _created(text: str) -> float | None:
    """`CreatedAt` of `ps --format json` (`2025-06-01 10:00:00 +0000 UTC`), epoch seconds."""
    import datetime

    try:
        return datetime.datetime.strptime(text[:25], "%Y-%m-%d %H:%M:%S %z").timestamp()
    except ValueError:
        return None


def _refresh_fl_client(spec: Mapping[str, Any], inv: Mapping[str, Any],
                       secrets: list[str]) -> bool:
    """deliver_fl_kit wipes and rewrites net-1 (FLIP's semantics), so an FL client created
    before that delivery still mounts the deleted directories, and compose sees no change to
    recreate it for. Recreate that one service then (`up -d --no-deps --force-recreate`).
    start_stack asks only when the project had containers before its `up`: a container
    that `up` created is newer than any delivery before it."""
    import calendar

    record = facts.read_json(os.path.join(spec["state_dir"], "fl-kit.json")) or {}
    try:
        delivered = calendar.timegm(time.strptime(str(record.get("delivered_at")),
                                                  "%Y-%m-%dT%H:%M:%SZ"))
    except ValueError:
        return False
    service = spec["fl_client_service"]
    prefix = inv["argv"][:inv["argv"].index("-p") + 2]
    rc, out, _ = compose.run([*prefix, "ps", "--format", "json", "-a", service],
                             env=inv["env"], cwd=spec["trust_dir"])
    try:
        rows = compose.json_rows(out) if rc == 0 else []
    except ValueError:
        rows = []
    created = [_created(str(r.get("CreatedAt", ""))) for r in rows]
    if not any(c is not None and c < delivered for c in created):
        return False
    rc, _, err = compose.run([*prefix, "up", "-d", "--no-deps", "--force-recreate", service],
                             env=inv["env"], cwd=spec["trust_dir"])
    if rc != 0:
        raise StepError(scrub(f"recreating {service} on its new FL kit failed: "
                              f"{compose.last_line(err)}", secrets))
    return True


def stop_stack(spec: Mapping[str, Any]) -> tuple[bool, str]:
    values, _ = _kit(spec)
    secrets = _secret_values(spec, values)
    docker = list(spec["docker"])
    if values is not None and values.get("FL_KIT_SLOT_NUMBER"):
        try:
            inv = stack.invocation(values, spec["recipe"], action="down",
                                   override_present=_override(spec))
        except stack.StackError as exc:
            raise StepError(str(exc)) from None
    elif spec.get("project"):
        inv = {"project": spec["project"], "env": {},
               "argv": [*docker, "compose", "-p", spec["project"], "down", "--remove-orphans"]}
    else:
        return False, "no kit file and no project named: nothing to stop"
    before = _snapshot(inv, spec["trust_dir"]) if os.path.isdir(spec["trust_dir"]) else []
    cwd = spec["trust_dir"] if os.path.isdir(spec["trust_dir"]) else None
    rc, _, err = compose.run(inv["argv"], env=inv["env"], cwd=cwd)
    if rc != 0:
        raise StepError(scrub(f"`docker compose … -p {inv['project']} down` failed: "
                              f"{compose.last_line(err)}", secrets))
    return bool(before), f"project {inv['project']} is down"


def verify(spec: Mapping[str, Any]) -> tuple[bool, str]:
    """Wait (bounded) for trust-api's `Authenticated to hub as trust '<name>'` since its
    start; fail with its 401 / heartbeat lines otherwise."""
    values, _ = _kit(spec)
    if values is None:
        raise StepError(f"Kit file trust/{spec['kit_file']} is missing")
    try:
        inv = stack.invocation(values, spec["recipe"], action="inspect",
                               override_present=_override(spec), docker_gid=os.getgid())
    except stack.StackError as exc:
        raise StepError(str(exc)) from None
    service, want = spec["trust_api_service"], spec["expect_trust"]
    deadline = time.monotonic() + float(spec["timeout_seconds"])
    why = "trust-api has not started"
    # Look again after half a second, then less often up to the interval: trust-api logs its
    # first authentication within one poll of starting, and each look is two CLI calls.
    interval = float(spec.get("interval_seconds", 2))
    pause = min(0.5, interval)
    logs = [*inv["argv"], "logs", "--no-color", "--no-log-prefix", service]
    if compose.known("created", inv["project"]):
        # start_stack created the containers moments ago, in this run: a trust-api that has
        # not yet polled the hub once has no line to find, so the first look waits too.
        time.sleep(pause)
    while True:
        rc, out, _err = compose.run([*inv["argv"], "ps", "--format", "json", "-a", service],
                                   env=inv["env"], cwd=spec["trust_dir"], timeout=60)
        try:
            rows = compose.json_rows(out) if rc == 0 else []
        except ValueError:
            rows = []
        running = any(str(r.get("State", "")).lower() == "running" for r in rows)
        rc, out, _ = compose.run(logs, env=inv["env"], cwd=spec["trust_dir"], timeout=60)
        evidence, rejected = compose.trust_api_evidence(out if rc == 0 else "",
                                                        spec["log_lines"])
        name = evidence["authenticated_as"]
        if name == want and running and not rejected:
            compose.learn("output", *logs, value=out)  # the run's closing facts read these
            return False, f"trust-api authenticated to the hub as {name!r} ({evidence['trust_id']})"
        if name and name != want:
            raise StepError(f"trust-api authenticated to the hub as {name!r}, not {want!r}: "
                            "the host has another trust's kit")
        if evidence["last_error"]:
            why = evidence["last_error"]
        elif not rows:
            why = "trust-api is not running (no container)"
        elif not running:
            why = f"trust-api is {rows[0].get('State')}"
        else:
            why = "no 'Authenticated to hub as trust' line yet"
        if time.monotonic() >= deadline:
            raise StepError(scrub(f"trust-api did not authenticate to the hub as {want!r} "
                                  f"within {spec['timeout_seconds']}s: {why}",
                                  _secret_values(spec, values)))
        time.sleep(pause)
        pause = min(pause * 2, interval)


# The steps by name (model/actions.py KINDS' host_step), for the runner's entries and its
# `steps` entry, which runs several of one host's steps in one program run (run_steps).
STEPS = {
    "provision": provision,
    "deploy_release": deploy_release,
    "write_kit_file": write_kit_file,
    "deliver_fl_kit": deliver_fl_kit,
    "start_stack": start_stack,
    "stop_stack": stop_stack,
    "verify": verify,
}
