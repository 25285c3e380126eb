"""The escrow: keys flipgitops holds for the hub and its trusts, in SSM SecureStrings.

- `/flipgitops/<env>/trusts/<name>/kit`: FLIP's kit JSON object (`TrustKit.to_flip_json()`);
  description `flipgitops escrow: credentials_generation=N database_generation=M`;
- `/flipgitops/<env>/trusts/<name>/local`: the trust-local credentials, `{KEY: value}`;
- `/flipgitops/<env>/hub/internal-service-key`: the internal service key; description
  `flipgitops escrow: internal_service_key_generation=N`.

The kit is FLIP's own shape so `flipgitops kit` and an operator reading the parameter see what
`register_trust` printed; the generations ride in the description because FLIP's kit has no
place for them. A record that does not parse — not JSON, a missing or null key, an empty
string — is an error naming the parameter, raised before anything is changed: a key read as
``"None"`` would be delivered to a trust and lock it out (issue 19).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import SecretStr, ValidationError

from flipgitops.adapters.aws_session import Clients, call, must
from flipgitops.errors import AdapterError
from flipgitops.model.kit import EscrowedKit, LocalCredentials, TrustKit

DESCRIPTION_PREFIX = "flipgitops escrow:"
_GENERATIONS = re.compile(r"credentials_generation=(\d+) database_generation=(\d+)")
_INTERNAL_GENERATION = re.compile(r"internal_service_key_generation=(\d+)")


class EscrowError(AdapterError):
    """An escrow record that cannot be used as it is; nothing was changed."""


def kit_parameter(env: str, trust: str) -> str:
    return f"/flipgitops/{env}/trusts/{trust}/kit"


def local_parameter(env: str, trust: str) -> str:
    return f"/flipgitops/{env}/trusts/{trust}/local"


def internal_key_parameter(env: str) -> str:
    return f"/flipgitops/{env}/hub/internal-service-key"


def legacy_key_parameter(env: str, trust: str) -> str:
    """Where flipgitops v1 escrowed a trust's API key alone (read once, by ledger.migrate)."""
    return f"/flipgitops/{env}/trusts/{trust}/api-key"


def kit_description(credentials_generation: int, database_generation: int) -> str:
    return (f"{DESCRIPTION_PREFIX} credentials_generation={credentials_generation} "
            f"database_generation={database_generation}")


def _fix(name: str) -> str:
    return (f"fix or delete SSM parameter {name} (its value is not shown); deleting it makes "
            "flipgitops treat the trust's key as not held")


def parse_kit(value: str, description: str | None, name: str, trust: str) -> EscrowedKit:
    """An escrowed kit, or EscrowError naming the parameter (the value is never quoted)."""
    try:
        data: Any = json.loads(value)
    except ValueError:
        raise EscrowError(f"escrowed kit {name} is not JSON: {_fix(name)}") from None
    if not isinstance(data, dict):
        raise EscrowError(f"escrowed kit {name} is not FLIP's kit JSON object: {_fix(name)}")
    missing = [k for k in ("trust_id", "trust_name", "trust_api_key",
                           "trust_internal_service_key") if k not in data]
    if missing:
        raise EscrowError(f"escrowed kit {name} has no {', '.join(missing)}: {_fix(name)}")
    bad = [k for k in ("trust_api_key", "trust_internal_service_key")
           if not isinstance(data[k], str) or not data[k].strip()]
    if bad:
        raise EscrowError(f"escrowed kit {name}: {', '.join(bad)} is null, empty or not a "
                          f"string: {_fix(name)}")
    try:
        kit = TrustKit.model_validate(data)
    except ValidationError as exc:
        fields = sorted({".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()})
        raise EscrowError(f"escrowed kit {name} has malformed {', '.join(fields)}: "
                          f"{_fix(name)}") from None
    if kit.trust_name != trust:
        raise EscrowError(f"escrowed kit {name} is for trust {kit.trust_name!r}, not "
                          f"{trust!r}: {_fix(name)}")
    match = _GENERATIONS.search(description or "")
    if match is None:
        raise EscrowError(f"escrowed kit {name} has no generations in its description "
                          f"({kit_description(1, 1)!r} expected): {_fix(name)}")
    return EscrowedKit(kit=kit, credentials_generation=int(match.group(1)),
                       database_generation=int(match.group(2)))


def parse_local(value: str, name: str) -> LocalCredentials:
    try:
        data: Any = json.loads(value)
    except ValueError:
        raise EscrowError(f"escrowed trust-local credentials {name} are not JSON: "
                          f"{_fix(name)}") from None
    if not isinstance(data, dict) or not data:
        raise EscrowError(f"escrowed trust-local credentials {name} are not a non-empty JSON "
                          f"object: {_fix(name)}")
    bad = sorted(str(k) for k, v in data.items() if not isinstance(v, str) or not v.strip())
    if bad:
        raise EscrowError(f"escrowed trust-local credentials {name}: {', '.join(bad[:5])} "
                          f"null, empty or not a string: {_fix(name)}")
    return LocalCredentials(values={str(k): SecretStr(v) for k, v in data.items()})


class SsmEscrow:
    """EscrowPort on SSM. Reads decrypt; writes are SecureString, overwrite, and
    Intelligent-Tiering (a kit with a long hub-shared block may pass 4 KB)."""

    def __init__(self, clients: Clients, env: str) -> None:
        self.clients = clients
        self.env = env

    def __repr__(self) -> str:
        return f"SsmEscrow(env={self.env!r})"

    # --- plumbing --------------------------------------------------------------------------

    def _get(self, name: str) -> str | None:
        resp = call(lambda: self.clients.ssm.get_parameter(Name=name, WithDecryption=True),
                    doing=f"reading escrow parameter {name}", missing=("ParameterNotFound",))
        return None if resp is None else str(resp["Parameter"].get("Value", ""))

    def _description(self, name: str) -> str | None:
        resp = must(lambda: self.clients.ssm.describe_parameters(ParameterFilters=[
            {"Key": "Name", "Option": "Equals", "Values": [name]}]),
            doing=f"reading the description of escrow parameter {name}")
        params = resp.get("Parameters", [])
        return str(params[0].get("Description", "")) if params else None

    def _put(self, name: str, value: str, description: str) -> None:
        must(lambda: self.clients.ssm.put_parameter(
            Name=name, Value=value, Type="SecureString", Overwrite=True,
            Description=description, Tier="Intelligent-Tiering"),
            doing=f"writing escrow parameter {name}")

    def _delete(self, name: str) -> None:
        call(lambda: self.clients.ssm.delete_parameter(Name=name),
             doing=f"deleting escrow parameter {name}", missing=("ParameterNotFound",))

    # --- trust kits ------------------------------------------------------------------------

    def read_kit(self, trust: str) -> EscrowedKit | None:
        name = kit_parameter(self.env, trust)
        value = self._get(name)
        if value is None:
            return None
        return parse_kit(value, self._description(name), name, trust)

    def write_kit(self, trust: str, kit: EscrowedKit) -> None:
        if kit.kit.trust_name != trust:
            raise EscrowError(f"refusing to escrow a kit for {kit.kit.trust_name!r} as {trust!r}")
        if not kit.kit.has_credentials:
            raise EscrowError(f"refusing to escrow a kit without credentials for {trust}")
        self._put(kit_parameter(self.env, trust), json.dumps(kit.kit.to_flip_json()),
                  kit_description(kit.credentials_generation, kit.database_generation))

    def delete_kit(self, trust: str) -> None:
        self._delete(kit_parameter(self.env, trust))

    # --- trust-local credentials -------------------------------------------------------------

    def read_local(self, trust: str) -> LocalCredentials | None:
        name = local_parameter(self.env, trust)
        value = self._get(name)
        return None if value is None else parse_local(value, name)

    def write_local(self, trust: str, creds: LocalCredentials) -> None:
        values = {k: v.get_secret_value() for k, v in sorted(creds.values.items())}
        if not values or not all(v.strip() for v in values.values()):
            raise EscrowError(f"refusing to escrow empty trust-local credentials for {trust}")
        self._put(local_parameter(self.env, trust), json.dumps(values),
                  f"{DESCRIPTION_PREFIX} trust-local credentials of {trust}")

    def delete_local(self, trust: str) -> None:
        self._delete(local_parameter(self.env, trust))

    def read_legacy_api_key(self, trust: str) -> tuple[int, int, SecretStr] | None:
        """(credentials generation, database generation, API key) flipgitops v1 escrowed
        as ``{"generation": N, "database_generation": M, "api_key": …}``; None when none."""
        name = legacy_key_parameter(self.env, trust)
        value = self._get(name)
        if value is None:
            return None
        try:
            data: Any = json.loads(value)
            gen, key = data["generation"], data["api_key"]
            db_gen = data.get("database_generation", 1)
        except (ValueError, KeyError, TypeError):
            raise EscrowError(f"flipgitops v1 escrow {name} is not "
                              f'{{"generation": N, "api_key": …}}: {_fix(name)}') from None
        if (not isinstance(key, str) or not key.strip() or not isinstance(gen, int)
                or not isinstance(db_gen, int)):
            raise EscrowError(f"flipgitops v1 escrow {name} has a null, empty or mistyped "
                              f"field: {_fix(name)}")
        return gen, db_gen, SecretStr(key)

    # --- the hub's internal service key ---------------------------------------------------

    def read_internal_key(self) -> tuple[int, SecretStr] | None:
        name = internal_key_parameter(self.env)
        value = self._get(name)
        if value is None:
            return None
        if not value.strip():
            raise EscrowError(f"escrowed internal service key {name} is empty: {_fix(name)}")
        match = _INTERNAL_GENERATION.search(self._description(name) or "")
        if match is None:
            raise EscrowError(f"escrowed internal service key {name} has no generation in its "
                              f"description: {_fix(name)}")
        return int(match.group(1)), SecretStr(value)

    def write_internal_key(self, generation: int, key: SecretStr) -> None:
        if not key.get_secret_value().strip():
            raise EscrowError("refusing to escrow an empty internal service key")
        self._put(internal_key_parameter(self.env), key.get_secret_value(),
                  f"{DESCRIPTION_PREFIX} internal_service_key_generation={generation}")
