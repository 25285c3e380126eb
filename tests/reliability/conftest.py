"""Fault injection for the reliability suite: AWS calls that fail the way AWS calls fail.

`FaultInjector` is a botocore ``before-send`` handler. Registered on the boto3 session that
the apply engine is handed (through `Clients`), it answers a deterministic, seeded fraction
of HTTP attempts itself, before anything reaches the moto server, with what AWS and networks
really produce: an HTTP 503 carrying the protocol's throttling error body, or a
connection-level exception. botocore's standard retry mode must absorb these; nothing in
flipgitops is patched, the real client stack sees a real failed response or exception.

Faults are decided per HTTP attempt, using the ``amz-sdk-request: attempt=N; max=M``
header botocore's retry handler adds, so a test can say "never more than K attempts of one
call in a row" (retryable noise) or "every attempt of this operation" (an outage).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError
from botocore.httpsession import URLLib3Session

from flipgitops.adapters.aws_session import Clients
from flipgitops.sandbox.moto_server import MotoServer

REGION = "eu-west-2"

FAULT_KINDS = ("throttle_503", "endpoint_connection", "connection_closed")
# Not drawn by chance: the request reaches the server and is applied, then the connection
# drops before the response arrives, so the client retries a call that already happened.
LOST_RESPONSE = "lost_response"


class _RawBody:
    """The piece of a urllib3 response that `AWSResponse` reads its content from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _protocol(service: str, request: AWSPreparedRequest) -> str:
    """The wire protocol of ``request``, judged from the request itself."""
    if any(k.lower() == "x-amz-target" for k in request.headers):
        return "json"
    body = request.body if isinstance(request.body, bytes | str) else b""
    text = body.decode(errors="replace") if isinstance(body, bytes) else body
    if "Action=" in text:
        return "ec2" if service == "ec2" else "query"
    return "rest-xml"


def throttling_response(service: str, request: AWSPreparedRequest) -> AWSResponse:
    """HTTP 503 with the error body the service's protocol uses for throttling."""
    protocol = _protocol(service, request)
    if protocol == "json":
        body = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'
        headers = {"Content-Type": "application/x-amz-json-1.1",
                   "x-amzn-ErrorType": "ThrottlingException"}
    elif protocol == "ec2":
        body = (b"<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                b"<Message>Request limit exceeded.</Message></Error></Errors>"
                b"<RequestID>fault-injected</RequestID></Response>")
        headers = {"Content-Type": "text/xml"}
    elif protocol == "query":
        body = (b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
                b"<Message>Rate exceeded</Message></Error>"
                b"<RequestId>fault-injected</RequestId></ErrorResponse>")
        headers = {"Content-Type": "text/xml"}
    else:
        body = (b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate."
                b"</Message><RequestId>fault-injected</RequestId></Error>")
        headers = {"Content-Type": "application/xml"}
    # AWSResponse wraps any mapping in its case-insensitive HeadersDict; the stubs are
    # narrower than the runtime.
    return AWSResponse(request.url, 503, headers, _RawBody(body))  # type: ignore[arg-type]


_ATTEMPT = re.compile(r"attempt=(\d+)")


def attempt_number(request: AWSPreparedRequest) -> int:
    value = request.headers.get("amz-sdk-request", b"")
    text = value.decode() if isinstance(value, bytes) else str(value)
    found = _ATTEMPT.search(text)
    return int(found.group(1)) if found else 1


@dataclass
class FaultInjector:
    """A ``before-send`` handler failing a seeded fraction of AWS HTTP attempts.

    ``rate``: chance that an eligible attempt fails. ``max_faulted_attempts``: attempts
    beyond this number of one call are never failed by chance, so retryable noise stays
    retryable. ``always``: operation names (e.g. ``PutSecretValue``) failed on every
    attempt with ``always_kind``, an outage no retry mode can absorb. ``lose_first``:
    operation names whose first attempt is delivered to the server but whose response is
    lost (`LOST_RESPONSE`): the retry repeats a call that already took effect.
    """

    rate: float = 0.0
    seed: int = 0
    max_faulted_attempts: int = 3
    always: frozenset[str] = frozenset()
    always_kind: str = "throttle_503"
    lose_first: frozenset[str] = frozenset()
    kinds: tuple[str, ...] = FAULT_KINDS
    sent: Counter[str] = field(default_factory=Counter)  # "service.Operation" -> attempts
    injected: Counter[str] = field(default_factory=Counter)  # fault kind -> count
    injected_ops: Counter[str] = field(default_factory=Counter)  # "service.Operation" -> n

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._http = URLLib3Session()

    def attach(self, session: boto3.Session) -> FaultInjector:
        """Register on ``session``: clients made from it afterwards carry the handler."""
        # botocore's stubs type handlers as returning None; before-send handlers may return
        # a response, which is exactly how botocore's own Stubber works.
        session.events.register("before-send", self)  # type: ignore[arg-type]
        return self

    def __call__(self, request: AWSPreparedRequest, event_name: str = "",
                 **_: Any) -> AWSResponse | None:
        parts = event_name.split(".")
        service, operation = (parts[1], parts[2]) if len(parts) >= 3 else ("?", "?")
        op = f"{service}.{operation}"
        self.sent[op] += 1
        if operation in self.always:
            return self._fail(self.always_kind, service, op, request)
        if operation in self.lose_first and attempt_number(request) == 1:
            return self._fail(LOST_RESPONSE, service, op, request)
        roll = self._rng.random()
        kind = self.kinds[self._rng.randrange(len(self.kinds))]
        if roll < self.rate and attempt_number(request) <= self.max_faulted_attempts:
            return self._fail(kind, service, op, request)
        return None

    def _fail(self, kind: str, service: str, op: str,
              request: AWSPreparedRequest) -> AWSResponse:
        self.injected[kind] += 1
        self.injected_ops[op] += 1
        if kind == "endpoint_connection":
            raise EndpointConnectionError(endpoint_url=request.url)
        if kind == "connection_closed":
            raise ConnectionClosedError(endpoint_url=request.url)
        if kind == LOST_RESPONSE:
            self._http.send(request)  # the server handles the call...
            raise ConnectionClosedError(endpoint_url=request.url)  # ...the client never hears
        return throttling_response(service, request)

    @property
    def total_injected(self) -> int:
        return sum(self.injected.values())


FaultyClients = Callable[..., tuple[FaultInjector, Clients]]


@pytest.fixture
def faulty_clients(moto: MotoServer) -> FaultyClients:
    """Factory: ``faulty_clients(rate=..., seed=..., always=...)`` -> (injector, Clients).

    The clients come from a fresh session carrying the injector, so every client the engine
    creates from them (lazily) fails as told; the endpoint is the moto server's
    (AWS_ENDPOINT_URL, set by the `moto` fixture).
    """

    def make(**kwargs: Any) -> tuple[FaultInjector, Clients]:
        injector = FaultInjector(**kwargs)
        session = boto3.Session(region_name=REGION)
        injector.attach(session)
        return injector, Clients(session)

    return make


class Echo:
    """An ``echo`` for in-process engine calls that keeps every line, stdout and stderr."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, message: object = "", err: bool = False, **_: Any) -> None:
        self.lines.append(str(message))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture
def echo() -> Echo:
    return Echo()

