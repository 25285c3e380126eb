"""FLIP's trust kit JSON (what register_trust emits) and the trust-local credentials.

These are the only models that hold secret values, as pydantic ``SecretStr`` so that a repr,
a log line or an exception shows ``**********``. They exist in memory during an apply and in
the SSM SecureString escrow, nowhere else.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StrictInt, StrictStr

# Trust-local credentials of FLIP's kit file that flipgitops mints once per trust (or takes
# as references from the manifest). FLIP's template ships dev defaults for them.
LOCAL_CREDENTIAL_KEYS = (
    "ORTHANC_PASSWORD",
    "OMOP_POSTGRES_PASSWORD",
    "DATA_ACCESS_POSTGRES_PASSWORD",
    "XNAT_ADMIN_INITIAL_PASSWORD",
    "XNAT_ADMIN_PASSWORD",
    "XNAT_SERVICE_PASSWORD",
    "XNAT_DATASOURCE_PASSWORD",
    "XNAT_DATASOURCE_ADMIN_PASSWORD",
    "XNAT_ACTIVEMQ_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
)
# Every kit-file key whose value is a secret: facts carry only their sha256.
SECRET_KIT_KEYS = frozenset(
    {"TRUST_API_KEY", "TRUST_INTERNAL_SERVICE_KEY", "AES_KEY_BASE64", "TRUST_AES_KEY_BASE64",
     *LOCAL_CREDENTIAL_KEYS}
)


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def short_hash(hexdigest: str | None) -> str:
    """The most a secret may ever be shown as."""
    return f"sha256:{hexdigest[:12]}" if hexdigest else "(none)"


class TrustKit(BaseModel):
    """One element of FLIP's kit JSON array (register_trust.py). A metadata-only kit (an
    existing name registered again) has no ``trust_api_key`` and no internal key."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    trust_id: StrictStr
    trust_name: StrictStr
    trust_api_key: SecretStr | None = None
    trust_internal_service_key: SecretStr | None = None
    fl_kit_slot: StrictStr | None = None
    fl_kit_slot_number: StrictInt | None = None
    hub_shared: dict[StrictStr, StrictStr] = Field(default_factory=dict)

    @property
    def has_credentials(self) -> bool:
        key = self.trust_api_key.get_secret_value() if self.trust_api_key else ""
        internal = (self.trust_internal_service_key.get_secret_value()
                    if self.trust_internal_service_key else "")
        return bool(key) and bool(internal)

    @property
    def api_key_sha256(self) -> str | None:
        return sha256_hex(self.trust_api_key.get_secret_value()) if self.trust_api_key else None

    @property
    def internal_key_sha256(self) -> str | None:
        key = self.trust_internal_service_key
        return sha256_hex(key.get_secret_value()) if key else None

    def to_flip_json(self) -> dict[str, object]:
        """FLIP's own shape (plaintext): for the escrow and `flipgitops kit` only."""
        out: dict[str, object] = {"trust_id": self.trust_id, "trust_name": self.trust_name}
        if self.trust_api_key is not None:
            out["trust_api_key"] = self.trust_api_key.get_secret_value()
        if self.trust_internal_service_key is not None:
            out["trust_internal_service_key"] = self.trust_internal_service_key.get_secret_value()
        out["fl_kit_slot"] = self.fl_kit_slot
        out["fl_kit_slot_number"] = self.fl_kit_slot_number
        out["hub_shared"] = dict(self.hub_shared)
        return out


class EscrowedKit(BaseModel):
    """The escrow's view of a trust: its kit and the generations it was minted for (kept in
    the parameter's description, not in FLIP's kit JSON)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kit: TrustKit
    credentials_generation: int
    database_generation: int = 1


class LocalCredentials(BaseModel):
    """Trust-local credentials of one trust's kit file (minted once, escrowed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    values: dict[str, SecretStr]

    def fingerprint(self) -> str:
        return local_credentials_fingerprint(
            {k: sha256_hex(v.get_secret_value()) for k, v in self.values.items()}
        )


def local_credentials_fingerprint(hashes: Mapping[str, str]) -> str:
    """One sha256 over the per-key sha256 of the trust-local credentials, so host facts
    (which carry per-key hashes) and the ledger (one value) compare without a secret."""
    lines = "".join(f"{k}={hashes[k]}\n" for k in sorted(hashes) if k in LOCAL_CREDENTIAL_KEYS)
    return hashlib.sha256(lines.encode()).hexdigest()
