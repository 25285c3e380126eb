"""boto3 sessions, lazily created clients, API call counting and AWS error translation.

Every AWS adapter goes through `Clients` so that retries are botocore's standard mode (no
hand-written loops), tests and benchmarks can count calls, and the endpoint comes from the
default chain: boto3 itself honours ``AWS_ENDPOINT_URL``, which is how tests and the sandbox
reach a moto server with exactly the code that runs against AWS.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
    WaiterError,
)

from flipgitops.errors import AdapterError, AwsError, TransientError

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient

T = TypeVar("T")

DEFAULT_MAX_ATTEMPTS = 6


# botocore logs request parameters and raw response bodies at DEBUG (GetSecretValue,
# GetParameter WithDecryption, PutSecretValue...), i.e. secret values. However verbose the
# CLI is asked to be, the SDK never logs below INFO.
SDK_LOGGERS = ("botocore", "boto3", "s3transfer", "urllib3")


def quiet_sdk_logging() -> None:
    """SDK loggers follow the root level (the CLI's -v), but never below INFO."""
    floor = max(logging.INFO, logging.getLogger().getEffectiveLevel())
    for name in SDK_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level < floor:  # NOTSET (0) would inherit the CLI's DEBUG
            logger.setLevel(floor)


def make_session(region: str) -> boto3.Session:
    """A session on the default credential chain, pinned to the manifest's region."""
    return boto3.Session(region_name=region)


def client_config(max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> Config:
    """Standard retry mode handles throttling and transient 5xx for us, with jitter."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=10,
        read_timeout=60,
    )


@dataclass
class CallCounter:
    """Counts API calls (one per operation, not per retry) as (service, operation) pairs.

    It hooks botocore's ``before-call`` event. Sessions copy their event handlers into a
    client when the client is created, so attach to a session before creating clients, or
    let `Clients` attach it to each client it creates.
    """

    calls: list[tuple[str, str]] = field(default_factory=list)

    def _on_call(self, model: Any, **_: Any) -> None:
        self.calls.append((model.service_model.service_name, model.name))

    def attach(self, events: Any) -> CallCounter:
        """Register on a session's or a client's event system (``x.events``/``meta.events``)."""
        events.register("before-call", self._on_call)
        return self

    @property
    def total(self) -> int:
        return len(self.calls)

    def by_operation(self) -> Counter[tuple[str, str]]:
        return Counter(self.calls)

    def reset(self) -> None:
        self.calls.clear()


class Clients:
    """Lazily created, shared boto3 clients for one region.

    Creating clients is slow-ish and most commands need only a few, so each is made on
    first use. A `CallCounter` given here is attached to every client created.
    """

    def __init__(
        self,
        session: boto3.Session | None = None,
        *,
        region: str | None = None,
        counter: CallCounter | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    ) -> None:
        quiet_sdk_logging()
        if session is None:
            session = boto3.Session(region_name=region) if region else boto3.Session()
        self.session = session
        self.counter = counter
        self._config = client_config(max_attempts)
        self._clients: dict[str, Any] = {}

    @property
    def region(self) -> str | None:
        return self.session.region_name

    def client(self, service: str) -> Any:
        if service not in self._clients:
            try:
                made = self.session.client(service, config=self._config)  # type: ignore[call-overload]
            except NoRegionError as exc:
                raise AwsError(
                    "no AWS region configured: set aws.region in the manifest or AWS_REGION"
                ) from exc
            if self.counter is not None:
                self.counter.attach(made.meta.events)
            self._clients[service] = made
        return self._clients[service]

    @property
    def sts(self) -> STSClient:
        return self.client("sts")  # type: ignore[no-any-return]

    @property
    def ec2(self) -> EC2Client:
        return self.client("ec2")  # type: ignore[no-any-return]

    @property
    def secretsmanager(self) -> SecretsManagerClient:
        return self.client("secretsmanager")  # type: ignore[no-any-return]

    @property
    def ecs(self) -> ECSClient:
        return self.client("ecs")  # type: ignore[no-any-return]

    @property
    def rds(self) -> RDSClient:
        return self.client("rds")  # type: ignore[no-any-return]

    @property
    def cognito(self) -> CognitoIdentityProviderClient:
        return self.client("cognito-idp")  # type: ignore[no-any-return]

    @property
    def ssm(self) -> SSMClient:
        return self.client("ssm")  # type: ignore[no-any-return]

    @property
    def s3(self) -> S3Client:
        return self.client("s3")  # type: ignore[no-any-return]


def as_clients(session_or_clients: Clients | boto3.Session | None, region: str) -> Clients:
    """Accept what callers have (nothing, a session, or ready clients)."""
    if isinstance(session_or_clients, Clients):
        return session_or_clients
    if session_or_clients is None:
        return Clients(make_session(region))
    return Clients(session_or_clients)


# --- errors -------------------------------------------------------------------------------

_ACCESS = {
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "AuthorizationError",
    "AuthorizationErrorException",
    "Forbidden",
}
_CREDENTIALS = {
    "UnrecognizedClientException",
    "UnrecognizedClient",
    "InvalidClientTokenId",
    "ExpiredToken",
    "ExpiredTokenException",
    "SignatureDoesNotMatch",
    "AuthFailure",
    "InvalidAccessKeyId",
    "RequestExpired",
}
_TRANSIENT = {
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequestsException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalError",
    "InternalFailure",
    "SlowDown",
}
# Anything long and token-shaped is redacted from AWS-provided messages: an API error could
# in principle echo a parameter, and ours must never carry a secret value.
_TOKENISH = re.compile(r"[A-Za-z0-9_\-+/=]{32,}")


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def redact(text: str) -> str:
    return _TOKENISH.sub("<redacted>", text)


def translate(exc: Exception, *, doing: str) -> AdapterError:
    """Turn a botocore failure into an error naming what we were doing and the likely cause.

    ``doing`` is our own words, e.g. "reading secret FLIP_API"; it must never hold a value.
    """
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AwsError(
            f"no AWS credentials found while {doing}: configure the default credential chain "
            "(AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, SSO or an instance role)"
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return TransientError(
            f"could not reach the AWS endpoint while {doing}: check aws.region in the manifest, "
            "AWS_ENDPOINT_URL and network access, then rerun"
        )
    if isinstance(exc, ConnectionClosedError | ReadTimeoutError):
        # The request may have reached AWS: our writes are idempotent, so a rerun is safe.
        return TransientError(
            f"the connection to AWS was dropped or timed out while {doing} "
            f"({type(exc).__name__}) after retries: check network access, then rerun"
        )
    if isinstance(exc, ClientError):
        code = error_code(exc)
        message = redact(str(exc.response.get("Error", {}).get("Message", "")))[:300]
        if code in _ACCESS:
            return AwsError(
                f"access denied while {doing} ({code}): the credentials in use lack the IAM "
                f"permission for this call: {message}"
            )
        if code in _CREDENTIALS:
            return AwsError(
                f"AWS rejected the credentials while {doing} ({code}): they are invalid or "
                "expired; refresh them (e.g. aws sso login) and rerun"
            )
        if code in _TRANSIENT:
            return TransientError(
                f"AWS kept throttling or failing while {doing} ({code}) after retries; rerun"
            )
        return AwsError(f"AWS error while {doing}: {code}: {message}")
    if isinstance(exc, WaiterError):
        return AwsError(f"gave up {doing}: {redact(str(exc))[:300]}")
    if isinstance(exc, BotoCoreError):
        return AwsError(f"AWS client error while {doing}: {type(exc).__name__}")
    return AwsError(f"unexpected error while {doing}: {type(exc).__name__}")


def call(
    fn: Callable[[], T],
    *,
    doing: str,
    missing: Collection[str] = (),
) -> T | None:
    """Run one AWS call; None when the error code says "not there", AwsError otherwise.

    Absence is a fact to report (``exists=False``), not a failure, so the caller lists the
    codes that mean absence for the resource it reads.
    """
    try:
        return fn()
    except ClientError as exc:
        if error_code(exc) in missing:
            return None
        raise translate(exc, doing=doing) from None
    except BotoCoreError as exc:
        raise translate(exc, doing=doing) from None


def must(fn: Callable[[], T], *, doing: str) -> T:
    """Like `call` for calls where absence is itself an error."""
    try:
        return fn()
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, doing=doing) from None
