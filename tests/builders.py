"""Hand-built manifests and observed states for pure tests (facts, planner, guards, drift).

`manifest(...)` builds a valid Manifest from a few knobs; `observed_matching(m)` builds the
ObservedState of a world exactly in sync with it; the `with_*` / `without_*` helpers each
perturb one thing, so a test reads as "in sync, except ...":

    m = manifest(trusts=2)
    o = with_rule_ip(observed_matching(m), "Trust_2", "203.0.113.99")

Key hashes are deterministic fakes (`key_hash(name, generation)`), never real keys.
`simulate_apply` plays what each action kind does to the world, for the property tests.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flipgitops.core import kitfile
from flipgitops.core.world import World
from flipgitops.model import flip
from flipgitops.model.actions import (
    Action,
    ActionKind,
    AllowlistParams,
    DeliverFlKitParams,
    DeployImagesParams,
    RegisterParams,
    RotateInternalKeyParams,
    SecretWriteParams,
    TerraformParams,
)
from flipgitops.model.kit import LOCAL_CREDENTIAL_KEYS, local_credentials_fingerprint
from flipgitops.model.manifest import (
    AwsConfig,
    Database,
    FlipRelease,
    FlKits,
    FlServer,
    Host,
    Hub,
    Images,
    Manifest,
    Policy,
    StateConfig,
    TerraformConfig,
    Trust,
)
from flipgitops.model.observed import (
    IngressRule,
    KitSlice,
    LedgerTrust,
    ObservedAllowlist,
    ObservedCognito,
    ObservedContainer,
    ObservedDatabase,
    ObservedFlipRelease,
    ObservedFlKit,
    ObservedHost,
    ObservedHub,
    ObservedKitBucket,
    ObservedKitFile,
    ObservedLedger,
    ObservedRegistryEra,
    ObservedRelease,
    ObservedSecret,
    ObservedService,
    ObservedState,
    ObservedTrustApi,
)

ACCOUNT_ID = "123456789012"
REGION = "eu-west-2"
HUB_TAG = "v2.3.0"
FL_TAG = "v2.3.0"
KIT_DATE = "2025-06-01"
FLIP_REF = "v2.3.0"
AES_HASH = hashlib.sha256(b"fake-aes-key").hexdigest()
INTERNAL_HASH = hashlib.sha256(b"fake-internal-key").hexdigest()
TRUST_SERVICES = ("omop-db", "orthanc", "imaging-api", "data-access-api", "trust-api", "loki",
                  "alloy", "grafana", "fl-client-net-1")


def h(*parts: object) -> str:
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


def key_hash(name: str, generation: int = 1, database_generation: int = 1) -> str:
    """The fake sha256 of trust ``name``'s API key of ``generation`` (and database gen)."""
    return h("key", name, generation, database_generation)


def internal_hash(name: str, generation: int = 1, database_generation: int = 1) -> str:
    return h("internal", name, generation, database_generation)


def local_fingerprint(name: str) -> str:
    return local_credentials_fingerprint({k: h("local", name, k) for k in LOCAL_CREDENTIAL_KEYS})


def commit_of(ref: str) -> str:
    return h("commit", ref)[:40]


def trust_ip(index: int) -> str:
    """Documentation-range IPs: index 1 -> 203.0.113.11, ... (then 198.51.100.x)."""
    if index <= 240:
        return f"203.0.113.{10 + index}"
    return f"198.51.100.{(index - 240) % 250 + 1}"


def trust(
    name: str = "Trust_1",
    *,
    ip: str | None = None,
    kind: str = "on-prem",
    state: str = "active",
    generation: int = 1,
    slot: str | None = None,
    index: int | None = None,
    host: Host | bool | None = True,
    code: str | None = None,
) -> Trust:
    """One trust; ``ip`` defaults from the number in the name (Trust_3 -> 203.0.113.13)."""
    if index is None:
        digits = "".join(ch for ch in name if ch.isdigit())
        index = int(digits) if digits else 1
    has_host = kind != "tre" and host is not False and host is not None
    host_model = host if isinstance(host, Host) else (
        Host(connection="local", flip_root=f"/tmp/flip/{name}", docker="docker")
        if has_host else None)
    return Trust(
        name=name, code=code or f"T{index:03d}", kind=kind,  # type: ignore[arg-type]
        public_ip=ip or trust_ip(index), fl_kit_slot=slot or f"Trust_{index}",
        state=state, credentials_generation=generation, host=host_model,  # type: ignore[arg-type]
    )


def manifest(
    trusts: int | list[Trust] | tuple[Trust, ...] = 1,
    *,
    environment: str = "dev",
    hub_tag: str = HUB_TAG,
    fl_tag: str = FL_TAG,
    allowlist: str = "aws-api",
    registry: str = "database",
    db_generation: int = 1,
    deletion_protection: bool = True,
    final_snapshot: bool = True,
    lockstep: bool = True,
    max_trust_removals: int = 1,
    immutable_tags: bool = True,
    kit_date: str = KIT_DATE,
    backend: str = "nvflare",
    flip_ref: str = FLIP_REF,
    internal_key_generation: int = 1,
    rule_quota: int = 60,
) -> Manifest:
    """A valid manifest; ``trusts=3`` means Trust_1..Trust_3, all active on-prem."""
    trust_list = ([trust(f"Trust_{i}") for i in range(1, trusts + 1)]
                  if isinstance(trusts, int) else list(trusts))
    terraform = (TerraformConfig(dir="../FLIP/deploy/providers/AWS")
                 if allowlist == "terraform" else None)
    return Manifest(
        version=1,
        environment=environment,
        aws=AwsConfig(account_id=ACCOUNT_ID, region=REGION),
        state=StateConfig(bucket=f"flip-gitops-state-{environment}"),
        flip=FlipRelease(checkout="../FLIP", ref=flip_ref),
        hub=Hub(
            domain=f"{environment}.flip.example.org",
            fl_backend=backend,  # type: ignore[arg-type]
            trust_registry=registry,  # type: ignore[arg-type]
            images=Images(hub_tag=hub_tag, fl_tag=fl_tag),
            fl_server=FlServer(allowlist=allowlist, rule_quota=rule_quota),  # type: ignore[arg-type]
            fl_kits=FlKits(bucket=f"flip{environment}-aicentre", date=kit_date),
            terraform=terraform,
            database=Database(deletion_protection=deletion_protection,
                              final_snapshot=final_snapshot, generation=db_generation),
            internal_service_key_generation=internal_key_generation,
        ),
        trusts=trust_list,
        policy=Policy(lockstep_fl_images=lockstep, max_trust_removals=max_trust_removals,
                      immutable_tags=immutable_tags),
    )


# --- observed state in sync with a manifest ------------------------------------------------


def slot_fingerprint(m: Manifest, slot: str) -> str:
    return h("kit", m.hub.fl_kits.bucket, m.hub.fl_kits.date, m.hub.fl_backend, slot)


def ledger_entry(m: Manifest, t: Trust) -> LedgerTrust:
    gen, db = t.credentials_generation, m.hub.database.generation
    slot = t.fl_kit_slot or t.name
    return LedgerTrust(
        credentials_generation=gen, database_generation=db, registry=m.hub.trust_registry,
        trust_id=h("id", t.name)[:32] if m.hub.trust_registry == "database" else "",
        fl_kit_slot=slot, fl_kit_slot_number=flip.slot_number(slot),
        api_key_sha256=key_hash(t.name, gen, db),
        internal_key_sha256=internal_hash(t.name, gen, db),
        local_credentials_sha256=local_fingerprint(t.name), held=True,
    )


def config_hash(m: Manifest, t: Trust, service: str, ledger: LedgerTrust) -> str:
    """What `compose config --hash` gives for the kit file flipgitops writes (any stable
    function of the inputs does: the facts compare it with the container's label)."""
    return h("config", service, m.hub.images.hub_tag, m.hub.images.fl_tag, ledger.api_key_sha256,
             m.flip.ref, m.hub.fl_kits.date)


def matching_host(m: Manifest, t: Trust, entry: LedgerTrust | None = None) -> ObservedHost:
    """The facts of a healthy host running ``t``'s stack the way flipgitops leaves it."""
    entry = entry or ledger_entry(m, t)
    images = m.hub.images
    slot, number = entry.fl_kit_slot or "", entry.fl_kit_slot_number or 0
    values = kitfile.public_values(m, t, slot=slot, slot_number=number,
                                   trust_id=entry.trust_id or "")
    hashes = {"TRUST_API_KEY": entry.api_key_sha256 or "", "AES_KEY_BASE64": AES_HASH,
              "TRUST_INTERNAL_SERVICE_KEY": entry.internal_key_sha256 or "",
              **{k: h("local", t.name, k) for k in LOCAL_CREDENTIAL_KEYS}}
    expected = {s: config_hash(m, t, s, entry) for s in TRUST_SERVICES}
    containers = []
    for s in TRUST_SERVICES:
        tag = images.fl_tag if s == flip.FL_CLIENT_SERVICE else images.hub_tag
        image = (f"ghcr.io/londonaicentre/{flip.fl_client_image_name(m.hub.fl_backend)}:{tag}"
                 if s == flip.FL_CLIENT_SERVICE else f"ghcr.io/londonaicentre/{s}:{tag}")
        containers.append(ObservedContainer(service=s, image=image, tag=tag, state="running",
                                            config_hash=expected[s]))
    fp = slot_fingerprint(m, slot)
    content = h("content", fp)
    return ObservedHost(
        trust=t.name, reachable=True, flip_root_present=True, docker_present=True,
        compose_present=True, swarm_active=True, network_present=True,
        release=ObservedRelease(present=True, ref=m.flip.ref, commit=commit_of(m.flip.ref),
                                tree_sha256=h("tree", m.flip.ref), intact=True),
        kit_file=ObservedKitFile(present=True, mode="0600", values=values, secret_sha256=hashes,
                                 has_sentinel=True),
        fl_kit=ObservedFlKit(present=True, content_sha256=content, date=m.hub.fl_kits.date,
                             slot=slot, backend=m.hub.fl_backend, source_fingerprint=fp,
                             delivered_sha256=content, fqsn=slot),
        project=flip.compose_project(number),
        containers=tuple(containers),
        expected_config=expected,
        trust_api=ObservedTrustApi(authenticated_as=t.name, trust_id=entry.trust_id),
    )


def fresh_host(name: str) -> ObservedHost:
    """A reachable host with nothing on it yet (a trust being onboarded)."""
    return ObservedHost(trust=name, reachable=True)


def rule_for(m: Manifest, name: str, ip: str, description: str | None = "auto") -> IngressRule:
    port = m.hub.fl_server.port
    if description == "auto":
        description = (f"{flip.TERRAFORM_TRUST_RULE_PREFIX} ({ip})"
                       if m.hub.fl_server.allowlist == "terraform" else f"flipgitops:{name}")
    return IngressRule(cidr=f"{ip}/32", from_port=port, to_port=port, description=description)


def nat_rule(m: Manifest) -> IngressRule:
    port = m.hub.fl_server.port
    return IngressRule(cidr="198.51.100.250/32", from_port=port, to_port=port,
                       description=flip.FLIP_NAT_RULE_DESCRIPTION)


def observed_matching(m: Manifest) -> ObservedState:
    """What observe() would return if the world were exactly as ``m`` declares."""
    present = [t for t in m.trusts if t.is_present]
    images = m.hub.images
    services = {}
    for role in flip.HUB_ROLES:
        tag = getattr(images, flip.ROLE_TAG_FIELD[role])
        name = getattr(m.hub.ecs.services, role)
        names = tuple(t.name for t in present) if (role == "flip_api" and
                                                   m.hub.trust_registry == "secret") else None
        services[role] = ObservedService(
            role=role, name=name, exists=True, image=f"ghcr.io/londonaicentre/{name}:{tag}",
            tag=tag, trust_names=names, stable=True, loaded_current=True,
            task_definition_arn=f"arn:aws:ecs:{REGION}:{ACCOUNT_ID}:task-definition/{name}:1",
            revision=1)
    ledger = {t.name: ledger_entry(m, t) for t in present}
    hashes = ({t.name: ledger[t.name].api_key_sha256 or "" for t in present}
              if m.hub.trust_registry == "secret" else None)
    slices = {}
    for t in present:
        slot = ledger[t.name].fl_kit_slot or ""
        slices[slot] = KitSlice(slot=slot, keys=(f"{slot}/startup/fed_client.json",),
                                fingerprint=slot_fingerprint(m, slot))
    rules = [rule_for(m, t.name, t.public_ip) for t in present] + [nat_rule(m)]
    hub = ObservedHub(
        account_id=ACCOUNT_ID, region=REGION,
        allowlist=ObservedAllowlist(exists=True, group_name=m.hub.fl_server.security_group,
                                    group_id="sg-0123456789abcdef0",
                                    rules=tuple(sorted(rules, key=lambda r: r.cidr)),
                                    rule_quota=None, other_rules=0,
                                    recorded_owners={}),
        secret=ObservedSecret(exists=True, name=m.hub.secret, aes_key_sha256=AES_HASH,
                              internal_key_sha256=INTERNAL_HASH, internal_key_hash=INTERNAL_HASH,
                              trust_api_key_hashes=hashes, version_id="v1"),
        services=services,
        database=ObservedDatabase(exists=True, identifier=m.hub.database.identifier,
                                  status="available",
                                  deletion_protection=m.hub.database.deletion_protection,
                                  instance_class=m.hub.database.instance_class,
                                  engine_version=m.hub.database.engine_version,
                                  backup_retention_days=m.hub.database.backup_retention_days,
                                  generation=m.hub.database.generation,
                                  arn="arn:aws:rds:eu-west-2:123456789012:db:flip-database"),
        cognito=ObservedCognito(exists=True, name=m.hub.cognito.user_pool,
                                user_pool_id="eu-west-2_abc", mfa=m.hub.cognito.mfa),
        registry=ObservedRegistryEra(era=m.hub.trust_registry, evidence="builders"),
        slot_pool=tuple(f"Trust_{i}" for i in range(1, 251)),
        kits=ObservedKitBucket(bucket=m.hub.fl_kits.bucket, date=m.hub.fl_kits.date,
                               backend=m.hub.fl_backend, slices=slices),
    )
    hosts = {t.name: matching_host(m, t, ledger[t.name])
             for t in m.trusts if t.state == "active" and t.has_host}
    return ObservedState(
        environment=m.environment, hub=hub,
        ledger=ObservedLedger(exists=True, trusts=ledger,
                              internal_service_key_generation=m.hub.internal_service_key_generation),
        hosts=hosts,
        flip_release=ObservedFlipRelease(ref=m.flip.ref, commit=commit_of(m.flip.ref),
                                         tree_sha256=h("tree", m.flip.ref)),
        observed_at="2026-12-01T00:00:00+00:00",
    )


# --- perturbations ---------------------------------------------------------------------------


def _hub(o: ObservedState, **updates: Any) -> ObservedState:
    return o.model_copy(update={"hub": o.hub.model_copy(update=updates)})


def with_account(o: ObservedState, account_id: str | None = None,
                 region: str | None = REGION) -> ObservedState:
    return _hub(o, account_id=account_id, region=region)


def with_secret(o: ObservedState, **updates: Any) -> ObservedState:
    return _hub(o, secret=o.hub.secret.model_copy(update=updates))


def with_database(o: ObservedState, **updates: Any) -> ObservedState:
    return _hub(o, database=o.hub.database.model_copy(update=updates))


def with_allowlist(o: ObservedState, **updates: Any) -> ObservedState:
    return _hub(o, allowlist=o.hub.allowlist.model_copy(update=updates))


def with_service(o: ObservedState, role: str, **updates: Any) -> ObservedState:
    services = dict(o.hub.services)
    services[role] = services[role].model_copy(update=updates)
    return _hub(o, services=services)


def with_hub_tags(o: ObservedState, hub_tag: str | None = None,
                  fl_tag: str | None = None) -> ObservedState:
    if hub_tag is not None:
        o = with_service(o, "flip_api", tag=hub_tag)
    if fl_tag is not None:
        o = with_service(o, "fl_api", tag=fl_tag)
        o = with_service(o, "fl_server", tag=fl_tag)
    return o


def with_registry_era(o: ObservedState, era: str, evidence: str = "test") -> ObservedState:
    return _hub(o, registry=ObservedRegistryEra(era=era, evidence=evidence))  # type: ignore[arg-type]


def with_ledger(o: ObservedState, name: str, entry: LedgerTrust | None) -> ObservedState:
    trusts = dict(o.ledger.trusts)
    if entry is None:
        trusts.pop(name, None)
    else:
        trusts[name] = entry
    return o.model_copy(update={"ledger": o.ledger.model_copy(update={"trusts": trusts})})


def with_host(o: ObservedState, name: str, host: ObservedHost | None = None,
              **updates: Any) -> ObservedState:
    hosts = dict(o.hosts)
    base = host if host is not None else hosts[name]
    hosts[name] = base.model_copy(update=updates) if updates else base
    return o.model_copy(update={"hosts": hosts})


def without_host(o: ObservedState, name: str) -> ObservedState:
    hosts = {k: v for k, v in o.hosts.items() if k != name}
    return o.model_copy(update={"hosts": hosts})


def unreachable(o: ObservedState, name: str, reason: str = "ssh: timed out") -> ObservedState:
    return with_host(o, name, ObservedHost(trust=name, reachable=False, reason=reason))


def with_kit_value(o: ObservedState, name: str, key: str, value: str) -> ObservedState:
    host = o.hosts[name]
    kf = host.kit_file.model_copy(update={"values": {**host.kit_file.values, key: value}})
    return with_host(o, name, kit_file=kf)


def with_container(o: ObservedState, name: str, service: str, **updates: Any) -> ObservedState:
    host = o.hosts[name]
    containers = tuple(c.model_copy(update=updates) if c.service == service else c
                       for c in host.containers)
    return with_host(o, name, containers=containers)


def with_stack_stopped(o: ObservedState, name: str) -> ObservedState:
    host = o.hosts[name]
    return with_host(o, name, containers=tuple(c.model_copy(update={"state": "exited"})
                                               for c in host.containers))


def with_rules(o: ObservedState, rules: tuple[IngressRule, ...]) -> ObservedState:
    return with_allowlist(o, rules=tuple(sorted(rules, key=lambda r: r.cidr)))


def add_rule(o: ObservedState, rule: IngressRule) -> ObservedState:
    return with_rules(o, (*o.hub.allowlist.rules, rule))


def without_rules_for(o: ObservedState, ip: str) -> ObservedState:
    return with_rules(o, tuple(r for r in o.hub.allowlist.rules if r.cidr != f"{ip}/32"))


def with_rule_ip(o: ObservedState, m: Manifest, name: str, ip: str) -> ObservedState:
    t = m.trust(name)
    assert t is not None
    o = without_rules_for(o, t.public_ip)
    return add_rule(o, rule_for(m, name, ip))


def not_onboarded(o: ObservedState, m: Manifest, name: str, *,
                  host_reachable: bool = True) -> ObservedState:
    """``name`` is in the manifest but nothing of it is live yet."""
    t = m.trust(name)
    assert t is not None
    o = with_ledger(o, name, None)
    o = without_rules_for(o, t.public_ip)
    if o.hub.secret.trust_api_key_hashes is not None:
        hashes = {k: v for k, v in o.hub.secret.trust_api_key_hashes.items() if k != name}
        o = with_secret(o, trust_api_key_hashes=hashes)
        names = tuple(n for n in (o.hub.services["flip_api"].trust_names or ()) if n != name)
        o = with_service(o, "flip_api", trust_names=names)
    if name in o.hosts:
        o = with_host(o, name, fresh_host(name)) if host_reachable else unreachable(o, name)
    return o


def with_unmanaged_trust(o: ObservedState, m: Manifest, name: str, ip: str) -> ObservedState:
    """A trust live on the hub that the manifest does not name."""
    o = add_rule(o, rule_for(m, name, ip))
    entry = LedgerTrust(credentials_generation=1, fl_kit_slot="Trust_200",
                        fl_kit_slot_number=200, api_key_sha256=key_hash(name),
                        internal_key_sha256=internal_hash(name), held=True,
                        registry=m.hub.trust_registry)
    o = with_ledger(o, name, entry)
    if o.hub.secret.trust_api_key_hashes is not None:
        o = with_secret(o, trust_api_key_hashes={**o.hub.secret.trust_api_key_hashes,
                                                 name: key_hash(name)})
        names = (*(o.hub.services["flip_api"].trust_names or ()), name)
        o = with_service(o, "flip_api", trust_names=names)
    return o


# --- simulate apply (what each action does to the world), for the property tests ----------


def simulate_apply(m: Manifest, o: ObservedState, actions: Any) -> ObservedState:
    for a in actions:
        o = _SIM[a.kind](m, o, a)
    return o


def _noop(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    return o


def _register(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    p = a.typed(RegisterParams)
    t = m.trust(p.name)
    assert t is not None
    entry = ledger_entry(m, t).model_copy(update={
        "credentials_generation": p.credentials_generation,
        "database_generation": p.database_generation,
        "api_key_sha256": key_hash(t.name, p.credentials_generation, p.database_generation),
        "internal_key_sha256": internal_hash(t.name, p.credentials_generation,
                                             p.database_generation)})
    return with_ledger(o, p.name, entry)


def _delete(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    return with_ledger(o, a.target, None)


def _mint(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    t = m.trust(a.target)
    assert t is not None
    db = World(m, o).db_target or m.hub.database.generation
    entry = ledger_entry(m, t).model_copy(update={
        "api_key_sha256": key_hash(t.name, t.credentials_generation, db),
        "internal_key_sha256": internal_hash(t.name, t.credentials_generation, db),
        "database_generation": db})
    return with_ledger(o, t.name, entry)


def _secret_write(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    p = a.typed(SecretWriteParams)
    hashes = dict(o.hub.secret.trust_api_key_hashes or {})
    for name in p.deregistering:
        hashes.pop(name, None)
        o = with_ledger(o, name, None)
    for name in p.registering:
        entry = o.ledger.trusts[name]
        hashes[name] = entry.api_key_sha256 or ""
    o = with_secret(o, trust_api_key_hashes=hashes)
    o = with_service(o, "flip_api", trust_names=p.names_after, loaded_current=False)
    return o


def _redeploy(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    if a.target == "flip_api":
        o = with_service(o, "flip_api", loaded_current=True)
        o = o.model_copy(update={"ledger": o.ledger.model_copy(update={"redeploy_pending": False})})
    return o


def _deploy(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    for role, change in a.typed(DeployImagesParams).images.items():
        o = with_service(o, role, tag=change.tag)
    return o


def _allowlist(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    p = a.typed(AllowlistParams)
    for pair in p.add:
        o = add_rule(o, rule_for(m, pair.trust, pair.cidr.removesuffix("/32")))
    revoked = {pair.cidr for pair in p.revoke}
    return with_rules(o, tuple(r for r in o.hub.allowlist.rules if r.cidr not in revoked))


def _terraform(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    p = a.typed(TerraformParams)
    keep = [r for r in o.hub.allowlist.rules
            if not (r.description or "").startswith(flip.TERRAFORM_TRUST_RULE_PREFIX)]
    by_ip = {t.public_ip: t.name for t in m.trusts}
    owners = dict(o.hub.allowlist.recorded_owners)
    new = []
    for ip in p.local_trust_public_ips:
        new.append(IngressRule(cidr=f"{ip}/32", from_port=m.hub.fl_server.port,
                               to_port=m.hub.fl_server.port,
                               description=f"{flip.TERRAFORM_TRUST_RULE_PREFIX} ({ip})"))
        if ip in by_ip:
            owners[f"{ip}/32"] = by_ip[ip]
    o = with_allowlist(o, recorded_owners=owners)
    if p.trust_names is not None:
        hashes = {n: (o.ledger.trusts[n].api_key_sha256 or "") for n in p.trust_names
                  if n in o.ledger.trusts}
        svc = o.hub.services["flip_api"]
        if hashes != o.hub.secret.trust_api_key_hashes or p.trust_names != svc.trust_names:
            o = with_secret(o, trust_api_key_hashes=hashes)
            o = with_service(o, "flip_api", trust_names=p.trust_names, loaded_current=False)
    return with_rules(o, (*keep, *new))


def _host_step(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    """Any host step of a trust leaves its host as flipgitops would after the whole chain
    (the chain's steps are only ever planned together or as its missing suffix)."""
    t = m.trust(a.target)
    assert t is not None
    if a.kind == ActionKind.HOST_STOP_STACK:
        return without_host(o, a.target) if a.target in o.hosts else o
    if a.kind not in (ActionKind.HOST_START_STACK, ActionKind.HOST_VERIFY):
        if a.kind == ActionKind.HOST_DELIVER_FL_KIT:
            a.typed(DeliverFlKitParams)
        return o
    entry = o.ledger.trusts.get(t.name)
    return with_host(o, t.name, matching_host(m, t, entry))


def _snapshot(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    return o


def _reset(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    return with_database(o, generation=m.hub.database.generation)


def _restore(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    return with_database(o, deletion_protection=True)


def _rotate_internal(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    gen = a.typed(RotateInternalKeyParams).generation
    new = h("internal-service", gen)
    o = with_secret(o, internal_key_sha256=new, internal_key_hash=new)
    return o.model_copy(update={"ledger": o.ledger.model_copy(
        update={"internal_service_key_generation": gen})})


def _migrate(m: Manifest, o: ObservedState, a: Action) -> ObservedState:
    return with_secret(o, legacy_keys=())


K = ActionKind
_SIM = {
    K.REGISTRY_REGISTER: _register, K.REGISTRY_DELETE: _delete, K.CREDENTIALS_MINT: _mint,
    K.REGISTRY_SECRET_WRITE: _secret_write, K.LEDGER_MIGRATE: _migrate,
    K.HUB_DEPLOY_IMAGES: _deploy, K.HUB_REDEPLOY: _redeploy,
    K.HUB_ROTATE_INTERNAL_KEY: _rotate_internal, K.ALLOWLIST_UPDATE: _allowlist,
    K.TERRAFORM_APPLY: _terraform, K.HOST_PROVISION: _host_step,
    K.HOST_DEPLOY_RELEASE: _host_step, K.HOST_WRITE_KIT_FILE: _host_step,
    K.HOST_DELIVER_FL_KIT: _host_step, K.HOST_START_STACK: _host_step,
    K.HOST_STOP_STACK: _host_step, K.HOST_VERIFY: _host_step,
    K.DATABASE_SNAPSHOT: _snapshot, K.DATABASE_RESET_SCHEMA: _reset,
    K.DATABASE_RESTORE_PROTECTION: _restore,
}
