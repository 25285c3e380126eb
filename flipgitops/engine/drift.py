"""``flipgitops drift``: the nightly question "is live still the manifest?". Changes nothing."""

from __future__ import annotations

from pathlib import Path

from flipgitops.core.drift import DriftReport, drift_report
from flipgitops.core.render import render_drift
from flipgitops.engine._output import Echo, write_atomic


def exit_code(report: DriftReport) -> int:
    """0 in sync, 2 drift (unknown hosts count as drift: they are not known to be in sync)."""
    return 0 if report.in_sync else 2


def run_drift(env: str, *, fmt: str, report: Path | None, color: bool, echo: Echo) -> int:
    from flipgitops.engine.manifests import load_env
    from flipgitops.engine.observe import observe

    manifest, path = load_env(env)
    echo(f"observing {manifest.environment}...", err=True)
    observed = observe(manifest, manifest_path=path)
    result = drift_report(manifest, observed)
    echo(render_drift(result, fmt, color=color))
    if report:
        write_atomic(report, render_drift(result, fmt, color=False))
        echo(f"report written to {report}", err=True)
    return exit_code(result)
