"""The provider process: go-plugin's handshake, AutoMTLS and a gRPC server for tfplugin6.

What Terraform (through hashicorp/go-plugin) expects of a plugin process, as go-plugin's
`docs/internals.md` and its server code describe it:

- it is started with ``TF_PLUGIN_MAGIC_COOKIE`` set to Terraform's cookie (a binary run by
  hand says so and exits 1), ``PLUGIN_PROTOCOL_VERSIONS`` (the app protocol versions the
  client speaks: "5,6") and, with AutoMTLS, ``PLUGIN_CLIENT_CERT``: the PEM certificate the
  client will present;
- it prints one line on stdout, ``CORE|APP|NETWORK|ADDRESS|PROTOCOL|CERT``:
  ``1|6|tcp|127.0.0.1:<port>|grpc|<server cert>``, the certificate as base64 (standard
  alphabet, no padding) of its DER; the client then trusts exactly that certificate, for
  the name ``localhost``, and the server must require the client's;
- it serves the app's services (``tfplugin6.Provider``), ``grpc.health.v1.Health`` (Check
  answers SERVING for the service "plugin") and ``plugin.GRPCController`` (Shutdown: the
  client's polite kill). go-plugin's stdio and broker streams are optional: the client logs
  that they are unimplemented and carries on.

Messages are raw bytes through generic handlers; :mod:`.provider` encodes and decodes them.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import ipaddress
import os
import signal
import ssl
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc  # type: ignore[import-untyped]
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.standin.tfaws.provider import Provider

# Terraform's go-plugin handshake (internal/plugin6/serve.go in hashicorp/terraform).
MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
CORE_PROTOCOL_VERSION = 1
APP_PROTOCOL_VERSION = 6
_MAX_MESSAGE = 256 << 20  # Terraform's grpcMaxMessageSize
_SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}


def self_signed(now: datetime.datetime | None = None) -> tuple[bytes, bytes, bytes]:
    """A P-256 key and a self-signed certificate for ``localhost``, as go-plugin makes its
    own: (key PEM, cert PEM, cert DER). It is its own CA, so the client can trust it alone."""
    now = now or datetime.datetime.now(datetime.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "flipgitops stand-in")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(hours=12))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                     key_encipherment=True, data_encipherment=False,
                                     key_agreement=False, key_cert_sign=True, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), \
        cert.public_bytes(serialization.Encoding.DER)


def cert_field(der: bytes) -> str:
    """go-plugin's handshake form of a certificate: base64.RawStdEncoding of the DER."""
    return base64.b64encode(der).decode().rstrip("=")


def handshake_line(port: int, der: bytes | None) -> str:
    cert = cert_field(der) if der is not None else ""
    return (f"{CORE_PROTOCOL_VERSION}|{APP_PROTOCOL_VERSION}|tcp|127.0.0.1:{port}|grpc|"
            f"{cert}")


class HandshakeError(Exception):
    """The process was not started by a go-plugin client that speaks our protocol."""


def check_environment(environ: dict[str, str] | os._Environ[str]) -> None:
    if environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        raise HandshakeError(
            "This binary is a plugin (a stand-in for terraform-provider-aws, flipgitops' "
            "tests). It is not meant to be run directly: Terraform starts it.")
    offered = environ.get("PLUGIN_PROTOCOL_VERSIONS", str(APP_PROTOCOL_VERSION))
    if str(APP_PROTOCOL_VERSION) not in offered.split(","):
        raise HandshakeError(f"this provider speaks plugin protocol {APP_PROTOCOL_VERSION}; "
                             f"the client offered {offered}")


def _unary(fn: Callable[[bytes], bytes]) -> grpc.RpcMethodHandler:
    return grpc.unary_unary_rpc_method_handler(lambda req, _ctx: fn(req))


def _log(text: str) -> None:
    # go-plugin logs the plugin's stderr lines at the level they start with.
    print(f"[DEBUG] stand-in aws provider: {text}", file=sys.stderr, flush=True)


def build_server(provider: Provider, stop: threading.Event) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[
        ("grpc.max_receive_message_length", _MAX_MESSAGE),
        ("grpc.max_send_message_length", _MAX_MESSAGE)])

    def rpc(method: str) -> grpc.RpcMethodHandler:
        def run(request: bytes) -> bytes:
            _log(method)
            return provider.call(method, request)
        return _unary(run)

    def shutdown(_request: bytes) -> bytes:
        stop.set()
        return b""

    methods = {name: rpc(name) for name in provider.handlers()}
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler("tfplugin6.Provider", methods),
        grpc.method_handlers_generic_handler("grpc.health.v1.Health",
                                             {"Check": _unary(lambda _req: _SERVING)}),
        grpc.method_handlers_generic_handler("plugin.GRPCController",
                                             {"Shutdown": _unary(shutdown)}),
    ))
    return server


class TlsFront:
    """TLS in front of the plain gRPC port, with Python's ssl (OpenSSL) instead of grpcio's.

    Why not ``grpc.ssl_server_credentials``: go-plugin's client certificate is ECDSA P-521
    and grpcio's TLS (BoringSSL) does not offer ecdsa_secp521r1_sha512 in its certificate
    request, so Go's client finds its certificate unacceptable, sends none, and the
    handshake fails (PEER_DID_NOT_RETURN_A_CERTIFICATE; seen with Terraform 1.11). OpenSSL
    offers it. This front requires the client's certificate (and only it: it is the sole
    CA), negotiates ALPN h2 as gRPC clients insist, and pipes the bytes to the gRPC server
    on loopback. asyncio runs the TLS state machine in one thread, as ssl requires.
    """

    def __init__(self, backend_port: int, client_pem: bytes) -> None:
        key_pem, cert_pem, self.der = self_signed()
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(cadata=client_pem.decode())
        self.context.set_alpn_protocols(["h2"])
        with tempfile.TemporaryDirectory(prefix="tfaws-") as tmp:  # load_cert_chain reads files
            (Path(tmp) / "cert.pem").write_bytes(cert_pem)
            (Path(tmp) / "key.pem").write_bytes(key_pem)
            self.context.load_cert_chain(Path(tmp) / "cert.pem", Path(tmp) / "key.pem")
        self.backend_port = backend_port
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._open = 0  # connections still being piped (the event loop's thread only)
        self._drained = threading.Event()
        self._drained.set()
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)
        if not self.port:
            raise HandshakeError("the TLS front did not start")

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(
            self._serve, "127.0.0.1", 0, ssl=self.context))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def drain(self, timeout: float) -> None:
        """Wait until every connection has been piped to its end: the answer to Shutdown
        (and the server's GOAWAY) still has to cross this front after the gRPC server has
        stopped, and the process must not exit with them in a daemon thread."""
        self._drained.wait(timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open += 1
        self._drained.clear()
        try:
            await self._pipe(reader, writer)
        finally:
            self._open -= 1
            if not self._open:
                self._drained.set()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.backend_port)
        except OSError:
            writer.close()
            return

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, ssl.SSLError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))


def serve(environ: dict[str, str] | os._Environ[str], out: Any = None) -> int:
    """Start, print the handshake, serve until the client shuts the plugin down."""
    out = out or sys.stdout
    check_environment(environ)
    stop = threading.Event()
    provider = Provider()
    server = build_server(provider, stop)
    port = server.add_insecure_port("127.0.0.1:0")
    if port == 0:
        raise HandshakeError("could not listen on 127.0.0.1")
    server.start()
    client_pem = environ.get("PLUGIN_CLIENT_CERT", "").encode()
    der: bytes | None = None
    front: TlsFront | None = None
    if client_pem:  # AutoMTLS (Terraform's default; TF_DISABLE_PLUGIN_TLS turns it off)
        front = TlsFront(port, client_pem)
        port, der = front.port, front.der
    print(handshake_line(port, der), file=out, flush=True)
    # The client ends us with Controller.Shutdown or, failing that, a kill; an interrupt at
    # the terminal reaches Terraform, which stops us itself (go-plugin servers ignore it).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=0.5).wait()
    if front is not None:
        front.drain(timeout=2.0)
    return 0


def main() -> None:
    try:
        code = serve(os.environ)
    except HandshakeError as exc:
        print(str(exc), file=sys.stderr)
        code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
