"""The SSM escrow on moto: FLIP's kit JSON with generations beside it, and records that must
be refused (issue 19: a key read as "None" would lock a trust out)."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from flipgitops.adapters.aws_session import Clients
from flipgitops.adapters.escrow import EscrowError, SsmEscrow, kit_description
from flipgitops.model.kit import EscrowedKit, LocalCredentials, TrustKit

KEY = "kit-api-key-value-abcdefghijklmnopqrstuvwxyz0123"
INTERNAL = "kit-internal-key-value-abcdefghijklmnopqrstuvw"
NAME = "/flipgitops/dev/trusts/Trust_1/kit"


def _kit() -> EscrowedKit:
    return EscrowedKit(kit=TrustKit(trust_id="8c1d", trust_name="Trust_1",
                                    trust_api_key=SecretStr(KEY),
                                    trust_internal_service_key=SecretStr(INTERNAL),
                                    fl_kit_slot="Trust_1", fl_kit_slot_number=1,
                                    hub_shared={"FL_BACKEND": "nvflare"}),
                       credentials_generation=3, database_generation=2)


def test_kit_round_trip_in_flips_shape(clients: Clients) -> None:
    escrow = SsmEscrow(clients, "dev")
    assert escrow.read_kit("Trust_1") is None
    escrow.write_kit("Trust_1", _kit())
    raw = clients.ssm.get_parameter(Name=NAME, WithDecryption=True)["Parameter"]
    assert raw["Type"] == "SecureString"
    assert json.loads(raw["Value"]) == _kit().kit.to_flip_json()
    meta = clients.ssm.describe_parameters(ParameterFilters=[
        {"Key": "Name", "Option": "Equals", "Values": [NAME]}])["Parameters"][0]
    assert meta["Description"] == ("flipgitops escrow: credentials_generation=3 "
                                   "database_generation=2")
    back = escrow.read_kit("Trust_1")
    assert back is not None and back.credentials_generation == 3
    assert back.kit.api_key_sha256 == _kit().kit.api_key_sha256
    assert KEY not in repr(back)


def _put(clients: Clients, value: str, description: str = kit_description(1, 1)) -> None:
    clients.ssm.put_parameter(Name=NAME, Value=value, Type="SecureString", Overwrite=True,
                              Description=description)


GOOD = _kit().kit.to_flip_json()


@pytest.mark.parametrize(("value", "description", "says"), [
    (json.dumps({**GOOD, "trust_api_key": None}), None, "trust_api_key is null"),
    (json.dumps({**GOOD, "trust_internal_service_key": ""}), None,
     "trust_internal_service_key is null, empty"),
    ("not json at all", None, "is not JSON"),
    (json.dumps([GOOD]), None, "is not FLIP's kit JSON object"),
    (json.dumps({k: v for k, v in GOOD.items() if k != "trust_id"}), None, "has no trust_id"),
    (json.dumps({**GOOD, "fl_kit_slot_number": "one"}), None, "malformed fl_kit_slot_number"),
    (json.dumps({**GOOD, "trust_name": "Trust_2"}), None, "is for trust 'Trust_2'"),
    (json.dumps(GOOD), "hand-written", "has no generations in its description"),
])
def test_malformed_kit_records_are_refused_by_name(clients: Clients, value: str,
                                                   description: str | None,
                                                   says: str) -> None:
    _put(clients, value, description or kit_description(1, 1))
    with pytest.raises(EscrowError) as err:
        SsmEscrow(clients, "dev").read_kit("Trust_1")
    message = str(err.value)
    assert NAME in message and says in message
    assert KEY not in message and INTERNAL not in message and "None" not in message.split(":")[0]


def test_writing_a_kit_without_keys_is_refused(clients: Clients) -> None:
    metadata_only = EscrowedKit(kit=TrustKit(trust_id="x", trust_name="Trust_1"),
                                credentials_generation=1)
    with pytest.raises(EscrowError):
        SsmEscrow(clients, "dev").write_kit("Trust_1", metadata_only)
    assert SsmEscrow(clients, "dev").read_kit("Trust_1") is None


def test_local_credentials_round_trip_and_refusals(clients: Clients) -> None:
    escrow = SsmEscrow(clients, "dev")
    creds = LocalCredentials(values={"OMOP_POSTGRES_PASSWORD": SecretStr("omop-secret-pw")})
    escrow.write_local("Trust_1", creds)
    back = escrow.read_local("Trust_1")
    assert back is not None and back.fingerprint() == creds.fingerprint()
    clients.ssm.put_parameter(Name="/flipgitops/dev/trusts/Trust_1/local", Type="SecureString",
                              Value='{"OMOP_POSTGRES_PASSWORD": null}', Overwrite=True)
    with pytest.raises(EscrowError, match="OMOP_POSTGRES_PASSWORD null"):
        escrow.read_local("Trust_1")


def test_internal_key_with_its_generation(clients: Clients) -> None:
    escrow = SsmEscrow(clients, "dev")
    escrow.write_internal_key(4, SecretStr("internal-key-generation-4-value"))
    held = escrow.read_internal_key()
    assert held is not None and held[0] == 4
    assert held[1].get_secret_value() == "internal-key-generation-4-value"
