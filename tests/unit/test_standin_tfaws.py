"""The stand-in aws provider's pieces (tests/standin/tfaws) without Terraform: the protobuf
wire codec, cty's msgpack values, planning (replace vs update), errors as diagnostics, and
the go-plugin handshake with AutoMTLS against a real provider process."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc  # type: ignore[import-untyped]
import msgpack  # type: ignore[import-untyped]
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.standin.tfaws import cty, wire
from tests.standin.tfaws.install import install
from tests.standin.tfaws.provider import ERROR, Provider, plan_change
from tests.standin.tfaws.schemas import DB_INSTANCE, ECS_SERVICE, RESOURCES
from tests.standin.tfaws.server import (
    MAGIC_COOKIE_KEY,
    MAGIC_COOKIE_VALUE,
    HandshakeError,
    cert_field,
    check_environment,
    handshake_line,
    self_signed,
)

# --- protobuf wire --------------------------------------------------------------------------


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 2**32, 2**63 - 1])
def test_varint_round_trip(n: int) -> None:
    encoded = wire.encode_varint(n)
    assert wire.decode_varint(encoded, 0) == (n, len(encoded))


def test_known_encodings() -> None:
    # The protobuf documentation's examples: field 1 = 150 is 08 96 01; field 2 = "testing".
    assert wire.message([(1, 150)]) == bytes.fromhex("089601")
    assert wire.message([(2, "testing")]) == bytes.fromhex("120774657374696e67")
    assert wire.encode_varint(-1) == b"\xff" * 9 + b"\x01"  # int64 -1: ten bytes
    assert wire.message([(1, 0), (2, ""), (3, False), (4, None)]) == b""  # proto3 defaults


def test_decode_nested_and_repeated() -> None:
    inner = wire.message([(1, "aws_db_instance")])
    data = wire.submessage(4, inner) + wire.submessage(4, b"") + wire.field(7, True)
    fields = wire.decode(data)
    assert fields[4] == [inner, b""] and wire.get_int(fields, 7) == 1
    assert wire.get_bytes(fields, 4) == b""  # proto3: the last occurrence wins
    assert wire.get_str(wire.decode(inner), 1) == "aws_db_instance"
    assert wire.get_str(fields, 9) == "" and wire.get_int(fields, 9) == 0


@pytest.mark.parametrize("bad", [b"\x0a\x05ab", b"\x80", b"\x0b", b"\x00\x01"])
def test_decode_refuses_broken_messages(bad: bytes) -> None:
    with pytest.raises(wire.WireError):
        wire.decode(bad)


# --- cty msgpack ----------------------------------------------------------------------------


def test_unknown_is_extension_zero_and_round_trips() -> None:
    packed = cty.dumps({"id": cty.UNKNOWN, "n": 20, "s": "x", "l": ["a"], "null": None})
    raw = msgpack.unpackb(packed, raw=False)
    assert raw["id"] == msgpack.ExtType(0, b"")
    assert cty.loads(packed) == {"id": cty.UNKNOWN, "n": 20, "s": "x", "l": ["a"], "null": None}
    # cty's refined unknown (extension 12) reads as unknown too.
    assert cty.loads(msgpack.packb(msgpack.ExtType(12, b"\x81\x01\xc3"))) is cty.UNKNOWN
    with pytest.raises(cty.CtyError):
        cty.loads(msgpack.packb(msgpack.ExtType(5, b"")))


# --- planning ---------------------------------------------------------------------------------


def _db(**values: object) -> dict[str, object]:
    base = {name: None for name in DB_INSTANCE.names}
    base.update(identifier="flip-database", engine="postgres", instance_class="db.t3.micro",
                username="flip", db_name="flip", storage_encrypted=True, id="db-ABC")
    base.update(values)
    return base


def test_create_leaves_computed_values_unknown_or_defaulted() -> None:
    planned, replace = plan_change(DB_INSTANCE, None, _db(id=None))
    assert replace == [] and planned is not None
    assert planned["id"] is cty.UNKNOWN and planned["arn"] is cty.UNKNOWN
    assert planned["skip_final_snapshot"] is False  # the provider's default
    assert planned["instance_class"] == "db.t3.micro"  # configured: as proposed


def test_force_new_attributes_require_replace_others_update() -> None:
    prior = _db()
    _, replace = plan_change(DB_INSTANCE, prior, _db(kms_key_id="arn:aws:kms:x:1:key/k"))
    assert replace == ["kms_key_id"]
    _, replace = plan_change(DB_INSTANCE, prior, _db(storage_encrypted=False, db_name="x"))
    assert replace == ["db_name", "storage_encrypted"]
    # In place: the v5+ provider renames an instance, and protection changes in place.
    _, replace = plan_change(DB_INSTANCE, prior, _db(identifier="flip-db-2",
                                                     deletion_protection=True))
    assert replace == []
    svc = {name: None for name in ECS_SERVICE.names} | {"name": "fl-server-net-1-service",
                                                         "task_definition": "arn:td:1"}
    _, replace = plan_change(ECS_SERVICE, svc, svc | {"task_definition": cty.UNKNOWN})
    assert replace == []  # the service rolls to the new revision in place


def test_every_type_has_an_id_and_the_schemas_encode() -> None:
    provider = Provider()
    fields = wire.decode(provider.call("GetProviderSchema", b""))
    names = {wire.get_str(wire.decode(entry), 1) for entry in fields[2]
             if isinstance(entry, bytes)}
    assert names == set(RESOURCES)
    for rt in RESOURCES.values():
        assert rt.attr("id") is not None and rt.attr("id").computed  # type: ignore[union-attr]
        for a in rt.attrs:
            json.dumps(a.type)
            assert not (a.required and a.computed), (rt.name, a.name)


# --- errors are diagnostics, never tracebacks ---------------------------------------------


def _diagnostics(response: bytes, number: int) -> list[tuple[int, str, str]]:
    out = []
    for raw in wire.decode(response).get(number, []):
        assert isinstance(raw, bytes)
        d = wire.decode(raw)
        out.append((wire.get_int(d, 1), wire.get_str(d, 2), wire.get_str(d, 3)))
    return out


def test_unknown_type_and_bad_values_come_back_as_errors() -> None:
    p = Provider()
    req = wire.message([(1, "aws_s3_bucket")]) + wire.submessage(
        2, wire.submessage(1, cty.dumps({})))
    (diag,) = _diagnostics(p.call("ValidateResourceConfig", req), 1)
    assert diag[0] == ERROR and "does not support resource type 'aws_s3_bucket'" in diag[1]
    # Garbage bytes where a plan request should be: a diagnostic naming the RPC.
    (diag,) = _diagnostics(p.call("PlanResourceChange", b"\x0a\xff"), 4)
    assert diag[0] == ERROR and "PlanResourceChange" in diag[1]
    assert "Traceback" not in diag[2]
    # State this schema cannot hold: an error, not a crash.
    raw = wire.submessage(3, wire.message([(1, json.dumps({"bogus": 1}))]))
    req = wire.message([(1, "aws_db_instance")]) + raw
    (diag,) = _diagnostics(p.call("UpgradeResourceState", req), 2)
    assert "bogus" in diag[2]
    # A security group rule that is neither ingress nor egress.
    rule = {name: None for name in RESOURCES["aws_security_group_rule"].names} | {
        "type": "sideways", "from_port": 1, "to_port": 1, "protocol": "tcp",
        "security_group_id": "sg-1"}
    req = wire.message([(1, "aws_security_group_rule")]) + wire.submessage(
        2, wire.submessage(1, cty.dumps(rule)))
    (diag,) = _diagnostics(p.call("ValidateResourceConfig", req), 1)
    assert "ingress or egress" in diag[1]


# --- handshake and AutoMTLS -----------------------------------------------------------------


def test_handshake_line_and_certificate() -> None:
    _key, pem, der = self_signed()
    line = handshake_line(40123, der)
    core, app, network, address, protocol, cert = line.split("|")
    assert (core, app, network, address, protocol) == ("1", "6", "tcp", "127.0.0.1:40123",
                                                        "grpc")
    assert "=" not in cert  # RawStdEncoding: no padding
    assert base64.b64decode(cert + "=" * (-len(cert) % 4)) == der == \
        x509.load_pem_x509_certificate(pem).public_bytes(Encoding.DER)
    parsed = x509.load_der_x509_certificate(der)
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert cert_field(b"\x00") == "AA"


def test_refuses_to_run_without_terraform() -> None:
    with pytest.raises(HandshakeError, match="not meant to be run directly"):
        check_environment({})
    with pytest.raises(HandshakeError, match="protocol 6"):
        check_environment({MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE,
                           "PLUGIN_PROTOCOL_VERSIONS": "4,5"})
    check_environment({MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE, "PLUGIN_PROTOCOL_VERSIONS": "5,6"})


def test_provider_process_serves_only_the_client_it_was_given(tmp_path: Path) -> None:
    """A real process, as Terraform starts it: the handshake line, then TLS that requires
    the certificate in PLUGIN_CLIENT_CERT, gRPC health SERVING and the provider schema."""
    exe = install(tmp_path).executable
    with pytest.raises(subprocess.CalledProcessError) as err:  # run by hand: refuses
        subprocess.run([str(exe)], capture_output=True, text=True, check=True, timeout=30,
                       env={k: v for k, v in os.environ.items() if k != MAGIC_COOKIE_KEY})
    assert "not meant to be run directly" in err.value.stderr
    assert "Traceback" not in err.value.stderr

    client_key, client_pem, _ = self_signed()
    env = {**os.environ, MAGIC_COOKIE_KEY: MAGIC_COOKIE_VALUE,
           "PLUGIN_PROTOCOL_VERSIONS": "5,6", "PLUGIN_CLIENT_CERT": client_pem.decode()}
    proc = subprocess.Popen([str(exe)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=env, text=True)
    try:
        assert proc.stdout is not None
        _, _, _, address, _, cert = proc.stdout.readline().strip().split("|")
        server_der = base64.b64decode(cert + "=" * (-len(cert) % 4))
        server_pem = x509.load_der_x509_certificate(server_der).public_bytes(Encoding.PEM)
        options = (("grpc.ssl_target_name_override", "localhost"),)
        good = grpc.ssl_channel_credentials(server_pem, client_key, client_pem)
        with grpc.secure_channel(address, good, options=options) as channel:
            check = channel.unary_unary("/grpc.health.v1.Health/Check")
            assert check(wire.message([(1, "plugin")]), timeout=10) == b"\x08\x01"
            schema = channel.unary_unary("/tfplugin6.Provider/GetProviderSchema")(b"", timeout=10)
            assert b"aws_db_instance" in schema
        other_key, other_pem, _ = self_signed()  # a stranger's certificate: refused
        bad = grpc.ssl_channel_credentials(server_pem, other_key, other_pem)
        with grpc.secure_channel(address, bad, options=options) as channel, \
                pytest.raises(grpc.RpcError):
            channel.unary_unary("/grpc.health.v1.Health/Check")(b"", timeout=5)
        with grpc.secure_channel(address, good, options=options) as channel:
            channel.unary_unary("/plugin.GRPCController/Shutdown")(b"", timeout=10)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert exe.read_text().startswith(f"#!{sys.executable}\n")  # install.py's shebang
