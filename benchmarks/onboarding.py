"""Onboarding 1 trust vs 10 trusts in one apply, on the sandbox, with the real CLI.

Target: onboarding 10 trusts in one apply takes at most 2x onboarding 1, because the hub
work is per trust but small (one `register_trust` one-off task each, one allowlist change)
and the hosts run in parallel: the engine chains an onboarding's consecutive host waves
(provision -> deploy_release -> kit file + FL kit -> start -> verify) into ONE Ansible run,
each host's steps in ONE module invocation, a host program run (`engine/apply.py` `_Chain`,
`AnsibleHosts.run_steps`).

Each scenario is a fresh sandbox (`flipgitops/sandbox/environment.py`: the moto server of
this process, reset in between; the stand-in FLIP hub, which runs FLIP's one-off ECS tasks;
a FLIP checkout; trust hosts as local directories driven by the real Ansible playbooks
with the stand-in container CLI; a git repo with `environments/dev.yaml`). The hub is
seeded for all ten trusts (slot pool, kits) with none registered; the manifest then names
1 (or 10) on-prem trusts with local hosts, and `flipgitops apply --env dev --yes` runs as a
subprocess with cwd = the sandbox repo and the sandbox's environment (`Sandbox.environ()`),
through `_cli_probe.py`: the real CLI, whose host adapter counts what Ansible did. Every
apply must converge (exit 0: apply re-observes and exits 0 only when nothing is left).

Module invocations per host are counted from Ansible's own task-result events per host
(each flipgitops playbook is one task whose action plugin runs one host program, one
Python start, on the host: reconcilers/ansible/host_program.py), and
cross-checked with the adapter's counter (`AnsibleHosts.module_invocations`).

Baseline (skip with `--no-baseline`): the Makefile-style flow, one trust per full apply
cycle, each cycle adding the next trust to the manifest. The first cycle is the 1-trust
apply itself; BASELINE_CYCLES more are measured (trusts 2 and 3) and ten cycles are
extrapolated as the first plus nine times their mean. That under-estimates the baseline
(cycle k observes k hosts, so later cycles are slower), i.e. it favours the baseline.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from _common import banner, public_ips, ratio, timed, verdict

TARGET_RATIO = 2.0
BATCH = 10
BASELINE_CYCLES = 2  # measured cycles after the first one (trusts 2, 3)
PROBE = Path(__file__).resolve().parent / "_cli_probe.py"
APPLY = ("apply", "--env", "dev", "--yes")


def _specs() -> list[Any]:
    from flipgitops.sandbox.environment import TrustSpec

    ips = public_ips()
    return [TrustSpec(f"Trust_{i}", f"T{i:03d}", next(ips), region="London")
            for i in range(1, BATCH + 1)]


# The hosts' container CLI, wrapped to count its invocations per host: one line per
# command into the host's log, holding only the command's first word (`compose`, `ps`...,
# the word after the sandbox's last global flag `--world FILE`), never an argument.
_COUNTING_DOCKER = """#!/bin/sh
log="$1"; shift
word=""; prev=""; next=""
for a in "$@"; do
  if [ -n "$next" ]; then word="$a"; break; fi
  if [ "$prev" = "--world" ]; then next=1; fi
  prev="$a"
done
printf '%s\\n' "$word" >> "$log"
exec "$@"
"""


def _counted_manifest(box: Any, specs: list[Any]) -> dict[str, Any]:
    """The sandbox's manifest for ``specs``, each host's `docker` behind the counter."""
    wrapper = box.root / "counting-docker"
    if not wrapper.exists():
        wrapper.write_text(_COUNTING_DOCKER, encoding="utf-8")
        wrapper.chmod(0o755)
    doc: dict[str, Any] = box.manifest_doc(specs)
    for trust in doc["trusts"]:
        if "host" in trust:
            log = box.root / f"docker-calls-{trust['name']}.log"
            trust["host"]["docker"] = f"{wrapper} {log} {trust['host']['docker']}"
    return doc


def _docker_calls(box: Any) -> dict[str, Counter[str]]:
    """Per host, the container-CLI commands run since the last call (the logs are reset)."""
    out: dict[str, Counter[str]] = {}
    for log in sorted(box.root.glob("docker-calls-*.log")):
        out[log.stem.removeprefix("docker-calls-")] = Counter(
            log.read_text(encoding="utf-8").split())
        log.unlink()
    return out


def _env(box: Any, out: Path) -> dict[str, str]:
    """The sandbox's environment (AWS_* for moto, FLIPGITOPS_ENDPOINTS for the stand-in
    hub), with this venv's bin first on PATH (ansible-playbook, the stand-in CLI)."""
    env: dict[str, str] = box.environ({"BENCH_PROBE_OUT": str(out)})
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + (os.pathsep + env["PATH"] if env.get("PATH") else "")
    return env


def _apply(box: Any, label: str) -> tuple[float, dict[str, Any]]:
    """One `flipgitops apply` as a subprocess; (seconds, what the probe counted)."""
    out = box.root / f"probe-{label}.json"
    server_before = _server_cpu(box)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc, seconds, _ = timed(lambda: subprocess.run(
        [sys.executable, str(PROBE), *APPLY], cwd=box.repo, env=_env(box, out),
        capture_output=True, text=True, timeout=600, check=False))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-40:]
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(f"apply ({label}) did not converge: exit {proc.returncode}")
    counts = json.loads(out.read_text(encoding="utf-8")) if out.is_file() else {}
    counts["converged"] = "converged" in proc.stdout + proc.stderr
    calls = _docker_calls(box)
    counts["docker"] = {host: sum(c.values()) for host, c in calls.items()}
    counts["docker_words"] = dict(calls.get(f"Trust_{label.split('-')[-1]}") or {})
    # CPU of the apply's whole process tree that was waited for: the CLI, ansible-playbook
    # and its workers, the modules on the (local) hosts, the container-CLI clients they run;
    # plus the stand-in CLI server's forks, which run those commands outside that tree.
    counts["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) \
        + _server_cpu(box) - server_before
    return seconds, counts


STANDIN_SAMPLES = 10


def _server_cpu(box: Any) -> float:
    """CPU-s of the sandbox's stand-in CLI server and its finished forks so far."""
    return float(box.cli_server.cpu_seconds())


def standin_command_cpu(box: Any) -> float:
    """CPU-s of one stand-in container-CLI command (`version`): the thin client's Python
    start plus the server's fork (cli_server.py), which a real host's docker CLI does not
    cost."""
    command = [*shlex.split(box.docker("Trust_1")), "version"]
    server_before = _server_cpu(box)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(STANDIN_SAMPLES):
        subprocess.run(command, capture_output=True, timeout=60, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
            + _server_cpu(box) - server_before) / STANDIN_SAMPLES


def _scenario(server: Any, root: Path, sizes: list[int]
              ) -> tuple[list[tuple[float, dict[str, Any]]], float]:
    """A fresh world seeded for all BATCH trusts; apply manifests of ``sizes`` trusts in
    turn (each adds trusts to the previous one). Also: one stand-in command's CPU-s."""
    from flipgitops.sandbox.environment import sandbox

    server.reset()
    specs = _specs()
    results = []
    with sandbox(root, trusts=specs, moto=server) as box:
        standin = standin_command_cpu(box)
        for n in sizes:
            box.write_manifest(_counted_manifest(box, specs[:n]), commit=f"{n} trust(s)")
            results.append(_apply(box, f"{n}"))  # the label names the newest trust
    return results, standin


def _per_host(counts: dict[str, Any], key: str) -> str:
    values = Counter((counts.get(key) or {}).values())
    return ", ".join(f"{v} ({k} host{'s' if k > 1 else ''})" for v, k in sorted(values.items())) \
        or "none"


def _phases(counts: dict[str, Any]) -> dict[str, tuple[int, float]]:
    """phase -> (calls, seconds), in the order first seen."""
    out: dict[str, tuple[int, float]] = {}
    for p in counts.get("phases", []):
        calls, seconds = out.get(p["phase"], (0, 0.0))
        out[p["phase"]] = (calls + 1, seconds + p["seconds"])
    return out


def _describe(label: str, seconds: float, counts: dict[str, Any]) -> None:
    phases = _phases(counts)
    print(f"{label}: {seconds:.1f} s wall, {counts['cpu']:.1f} CPU-s (the apply's process "
          f"tree), converged: {counts.get('converged')}")
    print(f"  ansible-runner runs: {len(counts.get('playbooks', []))} "
          f"({', '.join(counts.get('playbooks', []))})")
    print(f"  module invocations per host: {_per_host(counts, 'module_events')} "
          f"(adapter's counter: {_per_host(counts, 'module_invocations')}); host steps in "
          f"the one chained invocation: {_per_host(counts, 'steps')}; container-CLI "
          f"commands per host: {_per_host(counts, 'docker')}")
    if counts.get("docker_words"):
        print(f"  container-CLI commands of the newest host: {counts['docker_words']}")
    main_s = phases.get("main", (0, seconds))[1]
    parts = [f"interpreter start {seconds - main_s:.1f}"]
    parts += [f"{name} {calls}x {secs:.1f}" + (" (facts included)" if name == "observe" else "")
              for name, (calls, secs) in phases.items() if name != "main"]
    print("  where the time went (s): " + "; ".join(parts))


def main() -> int:
    from flipgitops.sandbox.moto_server import moto_server

    baseline = "--no-baseline" not in sys.argv
    banner(f"onboarding: 1 vs {BATCH} trusts in one apply (real CLI, sandbox, local hosts)")
    root = Path(tempfile.mkdtemp(prefix="flipgitops-bench-onboard-")).resolve()
    try:
        with moto_server() as server:
            first = [1, *range(2, BASELINE_CYCLES + 2)] if baseline else [1]
            seq, standin = _scenario(server, root / "one", first)
            ((ten, ten_counts),), _ = _scenario(server, root / "ten", [BATCH])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    one, one_counts = seq[0]
    _describe("1 trust, one apply", one, one_counts)
    _describe(f"{BATCH} trusts, one apply", ten, ten_counts)
    print()
    if baseline:
        cycles = [s for s, _ in seq]
        per_cycle = sum(cycles[1:]) / len(cycles[1:])
        estimate = one + per_cycle * (BATCH - 1)
        print("one trust per apply (Makefile-style), cycles: "
              + ", ".join(f"{t:.1f}" for t in cycles) + " s")
        print(f"  {BATCH} trusts one at a time, extrapolated (first + {BATCH - 1} x the mean "
              f"of the next {len(cycles) - 1}, an under-estimate): {estimate:.1f} s = "
              f"{ratio(estimate, ten):.2f}x the batched apply")
        for n, (_, counts) in enumerate(seq[1:], start=2):
            _describe(f"  cycle {n} ({n} trusts in the manifest, 1 new)", cycles[n - 1],
                      counts)
    r = ratio(ten, one)
    cores = os.cpu_count() or 1
    cpu_per_trust = ratio(ten_counts["cpu"] - one_counts["cpu"], BATCH - 1)
    new_host = (ten_counts.get("docker") or {}).get(f"Trust_{BATCH}", 0)
    print(f"CPU per extra trust: {cpu_per_trust:.1f} CPU-s, of which the stand-in container "
          f"CLI ~{new_host * standin:.1f} ({new_host} commands x {standin:.3f} CPU-s: a thin "
          f"client's Python start and a fork of the stand-in's server each); all of it on "
          f"this machine: {BATCH} local hosts on {cores} core(s) "
          f"need at least {ten_counts['cpu'] / cores:.1f} s of wall time "
          f"({ratio(ten_counts['cpu'] / cores, one):.2f}x the 1-trust apply)")
    per_host = Counter((ten_counts.get("module_events") or {}).values())
    print(f"module invocations per host per onboarding: {dict(per_host)} "
          f"(1-trust apply: {dict(Counter((one_counts.get('module_events') or {}).values()))})")
    print(f"batched {BATCH} / 1 trust: {r:.2f} (target <= {TARGET_RATIO:.0f}): "
          f"{verdict(r <= TARGET_RATIO)}")
    return 0 if r <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
