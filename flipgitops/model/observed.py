"""What is live: a frozen snapshot of the hub in AWS, flipgitops' own state, and every host.

Produced only by adapters, consumed by the pure core. It never holds a secret value: keys
read from the hub secret, the escrow or a host are reduced to sha256 hex before they reach
this model, and renderers shorten those to ``sha256:<12 hex>``.

``exists=False`` means "looked and it is not there"; a host with ``reachable=False`` is
*unknown*, which the core never treats as in sync. Fields that change without anyone
deciding anything (an RDS status, a secret version id, a task-definition ARN) are kept apart
from the facts decisions are made from, so the plan fingerprint ignores them (see
`core/facts.py`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from flipgitops.model.flip import MANAGED_RULE_PREFIX, FlBackend, HubRole, Registry


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# --- the hub -------------------------------------------------------------------------------


class IngressRule(Frozen):
    """One ingress rule on the FL server NLB security group, identified by its CIDR."""

    cidr: str
    from_port: int
    to_port: int
    protocol: str = "tcp"
    description: str | None = None

    @property
    def managed_trust(self) -> str | None:
        """The trust this rule belongs to if flipgitops wrote it (`flipgitops:<name>`)."""
        d = self.description or ""
        return d.removeprefix(MANAGED_RULE_PREFIX) if d.startswith(MANAGED_RULE_PREFIX) else None


class ObservedAllowlist(Frozen):
    exists: bool
    group_name: str  # what the manifest asked for (Name tag or group name)
    group_id: str | None = None
    # More than one group matched the manifest's name: an error naming them all, never a
    # silent pick (rules would go to the wrong group).
    ambiguous: tuple[str, ...] = ()
    rules: tuple[IngressRule, ...] = ()
    # Inbound rules the group may hold, when AWS says (Service Quotas); else the manifest's.
    rule_quota: int | None = None
    # Inbound rules that count against the group's IPv4 rule quota besides the IPv4 FL-port
    # rules in `rules`: other ports and protocols, group references, and referenced prefix
    # lists by their maximum entries (AWS counts IPv4 and IPv6 rules separately).
    other_rules: int = 0
    # allowlist `terraform` only: CIDR -> trust, from flipgitops' allowlist record. The hub's
    # Terraform describes a rule by its IP alone, so without this a trust's old rule could not
    # be told from a stranger's once the trust's IP changed in the manifest.
    recorded_owners: dict[str, str] = Field(default_factory=dict)


class ObservedSecret(Frozen):
    """FLIP_API: which keys it has, hashes of the ones that matter, never a value."""

    exists: bool
    name: str
    readable: bool = True
    malformed: tuple[str, ...] = ()  # e.g. "aes_key is empty", "trust_api_key_hashes ..."
    aes_key_sha256: str | None = None
    internal_key_sha256: str | None = None  # sha256(internal_service_key)
    internal_key_hash: str | None = None  # the internal_service_key_hash value itself
    # Secret era (E2) only: trust name -> sha256 hex the hub accepts.
    trust_api_key_hashes: dict[str, str] | None = None
    # Keys older flipgitops versions wrote into FLIP_API (migrated out once).
    legacy_keys: tuple[str, ...] = ()
    other_keys: tuple[str, ...] = ()  # every other top-level key name
    # Volatile: excluded from fingerprints.
    version_id: str | None = None
    last_changed: str | None = None  # ISO-8601


class ObservedService(Frozen):
    role: HubRole
    name: str
    exists: bool
    image: str | None = None  # of the container named like the service
    tag: str | None = None
    # Secret era: TRUST_NAMES (JSON list) in flip-api's container environment, as written:
    # of the family's newest ACTIVE revision (the next deployment's); None = absent.
    trust_names: tuple[str, ...] | None = None
    trust_names_malformed: bool = False
    stable: bool | None = None  # one PRIMARY deployment, running == desired, rollout done
    # Secret era: flip-api's primary deployment started after the last change of FLIP_API
    # or of its task definition, so it loaded the registry (E2 caches it per process).
    loaded_current: bool | None = None
    task_definition_exists: bool = True
    network: dict[str, tuple[str, ...] | str] = Field(default_factory=dict)
    # Volatile: excluded from fingerprints.
    task_definition_arn: str | None = None
    revision: int | None = None


class ObservedDatabase(Frozen):
    exists: bool
    identifier: str
    status: str | None = None  # volatile; only its class (usable or not) is a decision input
    deletion_protection: bool | None = None
    instance_class: str | None = None
    engine_version: str | None = None
    backup_retention_days: int | None = None
    generation: int | None = None  # RDS tag flipgitops:generation
    arn: str | None = None


class ObservedCognito(Frozen):
    exists: bool
    name: str
    user_pool_id: str | None = None
    mfa: str | None = None  # off | optional | required (lower-cased MfaConfiguration)


class ObservedRegistryEra(Frozen):
    """Which trust registry the live hub keeps (docs/architecture.md §4, FG011), and why we
    think so."""

    era: Registry
    evidence: str  # e.g. "FLIP_API has trust_api_key_hashes"


class AdminTrust(Frozen):
    """One row of FLIP's GET /api/admin/trusts."""

    name: str
    code: str | None = None
    region: str | None = None
    id: str | None = None
    disabled: bool = False
    last_heartbeat: str | None = None


class ObservedAdminApi(Frozen):
    """The hub's own list of trusts, when an admin token is configured (one call)."""

    queried: bool = False
    ok: bool = False
    error: str | None = None
    trusts: tuple[AdminTrust, ...] = ()


class KitSlice(Frozen):
    """One slot's FL participant kit in the kit bucket, as listed (no object is read)."""

    slot: str
    keys: tuple[str, ...] = ()  # relative to the date prefix
    fingerprint: str | None = None  # sha256 over (key, etag, size) of the slice
    # Every ETag is the object's MD5 (a single-part upload), so a host can recompute the
    # fingerprint from its own files (a kit FLIP delivered has no flipgitops record).
    etag_md5: bool = True


class ObservedKitBucket(Frozen):
    """The FL participant kits for `fl_kits.date` and the backend: one prefix listing."""

    bucket: str
    date: str
    backend: FlBackend
    exists: bool = True
    readable: bool = True
    error: str | None = None
    slices: dict[str, KitSlice] = Field(default_factory=dict)  # slot -> slice
    # flower only: certificates/ca.crt's fingerprint (shared by every slot).
    shared_fingerprint: str | None = None


class ObservedHub(Frozen):
    account_id: str | None
    region: str | None
    allowlist: ObservedAllowlist
    secret: ObservedSecret
    services: dict[str, ObservedService]  # keyed by role: flip_api, fl_api, fl_server
    database: ObservedDatabase
    cognito: ObservedCognito
    registry: ObservedRegistryEra
    slot_pool: tuple[str, ...] | None = None  # SSM /flip/fl_kit_slot_names; None = absent
    kits: ObservedKitBucket | None = None
    admin: ObservedAdminApi = ObservedAdminApi()


# --- flipgitops' own state -----------------------------------------------------------------


class LedgerTrust(Frozen):
    """What flipgitops knows of one trust's registration (its own record, in S3).

    On the database registry the hub's table cannot be read from CI, so this is flipgitops'
    memory of what it (or `adopt`) registered; `confirmed_by` says which evidence of the hub
    itself backs it in this observation (filled by the core from admin API / host evidence).
    """

    credentials_generation: int
    database_generation: int = 1
    registry: Registry = "database"
    trust_id: str | None = None
    fl_kit_slot: str | None = None
    fl_kit_slot_number: int | None = None
    api_key_sha256: str | None = None
    internal_key_sha256: str | None = None
    local_credentials_sha256: str | None = None  # over the minted trust-local credentials
    held: bool = True  # flipgitops escrowed the kit (False: adopted without a key)
    registered_at: str | None = None  # volatile
    source: Literal["flipgitops", "adopt", "migrated"] = "flipgitops"


class ObservedLedger(Frozen):
    exists: bool = False
    readable: bool = True
    error: str | None = None
    trusts: dict[str, LedgerTrust] = Field(default_factory=dict)
    internal_service_key_generation: int | None = None
    # Secret era: a registry change flipgitops wrote and has not redeployed flip-api for.
    redeploy_pending: bool = False
    # Delivered FL kits: trust -> fingerprint of the bucket slice that was pushed.
    delivered_kits: dict[str, str] = Field(default_factory=dict)


# --- trust hosts ---------------------------------------------------------------------------


class ObservedKitFile(Frozen):
    """`<flip_root>/trust/.env.<CODE>.<env token>` without its secrets."""

    present: bool = False
    path: str | None = None
    mode: str | None = None  # "0600"
    owner_uid: int | None = None
    values: dict[str, str] = Field(default_factory=dict)  # non-secret keys only
    secret_sha256: dict[str, str] = Field(default_factory=dict)  # secret key -> sha256 hex
    placeholders: tuple[str, ...] = ()  # keys still `<run-make-…>`
    has_sentinel: bool = False
    # Other kit files for the same environment token in the trust dir (another CODE).
    others: tuple[str, ...] = ()


class ObservedRelease(Frozen):
    """The FLIP trust directory flipgitops deployed (or found) at `<flip_root>/trust`."""

    present: bool = False
    ref: str | None = None  # recorded by flipgitops when it deployed
    commit: str | None = None
    tree_sha256: str | None = None  # over the tracked files, as deployed
    intact: bool | None = None  # the files still hash to tree_sha256
    # How ref/commit are known: flipgitops' deploy record ("record"), or the tracked files of
    # that ref found on the host as they are in git ("files": FLIP's own checkout or copy).
    evidence: Literal["record", "files"] | None = None
    compose_files: tuple[str, ...] = ()  # deploy/compose_trust.production*.yml present


class ObservedFlKit(Frozen):
    """The FL participant kit under `<FL_KIT_DIR>/net-1` (never its content)."""

    present: bool = False
    content_sha256: str | None = None  # over relative paths, modes and bytes
    # flipgitops' delivery record on the host (outside the kit tree).
    date: str | None = None
    slot: str | None = None
    backend: str | None = None
    source_fingerprint: str | None = None  # the bucket slice it came from
    delivered_sha256: str | None = None  # content_sha256 right after delivery
    fqsn: str | None = None  # nvflare: startup/fed_client.json client.fqsn
    stray: tuple[str, ...] = ()  # paths under net-1 that are not the slot's
    # The bucket listing's fingerprint recomputed from the host's files at the slot's keys
    # (flipgitops_host flkit.listed_fingerprint); None when the controller passed no keys.
    listed_fingerprint: str | None = None


class ObservedContainer(Frozen):
    service: str
    image: str
    tag: str | None
    state: str  # running | exited | restarting | ...
    config_hash: str | None = None  # label com.docker.compose.config-hash
    started_at: str | None = None  # volatile


class ObservedTrustApi(Frozen):
    """trust-api's own evidence of talking to the hub, from its log (FLIP's lines)."""

    authenticated_as: str | None = None  # "Authenticated to hub as trust 'X' (id)."
    trust_id: str | None = None
    unauthorized: bool = False  # "Unexpected status 401 polling for tasks" since start
    heartbeat_rejected: bool = False  # "Heartbeat rejected by hub: HTTP …"
    last_error: str | None = None  # the last such line, without secrets


class ObservedHost(Frozen):
    """Facts from one trust host. Secrets are only sha256 hex computed on the host."""

    trust: str
    reachable: bool
    reason: str | None = None  # why unreachable / why facts are incomplete
    flip_root_present: bool = False
    docker_present: bool = False
    compose_present: bool = False
    swarm_active: bool | None = None
    network_present: bool | None = None  # deploy_trust-network-<N>
    release: ObservedRelease = ObservedRelease()
    kit_file: ObservedKitFile = ObservedKitFile()
    fl_kit: ObservedFlKit = ObservedFlKit()
    project: str | None = None  # the compose project found (trust<N>)
    containers: tuple[ObservedContainer, ...] = ()
    # `docker compose … config --hash '*'`: service -> hash of the config the kit file gives.
    expected_config: dict[str, str] = Field(default_factory=dict)
    trust_api: ObservedTrustApi = ObservedTrustApi()
    egress_ip: str | None = None  # measured, where the host can measure it
    reaches_hub: bool | None = None  # <domain>:443
    reaches_fl: bool | None = None  # <fl hostname>:<port>

    def container(self, service: str) -> ObservedContainer | None:
        return next((c for c in self.containers if c.service == service), None)

    @property
    def stack_running(self) -> bool:
        return any(c.state == "running" for c in self.containers)


class ObservedFlipRelease(Frozen):
    """`flip.checkout` at `flip.ref`, as resolved on the controller (git)."""

    ref: str
    commit: str | None = None  # None: the ref does not resolve (error says why)
    tree_sha256: str | None = None  # over trust/'s tracked files at that commit
    compose_files: tuple[str, ...] = ()  # trust/deploy/compose_trust.production*.yml
    error: str | None = None


class ObservedState(Frozen):
    """Everything flipgitops saw in one observation."""

    environment: str
    hub: ObservedHub
    ledger: ObservedLedger = ObservedLedger()
    flip_release: ObservedFlipRelease | None = None
    hosts: dict[str, ObservedHost] = Field(default_factory=dict)  # keyed by trust name
    observed_at: str | None = None  # ISO-8601 UTC; volatile
