"""Everything flipgitops observes on one trust host, in one pass (the host program's `facts` entry).

The result has the shape of `flipgitops.model.observed.ObservedHost` without `trust` and
`reachable` (the controller validates it into that model, so a key the model does not know
fails loudly). Secret values never leave this function: kit-file secrets become sha256 hex
here, trust-api's log is reduced to FLIP's lines, kit files to a digest.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import socket
import stat
import threading
from typing import TYPE_CHECKING, Any

from . import compose, flkit, kitfile, stack, tree

if TYPE_CHECKING:
    from collections.abc import Mapping

PROBE_TIMEOUT_SECONDS = 4.0


def read_json(path: str) -> dict[str, Any] | None:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def read_kit_file(spec: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str] | None,
                                                    list[str]]:
    """(ObservedKitFile fields, all values or None when absent, placeholder keys)."""
    cfg = spec["kitfile"]
    path = os.path.join(spec["trust_dir"], spec["kit_file"])
    out: dict[str, Any] = {"present": False, "path": path}
    suffix = "." + spec["kit_file"].rsplit(".", 1)[-1]
    others = sorted(
        os.path.basename(p) for p in glob.glob(os.path.join(spec["trust_dir"], ".env.*" + suffix))
        if os.path.basename(p) != spec["kit_file"]
    )
    out["others"] = others
    try:
        st = os.stat(path)
        with open(path, encoding="utf-8", errors="surrogateescape") as fh:
            text = fh.read()
    except FileNotFoundError:
        return out, None, []
    except OSError as exc:
        out.update(present=True, reason=f"could not read {path}: {exc.strerror}")
        return out, None, []
    values, _order, placeholders, sentinel = kitfile.parse(
        text, cfg["sentinel"], cfg["placeholder_prefix"])
    secret_keys = set(cfg["secret_keys"])
    out.update(
        present=True,
        mode=f"{stat.S_IMODE(st.st_mode):04o}",
        owner_uid=st.st_uid,
        values={k: v for k, v in values.items() if k not in secret_keys},
        secret_sha256={
            k: hashlib.sha256(v.encode("utf-8", "surrogateescape")).hexdigest()
            for k, v in values.items() if k in secret_keys and v and k not in placeholders
        },
        placeholders=placeholders,
        has_sentinel=sentinel,
    )
    return out, values, placeholders


def release_facts(spec: Mapping[str, Any]) -> dict[str, Any]:
    trust_dir = spec["trust_dir"]
    out: dict[str, Any] = {"present": os.path.isdir(trust_dir)}
    out["compose_files"] = sorted(
        os.path.relpath(p, trust_dir)
        for p in glob.glob(os.path.join(trust_dir, spec["compose_glob"]))
    )
    marker = read_json(os.path.join(spec["state_dir"], "release.json"))
    if marker:
        out.update(ref=marker.get("ref"), commit=marker.get("commit"),
                   tree_sha256=marker.get("tree_sha256"), evidence="record")
        files = [str(f) for f in marker.get("files") or []]
        digest, _missing = tree.disk_tree(trust_dir, files)
        out["intact"] = digest == marker.get("tree_sha256")
    elif out["present"]:
        found = match_release(trust_dir, spec.get("release_candidates") or [])
        if found is not None:
            ref, commit, digest = found
            out.update(ref=ref, commit=commit, tree_sha256=digest, intact=True,
                       evidence="files")
    return out


def match_release(trust_dir: str, candidates: list[Any]) -> tuple[str, str, str] | None:
    """The first candidate release whose tracked files are on disk exactly as in git (no
    deploy record: FLIP's own checkout or copy of trust/); each file is read once."""
    seen: dict[str, Any] = {}
    for ref, commit, digest, paths in candidates:
        entries = []
        for rel in paths:
            if rel not in seen:
                seen[rel] = tree.disk_entry(trust_dir, rel) or (rel, "missing", "")
            entries.append(seen[rel])
        if tree.tree_sha256(entries) == digest:
            return str(ref), str(commit), str(digest)
    return None


def fl_kit_facts(spec: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    cfg = spec["fl_kit"]
    # compose reads relative paths from the project directory, <flip_root>/trust
    kit_dir = os.path.join(spec["trust_dir"], values.get("FL_KIT_DIR") or cfg["default_dir"])
    net1 = os.path.join(kit_dir, "net-1")
    out: dict[str, Any] = {"present": os.path.isdir(net1) and bool(os.listdir(net1))}
    record = read_json(os.path.join(spec["state_dir"], "fl-kit.json")) or {}
    for key in ("date", "slot", "backend", "source_fingerprint", "delivered_sha256"):
        if record.get(key) is not None:
            out[key] = str(record[key])
    if not out["present"]:
        return out
    out["content_sha256"] = flkit.content_sha256(net1, cfg["runtime"])
    backend = values.get("FL_BACKEND") or record.get("backend") or "nvflare"
    slot = values.get("FL_KIT_SLOT") or record.get("slot")
    number = values.get("FL_KIT_SLOT_NUMBER") or record.get("slot_number")
    if backend == "nvflare" and slot:
        out["fqsn"] = flkit.fqsn(os.path.join(net1, "services", str(slot)))
    if slot and number and backend in cfg["layout"]:
        roots = [r.format(slot=slot, n=number) for r in cfg["layout"][backend]]
        out["stray"] = flkit.stray(net1, roots)
    if cfg.get("listing"):
        out["listed_fingerprint"] = flkit.listed_fingerprint(kit_dir, cfg["listing"])
    return out


def stack_facts(spec: Mapping[str, Any], values: Mapping[str, str] | None,
                facts: dict[str, Any]) -> None:
    """The container CLI's view, every command at once (each one is a process start);
    what this run's own steps just established (compose.known) is not asked again."""
    docker = list(spec["docker"])
    trust_dir = spec["trust_dir"]
    done: dict[str, tuple[int, str, str]] = {}
    swarm = compose.known("swarm", *docker)
    if swarm is not None:
        done["info"] = (0, swarm, "")
    if compose.known("compose", *docker):
        done["compose"] = (0, "", "")
    commands: dict[str, Any] = {
        "info": ([*docker, "info", "--format", "{{.Swarm.LocalNodeState}}"], None, None),
        "compose": ([*docker, "compose", "version"], None, None),
    }
    inv = None
    if values is not None:
        recipe = spec["recipe"]
        try:
            override = os.path.isfile(os.path.join(trust_dir, recipe["trust1_override"]["file"]))
            inv = stack.invocation(values, recipe, action="inspect", override_present=override,
                                   docker_gid=os.getgid())
        except stack.StackError as exc:
            facts["reason"] = str(exc)
    if inv is not None:
        commands["network"] = ([*docker, "network", "inspect", inv["network"]], None, None)
        if compose.known("network", *docker, inv["network"]):
            done["network"] = (0, "", "")
        if os.path.isdir(trust_dir):
            env, argv = inv["env"], inv["argv"]
            commands["ps"] = ([*argv, "ps", "--format", "json", "-a"], env, trust_dir)
            commands["config"] = ([*argv, "config", "--hash", "*"], env, trust_dir)
            commands["logs"] = ([*argv, "logs", "--no-color", "--no-log-prefix",
                                 spec["trust_api_service"]], env, trust_dir)
            seen = compose.known("output", *commands["logs"][0])  # verify's last look
            if seen is not None:
                done["logs"] = (0, seen, "")
    got = {**compose.run_all({k: v for k, v in commands.items() if k not in done}), **done}
    rc, out, _ = got["info"]
    facts["docker_present"] = rc == 0  # the CLI runs and reaches its daemon
    if not facts["docker_present"]:
        return
    facts["swarm_active"] = out.strip() == "active"
    facts["compose_present"] = got["compose"][0] == 0
    if inv is None:
        return
    facts["network_present"] = got["network"][0] == 0
    if "ps" not in got:
        return
    rc, out, err = got["ps"]
    if rc != 0:
        facts["reason"] = "compose ps failed: " + compose.last_line(err)
        return
    try:
        found = compose.containers(compose.json_rows(out))
    except ValueError:
        facts["reason"] = "compose ps printed something that is not JSON"
        return
    facts["containers"] = found
    if found:
        facts["project"] = inv["project"]
    rc, out, err = got["config"]
    if rc == 0:
        facts["expected_config"] = compose.config_hashes(out)
    elif not facts.get("reason"):
        facts["reason"] = "compose config failed: " + compose.last_line(err)
    rc, out, _ = got["logs"]
    if rc == 0 and any(c["service"] == spec["trust_api_service"] for c in found):
        facts["trust_api"] = compose.trust_api_evidence(out, spec["log_lines"])[0]


def _address(endpoint: str, resolve: Mapping[str, str]) -> tuple[str, int] | None:
    """`host:port` after the controller's overrides (`host:port` or `host` keys)."""
    target = resolve.get(endpoint)
    if target is None:
        host, _, port = endpoint.rpartition(":")
        target = f"{resolve[host]}:{port}" if host in resolve else endpoint
    host, _, port = target.rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else None


def reaches(endpoint: str | None, resolve: Mapping[str, str]) -> bool | None:
    if not endpoint:
        return None
    address = _address(endpoint, resolve)
    if address is None:
        return False
    try:
        with socket.create_connection(address, timeout=PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def egress_ip(url: str | None, trust: str) -> str | None:
    if not url:
        return None
    # Imported here, by the runs that gather facts: urllib.request (with http.client and
    # email) is a fifth of this package's import time, which a step-only run never needs.
    import ipaddress
    import urllib.request

    try:
        with urllib.request.urlopen(url.replace("{trust}", trust),
                                    timeout=PROBE_TIMEOUT_SECONDS) as resp:
            text = resp.read(200).decode("ascii", "replace").strip()
        return str(ipaddress.IPv4Address(text))
    except (OSError, ValueError):
        return None


def network_facts(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Egress IP and reachability, measured concurrently (each bounded)."""
    ep = spec["endpoints"]
    results: dict[str, Any] = {}

    def run(key: str, fn: Any, *args: Any) -> None:
        results[key] = fn(*args)

    jobs = [
        threading.Thread(target=run, args=("egress_ip", egress_ip, ep.get("egress_probe"),
                                           spec["trust"])),
        threading.Thread(target=run, args=("reaches_hub", reaches, ep.get("hub"),
                                           ep.get("resolve") or {})),
        threading.Thread(target=run, args=("reaches_fl", reaches, ep.get("fl"),
                                           ep.get("resolve") or {})),
    ]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(PROBE_TIMEOUT_SECONDS * 3)
    return results


def gather(spec: Mapping[str, Any]) -> dict[str, Any]:
    facts: dict[str, Any] = {"flip_root_present": os.path.isdir(spec["flip_root"])}
    facts["release"] = release_facts(spec)
    kit, values, _placeholders = read_kit_file(spec)
    reason = kit.pop("reason", None)
    facts["kit_file"] = kit
    if reason:
        facts["reason"] = reason
    facts["fl_kit"] = fl_kit_facts(spec, values or {})
    stack_facts(spec, values, facts)
    facts.update(network_facts(spec))
    return facts
