"""Onboarding 1 trust vs 10 trusts in one apply, and the Makefile-style one-at-a-time baseline.

Target (DESIGN.md §9): onboarding 10 trusts in one apply takes at most 2x onboarding 1,
because hosts run in parallel (one Ansible run per host step, forks) and the hub work is
batched (one secret write, one redeploy, one allowlist change).

Baseline: how FLIP operators onboard today, one full cycle per trust (`make
add-local-trust` then register, redeploy, provision/deliver/start that host) — modelled as
sequential single-trust applies, each adding one more trust to the manifest. By default 3
cycles are measured and multiplied by 10 (labelled as such); `--full` runs all 10.

Every scenario runs against the same real moto server (reset in between) with real
ansible-runner runs of the real playbooks on `connection: local` hosts under a temporary
directory, using the stand-in container CLI. Each apply must converge (exit 0).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from _common import banner, manifest_yaml, public_ips, ratio, timed, trust_entry, verdict

TARGET_RATIO = 2.0
BATCH = 10
# Single-trust cycles measured for the baseline unless --full (10 cycles exceed the 3-minute
# budget on a 2-core machine: each cycle is a full apply with six Ansible runs).
SEQUENTIAL_SAMPLE = 3


def _write_manifest(workdir: Path, n: int, docker: Path) -> Path:
    ips = public_ips()
    entries = [
        trust_entry(i, next(ips), "on-prem", flip_root=str(workdir / "hosts" / f"Trust_{i}"),
                    docker=str(docker))
        for i in range(1, n + 1)
    ]
    path = workdir / "environments" / "dev.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(manifest_yaml(entries), encoding="utf-8")
    return path


def _apply(path: Path) -> tuple[int, int]:
    """One in-process apply of the manifest at ``path``; (exit code, actions executed)."""
    from flipgitops.engine.apply import apply
    from flipgitops.engine.manifests import load_manifest
    from flipgitops.model.plan import PlanOptions

    manifest = load_manifest(path)
    lines: list[str] = []

    def echo(message: object = "", **_: object) -> None:
        lines.append(str(message))

    result = apply(manifest, path, PlanOptions(), echo=echo)
    if result.exit_code != 0:
        print("\n".join(lines[-30:]), file=sys.stderr)
        print(f"apply failed: {result.message} {result.failed}", file=sys.stderr)
    return result.exit_code, len(result.completed)


def _scenario(reset: Callable[[], None], docker: Path, sizes: list[int]) -> list[float]:
    """Fresh hub, fresh hosts; apply the manifest growing through ``sizes``; seconds per apply.

    Raises when an apply does not converge: a failed run's time measures nothing.
    """
    from flipgitops.sandbox.seed import seed_hub

    from flipgitops.engine.manifests import load_manifest

    reset()
    workdir = Path(tempfile.mkdtemp(prefix="flipgitops-bench-")).resolve()
    try:
        path = _write_manifest(workdir, sizes[-1], docker)
        seed_hub(load_manifest(path), trusts=False)
        times = []
        for n in sizes:
            _write_manifest(workdir, n, docker)
            (code, _), seconds = timed(lambda: _apply(path))
            if code != 0:
                raise SystemExit(f"apply of {n} trust(s) did not converge (exit {code})")
            times.append(seconds)
        return times
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    from flipgitops.sandbox.workspace import standin_cli

    from flipgitops.sandbox.moto_server import SANDBOX_ENV, moto_server

    full = "--full" in sys.argv
    cycles = BATCH if full else SEQUENTIAL_SAMPLE
    banner(f"onboarding: 1 vs {BATCH} trusts in one apply; one trust per apply (Makefile-style)")
    docker = standin_cli()
    with moto_server() as server:
        os.environ.update({**SANDBOX_ENV, "AWS_ENDPOINT_URL": server.url})
        os.environ.pop("AWS_PROFILE", None)
        # One trust per apply, each adding the next trust to the manifest; the first cycle is
        # also the "1 trust in one apply" figure (a fresh hub onboarding one trust).
        seq = _scenario(server.reset, docker, list(range(1, cycles + 1)))
        one = seq[0]
        (ten,) = _scenario(server.reset, docker, [BATCH])
    per_cycle = sum(seq) / len(seq)
    baseline = sum(seq) if full else per_cycle * BATCH
    print(f"1 trust, one apply:                 {one:7.1f} s")
    print(f"{BATCH} trusts, one apply:               {ten:7.1f} s")
    print("one trust per apply, cycles:        " + ", ".join(f"{t:.1f}" for t in seq) + " s")
    how = "measured" if full else f"extrapolated from {cycles} cycles x {BATCH}; --full measures"
    print(f"{BATCH} trusts one at a time:             {baseline:7.1f} s  ({how})")
    print()
    r = ratio(ten, one)
    print(f"batched {BATCH} / 1 trust: {r:.2f} (target <= {TARGET_RATIO:.0f}): "
          f"{verdict(r <= TARGET_RATIO)}")
    print(f"one-at-a-time baseline / batched {BATCH}: {ratio(baseline, ten):.2f}x "
          f"({baseline:.1f} s vs {ten:.1f} s)")
    return 0 if r <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
