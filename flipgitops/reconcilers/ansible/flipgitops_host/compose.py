"""Asking the host's container CLI about FLIP's stack, and reading trust-api's own lines.

Commands run with the host's environment plus what FLIP's Makefile exports (stack.py), never
through a shell. Output is parsed here; only verdicts and non-secret fields leave the host
(trust-api's log stays on it: its lines are matched here, the last error line is truncated).
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

TIMEOUT_SECONDS = 300
MAX_ERROR_LINE = 300

# What this host program run itself established about the container engine (the swarm's
# state, that compose runs, that a network exists, what trust-api had logged when verify
# saw it authenticate), so a later step or the run's closing facts need not ask again
# seconds later: each ask is a CLI process, on a real host the docker binary and, for
# compose, its plugin. Only a command's own success is recorded, and every run starts with
# nothing known (runner.run calls `forget`).
_KNOWN: dict[tuple[str, ...], str] = {}


def learn(*key: str, value: str = "yes") -> None:
    _KNOWN[key] = value


def known(*key: str) -> str | None:
    return _KNOWN.get(key)


def forget() -> None:
    _KNOWN.clear()


def run(argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: str | None = None,
        timeout: float = TIMEOUT_SECONDS) -> tuple[int, str, str]:
    """(rc, stdout, stderr); rc 127 when the command cannot start, 124 on a timeout."""
    full = dict(os.environ)
    full.update(env or {})
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                              env=full, cwd=cwd, check=False, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        return 127, "", f"{argv[0]}: command not found"
    except OSError as exc:
        return 127, "", f"{argv[0]}: {exc.strerror}"
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]} did not finish within {timeout:.0f}s"
    return proc.returncode, proc.stdout, proc.stderr


def run_all(commands: Mapping[str, tuple[Sequence[str], Mapping[str, str] | None, str | None]],
            timeout: float = TIMEOUT_SECONDS) -> dict[str, tuple[int, str, str]]:
    """Independent read-only commands at once (facts): the wall time of the slowest."""
    import threading

    results: dict[str, tuple[int, str, str]] = {}

    def one(name: str) -> None:
        argv, env, cwd = commands[name]
        results[name] = run(argv, env=env, cwd=cwd, timeout=timeout)

    threads = [threading.Thread(target=one, args=(name,)) for name in commands]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:MAX_ERROR_LINE] if lines else ""


def json_rows(text: str) -> list[dict[str, Any]]:
    """`ps --format json`: one object per line (compose ≥ 2.21) or one array (older)."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        rows = json.loads(text)
    else:
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [r for r in rows if isinstance(r, dict)]


def labels(value: Any) -> dict[str, str]:
    """Docker prints labels as `k=v,k=v` (or, from some versions, an object)."""
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    out: dict[str, str] = {}
    for part in str(value or "").split(","):
        key, eq, val = part.partition("=")
        if eq:
            out[key.strip()] = val
    return out


def containers(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        lab = labels(row.get("Labels"))
        out.append({
            "service": str(row.get("Service") or lab.get("com.docker.compose.service", "")),
            "image": str(row.get("Image", "")),
            "state": str(row.get("State", "")).lower(),
            "config_hash": lab.get("com.docker.compose.config-hash"),
        })
    return sorted(out, key=lambda c: c["service"])


def config_hashes(text: str) -> dict[str, str]:
    """`compose config --hash '*'`: `<service> <hash>` per line."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = parts[1]
    return out


def trust_api_evidence(log: str, lines: Mapping[str, str]) -> tuple[dict[str, Any], bool]:
    """What trust-api said since its last start (FLIP's task_poller.py lines), and whether
    the hub rejected it after it authenticated (a key revoked or rotated under it).

    ``lines``: `starting`, `authenticated`, `unauthorized`, `heartbeat_rejected` (the fixed
    text of each line, from the controller). Lines before the last `starting` belong to an
    earlier run of the process and are ignored.
    """
    entries = log.splitlines()
    starts = [i for i, line in enumerate(entries) if lines["starting"] in line]
    if starts:
        entries = entries[starts[-1]:]
    auth = re.compile(re.escape(lines["authenticated"])
                      + r" ('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\") \(([^)]*)\)\.")
    out: dict[str, Any] = {"authenticated_as": None, "trust_id": None, "unauthorized": False,
                           "heartbeat_rejected": False, "last_error": None}
    rejected_after_auth = False
    for line in entries:
        match = auth.search(line)
        if match:
            try:
                name = ast.literal_eval(match.group(1))
            except (ValueError, SyntaxError):
                name = match.group(1)[1:-1]
            out["authenticated_as"] = str(name)
            out["trust_id"] = match.group(2)
            rejected_after_auth = False
            continue
        for key in ("unauthorized", "heartbeat_rejected"):
            if lines[key] in line:
                out[key] = True
                out["last_error"] = line[line.index(lines[key]):][:MAX_ERROR_LINE]
                rejected_after_auth = out["authenticated_as"] is not None
    return out, rejected_after_auth
