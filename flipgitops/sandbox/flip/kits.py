"""FL participant kits in S3, laid out the way FLIP's provisioning uploads them.

NVFLARE (`nvflare provision` restructured by provision-network.sh@25499084, uploaded by
the root Makefile@07d48b29): ``fl-flare-participant-kits/<date>/net-1/services/<slot>/``
with ``startup/`` (fed_client.json, client.crt, client.key, rootCA.pem, start.sh,
sub_start.sh, stop_fl.sh), ``local/`` (the shipped defaults and templates) and
``readme.txt``; the server's and the admin API's slices sit beside the trusts' slots
(``fl-server-net-1``, ``flip-fl-api-net-1``). ``transfer/`` is empty, so S3 has no object
for it. Only ``client.fqsn`` of fed_client.json is evidenced by FLIP (flip_fl_kit s3.yml
checks it equals the slot); the rest of that file is NVFLARE-shaped filler.

Flower (generate_creds.py@42cc8a70, generate-tls-certificates.sh@389f4019):
``fl-flower-participant-kits/<date>/net-1/certificates/{ca.crt,server.pem,server.key}`` (the
CA key is not uploaded) and ``keys/supernode_credentials_<N>`` plus ``.pub``.

Contents are fake but shaped: PEM-like blocks whose bodies derive from (date, slot, file),
so kits differ per slot and per date and are reproducible. The private-key marker is built
from parts at run time, so no such line exists in this repository.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from flipgitops.sandbox.flip import flipnames as fn

NET = "net-1"
NVFLARE_SERVER_SLICES = ("fl-server-net-1", "flip-fl-api-net-1")
_KEY_WORD = "KEY"
_PRIVATE = "PRIVATE"


def _bytes(*parts: str, size: int = 96) -> bytes:
    out = b""
    seed = "\0".join(parts).encode()
    while len(out) < size:
        seed = hashlib.sha256(seed).digest()
        out += seed
    return out[:size]


def pem(label: str, *parts: str) -> str:
    body = base64.b64encode(_bytes(label, *parts, size=144)).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    dashes = "-" * 5
    return "\n".join([f"{dashes}BEGIN {label}{dashes}", *lines, f"{dashes}END {label}{dashes}", ""])


def private_key_label(kind: str = "") -> str:
    """`PRIVATE KEY`, `RSA PRIVATE KEY`, `OPENSSH PRIVATE KEY`, assembled at run time."""
    return " ".join(p for p in (kind, _PRIVATE, _KEY_WORD) if p)


def nvflare_prefix(date: str) -> str:
    return f"{fn.NVFLARE_KIT_ROOT}/{date}/{NET}/services/"


def flower_prefix(date: str) -> str:
    return f"{fn.FLOWER_KIT_ROOT}/{date}/{NET}/"


def fed_client_json(slot: str, fqsn: str | None = None, fl_host: str = "fl-server-net-1",
                    fl_port: int = 8002) -> str:
    doc = {
        "format_version": 2,
        "servers": [{"name": NET, "service": {"scheme": "grpc", "target": f"{fl_host}:{fl_port}"},
                     "identity": fl_host}],
        "client": {"fqsn": fqsn or slot, "ssl_private_key": "client.key",
                   "ssl_cert": "client.crt", "ssl_root_cert": "rootCA.pem", "is_leaf": True},
        "overseer_agent": {"path": "nvflare.ha.dummy_overseer_agent.DummyOverseerAgent",
                           "args": {"sp_end_point": f"{fl_host}:{fl_port}:{fl_port + 1}"}},
    }
    return json.dumps(doc, indent=2) + "\n"


def _start_sh(role: str) -> str:
    # provision-network.sh@25499084 runs sub_start.sh in the foreground (the `&` removed).
    return ("#!/usr/bin/env bash\nDIR=\"$( cd \"$( dirname \"${BASH_SOURCE[0]}\" )\" "
            f"&& pwd )\"\necho \"Starting {role}\"\n$DIR/sub_start.sh\n")


_LOG_CONFIG = {"version": 1, "handlers": {"console": {"class": "logging.StreamHandler",
                                                       "level": "INFO"}},
               "root": {"level": "INFO", "handlers": ["console"]}}
_RESOURCES = {"format_version": 2, "client": {"retry_timeout": 30},
              "components": [{"id": "resource_manager",
                              "path": "nvflare.app_common.resource_managers."
                                      "gpu_resource_manager.GPUResourceManager",
                              "args": {"num_of_gpus": 1, "mem_per_gpu_in_GiB": 16}}]}


def _local_files() -> dict[str, str]:
    log_default = json.dumps(_LOG_CONFIG, indent=2) + "\n"
    resources_default = json.dumps(_RESOURCES, indent=2) + "\n"
    return {
        "local/log_config.json.default": log_default,
        "local/resources.json.default": resources_default,
        "local/log_config.template.json":
            log_default.replace('"level": "INFO"', '"level": "${LOG_LEVEL}"'),
        "local/resources.template.json":
            resources_default.replace('"num_of_gpus": 1', '"num_of_gpus": ${NUM_AVAILABLE_GPUS}')
            .replace('"mem_per_gpu_in_GiB": 16', '"mem_per_gpu_in_GiB": ${MEMORY_PER_GPU_IN_GIB}'),
    }


def nvflare_slot_files(date: str, slot: str, *, fqsn: str | None = None,
                       fl_host: str = "fl-server-net-1", fl_port: int = 8002) -> dict[str, str]:
    """Relative path -> content of one trust's slot directory."""
    return {
        "startup/fed_client.json": fed_client_json(slot, fqsn, fl_host, fl_port),
        "startup/client.crt": pem("CERTIFICATE", date, slot, "client.crt"),
        "startup/client.key": pem(private_key_label("RSA"), date, slot, "client.key"),
        "startup/rootCA.pem": pem("CERTIFICATE", date, "rootCA"),
        "startup/start.sh": _start_sh(slot),
        "startup/sub_start.sh": f"#!/usr/bin/env bash\n# {slot} client process\n",
        "startup/stop_fl.sh": "#!/usr/bin/env bash\necho \"Stopping\"\n",
        **_local_files(),
        "readme.txt": f"NVFLARE participant kit for {slot} ({NET}, provisioned {date}).\n",
    }


def _server_slice(date: str, name: str) -> dict[str, str]:
    if name.startswith("fl-server"):
        startup = {"startup/fed_server.json": json.dumps(
                       {"format_version": 2, "servers": [{"name": NET}]}, indent=2) + "\n",
                   "startup/server.crt": pem("CERTIFICATE", date, name, "server.crt"),
                   "startup/server.key": pem(private_key_label("RSA"), date, name, "server.key"),
                   "startup/start.sh": _start_sh(name),
                   "startup/sub_start.sh": "#!/usr/bin/env bash\n",
                   "startup/stop_fl.sh": "#!/usr/bin/env bash\n"}
    else:
        startup = {"startup/fed_admin.json": json.dumps(
                       {"format_version": 1, "admin": {"username": "admin@nvidia.com"}},
                       indent=2) + "\n",
                   "startup/client.crt": pem("CERTIFICATE", date, name, "client.crt"),
                   "startup/client.key": pem(private_key_label("RSA"), date, name, "client.key"),
                   "startup/fl_admin.sh": "#!/usr/bin/env bash\n"}
    return {**startup, "startup/rootCA.pem": pem("CERTIFICATE", date, "rootCA"),
            **_local_files(), "readme.txt": f"NVFLARE kit for {name}.\n"}


def _put(s3: Any, bucket: str, key: str, body: str) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body.encode())


def write_nvflare_kits(s3: Any, bucket: str, date: str, slots: list[str], *,
                       fl_host: str = "fl-server-net-1", fl_port: int = 8002) -> list[str]:
    """Every slot's directory plus the server slices, for one kit date; the keys written."""
    keys: list[str] = []
    prefix = nvflare_prefix(date)
    for slot in slots:
        for rel, body in nvflare_slot_files(date, slot, fl_host=fl_host, fl_port=fl_port).items():
            keys.append(f"{prefix}{slot}/{rel}")
            _put(s3, bucket, keys[-1], body)
    for name in NVFLARE_SERVER_SLICES:
        for rel, body in _server_slice(date, name).items():
            keys.append(f"{prefix}{name}/{rel}")
            _put(s3, bucket, keys[-1], body)
    return keys


def flower_files(date: str, count: int) -> dict[str, str]:
    """Relative path (under net-1/) -> content of a Flower kit set for ``count`` supernodes."""
    files = {
        "certificates/ca.crt": pem("CERTIFICATE", date, "ca.crt"),
        "certificates/server.pem": pem("CERTIFICATE", date, "server.pem"),
        "certificates/server.key": pem(private_key_label(), date, "server.key"),
    }
    for n in range(1, count + 1):
        files[f"keys/supernode_credentials_{n}"] = pem(
            private_key_label("OPENSSH"), date, f"supernode_{n}")
        pub = base64.b64encode(_bytes(date, f"supernode_{n}.pub", size=104)).decode()
        files[f"keys/supernode_credentials_{n}.pub"] = f"ecdsa-sha2-nistp384 {pub}\n"
    return files


def write_flower_kits(s3: Any, bucket: str, date: str, count: int) -> list[str]:
    keys = []
    for rel, body in flower_files(date, count).items():
        keys.append(flower_prefix(date) + rel)
        _put(s3, bucket, keys[-1], body)
    return keys


# --- kits that are wrong in the ways flip_fl_kit's checks catch ---------------------------

def write_foreign_fqsn(s3: Any, bucket: str, date: str, slot: str, other: str) -> None:
    """The slot's fed_client.json names another slot's identity (the wrong kit)."""
    _put(s3, bucket, f"{nvflare_prefix(date)}{slot}/startup/fed_client.json",
         fed_client_json(slot, fqsn=other))


def write_empty_fed_client(s3: Any, bucket: str, date: str, slot: str) -> None:
    _put(s3, bucket, f"{nvflare_prefix(date)}{slot}/startup/fed_client.json", "")


def remove_kit_file(s3: Any, bucket: str, date: str, slot: str, rel: str) -> None:
    """Delete one file of a slot (e.g. `startup/client.key`), or of a Flower set when
    ``slot`` is empty (``rel`` then is under net-1/, e.g. `certificates/ca.crt`)."""
    key = (f"{nvflare_prefix(date)}{slot}/{rel}" if slot else flower_prefix(date) + rel)
    s3.delete_object(Bucket=bucket, Key=key)
