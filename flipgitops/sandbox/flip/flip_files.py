# ruff: noqa: E501  (FLIP's compose lines are kept whole)
"""The text of the FLIP files the stand-in checkout holds, each following FLIP's file@commit.

Service names, images, variables, compose defaults, volumes and the network are FLIP's, key for
key; FLIP's long explanatory comments are not reproduced (each file names its source instead).
Two releases are modelled, because a host must be able to tell them apart:

- `v2.3.0`: base compose_trust.production.yml@f6e3db11, nvflare overlay @99ce8714 (mounts the
  whole images dir, needs MIN_CLIENTS), flower overlay @fb46e134, gpu overlay @e96ec2a9;
- `v2.4.0`: the same but nvflare overlay @0a13d3f9 (restart/capabilities, the net-1 slice, and
  FL_SITE_PRIVACY_* — new variables that carry a compose default `:-`), and a changed
  observability config (a file a host must receive).

FLIP's index does not order @99ce8714 and @0a13d3f9; @0a13d3f9 names FLIP#851 and FLIP#1204,
the later work, so it is the newer release here. The flower overlay is @fb46e134 in both:
@21c8f163 also requires UPLOADED_FEDERATED_DATA_BUCKET, which no kit template sets.
"""

from __future__ import annotations

from typing import Final

TAG_OLD: Final = "v2.3.0"
TAG_NEW: Final = "v2.4.0"

BASE_COMPOSE: Final = """\
# Stand-in of londonaicentre/FLIP trust/deploy/compose_trust.production.yml@f6e3db11:
# FLIP's services, images, variables, defaults, volumes and network (comments omitted).

services:

  omop-db:
    image: ghcr.io/londonaicentre/omop-db:latest
    restart: always
    ports:
      - "${OMOP_DB_PORT}:5432"
    environment:
      POSTGRES_USER: ${OMOP_POSTGRES_USER}
      POSTGRES_PASSWORD: ${OMOP_POSTGRES_PASSWORD}
      POSTGRES_DB: ${OMOP_POSTGRES_DB}
    volumes:
      - ${OMOP_DATA_DIR:-/opt/flip/omop/db_data}:/var/lib/postgresql/data

  orthanc:
    image: ghcr.io/londonaicentre/orthanc:${DOCKER_TAG}
    restart: always
    ports:
      # - "${PACS_DICOM_PORT}:4242"
      - "${PACS_UI_PORT}:8042"
    volumes:
      - ${ORTHANC_STORAGE_DIR:-/opt/flip/orthanc/orthanc-storage}:/var/lib/orthanc/db
    environment:
      ORTHANC__REGISTERED_USERS: |
          {"${ORTHANC_USERNAME}": "${ORTHANC_PASSWORD}"}
      ORTHANC__DICOM_MODALITIES: |
          {"XNAT": {"AET": "XNAT", "Host": "xnat-web", "Port": "${XNAT_PORT}"}}

  imaging-api:
    image: ghcr.io/londonaicentre/imaging-api:${DOCKER_TAG}
    command: ["uv", "run", "python", "-m", "uvicorn", "imaging_api.main:app", "--host", "0.0.0.0", "--port", "8000"]
    ports:
      - "${IMAGING_API_PORT}:8000"
    environment:
      XNAT_PORT: ${XNAT_PORT}
      XNAT_SERVICE_USER: ${XNAT_SERVICE_USER}
      XNAT_SERVICE_PASSWORD: ${XNAT_SERVICE_PASSWORD}
      AES_KEY_BASE64: ${AES_KEY_BASE64}
      ENV: production
      BASE_IMAGES_DOWNLOAD_DIR: /app/data/images
      LOG_LEVEL: ${TRUST_LOG_LEVEL}
      TRUST_INTERNAL_SERVICE_KEY: ${TRUST_INTERNAL_SERVICE_KEY}
    volumes:
      - ${BASE_IMAGES_DOWNLOAD_DIR}:/app/data/images

  data-access-api:
    image: ghcr.io/londonaicentre/data-access-api:${DOCKER_TAG}
    ports:
      - "${DATA_ACCESS_API_PORT}:8000"
    environment:
      DATA_ACCESS_POSTGRES_USER: ${DATA_ACCESS_POSTGRES_USER}
      DATA_ACCESS_POSTGRES_PASSWORD: ${DATA_ACCESS_POSTGRES_PASSWORD}
      OMOP_POSTGRES_DB: ${OMOP_POSTGRES_DB}
      AES_KEY_BASE64: ${AES_KEY_BASE64}
      ENV: production
      LOG_LEVEL: ${TRUST_LOG_LEVEL}
      TRUST_INTERNAL_SERVICE_KEY: ${TRUST_INTERNAL_SERVICE_KEY}

  trust-api:
    image: ghcr.io/londonaicentre/trust-api:${DOCKER_TAG}
    ports:
      - "${TRUST_API_PORT}:8000"
    environment:
      CENTRAL_HUB_API_URL: ${CENTRAL_HUB_API_URL}
      TRUST_API_KEY_HEADER: ${TRUST_API_KEY_HEADER}
      TRUST_API_KEY: ${TRUST_API_KEY}
      AES_KEY_BASE64: ${AES_KEY_BASE64}
      TRUST_NAME: ${TRUST_NAME}
      POLL_INTERVAL_SECONDS: ${POLL_INTERVAL_SECONDS}
      ENV: production
      LOG_LEVEL: ${TRUST_LOG_LEVEL}
      TRUST_INTERNAL_SERVICE_KEY: ${TRUST_INTERNAL_SERVICE_KEY}

  loki:
    image: grafana/loki:3.4.0
    restart: always
    command: -config.file=/etc/loki/loki-config.yml
    ports:
      - "${LOKI_PORT}:3100"
    volumes:
      - ${OBSERVABILITY_CONFIG_DIR:-/opt/flip/config/observability}/loki/loki-config.yml:/etc/loki/loki-config.yml:ro
      - ${LOKI_DATA_VOLUME:-trust-local-loki-data}:/loki

  alloy:
    image: grafana/alloy:v1.9.0
    restart: always
    command:
      - run
      - --server.http.listen-addr=0.0.0.0:12345
      - /etc/alloy/config.alloy
    volumes:
      - ${OBSERVABILITY_CONFIG_DIR:-/opt/flip/config/observability}/alloy/config.alloy:/etc/alloy/config.alloy:ro
      - /var/run/docker.sock:/var/run/docker.sock:ro
    depends_on:
      - loki

  grafana:
    image: grafana/grafana:11.5.0
    restart: always
    ports:
      - "${GRAFANA_PORT}:3000"
    environment:
      GF_SECURITY_ADMIN_PASSWORD: ${GRAFANA_ADMIN_PASSWORD}
    volumes:
      - ${GRAFANA_DATA_VOLUME:-trust-local-grafana-data}:/var/lib/grafana
      - ${OBSERVABILITY_CONFIG_DIR:-/opt/flip/config/observability}/grafana/provisioning:/etc/grafana/provisioning:ro
    depends_on:
      - loki

networks:
  default:
    external: true
    name: ${TRUST_NETWORK_NAME}

volumes:
  trust-local-loki-data:
  trust-local-grafana-data:
"""

NVFLARE_COMPOSE_OLD: Final = """\
# Stand-in of londonaicentre/FLIP trust/deploy/compose_trust.production.nvflare.yml@99ce8714
# (comments omitted). FL clients get no Central Hub credentials.

services:

  fl-client-net-1:
    image: ghcr.io/londonaicentre/${DOCKER_FL_CLIENT_NAME}:${DOCKER_FL_TAG}
    volumes:
      - ${BASE_IMAGES_DOWNLOAD_DIR:-/opt/flip/data/trust-${FL_KIT_SLOT_NUMBER}}:/app/data/images
      - ${FL_KIT_DIR}/net-1/services/${FL_KIT_SLOT}/local:/app/local
      - ${FL_KIT_DIR}/net-1/services/${FL_KIT_SLOT}/startup:/app/startup
      - ${FL_KIT_DIR}/net-1/services/${FL_KIT_SLOT}/transfer:/app/transfer
    environment:
      - NET_ID=net-1
      - NUM_AVAILABLE_GPUS=${NUM_AVAILABLE_GPUS}
      - MEMORY_PER_GPU_IN_GIB=${MEMORY_PER_GPU_IN_GIB}
      - LOCAL_DEV=false
      - MIN_CLIENTS=${MIN_CLIENTS}
      - IMAGES_DIR=/app/data/images
      - DATA_ACCESS_API_URL=${DATA_ACCESS_API_URL}
      - IMAGING_API_URL=${IMAGING_API_URL}
      - TRUST_INTERNAL_SERVICE_KEY_HEADER=${TRUST_INTERNAL_SERVICE_KEY_HEADER}
      - TRUST_INTERNAL_SERVICE_KEY=${TRUST_INTERNAL_SERVICE_KEY}
    shm_size: '8gb'

networks:
  default:
    external: true
    name: ${TRUST_NETWORK_NAME}
"""

NVFLARE_COMPOSE_NEW: Final = """\
# Stand-in of londonaicentre/FLIP trust/deploy/compose_trust.production.nvflare.yml@0a13d3f9
# (comments omitted). FL clients get no Central Hub credentials.

services:

  fl-client-net-1:
    image: ghcr.io/londonaicentre/${DOCKER_FL_CLIENT_NAME}:${DOCKER_FL_TAG}
    restart: unless-stopped
    security_opt:
      - no-new-privileges:true
    cap_drop:
      - ALL
    cap_add:
      - DAC_OVERRIDE
      - FOWNER
    volumes:
      - ${BASE_IMAGES_DOWNLOAD_DIR:-/opt/flip/data/trust-${FL_KIT_SLOT_NUMBER}}/net-1:/app/data/images/net-1
      - ${FL_KIT_DIR}/net-1/services/${FL_KIT_SLOT}/local:/app/local
      - ${FL_KIT_DIR}/net-1/services/${FL_KIT_SLOT}/startup:/app/startup
      - ${FL_KIT_DIR}/net-1/services/${FL_KIT_SLOT}/transfer:/app/transfer
    environment:
      - NET_ID=net-1
      - NUM_AVAILABLE_GPUS=${NUM_AVAILABLE_GPUS}
      - MEMORY_PER_GPU_IN_GIB=${MEMORY_PER_GPU_IN_GIB}
      - LOCAL_DEV=false
      - IMAGES_DIR=/app/data/images
      - DATA_ACCESS_API_URL=${DATA_ACCESS_API_URL}
      - IMAGING_API_URL=${IMAGING_API_URL}
      - TRUST_INTERNAL_SERVICE_KEY_HEADER=${TRUST_INTERNAL_SERVICE_KEY_HEADER}
      - TRUST_INTERNAL_SERVICE_KEY=${TRUST_INTERNAL_SERVICE_KEY}
      - FL_SITE_PRIVACY_POLICY=${FL_SITE_PRIVACY_POLICY:-}
      - FL_SITE_PRIVACY_PERCENTILE=${FL_SITE_PRIVACY_PERCENTILE:-}
      - FL_SITE_PRIVACY_GAMMA=${FL_SITE_PRIVACY_GAMMA:-}
    shm_size: '8gb'

networks:
  default:
    external: true
    name: ${TRUST_NETWORK_NAME}
"""

FLOWER_COMPOSE: Final = """\
# Stand-in of londonaicentre/FLIP trust/deploy/compose_trust.production.flower.yml@fb46e134
# (comments omitted). FL clients get no Central Hub credentials.

services:

  fl-client-net-1:
    image: ghcr.io/londonaicentre/${DOCKER_FL_CLIENT_NAME}:${DOCKER_FL_TAG}
    volumes:
      - ${BASE_IMAGES_DOWNLOAD_DIR}:/app/data/images
      - ${FL_KIT_DIR}/net-1/certificates:/certs:ro
      - ${FL_KIT_DIR}/net-1/keys:/keys:ro
    environment:
      - NET_ID=net-1
      - SUPERNODE_NAME=${TRUST_NAME}
      - NUM_AVAILABLE_GPUS=${NUM_AVAILABLE_GPUS}
      - MEMORY_PER_GPU_IN_GIB=${MEMORY_PER_GPU_IN_GIB}
      - LOCAL_DEV=false
      - MIN_CLIENTS=${MIN_CLIENTS}
      - IMAGES_DIR=/app/data/images
      - DATA_ACCESS_API_URL=${DATA_ACCESS_API_URL}
      - IMAGING_API_URL=${IMAGING_API_URL}
      - TRUST_INTERNAL_SERVICE_KEY_HEADER=${TRUST_INTERNAL_SERVICE_KEY_HEADER}
      - TRUST_INTERNAL_SERVICE_KEY=${TRUST_INTERNAL_SERVICE_KEY}
    command:
      - --root-certificates
      - /certs/ca.crt
      - --superlink
      - ${NLB_SUBDOMAIN}:${FL_SERVER_PORT}
      - --auth-supernode-private-key
      - /keys/supernode_credentials_${FL_KIT_SLOT_NUMBER}
      - --clientappio-api-address
      - ${SUPERNODE_1_CLIENTAPPIO_API_ADDRESS:-127.0.0.1:9094}
    shm_size: '8gb'

networks:
  default:
    external: true
    name: ${TRUST_NETWORK_NAME}
"""

GPU_COMPOSE: Final = """\
# Stand-in of londonaicentre/FLIP trust/deploy/compose_trust.production.gpu.yml@e96ec2a9.
# trust/Makefile applies it only when NUM_AVAILABLE_GPUS > 0 (GPU_OVERRIDE).

services:

  fl-client-net-1:
    deploy:
      resources:
        reservations:
          devices:
            - driver: nvidia
              count: ${NUM_AVAILABLE_GPUS}
              capabilities: [gpu]
"""

# trust/.env.example@01292201: FLIP's sections, keys, order and placeholders. The section
# headers are FLIP's bytes; the hub-shared one is the sentinel FLIP's kit writer matches.
SENTINEL: Final = "# ── Hub-shared (managed by register-trust / sync-trust-kits — do not edit) ──"
ENV_EXAMPLE: Final = f"""\
# Stand-in of londonaicentre/FLIP trust/.env.example@01292201 (the base trust kit template:
# `make new-trust` prepends TRUST_NAME / TRUST_CODE / TRUST_REGION, `make register-trust`
# fills the managed blocks). FLIP's explanatory comments are omitted.

# ── Host-local profile ────────────────────────────────────────────────────
OMOP_DB_PORT=5434
PACS_UI_PORT=8042
XNAT_PORT=8104
TRUST_DEBUG_PORT=5682
IMAGING_DEBUG_PORT=5681
DATA_ACCESS_DEBUG_PORT=5680
GRAFANA_PORT=3000
LOKI_PORT=3100

ORTHANC_STORAGE_DIR=./orthanc/orthanc-storage-trust1
BASE_IMAGES_DOWNLOAD_DIR=./data/trust
XNAT_DATA_DIR=./xnat-data
FL_KIT_DIR=/opt/flip/fl-kit
AICENTRE_BUCKET_NAME=flipdev-aicentre
#OMOP_DATA_DIR=./omop-db/volumes/Trust_1/db_data

# ── Trust-local credentials ──────────────────────────────────────────────

ORTHANC_USERNAME=admin
ORTHANC_PASSWORD=admin

OMOP_POSTGRES_USER=postgres
OMOP_POSTGRES_PASSWORD=omop
OMOP_POSTGRES_DB=trustomopdb
OMOP_DB_TAG=latest

DATA_ACCESS_POSTGRES_USER=data_analyst_reader
DATA_ACCESS_POSTGRES_PASSWORD=change_me_analyst_secure_password

COHORT_QUERY_THRESHOLD=10

XNAT_ADMIN_USER=admin
XNAT_ADMIN_INITIAL_PASSWORD=admin
XNAT_ADMIN_PASSWORD=admin
XNAT_SERVICE_USER=flipServiceAccount
XNAT_SERVICE_PASSWORD=flip
XNAT_DATASOURCE_PASSWORD=<run-make-generate-xnat-credentials>
XNAT_DATASOURCE_ADMIN_PASSWORD=<run-make-generate-xnat-credentials>
XNAT_ACTIVEMQ_PASSWORD=<run-make-generate-xnat-credentials>

DATA_ACCESS_API_URL=http://data-access-api:8000
IMAGING_API_URL=http://imaging-api:8000
TRUST_INTERNAL_SERVICE_KEY_HEADER=X-Trust-Internal-Service-Key

GRAFANA_ADMIN_PASSWORD=admin

PACS_DICOM_PORT=4242

POLL_INTERVAL_SECONDS=5

DATA_ACCESS_API_PORT=8010
IMAGING_API_PORT=8001
TRUST_API_PORT=8020

TRUST_LOG_LEVEL=DEBUG

NUM_AVAILABLE_GPUS=1
MEMORY_PER_GPU_IN_GIB=7
MIN_CLIENTS=1

{SENTINEL}
AES_KEY_BASE64=<run-make-register-trust>
CENTRAL_HUB_API_URL=<run-make-register-trust>
TRUST_API_KEY_HEADER=<run-make-register-trust>
FL_BACKEND=<run-make-register-trust>
FLOWER_KIT_DATE=<run-make-register-trust>
FLARE_KIT_DATE=<run-make-register-trust>
DOCKER_TAG=<run-make-register-trust>
DOCKER_REGISTRY=<run-make-register-trust>
DOCKER_FL_TAG=<run-make-register-trust>
DOCKER_FL_REGISTRY=<run-make-register-trust>
NLB_SUBDOMAIN=<run-make-register-trust>
FL_SERVER_PORT=<run-make-register-trust>

# ── Kit credentials (managed) ─────────────────────────────────────────────
TRUST_API_KEY=<run-make-register-trust>
TRUST_INTERNAL_SERVICE_KEY=<run-make-register-trust>
FL_KIT_SLOT=<run-make-register-trust>
FL_KIT_SLOT_NUMBER=<run-make-register-trust>
EXPECTED_TRUST_ID=<run-make-register-trust>
"""

# trust/.gitignore@07d48b29, the lines that matter to a trust host: the live kits
# (`.env.*`; the tracked .env.example predates the rule), logs and data dirs.
TRUST_GITIGNORE: Final = """\
# Stand-in of londonaicentre/FLIP trust/.gitignore@07d48b29 (the trust-host lines).
*.log
*-data/
orthanc/orthanc-storage-*
.env.*
data/
"""

TRUST_MAKEFILE: Final = """\
# Stand-in placeholder for londonaicentre/FLIP trust/Makefile@0046dc28 (not reproduced).
# FLIP's `make up-trust KIT=<CODE> PROD=true` runs, from trust/:
#
#   TRUST_NETWORK_NAME=deploy_trust-network-$(FL_KIT_SLOT_NUMBER) \\
#   TRUST_NUMBER=$(FL_KIT_SLOT_NUMBER) TRUST_NAME="$(TRUST_NAME)" DEBUG= \\
#     docker compose --env-file .env.<CODE>.production --project-directory . \\
#       -f deploy/compose_trust.production.yml \\
#       -f deploy/compose_trust.production.$(FL_BACKEND).yml \\
#       [-f deploy/compose_trust.production.gpu.yml] [-f deploy/compose_trust-1_override.yml] \\
#       -p trust$(FL_KIT_SLOT_NUMBER) up -d --pull always
#
# after create-networks (docker network create --driver overlay --attachable
# deploy_trust-network-N, which needs `docker swarm init`). See FLIP's file for the rest.
"""

OBSERVABILITY_OLD: Final = {
    "alloy/config.alloy": "// Stand-in of FLIP trust/observability/alloy/config.alloy "
                          "(placeholder)\n// release v2.3.0\n",
    "loki/loki-config.yml": "# Stand-in of FLIP trust/observability/loki/loki-config.yml "
                            "(placeholder)\nauth_enabled: false\n",
    "grafana/provisioning/datasources/loki.yml":
        "# Stand-in of FLIP's Grafana Loki datasource (placeholder)\napiVersion: 1\n",
    "grafana/provisioning/dashboards/dashboards.yml":
        "# Stand-in of FLIP's Grafana dashboard provider (placeholder)\napiVersion: 1\n",
    "grafana/provisioning/dashboards/trust-apis.json": '{"title": "Trust APIs (stand-in)"}\n',
}
OBSERVABILITY_NEW: Final = {
    **OBSERVABILITY_OLD,
    "alloy/config.alloy": "// Stand-in of FLIP trust/observability/alloy/config.alloy "
                          "(placeholder)\n// release v2.4.0: also ships the fl-client logs\n",
}

# deploy/fl_backend.mk@2941e84d (outside trust/: FLIP's trust/Makefile includes it as
# ../deploy/fl_backend.mk).
FL_BACKEND_MK: Final = """\
# Stand-in of londonaicentre/FLIP deploy/fl_backend.mk@2941e84d.
FL_BACKEND ?= nvflare
VALID_FL_BACKENDS := flower nvflare
ifeq (,$(filter $(FL_BACKEND),$(VALID_FL_BACKENDS)))
$(error Invalid FL_BACKEND '$(FL_BACKEND)'. Must be one of: $(VALID_FL_BACKENDS))
endif
ifeq ($(FL_BACKEND),nvflare)
DOCKER_FL_API_NAME    := flare-fl-api
DOCKER_FL_SERVER_NAME := flare-fl-server
DOCKER_FL_CLIENT_NAME := flare-fl-client
FL_PROVISIONED_DIR    := fl-services/nvflare/provision/workspace-dev
FL_JOBS_DIR           := jobs
else
DOCKER_FL_API_NAME    := flower-fl-api
DOCKER_FL_SERVER_NAME := flower-superlink
DOCKER_FL_CLIENT_NAME := flower-supernode
FL_PROVISIONED_DIR    := fl-services/flower/provision/creds
FL_JOBS_DIR           := jobs
endif
DOCKER_FL_REGISTRY ?= $(DOCKER_REGISTRY)
export DOCKER_FL_API_NAME DOCKER_FL_SERVER_NAME DOCKER_FL_CLIENT_NAME FL_PROVISIONED_DIR FL_JOBS_DIR DOCKER_FL_REGISTRY
"""


def readme(tag: str) -> str:
    return (f"# FLIP (stand-in checkout, {tag})\n\nA git repository shaped like "
            "londonaicentre/FLIP for flipgitops' sandbox. Only `trust/` goes to trust hosts.\n")


FLIP_API_README: Final = "# flip-api (stand-in)\n\nThe hub API lives here in FLIP; hosts never get it.\n"
FLIP_API_INIT: Final = '"""flip_api (stand-in placeholder; hub side, never deployed to a trust)."""\n'
ROOT_MAKEFILE: Final = ("# Stand-in placeholder for londonaicentre/FLIP Makefile@07d48b29 "
                        "(hub-side targets: register-trust, sync-trust-kit, up-onprem-trust…).\n")
