"""`flipgitops status`: observe everything once, ask the hub's `/api/health`, judge.

The observation is the one plan and drift make (`Wiring.observe`: the hub in AWS, the ledger,
every host's facts in one parallel run), so status never disagrees with them about what is
live; the judging is pure (`core/status.py`) and the CLI renders it (`ui/report.py`).
Nothing is written anywhere.
"""

from __future__ import annotations

from collections.abc import Callable

from flipgitops.adapters.hub_api import health
from flipgitops.core.status import HealthAnswer, StatusReport, status_report
from flipgitops.engine.manifests import load_env
from flipgitops.engine.wiring import Wiring

Status = Callable[[str], None]


def run_status(env: str, *, status: Status) -> StatusReport:
    manifest, path = load_env(env)
    wiring = Wiring.for_manifest(manifest, path)
    status(f"observing {manifest.environment} (account {manifest.aws.account_id}, "
           f"{manifest.aws.region})...")
    observed = wiring.observe(status=status)
    answer = health(wiring.endpoints, manifest.hub.domain)
    return status_report(manifest, observed,
                         HealthAnswer(url=answer.url, status=answer.status, detail=answer.detail))
