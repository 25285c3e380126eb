"""The environment manifest (`environments/<env>.yaml`), as DESIGN.md §2 fixes it.

Models are frozen and strict (`extra="forbid"`) so a misspelled key is an error rather than a
silently ignored setting. Field-level rules live here; rules that need the whole document
(uniqueness, prod-only rules, file stem) live in `core/validate.py`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Base for every manifest section: frozen, unknown keys rejected."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AwsConfig(Strict):
    account_id: str = Field(
        pattern=r"^[0-9]{12}$",
        description="12-digit AWS account id; the live STS account must match (FG006).",
    )
    region: str = Field(
        pattern=r"^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", description="AWS region, e.g. eu-west-2."
    )


class StateConfig(Strict):
    bucket: str = Field(description="S3 bucket holding flipgitops locks, journals and records.")
    prefix: str = Field(default="flipgitops", description="Key prefix inside the bucket.")


class Images(Strict):
    registry: str = "ghcr.io/londonaicentre"
    hub_tag: str = Field(
        description="flip-api on the hub; trust-api, imaging-api, data-access-api on trusts."
    )
    fl_tag: str = Field(
        description="FL images: fl-api + fl-server on the hub, fl-client on every trust."
    )


class EcsServices(Strict):
    flip_api: str = "flip-api"
    fl_api: str = "fl-api-net-1"
    fl_server: str = "fl-server-net-1"


class Ecs(Strict):
    cluster: str = "flip-cluster"
    services: EcsServices = EcsServices()


class FlServer(Strict):
    port: int = Field(default=8002, ge=1, le=65535, description="NLB listener for FL gRPC.")
    security_group: str = Field(
        default="flip-fl-server-nlb", description="Group name of the NLB security group."
    )
    allowlist: Literal["aws-api", "terraform"] = Field(
        default="aws-api",
        description=(
            "aws-api: flipgitops owns the trust ingress rules via boto3; "
            "terraform: flipgitops renders tfvars and runs the hub's Terraform."
        ),
    )


class TerraformConfig(Strict):
    dir: str = Field(description="The hub's Terraform root, relative to the manifest file.")
    backend_config: dict[str, str] = Field(
        default_factory=dict, description="`terraform init -backend-config` key/values."
    )


class Database(Strict):
    identifier: str = "flip-database"
    instance_class: str = "db.t3.micro"
    engine_version: str = "17.9"
    deletion_protection: bool = Field(default=True, description="Must be true in prod (FG002).")
    final_snapshot: bool = Field(default=True, description="Must be true in prod (FG002).")
    backup_retention_days: int = Field(default=7, ge=0, le=35)
    generation: int = Field(
        default=1, ge=1, description="Bump to recreate the database (destructive, FG003)."
    )


class Cognito(Strict):
    user_pool: str = "flip-user-pool"
    mfa: Literal["off", "optional", "required"] = "required"


class Hub(Strict):
    domain: str = Field(description="The hub's public domain, e.g. app.flip.aicentre.co.uk.")
    fl_backend: Literal["nvflare", "flower"] = Field(
        default="nvflare", description="Federated learning framework the hub runs."
    )
    images: Images
    ecs: Ecs = Ecs()
    secret: str = Field(default="FLIP_API", description="Secrets Manager secret the hub reads.")
    fl_server: FlServer = FlServer()
    terraform: TerraformConfig | None = Field(
        default=None, description="Required when fl_server.allowlist is terraform."
    )
    database: Database = Database()
    cognito: Cognito = Cognito()


class Host(Strict):
    connection: Literal["ssh", "local"] = Field(
        default="ssh", description="ssh for real hosts; local for this machine (sandbox, tests)."
    )
    address: str = Field(default="localhost", description="DNS name or IP reached over SSH.")
    user: str = "ubuntu"
    ssh_key: str | None = Field(
        default=None,
        description="A reference (env:NAME, ssm:/path, secretsmanager:name#key), never the key.",
    )
    flip_root: str = "/opt/flip"
    docker: str = Field(
        default="docker",
        description=(
            "The container CLI on the host, e.g. 'sudo docker', or the sandbox stand-in "
            "that records the stack instead of running it."
        ),
    )


class TrustServices(Strict):
    orthanc: bool = True
    xnat: bool = False


TrustKind = Literal["on-prem", "aws", "tre"]
TrustState = Literal["active", "paused", "decommissioned"]


class Trust(Strict):
    name: str = Field(description="Unique; the hub's TRUST_NAMES entry.")
    kind: TrustKind = Field(
        description="on-prem and aws trusts need a host; tre trusts get hub-side actions only."
    )
    public_ip: str = Field(
        description="The trust's public egress IP; one /32 NLB ingress rule."
    )
    fl_kit_slot: str = Field(
        description="FL participant kit delivered to <flip_root>/services/<slot>; unique."
    )
    state: TrustState = Field(
        default="active",
        description="paused trusts keep running but are left behind by upgrades; "
        "decommissioned trusts are stopped and removed from the hub.",
    )
    credentials_generation: int = Field(
        default=1, ge=1, description="Bump to rotate this trust's TRUST_API_KEY."
    )
    host: Host | None = Field(
        default=None, description="Omitted for kind tre (hub-side actions only)."
    )
    services: TrustServices = TrustServices()


class Policy(Strict):
    lockstep_fl_images: bool = Field(default=True, description="FG001.")
    max_trust_removals: int = Field(default=1, ge=0, description="FG004 blast radius per apply.")
    immutable_tags: bool = Field(default=True, description="FG005; always on for prod.")


class Manifest(Strict):
    """One environment, as reviewed in git."""

    version: Literal[1] = Field(description="Manifest format version; always 1.")
    environment: str = Field(description="Must equal the file's stem.")
    aws: AwsConfig
    state: StateConfig
    hub: Hub
    trusts: list[Trust] = Field(default_factory=list)
    policy: Policy = Policy()

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    def trust(self, name: str) -> Trust | None:
        return next((t for t in self.trusts if t.name == name), None)
