"""What is live: a frozen snapshot of the hub in AWS and of every trust host.

Produced only by adapters, consumed by the pure core. It never holds a secret value: keys
read from the hub secret or a host are reduced to sha256 hex before they reach this model,
and renderers shorten those to ``sha256:<12 hex>``.

``exists=False`` means "looked and it is not there"; a host with ``reachable=False`` is
*unknown* — the core must never treat it as in sync.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
        return d.split(":", 1)[1] if d.startswith("flipgitops:") else None


class ObservedAllowlist(Frozen):
    exists: bool
    group_name: str
    group_id: str | None = None
    rules: tuple[IngressRule, ...] = ()
    # allowlist `terraform` only: CIDR -> trust, from flipgitops' allowlist record. The hub's
    # Terraform describes a rule by its IP alone, so without this a trust's old rule could not
    # be told from a stranger's once the trust's IP changed in the manifest.
    recorded_owners: dict[str, str] = Field(default_factory=dict)


class ObservedSecret(Frozen):
    """The hub secret's trust registry. Other keys appear only as present + short hash."""

    exists: bool
    name: str
    version_id: str | None = None
    trust_names: tuple[str, ...] = ()
    trust_api_key_hashes: dict[str, str] = Field(default_factory=dict)
    # During a rotation the hub accepts both keys: the previous hash lives here until the
    # host has the new key (key `trust_api_key_hashes_previous` in the secret).
    previous_key_hashes: dict[str, str] = Field(default_factory=dict)
    # Which credentials generation each trust's current hash belongs to (key
    # `flipgitops_credentials_generations` in the secret), written with the hash atomically.
    credentials_generations: dict[str, int] = Field(default_factory=dict)
    # Which database generation each trust's current key was minted for (key
    # `flipgitops_database_generations`; absent means 1). A trust registered before the
    # database was recreated must be re-registered with a new key (DESIGN §5.6).
    database_generations: dict[str, int] = Field(default_factory=dict)
    # `flipgitops_redeploy_pending`: written with every registry change and cleared only
    # after flip-api was redeployed, so a crash in between is visible to the next run.
    redeploy_pending: bool = False
    aes_key_sha256: str | None = None
    # Every other top-level key: name -> "sha256:<12 hex>" (or "present" for non-strings).
    other_keys: dict[str, str] = Field(default_factory=dict)


    def database_generation(self, name: str) -> int:
        """The database generation ``name``'s key belongs to (1 when never recorded)."""
        return self.database_generations.get(name, 1)


class ObservedService(Frozen):
    role: str  # flip_api | fl_api | fl_server
    name: str
    exists: bool
    task_definition_arn: str | None = None
    image: str | None = None
    tag: str | None = None


class ObservedDatabase(Frozen):
    exists: bool
    identifier: str
    status: str | None = None
    deletion_protection: bool | None = None
    instance_class: str | None = None
    engine_version: str | None = None
    backup_retention_days: int | None = None
    generation: int | None = None
    arn: str | None = None


class ObservedCognito(Frozen):
    exists: bool
    name: str
    user_pool_id: str | None = None
    mfa: str | None = None  # off | optional | required (lower-cased MfaConfiguration)


class ObservedHub(Frozen):
    account_id: str | None
    region: str | None
    allowlist: ObservedAllowlist
    secret: ObservedSecret
    services: dict[str, ObservedService]  # keyed by role: flip_api, fl_api, fl_server
    database: ObservedDatabase
    cognito: ObservedCognito


class ObservedContainer(Frozen):
    service: str
    image: str
    tag: str | None
    state: str


class ObservedHost(Frozen):
    """Facts from one trust host. Secrets are only sha256 hex computed on the host."""

    trust: str
    reachable: bool
    reason: str | None = None  # why unreachable / why facts are incomplete
    flip_root_present: bool = False
    docker_present: bool = False
    kit_present: bool = False
    env_file_present: bool = False
    env_file_mode: str | None = None  # e.g. "0600"
    trust_api_key_sha256: str | None = None
    aes_key_sha256: str | None = None
    trust_name: str | None = None
    hub_url: str | None = None
    docker_tag: str | None = None
    docker_fl_tag: str | None = None
    containers: tuple[ObservedContainer, ...] = ()
    polling_ok: bool | None = None

    @property
    def stack_running(self) -> bool:
        return any(c.state == "running" for c in self.containers)

    def container_tag(self, service: str) -> str | None:
        return next((c.tag for c in self.containers if c.service == service), None)


class ObservedState(Frozen):
    """Everything flipgitops saw in one observation."""

    environment: str
    hub: ObservedHub
    hosts: dict[str, ObservedHost] = Field(default_factory=dict)  # keyed by trust name
    observed_at: str | None = None  # ISO-8601 UTC; excluded from fingerprints
