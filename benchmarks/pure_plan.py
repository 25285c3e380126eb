"""validate + plan, pure (no AWS, no hosts), for 10, 100 and 1,000 trusts.

Target (DESIGN.md §9): validate + plan of a 1,000-trust manifest in under 1 s. Two observed
states are planned against: one that already matches the manifest (the nightly/PR case:
nothing to do) and one where every trust is new (the worst case: onboarding them all).
The matching state is checked to really plan nothing, so the benchmark cannot quietly time
a different workload.
"""

from __future__ import annotations

from _common import (
    banner,
    best_of,
    generated_manifest,
    sha256_hex,
    verdict,
)

from flipgitops.model.manifest import Manifest
from flipgitops.model.observed import (
    IngressRule,
    ObservedAllowlist,
    ObservedCognito,
    ObservedContainer,
    ObservedDatabase,
    ObservedHost,
    ObservedHub,
    ObservedSecret,
    ObservedService,
    ObservedState,
)
from flipgitops.model.plan import PlanOptions

SIZES = (10, 100, 1000)
REPEAT = 3
TARGET_S = 1.0
AES = sha256_hex("sandbox-aes-key")
TRUST_CONTAINERS = ("trust-api", "imaging-api", "data-access-api", "fl-client")


def _hub(m: Manifest, trusts: bool) -> ObservedHub:
    registered = [t for t in m.trusts if t.state != "decommissioned"] if trusts else []
    port = m.hub.fl_server.port
    images = m.hub.images
    names = m.hub.ecs.services
    tags = {"flip_api": images.hub_tag, "fl_api": images.fl_tag, "fl_server": images.fl_tag}
    services = {
        role: ObservedService(
            role=role, name=getattr(names, role), exists=True,
            task_definition_arn=f"arn:aws:ecs:{m.aws.region}:{m.aws.account_id}:task-definition/"
                                f"{getattr(names, role)}:1",
            image=f"{images.registry}/{getattr(names, role)}:{tag}", tag=tag,
        )
        for role, tag in tags.items()
    }
    db = m.hub.database
    return ObservedHub(
        account_id=m.aws.account_id,
        region=m.aws.region,
        allowlist=ObservedAllowlist(
            exists=True, group_name=m.hub.fl_server.security_group, group_id="sg-0123456789",
            rules=tuple(IngressRule(cidr=f"{t.public_ip}/32", from_port=port, to_port=port,
                                    description=f"flipgitops:{t.name}") for t in registered),
        ),
        secret=ObservedSecret(
            exists=True, name=m.hub.secret, version_id="v1",
            trust_names=tuple(sorted(t.name for t in registered)),
            trust_api_key_hashes={t.name: sha256_hex(f"key-{t.name}") for t in registered},
            credentials_generations={t.name: t.credentials_generation for t in registered},
            aes_key_sha256=AES,
            other_keys={"internal_service_key_hash": "sha256:0123456789ab"},
        ),
        services=services,
        database=ObservedDatabase(
            exists=True, identifier=db.identifier, status="available",
            deletion_protection=db.deletion_protection, instance_class=db.instance_class,
            engine_version=db.engine_version, backup_retention_days=db.backup_retention_days,
            generation=db.generation,
        ),
        cognito=ObservedCognito(exists=True, name=m.hub.cognito.user_pool,
                                user_pool_id="eu-west-2_abc", mfa=m.hub.cognito.mfa),
    )


def _host(m: Manifest, name: str, onboarded: bool) -> ObservedHost:
    if not onboarded:
        return ObservedHost(trust=name, reachable=True, docker_present=True)
    images = m.hub.images
    tags = {"fl-client": images.fl_tag}
    return ObservedHost(
        trust=name, reachable=True, flip_root_present=True, docker_present=True,
        kit_present=True, env_file_present=True, env_file_mode="0600",
        trust_api_key_sha256=sha256_hex(f"key-{name}"), aes_key_sha256=AES,
        trust_name=name, hub_url=f"https://{m.hub.domain}/api",
        docker_tag=images.hub_tag, docker_fl_tag=images.fl_tag,
        containers=tuple(
            ObservedContainer(service=s, image=f"{images.registry}/{s}:"
                              f"{tags.get(s, images.hub_tag)}",
                              tag=tags.get(s, images.hub_tag), state="running")
            for s in TRUST_CONTAINERS
        ),
        polling_ok=True,
    )


def observed_for(m: Manifest, *, onboarded: bool) -> ObservedState:
    """A live world that matches ``m`` (onboarded) or has the hub but none of its trusts."""
    hosts = {t.name: _host(m, t.name, onboarded) for t in m.trusts
             if t.host is not None and t.kind != "tre"}
    return ObservedState(environment=m.environment, hub=_hub(m, onboarded), hosts=hosts,
                         observed_at="2026-01-01T00:00:00Z")


def _measure(n: int) -> tuple[int, float, float, float, int, int]:
    """(yaml bytes, validate s, plan in-sync s, plan onboarding s, actions, in-sync actions)."""
    from flipgitops.core.parse import parse_manifest
    from flipgitops.core.planner import plan

    text = generated_manifest(n)
    manifest, t_validate = best_of(REPEAT, lambda: parse_manifest(text, "environments/dev.yaml"))
    synced = observed_for(manifest, onboarded=True)
    fresh = observed_for(manifest, onboarded=False)
    opts = PlanOptions()
    p_sync, t_sync = best_of(REPEAT, lambda: plan(manifest, synced, opts))
    p_new, t_new = best_of(REPEAT, lambda: plan(manifest, fresh, opts))
    if not p_sync.is_empty:
        print(f"  !! the matching state still plans {len(p_sync.actions)} action(s), e.g. "
              f"{[a.id for a in p_sync.actions[:5]]}: fix observed_for()")
    return len(text), t_validate, t_sync, t_new, len(p_new.actions), len(p_sync.actions)


def main() -> int:
    banner("validate + plan (pure), 10 / 100 / 1,000 trusts")
    print(f"{'trusts':>7} {'yaml KiB':>9} {'validate s':>11} {'plan(in sync) s':>16} "
          f"{'plan(onboard) s':>16} {'actions':>8} {'validate+plan s':>16}")
    ok = True
    worst = 0.0
    for n in SIZES:
        size, t_validate, t_sync, t_new, actions, leftover = _measure(n)
        ok = ok and leftover == 0
        worst = t_validate + max(t_sync, t_new)
        print(f"{n:>7} {size / 1024:>9.1f} {t_validate:>11.3f} {t_sync:>16.3f} "
              f"{t_new:>16.3f} {actions:>8} {worst:>16.3f}")
    print()
    met = worst < TARGET_S
    print(f"{SIZES[-1]:,} trusts: validate + plan (worst of in-sync/onboarding) = {worst:.3f} s; "
          f"target < {TARGET_S:.0f} s: {verdict(met)}")
    print(f"(best of {REPEAT} runs each; in-sync plans empty: {ok})")
    return 0 if ok and met else 1


if __name__ == "__main__":
    raise SystemExit(main())
