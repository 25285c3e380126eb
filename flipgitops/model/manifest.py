"""The environment manifest (`environments/<env>.yaml`), as docs/architecture.md §3 fixes it.

Models are frozen and strict: unknown keys are errors, and booleans, numbers and strings are
taken only as what they are (`"no"` is not false, `"1"` is not 1), so a value reads the same
to a reviewer and to flipgitops. Field rules live here; rules over the whole document
(uniqueness, prod rules, file stem, template syntax, path traversal) live in
`core/validate.py`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from flipgitops.model.flip import DEFAULT_RULE_QUOTA, FlBackend, Registry


class Strict(BaseModel):
    """Base for every manifest section: frozen, unknown keys rejected, no type coercion."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class AwsConfig(Strict):
    account_id: StrictStr = Field(
        pattern=r"^[0-9]{12}$",
        description="12-digit AWS account id; the live STS account must match (FG006).",
    )
    region: StrictStr = Field(
        pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", description="AWS region, e.g. eu-west-2."
    )


class StateConfig(Strict):
    bucket: StrictStr = Field(
        description="S3 bucket holding flipgitops' locks, journals, ledger and records."
    )
    prefix: StrictStr = Field(default="flipgitops", description="Key prefix inside the bucket.")


class FlipRelease(Strict):
    checkout: StrictStr = Field(
        description="A git checkout of londonaicentre/FLIP, relative to the manifest file."
    )
    ref: StrictStr = Field(
        description="The git ref (tag, branch or commit) whose trust/ directory hosts run."
    )


class Images(Strict):
    registry: StrictStr = Field(
        default="ghcr.io/londonaicentre", description="Registry and namespace of FLIP's images."
    )
    hub_tag: StrictStr = Field(
        description="flip-api on the hub; trust-api, imaging-api, data-access-api on trusts."
    )
    fl_tag: StrictStr = Field(
        description="FL images: fl-api + fl-server on the hub, fl-client on every trust."
    )


class EcsServices(Strict):
    flip_api: StrictStr = "flip-api"
    fl_api: StrictStr = "fl-api-net-1"
    fl_server: StrictStr = "fl-server-net-1"


class Ecs(Strict):
    cluster: StrictStr = "flip-cluster"
    services: EcsServices = EcsServices()


class FlServer(Strict):
    port: StrictInt = Field(default=8002, ge=1, le=65535, description="FL_SERVER_PORT.")
    hostname: StrictStr | None = Field(
        default=None,
        description="NLB_SUBDOMAIN, the FL endpoint trusts connect to; default fl.<domain>.",
    )
    security_group: StrictStr = Field(
        default="flip-fl-server-nlb",
        description="The NLB security group: its Name tag or its group name (FLIP's module "
        "names the group with a suffix).",
    )
    allowlist: Literal["aws-api", "terraform"] = Field(
        default="aws-api",
        description=(
            "aws-api: flipgitops owns the trust ingress rules via boto3; "
            "terraform: the hub's Terraform writes them from local_trust_public_ips."
        ),
    )
    rule_quota: StrictInt = Field(
        default=DEFAULT_RULE_QUOTA, ge=1, le=1000,
        description="Inbound rules the group may hold (AWS's quota, when AWS does not say).",
    )


class FlKits(Strict):
    bucket: StrictStr = Field(description="AICENTRE_BUCKET_NAME: where FL participant kits are.")
    date: StrictStr = Field(
        pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        description="FLARE_KIT_DATE (nvflare) or FLOWER_KIT_DATE (flower): the kit set in use.",
    )


class TerraformConfig(Strict):
    dir: StrictStr = Field(description="The hub's Terraform root, relative to the manifest file.")
    backend_config: dict[StrictStr, StrictStr] = Field(
        default_factory=dict, description="`terraform init -backend-config` key/values."
    )


class Database(Strict):
    identifier: StrictStr = "flip-database"
    instance_class: StrictStr = "db.t3.micro"
    engine_version: StrictStr = "17.9"
    deletion_protection: StrictBool = Field(
        default=True, description="Must be true in prod (FG002)."
    )
    final_snapshot: StrictBool = Field(default=True, description="Must be true in prod (FG002).")
    backup_retention_days: StrictInt = Field(default=7, ge=0, le=35)
    generation: StrictInt = Field(
        default=1, ge=1, description="Bump to recreate the database (destructive, FG003)."
    )


class Cognito(Strict):
    user_pool: StrictStr = "flip-user-pool"
    mfa: Literal["off", "optional", "required"] = "required"


class Hub(Strict):
    domain: StrictStr = Field(
        description="The hub's public domain; CENTRAL_HUB_API_URL is https://<domain>/api."
    )
    fl_backend: FlBackend = Field(default="nvflare", description="FL framework the hub runs.")
    trust_registry: Registry = Field(
        default="database",
        description="database: FLIP's trust table (register_trust / delete_trust tasks); "
        "secret: older hubs (TRUST_NAMES in flip-api's task definition + hashes in FLIP_API).",
    )
    trust_api_key_header: StrictStr = Field(
        default="Authorization", description="TRUST_API_KEY_HEADER."
    )
    images: Images
    ecs: Ecs = Ecs()
    secret: StrictStr = Field(default="FLIP_API", description="The hub's Secrets Manager secret.")
    fl_server: FlServer = FlServer()
    fl_kits: FlKits
    terraform: TerraformConfig | None = Field(
        default=None, description="Required when fl_server.allowlist is terraform."
    )
    database: Database = Database()
    cognito: Cognito = Cognito()
    internal_service_key_generation: StrictInt = Field(
        default=1, ge=1,
        description="Bump to rotate FLIP_API's internal_service_key (fl-server -> flip-api).",
    )
    admin_token: StrictStr | None = Field(
        default=None,
        description="Optional reference (env:, ssm:, secretsmanager:) to a FLIP admin bearer "
        "token: plan and drift then confirm registrations with GET /api/admin/trusts.",
    )

    @property
    def fl_hostname(self) -> str:
        return self.fl_server.hostname or f"fl.{self.domain}"

    @property
    def api_url(self) -> str:
        """CENTRAL_HUB_API_URL."""
        return f"https://{self.domain}/api"


class Host(Strict):
    connection: Literal["ssh", "local"] = Field(
        default="ssh", description="ssh for real hosts; local for this machine (sandbox, tests)."
    )
    address: StrictStr = Field(default="localhost", description="DNS name or IP (ssh).")
    user: StrictStr = "ubuntu"
    ssh_key: StrictStr | None = Field(
        default=None,
        description="A reference (env:NAME, ssm:/path, secretsmanager:name#key), never the key.",
    )
    become_password: StrictStr | None = Field(
        default=None, description="A reference to the sudo password, when sudo asks for one."
    )
    flip_root: StrictStr = Field(default="/opt/flip", description="FLIP's root on the host.")
    docker: StrictStr = Field(
        default="docker",
        description="The container CLI on the host (the sandbox's stand-in in tests).",
    )


class TrustServices(Strict):
    orthanc: StrictBool = True
    xnat: StrictBool = False


TrustKind = Literal["on-prem", "aws", "tre"]
TrustState = Literal["active", "paused", "decommissioned"]


class Trust(Strict):
    name: StrictStr = Field(description="Unique; the hub's trust name.")
    code: StrictStr = Field(
        description="FLIP trust code (register_trust --code); names the kit file "
        "trust/.env.<CODE>.<env token>."
    )
    region: StrictStr | None = Field(default=None, description="register_trust --region.")
    kind: TrustKind = Field(
        description="on-prem and aws trusts need a host; tre trusts get hub-side actions only."
    )
    public_ip: StrictStr = Field(description="The trust's public egress IP; one /32 NLB rule.")
    fl_kit_slot: StrictStr | None = Field(
        default=None,
        description="Required with the secret registry; with the database registry the hub "
        "assigns it, and a value given here is checked against the assignment.",
    )
    state: TrustState = Field(
        default="active",
        description="paused trusts keep their registration but are left behind by upgrades; "
        "decommissioned trusts are stopped and removed from the hub.",
    )
    credentials_generation: StrictInt = Field(
        default=1, ge=1,
        description="Bump to rotate this trust's keys (FG009 on the database registry).",
    )
    host: Host | None = Field(default=None, description="Omitted for kind tre.")
    services: TrustServices = TrustServices()
    settings: dict[StrictStr, StrictStr] = Field(
        default_factory=dict,
        description="Overrides of the kit file's host-local profile (known non-secret keys).",
    )
    credentials: dict[StrictStr, StrictStr] = Field(
        default_factory=dict,
        description="Trust-local credentials given as references instead of minted ones, e.g. "
        "OMOP_POSTGRES_PASSWORD: ssm:/trust1/omop.",
    )

    @property
    def has_host(self) -> bool:
        """Trusts whose host flipgitops manages; tre trusts are hub-side only."""
        return self.kind != "tre" and self.host is not None

    @property
    def is_present(self) -> bool:
        """Registered and allowlisted on the hub (active or paused)."""
        return self.state in ("active", "paused")


class Policy(Strict):
    lockstep_fl_images: StrictBool = Field(default=True, description="FG001.")
    max_trust_removals: StrictInt = Field(
        default=1, ge=0, description="FG004 blast radius per apply."
    )
    immutable_tags: StrictBool = Field(default=True, description="FG005; always on for prod.")


class Manifest(Strict):
    """One environment, as reviewed in git."""

    version: Literal[1] = Field(description="Manifest format version; always 1.")
    environment: StrictStr = Field(description="Must equal the file's stem.")
    aws: AwsConfig
    state: StateConfig
    flip: FlipRelease
    hub: Hub
    trusts: list[Trust] = Field(default_factory=list)
    policy: Policy = Policy()

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    def trust(self, name: str) -> Trust | None:
        return next((t for t in self.trusts if t.name == name), None)
