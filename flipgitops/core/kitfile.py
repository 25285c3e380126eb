"""FLIP's trust kit file `<flip_root>/trust/.env.<CODE>.<env token>`, rendered and parsed.

The layout is FLIP's own (trust/.env.example@01292201 with scripts/new_trust.py@17ae2fae's
identity block in front): the trust identity, the host-local profile, the trust-local
credentials, the hub-shared block under FLIP's sentinel line (byte for byte) and the kit
credentials. Values are written raw, `KEY=value`, as scripts/trust_kit_lib.py writes them, so
FLIP's Makefile (`-include`) and docker compose (`--env-file`) read the same thing.

Host-local defaults follow FLIP's EC2/on-prem layout (`/opt/flip/...` in
compose_trust.production.yml's defaults, flip_trust_dirs, site.yml), rebased on the host's
`flip_root`; `trust.settings` overrides them (only keys in `SETTINGS_KEYS`).

Pure: no I/O. `parse()` is the host module's own reader, so the writer on the host and the
facts module read a kit file the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from pydantic import SecretStr

from flipgitops.model import flip
from flipgitops.model.flip import (
    FL_KIT_SUBDIR,
    HUB_SHARED_KEYS,
    HUB_SHARED_SENTINEL,
    IDENTITY_KEYS,
    KIT_CREDENTIAL_KEYS,
    PLACEHOLDER_PREFIX,
    kit_date_key,
)
from flipgitops.model.kit import LOCAL_CREDENTIAL_KEYS, SECRET_KIT_KEYS, LocalCredentials, TrustKit
from flipgitops.model.manifest import Manifest, Trust
from flipgitops.reconcilers.ansible.flipgitops_host import kitfile as host_kitfile

# Section headers of trust/.env.example@01292201 and new_trust.py@17ae2fae (not sentinels:
# FLIP's writer ignores them; they are kept so a FLIP operator reads a familiar file).
IDENTITY_HEADER = "# ── Trust identity (sent to the hub by `make register-trust`) ──"
HOST_LOCAL_HEADER = (
    "# ── Host-local profile ────────────────────────────────────────────────────"
)
TRUST_LOCAL_HEADER = (
    "# ── Trust-local credentials ──────────────────────────────────────────────"
)
KIT_CREDENTIALS_HEADER = (
    "# ── Kit credentials (managed) ─────────────────────────────────────────────"
)
MANAGED_NOTE = "# Written by flipgitops from the environment manifest; edits are reverted."

# FLIP's host-local profile keys in .env.example's order. `{root}` is the host's flip_root,
# `{n}` FL_KIT_SLOT_NUMBER. OMOP_DATA_DIR is commented in the template (compose defaults it
# to /opt/flip/omop/db_data); the observability keys come from the on-prem prod template
# (.env.Trust_2.production.example@21c8f163), pointed at the bind dirs flip_trust_dirs
# makes when flip_observability_volume_dirs is on (compose_trust.production.yml@06a6874a's
# defaults).
_HOST_LOCAL: tuple[tuple[str, str], ...] = (
    ("OMOP_DB_PORT", "5434"),
    ("PACS_UI_PORT", "8042"),
    ("XNAT_PORT", "8104"),
    ("TRUST_DEBUG_PORT", "5682"),
    ("IMAGING_DEBUG_PORT", "5681"),
    ("DATA_ACCESS_DEBUG_PORT", "5680"),
    ("GRAFANA_PORT", "3000"),
    ("LOKI_PORT", "3100"),
    ("ORTHANC_STORAGE_DIR", "{root}/orthanc/orthanc-storage"),
    ("BASE_IMAGES_DOWNLOAD_DIR", "{root}/data/trust-{n}"),
    ("XNAT_DATA_DIR", "{root}/xnat"),
    ("FL_KIT_DIR", "{root}/" + FL_KIT_SUBDIR),
    ("AICENTRE_BUCKET_NAME", "{bucket}"),
    ("OMOP_DATA_DIR", "{root}/omop/db_data"),
    ("OBSERVABILITY_CONFIG_DIR", "{root}/config/observability"),
    ("LOKI_DATA_VOLUME", "{root}/volumes/loki"),
    ("GRAFANA_DATA_VOLUME", "{root}/volumes/grafana"),
)

# The trust-local section in .env.example's order; None marks a credential flipgitops
# mints (model.kit.LOCAL_CREDENTIAL_KEYS) instead of FLIP's dev default.
_TRUST_LOCAL: tuple[tuple[str, str | None], ...] = (
    ("ORTHANC_USERNAME", "admin"),
    ("ORTHANC_PASSWORD", None),
    ("OMOP_POSTGRES_USER", "postgres"),
    ("OMOP_POSTGRES_PASSWORD", None),
    ("OMOP_POSTGRES_DB", "trustomopdb"),
    ("OMOP_DB_TAG", "latest"),
    ("DATA_ACCESS_POSTGRES_USER", "data_analyst_reader"),
    ("DATA_ACCESS_POSTGRES_PASSWORD", None),
    ("COHORT_QUERY_THRESHOLD", "10"),
    ("XNAT_ADMIN_USER", "admin"),
    ("XNAT_ADMIN_INITIAL_PASSWORD", None),
    ("XNAT_ADMIN_PASSWORD", None),
    ("XNAT_SERVICE_USER", "flipServiceAccount"),
    ("XNAT_SERVICE_PASSWORD", None),
    ("XNAT_DATASOURCE_PASSWORD", None),
    ("XNAT_DATASOURCE_ADMIN_PASSWORD", None),
    ("XNAT_ACTIVEMQ_PASSWORD", None),
    ("DATA_ACCESS_API_URL", "http://data-access-api:8000"),
    ("IMAGING_API_URL", "http://imaging-api:8000"),
    ("TRUST_INTERNAL_SERVICE_KEY_HEADER", "X-Trust-Internal-Service-Key"),
    ("GRAFANA_ADMIN_PASSWORD", None),
    ("PACS_DICOM_PORT", "4242"),
    ("POLL_INTERVAL_SECONDS", "5"),
    ("DATA_ACCESS_API_PORT", "8010"),
    ("IMAGING_API_PORT", "8001"),
    ("TRUST_API_PORT", "8020"),
    ("TRUST_LOG_LEVEL", "DEBUG"),
    ("NUM_AVAILABLE_GPUS", "1"),
    ("MEMORY_PER_GPU_IN_GIB", "7"),
    ("MIN_CLIENTS", "1"),
)

HOST_LOCAL_KEYS: tuple[str, ...] = tuple(k for k, _ in _HOST_LOCAL)
TRUST_LOCAL_KEYS: tuple[str, ...] = tuple(k for k, _ in _TRUST_LOCAL)
# What `trust.settings` may override (model/flip.py keeps the list; FL_KIT_DIR and
# AICENTRE_BUCKET_NAME are derived from flip_root and fl_kits, never settings).
SETTINGS_KEYS: frozenset[str] = flip.KIT_FILE_SETTINGS_KEYS
# Every key the file sets, in order (TRUST_REGION only when the trust has a region).
ALL_KEYS: tuple[str, ...] = (
    *IDENTITY_KEYS, *HOST_LOCAL_KEYS, *TRUST_LOCAL_KEYS, *HUB_SHARED_KEYS, *KIT_CREDENTIAL_KEYS
)

assert set(LOCAL_CREDENTIAL_KEYS) == {k for k, v in _TRUST_LOCAL if v is None}
assert not set(SETTINGS_KEYS) & SECRET_KIT_KEYS
assert set(SETTINGS_KEYS) <= set(HOST_LOCAL_KEYS) | set(TRUST_LOCAL_KEYS)

# Characters that FLIP's readers would not keep as written: Make's `-include` treats `#` as a
# comment and `$` as a reference, compose interpolates `$` and strips quotes and whitespace.
_UNSAFE_CHARS = frozenset("\n\r\x00#$")


class KitFileError(ValueError):
    """A value cannot be written into FLIP's kit file (the message names the key only)."""


@dataclass(frozen=True)
class ParsedKitFile:
    """A kit file as FLIP's readers see it. ``values`` holds every key (secrets too, so it
    stays in memory: callers reduce secrets to hashes); the last assignment wins."""

    values: dict[str, str] = field(default_factory=dict, repr=False)
    keys: tuple[str, ...] = ()  # in file order, once each
    placeholders: tuple[str, ...] = ()  # keys whose value is still `<run-make-…>`
    has_sentinel: bool = False

    def public(self) -> dict[str, str]:
        """The non-secret values (what facts may carry)."""
        return {k: v for k, v in self.values.items() if k not in SECRET_KIT_KEYS}


def parse(text: str) -> ParsedKitFile:
    """Read a kit file: `KEY=value` lines (an `export ` prefix allowed), comments ignored.
    The rules are the host module's (flipgitops_host/kitfile.py), which the
    hosts must carry themselves: one reader, so the controller and the hosts cannot disagree
    about what a kit file says."""
    values, order, placeholders, sentinel = host_kitfile.parse(
        text, HUB_SHARED_SENTINEL, PLACEHOLDER_PREFIX)
    return ParsedKitFile(values=values, keys=tuple(order), placeholders=tuple(placeholders),
                         has_sentinel=sentinel)


def host_profile(manifest: Manifest, trust: Trust, *, slot_number: int | None) -> dict[str, str]:
    """The host-local profile with `trust.settings` applied. Without a slot number
    BASE_IMAGES_DOWNLOAD_DIR is left out (it names the slot's data dir)."""
    root = _flip_root(trust)
    out: dict[str, str] = {}
    for key, template in _HOST_LOCAL:
        if "{n}" in template and slot_number is None:
            continue
        out[key] = template.format(root=root, n=slot_number, bucket=manifest.hub.fl_kits.bucket)
    for key, value in trust.settings.items():
        if key in HOST_LOCAL_KEYS:
            out[key] = value
    return {k: out[k] for k in HOST_LOCAL_KEYS if k in out}


def public_values(
    manifest: Manifest, trust: Trust, *, slot: str, slot_number: int, trust_id: str
) -> dict[str, str]:
    """Every non-secret key of the kit file with its value, in the file's order."""
    return {k: v for _, rows in _sections(manifest, trust, slot, slot_number, trust_id)
            for k, v in rows if isinstance(v, str)}


def render(
    manifest: Manifest,
    trust: Trust,
    *,
    kit: TrustKit,
    local: LocalCredentials,
    aes_key: SecretStr,
) -> str:
    """The whole kit file (secrets included, raw): only for the host write, in memory."""
    if kit.fl_kit_slot is None or kit.fl_kit_slot_number is None:
        raise KitFileError(f"the kit of {trust.name} has no FL kit slot (fl_kit_slot / "
                           "fl_kit_slot_number): the hub has not assigned one")
    if not kit.has_credentials:
        raise KitFileError(f"the kit of {trust.name} holds no trust API key: it was "
                           "registered without flipgitops keeping the keys")
    missing = [k for k in LOCAL_CREDENTIAL_KEYS if k not in local.values]
    if missing:
        raise KitFileError(f"trust-local credentials of {trust.name} lack {', '.join(missing)}")
    assert kit.trust_api_key is not None and kit.trust_internal_service_key is not None
    secrets: dict[str, SecretStr] = {
        **local.values,
        "AES_KEY_BASE64": aes_key,
        "TRUST_API_KEY": kit.trust_api_key,
        "TRUST_INTERNAL_SERVICE_KEY": kit.trust_internal_service_key,
    }
    lines: list[str] = []
    for header, rows in _sections(manifest, trust, kit.fl_kit_slot, kit.fl_kit_slot_number,
                                  kit.trust_id):
        if lines:
            lines.append("")
        lines.append(header)
        for key, value in rows:
            text = value if isinstance(value, str) else secrets[key].get_secret_value()
            lines.append(f"{key}={_checked(key, text)}")
    return "\n".join(lines) + "\n"


# A row whose value is None is a secret: only `render` fills it in, from its arguments.
Row = tuple[str, str | None]


def _sections(
    manifest: Manifest, trust: Trust, slot: str, slot_number: int, trust_id: str
) -> Iterator[tuple[str, list[Row]]]:
    unknown = sorted(set(trust.settings) - SETTINGS_KEYS)
    if unknown:
        raise KitFileError(f"trusts.{trust.name}.settings: {', '.join(unknown)} "
                           "cannot be set there (allowed: FLIP's host-local profile and "
                           "non-secret trust-local keys)")
    identity: list[Row] = [("TRUST_NAME", trust.name), ("TRUST_CODE", trust.code)]
    if trust.region:
        identity.append(("TRUST_REGION", trust.region))
    yield IDENTITY_HEADER, identity
    profile = host_profile(manifest, trust, slot_number=slot_number)
    yield f"{HOST_LOCAL_HEADER}\n{MANAGED_NOTE}", [(k, profile[k]) for k in HOST_LOCAL_KEYS]
    yield TRUST_LOCAL_HEADER, [
        (k, None if default is None else trust.settings.get(k, default))
        for k, default in _TRUST_LOCAL
    ]
    yield HUB_SHARED_SENTINEL, [(k, _hub_shared(manifest, k)) for k in HUB_SHARED_KEYS]
    yield KIT_CREDENTIALS_HEADER, [
        ("TRUST_API_KEY", None),
        ("TRUST_INTERNAL_SERVICE_KEY", None),
        ("FL_KIT_SLOT", slot),
        ("FL_KIT_SLOT_NUMBER", str(slot_number)),
        ("EXPECTED_TRUST_ID", trust_id),
    ]


def _hub_shared(manifest: Manifest, key: str) -> str | None:
    hub = manifest.hub
    registry = hub.images.registry.rstrip("/") + "/"  # FLIP writes it with a trailing slash
    values: Mapping[str, str | None] = {
        "AES_KEY_BASE64": None,
        "CENTRAL_HUB_API_URL": hub.api_url,
        "TRUST_API_KEY_HEADER": hub.trust_api_key_header,
        "FL_BACKEND": hub.fl_backend,
        # The backend's kit date is fl_kits.date; the other backend's is left empty (set,
        # so FLIP's placeholder guard passes, but naming no kit set).
        "FLOWER_KIT_DATE": hub.fl_kits.date if kit_date_key(hub.fl_backend) ==
        "FLOWER_KIT_DATE" else "",
        "FLARE_KIT_DATE": hub.fl_kits.date if kit_date_key(hub.fl_backend) ==
        "FLARE_KIT_DATE" else "",
        "DOCKER_TAG": hub.images.hub_tag,
        "DOCKER_REGISTRY": registry,
        "DOCKER_FL_TAG": hub.images.fl_tag,
        "DOCKER_FL_REGISTRY": registry,
        "NLB_SUBDOMAIN": hub.fl_hostname,
        "FL_SERVER_PORT": str(hub.fl_server.port),
    }
    return values[key]


def _flip_root(trust: Trust) -> str:
    if trust.host is None:
        # A TRE's kit file is only exported (flipgitops kit) for its operator to install;
        # its paths are FLIP's defaults (flip_trust_dirs' flip_dir, .env.example's
        # FL_KIT_DIR), which the operator repoints as package-onprem-trust-kit's steps say.
        return flip.DEFAULT_FLIP_ROOT
    root = trust.host.flip_root
    if not root.startswith("/"):
        raise KitFileError(f"trusts.{trust.name}.host.flip_root must be an absolute path: "
                           "the kit file names paths under it")
    return root.rstrip("/") or "/"


def _checked(key: str, value: str) -> str:
    if set(value) & _UNSAFE_CHARS or value != value.strip() or (
        len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'"
    ):
        raise KitFileError(
            f"the value of {key} cannot be written raw into FLIP's kit file (it holds a "
            "newline, '#', '$', surrounding quotes or spaces, which Make or compose would "
            "change); choose another value"
        )
    return value
