"""FLIP's own conventions, in one place: names, paths, keys and log lines FLIP's files fix.

Everything here is a fact read from `londonaicentre/FLIP` (the file is named beside each
group; `docs/flip-contracts.md` lists them with commits). flipgitops must follow FLIP, so when
FLIP changes a name this module is the only one to edit. Pure data and tiny pure helpers only.
"""

from __future__ import annotations

import re
from typing import Final, Literal

FlBackend = Literal["nvflare", "flower"]
Registry = Literal["database", "secret"]
HubRole = Literal["flip_api", "fl_api", "fl_server"]

# --- hub services and images (ecs_services.tf, ecs_tasks.tf) ------------------------------

HUB_ROLES: Final[tuple[HubRole, ...]] = ("flip_api", "fl_api", "fl_server")
FL_ROLES: Final[tuple[HubRole, ...]] = ("fl_api", "fl_server")
# Which manifest tag (hub.images.<field>) each hub service runs.
ROLE_TAG_FIELD: Final[dict[HubRole, Literal["hub_tag", "fl_tag"]]] = {
    "flip_api": "hub_tag",
    "fl_api": "fl_tag",
    "fl_server": "fl_tag",
}
FLIP_API_LOG_GROUP: Final = "/ecs/flip-api"
# awslogs stream of a one-off task of the flip-api task definition: <prefix>/<container>/<id>.
FLIP_API_LOG_STREAM: Final = "flip-api/flip-api/{task_id}"
HEALTH_PATH: Final = "/api/health"
ADMIN_TRUSTS_PATH: Final = "/api/admin/trusts"
# flip-api config.py@0062d127: "How long since last heartbeat before a trust is considered
# offline" (the admin list's last_heartbeat is judged against it).
HEARTBEAT_TIMEOUT_SECONDS: Final = 30

# FLIP's immutable deploy tags (FLIP#751) and names that float.
RELEASE_TAG_RE: Final = re.compile(
    r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(-[0-9A-Za-z][0-9A-Za-z.-]*)?"
)
SHA_TAG_RE: Final = re.compile(r"sha-[0-9a-f]{7}")
DOCKER_TAG_RE: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
FLOATING_TAGS: Final = frozenset({
    "latest", "prod", "production", "stag", "stage", "staging", "main", "master", "dev",
    "develop", "stable", "edge", "nightly", "release", "current",
})


def is_immutable_tag(tag: str) -> bool:
    """`vX.Y.Z[-pre]` or `sha-<7 hex>`: a name that keeps pointing at the same image."""
    return bool(RELEASE_TAG_RE.fullmatch(tag) or SHA_TAG_RE.fullmatch(tag))


def image_tag(image: str | None) -> str | None:
    """The tag of an image reference: after the last ':' of its last path part (a ':' in
    the registry host is a port); a digest pin is ignored."""
    if not image:
        return None
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else None


def with_tag(image: str, tag: str) -> str:
    """The same repository at another tag (a digest pin is dropped)."""
    head, _, last = image.split("@", 1)[0].rpartition("/")
    repo = last.rsplit(":", 1)[0]
    return f"{head}/{repo}:{tag}" if head else f"{repo}:{tag}"


def image_repository(image: str) -> str:
    """`ghcr.io/londonaicentre/flip-api:v2` -> `ghcr.io/londonaicentre/flip-api`."""
    head, _, last = image.split("@", 1)[0].rpartition("/")
    repo = last.rsplit(":", 1)[0]
    return f"{head}/{repo}" if head else repo


# flipgitops' own rule for trust names (docs/architecture.md §3); a name from live state
# that does not fit is never handed to a FLIP script.
TRUST_NAME_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,62}")
TRUST_CODE_RE: Final = re.compile(r"[A-Z0-9]{2,16}")

# --- hub secret FLIP_API (main.tf) ---------------------------------------------------------

SECRET_AES_KEY: Final = "aes_key"
SECRET_INTERNAL_KEY: Final = "internal_service_key"
SECRET_INTERNAL_KEY_HASH: Final = "internal_service_key_hash"
SECRET_TRUST_HASHES: Final = "trust_api_key_hashes"  # secret era (E2) only
TASK_ENV_TRUST_NAMES: Final = "TRUST_NAMES"  # secret era: flip-api container environment
# Keys older flipgitops versions wrote into FLIP_API; migrated into flipgitops' own state.
LEGACY_SECRET_KEYS: Final = (
    "trust_names",
    "trust_api_key_hashes_previous",
    "flipgitops_credentials_generations",
    "flipgitops_database_generations",
    "flipgitops_redeploy_pending",
)

# --- trust registry, database era (register_trust.py, register-trusts.sh) -----------------

REGISTER_TRUST_MODULE: Final = "flip_api.scripts.register_trust"
DELETE_TRUST_MODULE: Final = "flip_api.scripts.delete_trust"
EPHEMERAL_KIT_PREFIX: Final = "/flip/trust-kits/ephemeral/"
SLOT_POOL_PARAMETER: Final = "/flip/fl_kit_slot_names"
REGISTER_STARTED_BY: Final = "register-trusts"
DELETE_STARTED_BY: Final = "delete-trust"  # delete-trust.sh@05600a0d
# The kit JSON a registration yields (one element per trust).
KIT_KEYS: Final = ("trust_id", "trust_name", "trust_api_key", "trust_internal_service_key",
                   "fl_kit_slot", "fl_kit_slot_number")
DELETE_STATUS_DELETED: Final = "deleted"
DELETE_STATUS_NOT_FOUND: Final = "not_found"


def register_command(name: str, code: str, region: str | None, out_parameter: str) -> list[str]:
    """The command override FLIP's register-trusts.sh gives the one-off flip-api task."""
    cmd = ["uv", "run", "python", "-m", REGISTER_TRUST_MODULE, "--name", name, "--code", code]
    if region:
        cmd += ["--region", region]
    return [*cmd, "--out-ssm-parameter", out_parameter]


def delete_command(name: str) -> list[str]:
    return ["uv", "run", "python", "-m", DELETE_TRUST_MODULE, "--name", name]


# --- the trust kit file (trust/.env.example, scripts/trust_kit_lib.py, env_mode.mk) --------

ENV_TOKENS: Final[dict[str, str]] = {"prod": "production", "stag": "stag",
                                    "lza-prod": "lza-prod", "dev": "development"}
HUB_SHARED_SENTINEL: Final = (
    "# ── Hub-shared (managed by register-trust / sync-trust-kits — do not edit) ──"
)
HUB_SHARED_KEYS: Final = (
    "AES_KEY_BASE64", "CENTRAL_HUB_API_URL", "TRUST_API_KEY_HEADER", "FL_BACKEND",
    "FLOWER_KIT_DATE", "FLARE_KIT_DATE", "DOCKER_TAG", "DOCKER_REGISTRY", "DOCKER_FL_TAG",
    "DOCKER_FL_REGISTRY", "NLB_SUBDOMAIN", "FL_SERVER_PORT",
)
KIT_CREDENTIAL_KEYS: Final = ("TRUST_API_KEY", "TRUST_INTERNAL_SERVICE_KEY", "FL_KIT_SLOT",
                              "FL_KIT_SLOT_NUMBER", "EXPECTED_TRUST_ID")
IDENTITY_KEYS: Final = ("TRUST_NAME", "TRUST_CODE", "TRUST_REGION")
PLACEHOLDER_PREFIX: Final = "<run-make-"
# Non-secret keys of the kit file an operator may set per trust (`trusts[].settings`): FLIP's
# host-local profile and the trust-local non-secret values of trust/.env.example@01292201,
# plus the compose overrides FLIP documents for Ansible-provisioned hosts
# (compose_trust.production.yml@f6e3db11: LOKI_DATA_VOLUME, GRAFANA_DATA_VOLUME,
# OBSERVABILITY_CONFIG_DIR). Hub-shared keys, kit credentials and secrets are never settings.
KIT_FILE_SETTINGS_KEYS: Final = frozenset({
    "OMOP_DB_PORT", "PACS_UI_PORT", "XNAT_PORT", "TRUST_DEBUG_PORT", "IMAGING_DEBUG_PORT",
    "DATA_ACCESS_DEBUG_PORT", "GRAFANA_PORT", "LOKI_PORT", "ORTHANC_STORAGE_DIR",
    "BASE_IMAGES_DOWNLOAD_DIR", "XNAT_DATA_DIR", "OMOP_DATA_DIR", "ORTHANC_USERNAME",
    "OMOP_POSTGRES_USER", "OMOP_POSTGRES_DB", "OMOP_DB_TAG", "DATA_ACCESS_POSTGRES_USER",
    "COHORT_QUERY_THRESHOLD", "XNAT_ADMIN_USER", "XNAT_SERVICE_USER", "DATA_ACCESS_API_URL",
    "IMAGING_API_URL", "TRUST_INTERNAL_SERVICE_KEY_HEADER", "PACS_DICOM_PORT",
    "POLL_INTERVAL_SECONDS", "DATA_ACCESS_API_PORT", "IMAGING_API_PORT", "TRUST_API_PORT",
    "TRUST_LOG_LEVEL", "NUM_AVAILABLE_GPUS", "MEMORY_PER_GPU_IN_GIB", "MIN_CLIENTS",
    "LOKI_DATA_VOLUME", "GRAFANA_DATA_VOLUME", "OBSERVABILITY_CONFIG_DIR",
})


def env_token(environment: str) -> str:
    """The kit-file env token of a manifest environment (`prod` -> `production`)."""
    return ENV_TOKENS.get(environment, environment)


def kit_file_name(code: str, environment: str) -> str:
    return f".env.{code}.{env_token(environment)}"


def slot_number(slot: str) -> int:
    """FLIP's slot number (fl_kit_slots.py): the trailing ``_<digits>``, else 10000."""
    _, sep, tail = slot.rpartition("_")
    return int(tail) if sep and tail.isascii() and tail.isdigit() else 10_000


def compose_project(slot_number: int) -> str:
    """`trust<N>`: trust/Makefile's TRUST_PROJECT, N = FL_KIT_SLOT_NUMBER."""
    return f"trust{slot_number}"


def trust_network(slot_number: int) -> str:
    """trust/Makefile's TRUST_NETWORK_NAME for the project's external default network."""
    return f"deploy_trust-network-{slot_number}"


TRUST_API_SERVICE: Final = "trust-api"
FL_CLIENT_SERVICE: Final = "fl-client-net-1"
COMMON_COMPOSE_FILE: Final = "deploy/compose_trust.production.yml"


def backend_compose_file(backend: FlBackend) -> str:
    return f"deploy/compose_trust.production.{backend}.yml"


GPU_COMPOSE_FILE: Final = "deploy/compose_trust.production.gpu.yml"

# trust-api's own log lines (trust-api task_poller.py).
LOG_AUTHENTICATED: Final = "Authenticated to hub as trust"
LOG_UNAUTHORIZED: Final = "Unexpected status 401 polling for tasks"
LOG_HEARTBEAT_REJECTED: Final = "Heartbeat rejected by hub"

# --- FL participant kits (flip_fl_kit/tasks/s3.yml) -----------------------------------------

FL_KIT_SUBDIR: Final = "fl-kit"  # FL_KIT_DIR = <flip_root>/fl-kit
# flip_trust_dirs/defaults/main.yml@83e67f0e `flip_dir`, .env.example's FL_KIT_DIR root.
DEFAULT_FLIP_ROOT: Final = "/opt/flip"
FL_KIT_OWNER_UID: Final = 1000
NVFLARE_KIT_PREFIX: Final = "fl-flare-participant-kits/{date}/net-1/services/"
FLOWER_KIT_PREFIX: Final = "fl-flower-participant-kits/{date}/net-1/"


def kit_date_key(backend: FlBackend) -> str:
    return "FLOWER_KIT_DATE" if backend == "flower" else "FLARE_KIT_DATE"


def fl_client_image_name(backend: FlBackend) -> str:
    """deploy/fl_backend.mk's DOCKER_FL_CLIENT_NAME."""
    return "flower-supernode" if backend == "flower" else "flare-fl-client"


# --- the NLB allowlist (main.tf: local_trust_fl_server_nlb) ---------------------------------

TERRAFORM_TRUST_RULE_PREFIX: Final = "FL Server/Admin NLB from on-prem Trust"
# FLIP's module rule letting the hub's own NAT IP reach the FL port (`fl_server_ingress`).
FLIP_NAT_RULE_DESCRIPTION: Final = "Allow inbound FL server traffic only from trusted FL client IP"
MANAGED_RULE_PREFIX: Final = "flipgitops:"
DEFAULT_RULE_QUOTA: Final = 60  # inbound rules per security group, AWS's default


def managed_rule_description(trust: str) -> str:
    return f"{MANAGED_RULE_PREFIX}{trust}"


# --- Terraform root inputs (variables.tf) ---------------------------------------------------

TF_ENVIRONMENTS: Final[dict[str, str]] = {"prod": "prod", "lza-prod": "prod"}


def terraform_environment(environment: str) -> str:
    """FLIP's root validates `environment` to prod|stag; everything but prod is stag."""
    return TF_ENVIRONMENTS.get(environment, "stag")
