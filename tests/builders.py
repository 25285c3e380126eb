"""Hand-built manifests and observed states for pure tests (planner, diff, guards, renderers).

`manifest(...)` builds a valid Manifest from a few knobs; `observed_matching(m)` builds the
ObservedState of a world exactly in sync with it; the `with_*` / `without_*` helpers each
perturb one thing, so a test reads as "in sync, except ...":

    m = manifest(trusts=2)
    o = with_rule_ip(observed_matching(m), "Trust_2", "203.0.113.99")

Key hashes are deterministic fakes (`key_hash(name, generation)`), never real keys.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flipgitops.model.manifest import (
    AwsConfig,
    Database,
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

ACCOUNT_ID = "123456789012"
REGION = "eu-west-2"
HUB_TAG = "v2.3.0"
FL_TAG = "v2.3.0"
AES_HASH = hashlib.sha256(b"fake-aes-key").hexdigest()
TRUST_STACK = ("trust-api", "imaging-api", "data-access-api")


def key_hash(name: str, generation: int = 1, database_generation: int = 1) -> str:
    """The fake sha256 of trust ``name``'s API key of ``generation`` (minted for
    ``database_generation``: a recreated database gives every trust a new key)."""
    db = "" if database_generation == 1 else f":db{database_generation}"
    return hashlib.sha256(f"key:{name}:{generation}{db}".encode()).hexdigest()


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
) -> Trust:
    """One trust; ``ip`` defaults from the number in the name (Trust_3 -> 203.0.113.13)."""
    if index is None:
        digits = "".join(ch for ch in name if ch.isdigit())
        index = int(digits) if digits else 1
    if host is True:
        host_model: Host | None = None if kind == "tre" else Host(
            connection="local", address="localhost", flip_root=f"/tmp/flip/{name}"
        )
    elif host is False:
        host_model = None
    else:
        host_model = host
    return Trust.model_validate(
        {
            "name": name,
            "kind": kind,
            "public_ip": ip or trust_ip(index),
            "fl_kit_slot": slot or name,
            "state": state,
            "credentials_generation": generation,
            "host": host_model,
        }
    )


def manifest(
    trusts: int | list[Trust] | tuple[Trust, ...] = 1,
    *,
    environment: str = "dev",
    hub_tag: str = HUB_TAG,
    fl_tag: str = FL_TAG,
    allowlist: str = "aws-api",
    db_generation: int = 1,
    deletion_protection: bool = True,
    final_snapshot: bool = True,
    lockstep: bool = True,
    max_trust_removals: int = 1,
    immutable_tags: bool = True,
    account_id: str = ACCOUNT_ID,
    region: str = REGION,
) -> Manifest:
    """A valid manifest; ``trusts=3`` means Trust_1..Trust_3, all active on-prem."""
    trust_list = (
        [trust(f"Trust_{i}") for i in range(1, trusts + 1)]
        if isinstance(trusts, int)
        else list(trusts)
    )
    terraform = (
        TerraformConfig(dir="../FLIP/deploy/providers/AWS") if allowlist == "terraform" else None
    )
    return Manifest(
        version=1,
        environment=environment,
        aws=AwsConfig(account_id=account_id, region=region),
        state=StateConfig(bucket=f"flip-gitops-state-{environment}"),
        hub=Hub(
            domain=f"{environment}.flip.example.org",
            images=Images(hub_tag=hub_tag, fl_tag=fl_tag),
            fl_server=FlServer.model_validate({"allowlist": allowlist}),
            terraform=terraform,
            database=Database(
                deletion_protection=deletion_protection,
                final_snapshot=final_snapshot,
                generation=db_generation,
            ),
        ),
        trusts=trust_list,
        policy=Policy(
            lockstep_fl_images=lockstep,
            max_trust_removals=max_trust_removals,
            immutable_tags=immutable_tags,
        ),
    )


# --- observed state in sync with a manifest ------------------------------------------------


def matching_host(m: Manifest, t: Trust) -> ObservedHost:
    """The facts of a healthy host running ``t``'s stack on the manifest's tags."""
    images = m.hub.images
    services = [*TRUST_STACK, *(["orthanc"] if t.services.orthanc else [])]
    containers = [
        ObservedContainer(service=s, image=f"{images.registry}/{s}:{images.hub_tag}",
                          tag=images.hub_tag, state="running")
        for s in services
    ]
    containers.append(
        ObservedContainer(service="fl-client", image=f"{images.registry}/fl-client:{images.fl_tag}",
                          tag=images.fl_tag, state="running")
    )
    return ObservedHost(
        trust=t.name,
        reachable=True,
        flip_root_present=True,
        docker_present=True,
        kit_present=True,
        env_file_present=True,
        env_file_mode="0600",
        trust_api_key_sha256=key_hash(t.name, t.credentials_generation,
                                      m.hub.database.generation),
        aes_key_sha256=AES_HASH,
        trust_name=t.name,
        hub_url=f"https://{m.hub.domain}/api",
        docker_tag=images.hub_tag,
        docker_fl_tag=images.fl_tag,
        containers=tuple(sorted(containers, key=lambda c: c.service)),
        polling_ok=True,
    )


def fresh_host(name: str) -> ObservedHost:
    """A reachable host with nothing on it yet (a trust being onboarded)."""
    return ObservedHost(trust=name, reachable=True)


def rule_for(m: Manifest, name: str, ip: str, description: str | None = "auto") -> IngressRule:
    port = m.hub.fl_server.port
    desc = f"flipgitops:{name}" if description == "auto" else description
    return IngressRule(cidr=f"{ip}/32", from_port=port, to_port=port, description=desc)


def observed_matching(m: Manifest) -> ObservedState:
    """What observe() would return if the world were exactly as ``m`` declares."""
    present = [t for t in m.trusts if t.state in ("active", "paused")]
    images, hub = m.hub.images, m.hub
    terraform_mode = hub.fl_server.allowlist == "terraform"
    rules = tuple(
        rule_for(m, t.name, t.public_ip,
                 description=(f"FL Server/Admin NLB from on-prem Trust ({t.public_ip})"
                              if terraform_mode else "auto"))
        for t in present
    )
    tags = {"flip_api": images.hub_tag, "fl_api": images.fl_tag, "fl_server": images.fl_tag}
    services = {
        role: ObservedService(
            role=role,
            name=getattr(hub.ecs.services, role),
            exists=True,
            task_definition_arn=f"arn:aws:ecs:{m.aws.region}:{m.aws.account_id}:"
            f"task-definition/{getattr(hub.ecs.services, role)}:1",
            image=f"{images.registry}/{role.replace('_', '-')}:{tag}",
            tag=tag,
        )
        for role, tag in tags.items()
    }
    return ObservedState(
        environment=m.environment,
        hub=ObservedHub(
            account_id=m.aws.account_id,
            region=m.aws.region,
            allowlist=ObservedAllowlist(
                exists=True,
                group_name=hub.fl_server.security_group,
                group_id="sg-0123456789abcdef0",
                rules=rules,
                # what a converged apply records when the hub's Terraform owns the rules
                recorded_owners=({f"{t.public_ip}/32": t.name for t in present}
                                 if terraform_mode else {}),
            ),
            secret=ObservedSecret(
                exists=True,
                name=hub.secret,
                version_id="v1",
                trust_names=tuple(t.name for t in present),
                trust_api_key_hashes={
                    t.name: key_hash(t.name, t.credentials_generation, hub.database.generation)
                    for t in present
                },
                credentials_generations={t.name: t.credentials_generation for t in present},
                # Absent means 1, as in a hub registered before this key existed.
                database_generations=(
                    {t.name: hub.database.generation for t in present}
                    if hub.database.generation != 1 else {}
                ),
                aes_key_sha256=AES_HASH,
            ),
            services=services,
            database=ObservedDatabase(
                exists=True,
                identifier=hub.database.identifier,
                status="available",
                deletion_protection=hub.database.deletion_protection,
                instance_class=hub.database.instance_class,
                engine_version=hub.database.engine_version,
                backup_retention_days=hub.database.backup_retention_days,
                generation=hub.database.generation,
                arn=f"arn:aws:rds:{m.aws.region}:{m.aws.account_id}:db:{hub.database.identifier}",
            ),
            cognito=ObservedCognito(
                exists=True, name=hub.cognito.user_pool, user_pool_id=f"{m.aws.region}_abc123",
                mfa=hub.cognito.mfa,
            ),
        ),
        hosts={
            t.name: matching_host(m, t)
            for t in present
            if t.host is not None and t.kind != "tre"
        },
    )


# --- perturbations (each returns a new ObservedState) --------------------------------------


def _hub(o: ObservedState, **updates: Any) -> ObservedState:
    return o.model_copy(update={"hub": o.hub.model_copy(update=updates)})


def with_account(o: ObservedState, account_id: str | None = None,
                 region: str | None = None) -> ObservedState:
    return _hub(o, account_id=account_id or o.hub.account_id, region=region or o.hub.region)


def with_secret(o: ObservedState, **updates: Any) -> ObservedState:
    return _hub(o, secret=o.hub.secret.model_copy(update=updates))


def with_database(o: ObservedState, **updates: Any) -> ObservedState:
    return _hub(o, database=o.hub.database.model_copy(update=updates))


def with_cognito(o: ObservedState, **updates: Any) -> ObservedState:
    return _hub(o, cognito=o.hub.cognito.model_copy(update=updates))


def with_allowlist(o: ObservedState, **updates: Any) -> ObservedState:
    return _hub(o, allowlist=o.hub.allowlist.model_copy(update=updates))


def with_service(o: ObservedState, role: str, **updates: Any) -> ObservedState:
    services = dict(o.hub.services)
    services[role] = services[role].model_copy(update=updates)
    return _hub(o, services=services)


def with_hub_tags(o: ObservedState, hub_tag: str | None = None,
                  fl_tag: str | None = None) -> ObservedState:
    """The hub's running images (flip-api on hub_tag; fl-api and fl-server on fl_tag)."""
    if hub_tag is not None:
        o = with_service(o, "flip_api", tag=hub_tag)
    if fl_tag is not None:
        o = with_service(o, "fl_api", tag=fl_tag)
        o = with_service(o, "fl_server", tag=fl_tag)
    return o


def with_host(o: ObservedState, name: str, host: ObservedHost | None = None,
              **updates: Any) -> ObservedState:
    """Replace a host's facts, or change some of them."""
    hosts = dict(o.hosts)
    current = host or hosts.get(name) or fresh_host(name)
    hosts[name] = current.model_copy(update=updates)
    return o.model_copy(update={"hosts": hosts})


def without_host(o: ObservedState, name: str) -> ObservedState:
    """Facts for this host were not gathered at all."""
    return o.model_copy(update={"hosts": {k: v for k, v in o.hosts.items() if k != name}})


def unreachable(o: ObservedState, name: str, reason: str = "ssh: timed out") -> ObservedState:
    return with_host(o, name, ObservedHost(trust=name, reachable=False, reason=reason))


def with_host_tags(o: ObservedState, name: str, hub_tag: str | None = None,
                   fl_tag: str | None = None) -> ObservedState:
    """The host's env file and running containers on other tags."""
    host = o.hosts[name]
    containers = []
    for c in host.containers:
        is_fl = c.service.startswith("fl-client")
        tag = (fl_tag if is_fl else hub_tag) or c.tag
        image = f"{c.image.rsplit(':', 1)[0]}:{tag}"
        containers.append(c.model_copy(update={"tag": tag, "image": image}))
    return with_host(
        o, name,
        docker_tag=hub_tag or host.docker_tag,
        docker_fl_tag=fl_tag or host.docker_fl_tag,
        containers=tuple(containers),
    )


def with_stack_stopped(o: ObservedState, name: str) -> ObservedState:
    host = o.hosts[name]
    stopped = tuple(c.model_copy(update={"state": "exited"}) for c in host.containers)
    return with_host(o, name, containers=stopped, polling_ok=None)


def with_rules(o: ObservedState, rules: tuple[IngressRule, ...]) -> ObservedState:
    return with_allowlist(o, rules=rules)


def add_rule(o: ObservedState, rule: IngressRule) -> ObservedState:
    return with_rules(o, (*o.hub.allowlist.rules, rule))


def without_rules_for(o: ObservedState, name: str, ip: str | None = None) -> ObservedState:
    """Drop the trust's rules (by flipgitops description, or by CIDR when ``ip`` is given)."""
    kept = tuple(
        r for r in o.hub.allowlist.rules
        if r.managed_trust != name and (ip is None or r.cidr != f"{ip}/32")
    )
    return with_rules(o, kept)


def with_rule_ip(o: ObservedState, name: str, ip: str) -> ObservedState:
    """The trust's flipgitops rule allows ``ip`` (e.g. the old IP before a change)."""
    rules = tuple(
        r.model_copy(update={"cidr": f"{ip}/32"}) if r.managed_trust == name else r
        for r in o.hub.allowlist.rules
    )
    return with_rules(o, rules)


def unregistered(o: ObservedState, name: str) -> ObservedState:
    """Remove the trust from the hub secret (name, hash, generations, previous hash)."""
    s = o.hub.secret
    return with_secret(
        o,
        trust_names=tuple(n for n in s.trust_names if n != name),
        trust_api_key_hashes={k: v for k, v in s.trust_api_key_hashes.items() if k != name},
        previous_key_hashes={k: v for k, v in s.previous_key_hashes.items() if k != name},
        credentials_generations={
            k: v for k, v in s.credentials_generations.items() if k != name
        },
        database_generations={k: v for k, v in s.database_generations.items() if k != name},
    )


def registered_as(o: ObservedState, name: str, generation: int = 1,
                  previous_generation: int | None = None) -> ObservedState:
    """The hub secret holds ``name`` at ``generation`` (optionally mid-rotation)."""
    s = o.hub.secret
    names = s.trust_names if name in s.trust_names else (*s.trust_names, name)
    previous = dict(s.previous_key_hashes)
    if previous_generation is not None:
        previous[name] = key_hash(name, previous_generation)
    return with_secret(
        o,
        trust_names=names,
        trust_api_key_hashes={**s.trust_api_key_hashes, name: key_hash(name, generation)},
        credentials_generations={**s.credentials_generations, name: generation},
        previous_key_hashes=previous,
    )


def not_onboarded(o: ObservedState, name: str, *, host_reachable: bool = True,
                  ip: str | None = None) -> ObservedState:
    """Nothing of ``name`` is live: not registered, no rule, an empty (or unknown) host.

    Rules go by their ``flipgitops:<name>`` description; pass ``ip`` to also drop a rule
    by CIDR (Terraform-mode rules do not carry the trust's name).
    """
    o = without_rules_for(unregistered(o, name), name, ip=ip)
    if host_reachable:
        return with_host(o, name, fresh_host(name))
    return unreachable(o, name)


def with_unmanaged_trust(
    o: ObservedState, name: str, ip: str, *, port: int = 8002
) -> ObservedState:
    """A trust registered on the hub and allowlisted by flipgitops, absent from the manifest."""
    o = registered_as(o, name)
    return add_rule(
        o, IngressRule(cidr=f"{ip}/32", from_port=port, to_port=port,
                       description=f"flipgitops:{name}")
    )


# --- a pure world model: what each action kind does to the observed state ------------------


def simulate_apply(m: Manifest, o: ObservedState, actions: Any) -> ObservedState:
    """Apply ``actions`` (in order) to ``o`` the way the real executors change the world.

    For pure convergence tests: plan → simulate_apply → plan again must be empty. It models
    only what observe() can see (SSM escrow is invisible; keys are the fake `key_hash`).
    """
    for action in actions:
        o = _SIMULATORS[action.kind](m, o, action)
    return o


def _sim_noop(m: Manifest, o: ObservedState, a: Any) -> ObservedState:
    return o


def _sim_secret(m: Manifest, o: ObservedState, a: Any) -> ObservedState:
    s = o.hub.secret
    names = list(s.trust_names)
    hashes, previous = dict(s.trust_api_key_hashes), dict(s.previous_key_hashes)
    generations = dict(s.credentials_generations)
    db_gens = dict(s.database_generations)
    # Keys are minted for the database generation the escrow action was planned with: the
    # manifest's, or the live one when the manifest lags.
    db_target = max(m.hub.database.generation, o.hub.database.generation or 1)
    before = (names[:], dict(hashes), dict(previous), dict(generations), dict(db_gens))
    for name in a.params.get("register", []):
        t = m.trust(name)
        generation = t.credentials_generation if t else 1
        new = key_hash(name, generation, db_target)
        if name in hashes and hashes[name] != new:
            previous[name] = hashes[name]
        hashes[name], generations[name], db_gens[name] = new, generation, db_target
        if name not in names:
            names.append(name)
    for name in a.params.get("deregister", []):
        names = [n for n in names if n != name]
        for d in (hashes, previous, generations, db_gens):
            d.pop(name, None)
    for name in a.params.get("drop_previous", []):
        previous.pop(name, None)
    changed = before != (names, hashes, previous, generations, db_gens)
    return with_secret(o, trust_names=tuple(names), trust_api_key_hashes=hashes,
                       previous_key_hashes=previous, credentials_generations=generations,
                       database_generations=db_gens,
                       redeploy_pending=s.redeploy_pending or changed)


def _sim_redeploy(m: Manifest, o: ObservedState, a: Any) -> ObservedState:
    """The executor clears the secret's redeploy marker once flip-api was redeployed."""
    return with_secret(o, redeploy_pending=False)


def _sim_deploy(m: Manifest, o: ObservedState, a: Any) -> ObservedState:
    return with_service(o, a.target, tag=a.params["tag"])


def _sim_allowlist(m: Manifest, o: ObservedState, a: Any) -> ObservedState:
    revoke = {r["cidr"] for r in a.params.get("revoke", [])}
    rules = [r for r in o.hub.allowlist.rules if r.cidr not in revoke]
    for r in a.params.get("add", []):
        if not any(x.cidr == r["cidr"] for x in rules):
            rules.append(rule_for(m, r["trust"], r["cidr"].removesuffix("/32")))
    return with_rules(o, tuple(rules))


def _sim_terraform(m: Manifest, o: ObservedState, a: Any) -> ObservedState:
    prefix = "FL Server/Admin NLB from on-prem Trust"
    rules = [r for r in o.hub.allowlist.rules if not (r.description or "").startswith(prefix)]
    for ip in a.params["local_trust_public_ips"]:
        rules.append(rule_for(m, "tf", ip, description=f"{prefix} ({ip})"))
    return with_rules(o, tuple(rules))


def _sim_host(m: Manifest, o: ObservedState, a: Any) -> ObservedState:
    name = a.target
    t = m.trust(name)
    assert t is not None, f"host action for {name}, which is not in the manifest"
    host = o.hosts.get(name) or fresh_host(name)
    assert host.reachable, f"{a.id} planned for an unreachable host"
    if a.kind == "host.provision":
        return with_host(o, name, flip_root_present=True, docker_present=True)
    if a.kind == "host.deliver":
        return with_host(
            o, name, kit_present=True, env_file_present=True, env_file_mode="0600",
            trust_api_key_sha256=key_hash(name, a.params["generation"],
                                          o.hub.secret.database_generation(name)),
            aes_key_sha256=o.hub.secret.aes_key_sha256, trust_name=name,
            docker_tag=a.params["docker_tag"], docker_fl_tag=a.params["docker_fl_tag"],
        )
    if a.kind == "host.start_stack":
        fl_m = m.model_copy(update={"hub": m.hub.model_copy(update={
            "images": m.hub.images.model_copy(update={
                "hub_tag": a.params["docker_tag"], "fl_tag": a.params["docker_fl_tag"]})})})
        return with_host(o, name, containers=matching_host(fl_m, t).containers)
    if a.kind == "host.stop_stack":
        return with_stack_stopped(o, name)
    if a.kind == "host.verify_polling":
        return with_host(o, name, polling_ok=True)
    return o  # restart_trust_api: same facts, new key loaded


def _sim_database(m: Manifest, o: ObservedState, a: Any) -> ObservedState:
    if a.kind == "database.reset_schema":
        return with_database(o, generation=a.params["generation"])
    if a.kind == "database.restore_protection":
        return with_database(o, deletion_protection=True)
    return o


_SIMULATORS: dict[str, Any] = {
    "credentials.escrow": _sim_noop,
    "hub_secret.update": _sim_secret,
    "hub.redeploy": _sim_redeploy,
    "hub.deploy_image": _sim_deploy,
    "allowlist.update": _sim_allowlist,
    "terraform.apply": _sim_terraform,
    "host.provision": _sim_host,
    "host.deliver": _sim_host,
    "host.start_stack": _sim_host,
    "host.stop_stack": _sim_host,
    "host.restart_trust_api": _sim_host,
    "host.verify_polling": _sim_host,
    "database.snapshot": _sim_database,
    "database.reset_schema": _sim_database,
    "database.restore_protection": _sim_database,
}
