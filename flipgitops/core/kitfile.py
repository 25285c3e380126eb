"""PLACEHOLDER until the hosts work lands: FLIP's kit file values (see docs/architecture.md)."""

from __future__ import annotations

from flipgitops.model import flip
from flipgitops.model.manifest import Manifest, Trust


def public_values(manifest: Manifest, trust: Trust, *, slot: str, slot_number: int,
                  trust_id: str) -> dict[str, str]:
    hub = manifest.hub
    values = {
        "TRUST_NAME": trust.name,
        "TRUST_CODE": trust.code,
        "CENTRAL_HUB_API_URL": hub.api_url,
        "TRUST_API_KEY_HEADER": hub.trust_api_key_header,
        "FL_BACKEND": hub.fl_backend,
        flip.kit_date_key(hub.fl_backend): hub.fl_kits.date,
        "DOCKER_TAG": hub.images.hub_tag,
        "DOCKER_REGISTRY": hub.images.registry.rstrip("/") + "/",
        "DOCKER_FL_TAG": hub.images.fl_tag,
        "DOCKER_FL_REGISTRY": hub.images.registry.rstrip("/") + "/",
        "NLB_SUBDOMAIN": hub.fl_hostname,
        "FL_SERVER_PORT": str(hub.fl_server.port),
        "FL_KIT_SLOT": slot,
        "FL_KIT_SLOT_NUMBER": str(slot_number),
        "EXPECTED_TRUST_ID": trust_id,
    }
    if trust.region:
        values["TRUST_REGION"] = trust.region
    return values
