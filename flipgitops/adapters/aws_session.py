"""boto3 sessions, lazily created clients, API call counting and AWS error translation.

Every AWS adapter goes through `Clients` so that retries are botocore's standard mode (no
hand-written loops), tests and benchmarks can count calls, and the endpoint comes from the
default chain: boto3 itself honours ``AWS_ENDPOINT_URL``, which is how tests and the sandbox
reach a moto server with exactly the code that runs against AWS.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConfigParseError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    SSLError,
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


def make_session(region: str | None) -> boto3.Session:
    """A session on the default credential chain, pinned to the manifest's region.

    boto3 reads AWS_PROFILE and the config files right here, so a profile that does not
    exist or a config file that does not parse fails now, as an error naming it.
    """
    try:
        return boto3.Session(region_name=region) if region else boto3.Session()
    except (ProfileNotFound, ConfigParseError) as exc:
        raise settings_error(exc) from None


def _shown(value: str | None, limit: int = 200) -> str:
    """A setting as it may appear in a message: bounded, control characters escaped."""
    text = (value or "").encode("unicode_escape").decode("ascii")
    return repr(text if len(text) <= limit else text[:limit] + "…")


def is_endpoint_error(exc: ValueError) -> bool:
    """botocore raises a bare ValueError for an endpoint URL it cannot parse."""
    return str(exc).startswith("Invalid endpoint")


def settings_error(exc: Exception) -> AwsError:
    """An AWS setting of this machine that cannot work: what it is, and how to fix it."""
    if isinstance(exc, ProfileNotFound):
        profile = exc.kwargs.get("profile") or os.environ.get("AWS_PROFILE")
        return AwsError(
            f"AWS profile {_shown(profile)} does not exist (AWS_PROFILE="
            f"{_shown(os.environ.get('AWS_PROFILE'))}): add it to "
            f"{_shown(os.environ.get('AWS_CONFIG_FILE', '~/.aws/config'))} or unset "
            "AWS_PROFILE to use the default credential chain"
        )
    if isinstance(exc, ConfigParseError):
        path = exc.kwargs.get("path") or os.environ.get("AWS_CONFIG_FILE", "~/.aws/config")
        return AwsError(
            f"the AWS config file {_shown(str(path))} cannot be parsed (a missing ']' or a "
            "line outside any [section]?): fix it, or point AWS_CONFIG_FILE at a valid one"
        )
    if isinstance(exc, ValueError) and is_endpoint_error(exc):
        return AwsError(
            f"AWS_ENDPOINT_URL={_shown(os.environ.get('AWS_ENDPOINT_URL'))} is not a valid "
            "endpoint URL: use http(s)://host[:port] (the sandbox's moto server) or unset it "
            "for real AWS"
        )
    return AwsError(f"the AWS client could not be configured: {type(exc).__name__}")


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
            session = make_session(region)
        self.session = session
        self.counter = counter
        self._config = client_config(max_attempts)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str | None:
        return self.session.region_name

    def client(self, service: str) -> Any:
        with self._lock:  # a boto3 Session is not thread-safe; the clients it makes are
            return self._client(service)

    def _client(self, service: str) -> Any:
        if service not in self._clients:
            try:
                made = self.session.client(service, config=self._config)  # type: ignore[call-overload]
            except NoRegionError as exc:
                raise AwsError(
                    "no AWS region configured: set aws.region in the manifest or AWS_REGION"
                ) from exc
            except (ProfileNotFound, ConfigParseError) as exc:
                raise settings_error(exc) from None
            except ValueError as exc:
                if not is_endpoint_error(exc):
                    raise
                raise settings_error(exc) from None
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

    # No stubs are installed for these three (the lock has none): typed as Any.
    @property
    def logs(self) -> Any:
        return self.client("logs")

    @property
    def service_quotas(self) -> Any:
        return self.client("service-quotas")

    @property
    def ecr(self) -> Any:
        return self.client("ecr")


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
    if isinstance(exc, SSLError):
        return AwsError(
            f"TLS failed talking to {_endpoint(exc)} while {doing} (certificate not trusted or "
            "intercepted by a proxy?): set AWS_CA_BUNDLE to the CA that signs it, or fix "
            "AWS_ENDPOINT_URL"
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return TransientError(
            f"could not reach the AWS endpoint {_endpoint(exc)} while {doing}: check "
            "aws.region in the manifest, AWS_ENDPOINT_URL and network access, then rerun"
        )
    if isinstance(exc, HTTPClientError):
        return AwsError(
            f"the HTTP client failed talking to {_endpoint(exc)} while {doing} "
            f"({redact(str(exc.kwargs.get('error', '')))[:200]}): check AWS_ENDPOINT_URL"
        )
    if isinstance(exc, ProfileNotFound | ConfigParseError):
        return settings_error(exc)
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


def _endpoint(exc: BotoCoreError) -> str:
    url = exc.kwargs.get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL") or "AWS"
    return _shown(str(url)) if url != "AWS" else "AWS"


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
    except ValueError as exc:  # botocore: "Invalid endpoint: ..." at the first call
        if not is_endpoint_error(exc):
            raise
        raise settings_error(exc) from None


def must(fn: Callable[[], T], *, doing: str) -> T:
    """Like `call` for calls where absence is itself an error."""
    try:
        return fn()
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, doing=doing) from None
    except ValueError as exc:
        if not is_endpoint_error(exc):
            raise
        raise settings_error(exc) from None
