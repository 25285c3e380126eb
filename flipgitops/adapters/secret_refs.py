"""Resolve the manifest's secret references: ``env:NAME``, ``ssm:/path``,
``secretsmanager:name#key``.

The manifest holds only references (the validator rejects key material), so the value is read
at the moment it is needed and handed straight to the caller. Errors name the reference and
never the value. Each distinct reference is fetched once per resolver, so one SSH key shared
by 500 trusts costs one AWS call, not 500.
"""

from __future__ import annotations

import json
import os

from flipgitops.adapters.aws_session import Clients, call
from flipgitops.errors import AdapterError


class SecretRefError(AdapterError):
    """A reference that cannot be resolved (unset, missing, not the expected shape)."""


class SecretRefs:
    """One run's resolver: AWS clients are made only if an ssm/secretsmanager ref is used."""

    def __init__(self, region: str | None = None, clients: Clients | None = None) -> None:
        self._region = region
        self._clients = clients
        self._cache: dict[str, str] = {}

    def __repr__(self) -> str:  # never show cached values
        return f"SecretRefs(region={self._region!r}, resolved={len(self._cache)})"

    def resolve(self, ref: str) -> str:
        if ref not in self._cache:
            self._cache[ref] = self._fetch(ref)
        return self._cache[ref]

    def _aws(self) -> Clients:
        if self._clients is None:
            self._clients = Clients(region=self._region)
        return self._clients

    def _fetch(self, ref: str) -> str:
        scheme, _, rest = ref.partition(":")
        if scheme == "env":
            value = os.environ.get(rest, "")
            if not value.strip():
                raise SecretRefError(f"environment variable {rest} is not set")
            return value
        if scheme == "ssm" and rest.startswith("/"):
            resp = call(
                lambda: self._aws().ssm.get_parameter(Name=rest, WithDecryption=True),
                doing=f"reading SSM parameter {rest}",
                missing=("ParameterNotFound",),
            )
            if resp is None:
                raise SecretRefError(f"SSM parameter {rest} does not exist (or is in another "
                                     "region than aws.region)")
            return str(resp["Parameter"].get("Value", ""))
        if scheme == "secretsmanager" and "#" in rest:
            return self._secret_key(*rest.split("#", 1))
        raise SecretRefError(
            f"{ref.split(':', 1)[0]!r} is not a reference flipgitops can read; use env:NAME, "
            "ssm:/path or secretsmanager:name#key"
        )

    def _secret_key(self, name: str, key: str) -> str:
        resp = call(
            lambda: self._aws().secretsmanager.get_secret_value(SecretId=name),
            doing=f"reading secret {name}",
            missing=("ResourceNotFoundException",),
        )
        if resp is None:
            raise SecretRefError(f"Secrets Manager secret {name} does not exist")
        try:
            data = json.loads(resp.get("SecretString") or "")
        except ValueError:
            data = None
        if not isinstance(data, dict) or not isinstance(data.get(key), str):
            raise SecretRefError(f"secret {name} is not a JSON object with a string {key!r}")
        value: str = data[key]
        return value
