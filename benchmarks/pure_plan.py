"""validate + plan, pure (no AWS, no hosts, no I/O), for 10, 100 and 1,000 trusts.

Target: validate + plan of a 1,000-trust manifest in under 1 s.

- validate = `core.parse.parse_manifest` of the manifest's YAML text: YAML with positions,
  the pydantic model and every document rule of `core/validate.py` (what `flipgitops
  validate` runs per file). The text is a manifest built with `tests.builders` (trusts on
  local hosts, unique public IPs) and dumped to YAML; the parse must give back that model.
- plan = `core.planner.plan(manifest, observed, PlanOptions())`, against two observed
  states: one in sync with the manifest (`tests.builders.observed_matching`, the one home
  of what an in-sync world looks like: the nightly/PR case), which must plan nothing and
  report nothing (checked, so the benchmark cannot quietly time another workload), and one
  where the hub runs but no trust is registered and every host is bare (the worst case:
  onboarding all of them), which must plan every trust's registration and host chain; at
  1,000 trusts it must also be blocked by FG012 (1,000 /32s plus FLIP's NAT rule exceed
  the 1,000 rules a security group can hold at most), the guards having run as always.

Figures are the best of REPEAT runs each, wall time and this process's CPU time (on a busy
machine the CPU time is what the wall time would be on an idle core).
"""

from __future__ import annotations

import io
import sys
from collections import Counter

from _common import banner, best_of, public_ips, ratio, verdict
from ruamel.yaml import YAML

from flipgitops.core.parse import parse_manifest
from flipgitops.core.planner import plan
from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import ObservedState
from flipgitops.model.plan import Plan, PlanOptions
from tests import builders

SIZES = (10, 100, 1000)
REPEAT = 3
TARGET_S = 1.0
QUOTA = 1000
SCHEMA_COMMENT = "# yaml-language-server: $schema=../schemas/flip-environment.schema.json\n"
# Every host chain an onboarding plans per trust (registration, then the host's six steps).
ONBOARD_KINDS = ("registry.register", "host.provision", "host.deploy_release",
                 "host.write_kit_file", "host.deliver_fl_kit", "host.start_stack",
                 "host.verify")


def manifest_for(n: int) -> Manifest:
    # Not the address the builders give FLIP's NAT rule: a trust there would share its /32.
    nat = builders.nat_rule(builders.manifest(0)).cidr.removesuffix("/32")
    ips = (ip for ip in public_ips() if ip != nat)
    trusts = [builders.trust(f"Trust_{i}", ip=next(ips), index=i) for i in range(1, n + 1)]
    # The most the manifest allows (AWS's ceiling too): with FLIP's one /32 per trust plus
    # its NAT rule, 1,000 trusts cannot fit, and the onboarding plan must say so (FG012).
    return builders.manifest(trusts, rule_quota=QUOTA)


def manifest_yaml(m: Manifest) -> str:
    yaml = YAML()
    yaml.default_flow_style = False
    out = io.StringIO()
    yaml.dump(m.model_dump(mode="json", exclude_defaults=True), out)
    return SCHEMA_COMMENT + out.getvalue()


def with_slot_pool(o: ObservedState, n: int) -> ObservedState:
    """The hub's slot pool large enough for every trust (the builders' pool holds 250)."""
    pool = tuple(f"Trust_{i}" for i in range(1, n + 2))
    return o.model_copy(update={"hub": o.hub.model_copy(update={"slot_pool": pool})})


def observed_onboarding(m: Manifest) -> ObservedState:
    """The hub in sync with a manifest of no trusts, and every trust's host bare."""
    hub_only = builders.observed_matching(m.model_copy(update={"trusts": []}))
    hosts = {t.name: builders.fresh_host(t.name) for t in m.trusts if t.has_host}
    return hub_only.model_copy(update={"hosts": hosts})


def problems(n: int, synced: Plan, onboard: Plan) -> list[str]:
    """What would make the timed workloads other than the ones described."""
    out = []
    if not synced.in_sync:
        out.append(f"in-sync state still plans {len(synced.actions)} action(s), "
                   f"{len(synced.advisories)} advisory(ies), e.g. "
                   f"{[a.id for a in synced.actions[:3]] or list(synced.advisories[:2])}")
    kinds = Counter(a.kind.value for a in onboard.actions)
    short = {k: kinds.get(k, 0) for k in ONBOARD_KINDS if kinds.get(k, 0) != n}
    guards = {v.guard for v in onboard.violations if not v.allowed}
    expected = {"FG012"} if n + 1 > QUOTA else set()  # the trusts' rules + FLIP's NAT rule
    if short or guards != expected or onboard.advisories:
        out.append(f"onboarding plan is not {n} x {len(ONBOARD_KINDS)} steps blocked by "
                   f"{sorted(expected) or 'nothing'}: {short}, blocked by {sorted(guards)}, "
                   f"advisories={list(onboard.advisories[:2])}")
    return out


def main() -> int:
    banner("validate + plan (pure), 10 / 100 / 1,000 trusts")
    print(f"{'trusts':>7} {'yaml KiB':>9} {'validate s':>11} {'plan sync s':>12} "
          f"{'plan onboard s':>15} {'actions':>8} {'worst total s':>14} {'(cpu s)':>8}")
    opts = PlanOptions()
    bad: list[str] = []
    totals: dict[int, tuple[float, float]] = {}
    blocked: dict[int, list[str]] = {}
    for n in SIZES:
        model = manifest_for(n)
        text = manifest_yaml(model)
        m, t_val, c_val = best_of(REPEAT, lambda: parse_manifest(text, "environments/dev.yaml"))  # noqa: B023
        if m != model:
            bad.append(f"{n}: the parsed manifest differs from the one dumped")
        synced = with_slot_pool(builders.observed_matching(m), n)
        fresh = with_slot_pool(observed_onboarding(m), n)
        p_sync, t_sync, c_sync = best_of(REPEAT, lambda: plan(m, synced, opts))  # noqa: B023
        p_new, t_new, c_new = best_of(REPEAT, lambda: plan(m, fresh, opts))  # noqa: B023
        bad += [f"{n}: {p}" for p in problems(n, p_sync, p_new)]
        blocked[n] = sorted({v.guard for v in p_new.violations if not v.allowed})
        totals[n] = (t_val + max(t_sync, t_new), c_val + max(c_sync, c_new))
        print(f"{n:>7} {len(text) / 1024:>9.1f} {t_val:>11.3f} {t_sync:>12.3f} "
              f"{t_new:>15.3f} {len(p_new.actions):>8} {totals[n][0]:>14.3f} "
              f"{totals[n][1]:>8.3f}")
    print()
    for line in bad:
        print(f"!! {line}", file=sys.stderr)
    big = SIZES[-1]
    wall, cpu = totals[big]
    print(f"scaling {SIZES[0]} -> {big} trusts (x{big // SIZES[0]}): wall x"
          f"{ratio(wall, totals[SIZES[0]][0]):.0f}, cpu x{ratio(cpu, totals[SIZES[0]][1]):.0f}")
    print(f"{big:,} trusts, validate + plan (worst of in-sync / onboarding): wall {wall:.3f} s, "
          f"cpu {cpu:.3f} s; target < {TARGET_S:.0f} s: wall {verdict(wall < TARGET_S)}, "
          f"cpu {verdict(cpu < TARGET_S)}")
    print(f"(best of {REPEAT} runs each; in-sync plans empty and onboarding plans complete: "
          f"{not bad}; onboarding plans blocked by: "
          + ", ".join(f"{n}: {g or 'none'}" for n, g in blocked.items()) + ")")
    return 0 if not bad and wall < TARGET_S else 1


if __name__ == "__main__":
    raise SystemExit(main())
