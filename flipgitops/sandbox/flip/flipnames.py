"""FLIP's names and texts as the stand-in hub plays them, copied from FLIP's own files.

Deliberately a second copy, independent of `flipgitops.model.flip`: if flipgitops got a FLIP
name wrong, a shared constant would make the stand-in agree with the mistake. Every group
names the FLIP file (repository `londonaicentre/FLIP`) and the commit it was read at.
"""

from __future__ import annotations

import re
from typing import Final, Literal

Era = Literal["database", "secret"]

# --- flip-api/src/flip_api/scripts/register_trust.py@00e1b6b0 -----------------------------
REGISTER_MODULE: Final = "flip_api.scripts.register_trust"
HUB_SHARED_ENV_KEYS: Final = (
    "AES_KEY_BASE64", "CENTRAL_HUB_API_URL", "TRUST_API_KEY_HEADER", "FL_BACKEND",
    "FLOWER_KIT_DATE", "FLARE_KIT_DATE", "DOCKER_TAG", "DOCKER_REGISTRY", "DOCKER_FL_TAG",
    "DOCKER_FL_REGISTRY", "NLB_SUBDOMAIN", "FL_SERVER_PORT",
)
LOG_ALREADY_REGISTERED: Final = "Trust %r already registered — emitting hub-shared block only."
LOG_REGISTERED: Final = "Registered trust %r (id=%s) with kit slot %r."
LOG_REQUIRE_EXISTING: Final = (
    "Trust %r has not been registered yet. Run 'make register-trusts' first. "
    "Refusing to mint credentials that would be discarded by sync-trust-kits."
)
LOG_REGISTER_FAILED: Final = "Failed to register trust %r: %s"
LOG_SSM_FAILED: Final = "Failed to write kit to SSM parameter %r: %s"
SSM_KIT_DESCRIPTION: Final = (
    "Ephemeral trust-kit handoff; deleted by register-trusts.sh after read."
)

# --- trusts_services/services/register_trust.py@160f4bf2 (validation order and texts) ----
ERR_EMPTY_NAME: Final = "Trust name is required."
ERR_EMPTY_CODE: Final = "Trust code is required."
ERR_DUPLICATE: Final = "A trust named {name!r} already exists."
ERR_NO_SLOT: Final = "No FL kit slots available. Pre-provision more FL kits and try again."

# --- flip-api/src/flip_api/scripts/delete_trust.py@3c9a08e0 -------------------------------
DELETE_MODULE: Final = "flip_api.scripts.delete_trust"
# (model, column) pairs it bulk-deletes, keyed by __tablename__ in the status JSON.
DEPENDENT_TABLES: Final = (
    "fl_job_trust", "fl_metrics", "fl_logs", "model_trust_intersect",
    "project_trust_intersect", "query_result", "trust_task", "xnat_project_status",
)
LOG_NOT_FOUND: Final = "Trust %r not found — nothing to delete."
LOG_DELETED: Final = "Hard-deleted trust %r (id=%s) — freed FL kit slot %r, dependent rows: %s."

# --- flip-api/src/flip_api/db/seed/fl_kit_slots.py@315baf08 -------------------------------
SLOT_POOL_PARAMETER: Final = "/flip/fl_kit_slot_names"
SLOT_NUMBER_RE: Final = re.compile(r"_(\d+)$")
NON_NUMERIC_SLOT_NUMBER: Final = 10_000
LOG_SEEDED_SLOTS: Final = "Seeded fl_kit_slot pool ({n} slots configured)."


def slot_number(slot_name: str) -> int:
    """`Trust_007` -> 7, `Trust_K8s` -> 10000 (fl_kit_slots.py@315baf08)."""
    match = SLOT_NUMBER_RE.search(slot_name)
    return int(match.group(1)) if match else NON_NUMERIC_SLOT_NUMBER


# --- ecs.tf@1f564805, ecs_tasks.tf@067c329c, register-trusts.sh@03bb6813 ------------------
FLIP_API_CONTAINER: Final = "flip-api"
FLIP_API_FAMILY: Final = "flip-api"
FLIP_API_LOG_GROUP: Final = "/ecs/flip-api"
FLIP_API_STREAM_PREFIX: Final = "flip-api"
API_CONTAINER_PORT: Final = 8000  # locals.tf@01328ab0 api_container_port

# --- auth/access_manager.py@3ba224eb, main.py@00e1b6b0, trust_tasks.py@160f4bf2 -----------
DETAIL_KEY_MISSING: Final = "Not authenticated: API key is missing."
DETAIL_KEY_INVALID: Final = "Invalid API Key."
HEALTH_BODY: Final = {"status": "ok", "message": "flip is running"}
ROOT_BODY: Final = {"message": "Welcome to flip"}
HEARTBEAT_MESSAGE: Final = "Heartbeat recorded"
PENDING_TASKS_LIMIT: Final = 50
# trusts_services/admin_get_trusts.py@812a7ed3
DETAIL_ADMIN_REQUIRED: Final = "Admin permission required to list trusts."

# --- deploy/fl_backend.mk@2941e84d, ecs_tasks.tf@067c329c, compose_trust.production*.yml --
FL_HUB_IMAGES: Final = {
    "nvflare": {"fl_api": "flare-fl-api", "fl_server": "flare-fl-server"},
    "flower": {"fl_api": "flower-fl-api", "fl_server": "flower-superlink"},
}
FL_CLIENT_IMAGES: Final = {"nvflare": "flare-fl-client", "flower": "flower-supernode"}
TRUST_IMAGES: Final = ("trust-api", "imaging-api", "data-access-api", "orthanc")
OMOP_IMAGE: Final = ("omop-db", "latest")

# --- main.tf@01328ab0 / @65f052ba: the FLIP_API secret and the NLB module -----------------
SECRET_NAME: Final = "FLIP_API"
SECRET_TRUST_HASHES: Final = "trust_api_key_hashes"  # E2 only (main.tf@01328ab0)
NLB_NAME: Final = "flip-fl-server-nlb"
NLB_INGRESS_DESCRIPTION: Final = "Allow inbound FL server traffic only from trusted FL client IP"
NLB_EGRESS_DESCRIPTION: Final = "Allow NLB traffic and health checks to FL server targets"
TERRAFORM_TRUST_RULE: Final = "FL Server/Admin NLB from on-prem Trust ({ip})"

# --- the FL participant kits (Makefile@07d48b29 upload, flip_fl_kit/tasks/s3.yml@83e67f0e) -
NVFLARE_KIT_ROOT: Final = "fl-flare-participant-kits"
FLOWER_KIT_ROOT: Final = "fl-flower-participant-kits"
