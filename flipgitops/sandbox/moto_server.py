"""A real moto server on a free loopback port, reached over HTTP like real AWS.

The demo and the test-suite both use it: boto3 is pointed at it with AWS_ENDPOINT_URL, so
the adapters run exactly the code they run against AWS.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

# Fake credentials for the emulator only; moto accepts any value.
SANDBOX_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-west-2",
}

# moto's default account id for every request.
MOTO_ACCOUNT_ID = "123456789012"


@dataclass
class MotoServer:
    url: str
    _server: object

    def reset(self) -> None:
        """Forget every resource (POST /moto-api/reset)."""
        req = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def stop(self) -> None:
        self._server.stop()  # type: ignore[attr-defined]


@contextmanager
def moto_server() -> Iterator[MotoServer]:
    """Start a ThreadedMotoServer on 127.0.0.1:<free port>; stop it on exit."""
    import logging
    import os

    # moto builds 1,282 default AMIs (and an EBS volume for each) whenever it creates an EC2
    # backend: on first use and again after every reset, 0.2-0.75 s each time. Nothing in
    # the sandbox describes images, so it is skipped unless the caller asked for it. moto
    # reads the variable when it builds a backend, in this process (its server is a thread).
    os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    handle = MotoServer(url=f"http://{host}:{port}", _server=server)
    try:
        yield handle
    finally:
        server.stop()
