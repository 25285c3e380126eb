"""observe + plan for 5, 50 and 500 trusts against the sandbox hub (moto + stand-in FLIP).

Targets: the AWS call count of one observation is the same for 500 trusts as for 5, and
the observe + plan wall-time ratio 500/5 is at most 2.

For each size a fresh sandbox (`flipgitops/sandbox/environment.py`, one moto server reset
in between) is seeded the way FLIP's own procedures leave a hub: every trust already
registered in the hub's database (the database registry era: `register_trust` rows with
their slots), the slot pool in SSM, one FL kit per slot in the kit bucket. The manifest
names every trust (kind `tre`: hub side only, so no host is gathered and the figure is the
hub's) and an admin token, so the observation also reads FLIP's trust table through
`GET /api/admin/trusts` (one HTTP call to the stand-in flip-api, counted from its request
log). The observation is `Wiring.observe(hosts=False)`, exactly what `plan` runs (hub,
ledger, FLIP release), in this process; the plan is `core.planner.plan`.

AWS calls are counted with botocore's `before-call` hook (`adapters/aws_session.CallCounter`
on the `Clients` the wiring uses), one per operation (retries are not calls).

Seeding 500 trusts' kits over HTTP (about twelve objects per nvflare slot, 6,000 PUTs)
takes minutes on a 2-core machine, so the kits are written straight into the in-process
moto server's S3 backend, with the stand-in's own kit layout (`sandbox/flip/kits.py`):
what the observation then lists over HTTP is what FLIP's kit upload leaves, ETags
included. Timing runs with the stand-in hub's worker paused (it polls moto for one-off
tasks, which no observation starts); CPU is the measuring thread's own (`thread_time`):
moto answers in other threads of this process, as AWS would answer elsewhere.

moto, like AWS's default quota, caps a security group at 60 rules, and FLIP's Terraform
writes one /32 per trust: the seeded allowlist holds the first ALLOWLIST_CAP trusts' rules
(the observation reads the group in the same calls either way; the plan then wants the
missing rules, and with more than the quota it must refuse: both are reported).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import banner, public_ips, ratio, timed, verdict

SIZES = (5, 50, 500)
REPEAT = 3
ALLOWLIST_CAP = 50
TARGET_RATIO = 2.0
TOKEN_VAR = "FLIP_ADMIN_TOKEN"


def _specs(n: int) -> list[Any]:
    from flipgitops.sandbox.environment import TrustSpec

    ips = public_ips()
    return [TrustSpec(f"Trust_{i}", f"T{i:03d}", next(ips), kind="tre", region="London")
            for i in range(1, n + 1)]


def _rules(box: Any, n: int) -> None:
    """What FLIP's Terraform writes per trust (`local_trust_fl_server_nlb`), up to the cap."""
    from flipgitops.sandbox.flip import flipnames
    from flipgitops.sandbox.flip.aws import client

    m = box.load_manifest()
    port = m.hub.fl_server.port
    ec2 = client("ec2", box.moto.url, m.aws.region)
    ranges = [{"CidrIp": f"{t.public_ip}/32",
               "Description": flipnames.TERRAFORM_TRUST_RULE.format(ip=t.public_ip)}
              for t in m.trusts[:min(n, ALLOWLIST_CAP)]]
    ec2.authorize_security_group_ingress(
        GroupId=box.seed.security_groups["nlb"],
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": port, "ToPort": port,
                        "IpRanges": ranges}])


@contextlib.contextmanager
def _timing_kit_listing() -> Iterator[list[float]]:
    """[wall, cpu] spent inside the observation's one kit-bucket listing
    (`adapters.aws.observe_kits`, called through unchanged while the block runs)."""
    from flipgitops.adapters import aws
    from flipgitops.adapters.kit_listing import observe_kits as real

    spent = [0.0, 0.0]

    def timed_listing(*args: Any, **kwargs: Any) -> Any:
        out, wall, cpu = timed(lambda: real(*args, **kwargs))
        spent[0] += wall
        spent[1] += cpu
        return out

    aws.observe_kits = timed_listing  # type: ignore[attr-defined]  # what observe_hub calls
    try:
        yield spent
    finally:
        aws.observe_kits = real  # type: ignore[attr-defined]


def _measure(box: Any, n: int) -> dict[str, Any]:
    from flipgitops.adapters.aws_session import CallCounter, Clients
    from flipgitops.core.planner import plan
    from flipgitops.engine.wiring import Wiring
    from flipgitops.model.plan import PlanOptions

    os.environ.update(box.environ({TOKEN_VAR: box.seed.admin_token}))
    os.environ.pop("AWS_PROFILE", None)
    manifest = box.load_manifest()
    counter = CallCounter()
    clients = Clients(region=manifest.aws.region, counter=counter)
    wiring = Wiring.for_manifest(manifest, box.manifest_path, clients)
    requests = box.hub.state.requests
    # The first observation counts the calls; it also pays the per-process costs (client
    # creation, endpoint and model loading) that no later observation pays.
    before = len(requests)
    first = wiring.observe(hosts=False)
    http = [path for _method, path, _status in list(requests)[before:]]
    calls = Counter(counter.calls)
    runs = []  # (obs+plan wall, obs wall, plan wall, cpu, kit listing wall, its cpu)
    p = None
    for _ in range(REPEAT):
        with _timing_kit_listing() as listing:
            observed, t_obs, c_obs = timed(lambda: wiring.observe(hosts=False))
        p, t_plan, c_plan = timed(lambda: plan(manifest, observed, PlanOptions()))  # noqa: B023
        runs.append((t_obs + t_plan, t_obs, t_plan, c_obs + c_plan, *listing))
    _, best_obs, best_plan, cpu, t_kits, c_kits = min(runs)  # the fastest run, all its figures
    assert p is not None
    admin = first.hub.admin
    return {
        "calls": sum(calls.values()), "per_op": calls, "http": http,
        "obs": best_obs, "plan": best_plan, "cpu": cpu,
        "kits": t_kits, "kits_cpu": c_kits,
        "actions": len(p.actions), "blocked": sorted({v.guard for v in p.violations}),
        "kinds": Counter(a.kind.value for a in p.actions),
        "admin_trusts": len(admin.trusts) if admin.ok else f"not read: {admin.error}",
        "kit_slices": len(first.hub.kits.slices) if first.hub.kits else 0,
        "rules": len(first.hub.allowlist.rules),
    }


class _BackendS3:
    """`put_object` straight into the in-process moto server's S3 backend (seeding only)."""

    def __init__(self) -> None:
        from moto.s3.models import s3_backends

        from flipgitops.sandbox.moto_server import MOTO_ACCOUNT_ID

        self._backend = s3_backends[MOTO_ACCOUNT_ID]["global"]

    def put_object(self, *, Bucket: str, Key: str, Body: bytes) -> None:
        self._backend.put_object(Bucket, Key, Body)


def _seed(box: Any, n: int) -> int:
    """The hub FLIP's procedures leave, with every trust registered; the kit objects."""
    from flipgitops.sandbox.flip.kits import write_nvflare_kits
    from flipgitops.sandbox.flip.seed import seed_hub

    m = box.load_manifest()
    box.seed = seed_hub(m, box.hub, existing="all", existing_rules=False, kit_dates=[])
    keys = write_nvflare_kits(_BackendS3(), m.hub.fl_kits.bucket, m.hub.fl_kits.date,
                              box.seed.slot_names, fl_host=m.hub.fl_hostname,
                              fl_port=m.hub.fl_server.port)
    _rules(box, n)
    return len(keys)


def _world(server: Any, root: Path, n: int) -> dict[str, Any]:
    from flipgitops.sandbox.environment import sandbox

    server.reset()
    specs = _specs(n)
    with sandbox(root / f"n{n}", trusts=specs, moto=server, seed=False) as box:
        doc = box.manifest_doc(specs)
        doc["hub"]["admin_token"] = f"env:{TOKEN_VAR}"
        box.write_manifest(doc, commit="the environment, with the admin token")
        objects, t_seed, _ = timed(lambda: _seed(box, n))
        with box.hub.worker.paused():
            out = _measure(box, n)
        out["seed"], out["objects"] = t_seed, objects
        return out


def main() -> int:
    from flipgitops.sandbox.moto_server import moto_server

    banner("observe + plan, 5 / 50 / 500 trusts, sandbox hub (database registry, hosts "
           "not gathered)")
    root = Path(tempfile.mkdtemp(prefix="flipgitops-bench-observe-")).resolve()
    rows: dict[int, dict[str, Any]] = {}
    saved = dict(os.environ)
    try:
        with moto_server() as server:
            print(f"moto server: {server.url}")
            print(f"{'trusts':>7} {'seed s':>7} {'AWS calls':>10} {'HTTP':>5} "
                  f"{'observe s':>10} {'plan s':>8} {'obs+plan s':>11} {'(cpu s)':>8} "
                  f"{'actions':>8}")
            for n in SIZES:
                r = rows[n] = _world(server, root, n)
                print(f"{n:>7} {r['seed']:>7.1f} {r['calls']:>10} {len(r['http']):>5} "
                      f"{r['obs']:>10.3f} {r['plan']:>8.3f} {r['obs'] + r['plan']:>11.3f} "
                      f"{r['cpu']:>8.3f} {r['actions']:>8}")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(root, ignore_errors=True)
    print()
    lo, hi = rows[SIZES[0]], rows[SIZES[-1]]
    for n, r in rows.items():
        print(f"{n} trusts: FLIP's trust table via the admin API: {r['admin_trusts']} "
              f"trust(s); kit bucket: {r['objects']} objects, {r['kit_slices']} slices; "
              f"allowlist rules read: {r['rules']}; plan: {dict(r['kinds'])}, guards: "
              f"{r['blocked'] or 'none'}")
    print(f"HTTP calls per observation: {hi['http']}")
    grew = {f"{s}:{o}": (lo["per_op"].get((s, o), 0), k)
            for (s, o), k in sorted(hi["per_op"].items()) if lo["per_op"].get((s, o)) != k}
    print(f"AWS calls per observation ({SIZES[-1]} trusts): "
          + ", ".join(f"{s}:{o} x{k}" for (s, o), k in sorted(hi["per_op"].items())))
    same = lo["calls"] == hi["calls"] and not grew
    print(f"AWS calls {SIZES[-1]} vs {SIZES[0]}: {hi['calls']} vs {lo['calls']}"
          + (f" (grew: {grew})" if grew else " (same operations)")
          + f": {verdict(same)}")
    wall = ratio(hi["obs"] + hi["plan"], lo["obs"] + lo["plan"])
    for n, r in rows.items():
        print(f"{n} trusts: the kit bucket listing takes {r['kits']:.3f} s of the "
              f"{r['obs']:.3f} s observation ({r['kits_cpu']:.3f} s cpu of this thread)")
    rest = ratio(hi["obs"] - hi["kits"] + hi["plan"], lo["obs"] - lo["kits"] + lo["plan"])
    print(f"observe+plan without the kit listing {SIZES[-1]}/{SIZES[0]}: {rest:.2f}")
    print(f"observe alone {SIZES[-1]}/{SIZES[0]}: {ratio(hi['obs'], lo['obs']):.2f}; "
          f"plan alone: {ratio(hi['plan'], lo['plan']):.1f}; cpu observe+plan: "
          f"{ratio(hi['cpu'], lo['cpu']):.2f}")
    print(f"wall-time ratio observe+plan {SIZES[-1]}/{SIZES[0]}: {wall:.2f} "
          f"(target <= {TARGET_RATIO:.0f}): {verdict(wall <= TARGET_RATIO)}")
    print(f"(the fastest of {REPEAT} runs after one counted observation per size; the "
          f"allowlist holds min(n, {ALLOWLIST_CAP}) rules, see the docstring)")
    return 0 if same and wall <= TARGET_RATIO else 1


if __name__ == "__main__":
    raise SystemExit(main())
