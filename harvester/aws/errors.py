"""AWS errors, converted at the boundary into a few domain errors the pipeline knows how to treat.

Every botocore exception that leaves ``harvester.aws`` goes through :func:`convert` (or the
:func:`aws_errors` context manager), which returns an :class:`AwsError`: a short sentence
naming the operation, bucket, key and principal involved, a one-sentence ``remedy``, a
``code`` from the fixed :class:`ErrorCode` set (safe as a metrics label) and ``retryable``.
Tasks retry the retryable ones with :func:`backoff_delay` and record the others.

Text that AWS sends back is sanitized before it is kept: botocore messages can echo request
headers or presigned URLs, and a credential must never reach a message, a repr or a log.
"""

from __future__ import annotations

import logging
import random
import re
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import StrEnum
from typing import Any, ClassVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    EndpointConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from harvester import known_secrets

__all__ = [
    "AccessDenied",
    "AssumeRoleRefused",
    "AwsError",
    "CredentialsError",
    "EndpointUnreachable",
    "ErrorCode",
    "ExpiredCredentials",
    "InvalidCredentials",
    "InvalidRequest",
    "KmsAccessDenied",
    "NoCredentials",
    "NoSuchBucket",
    "NoSuchKey",
    "NotFound",
    "ObjectChanged",
    "OtherAwsError",
    "RedactingFilter",
    "ServerError",
    "Throttled",
    "WrongRegion",
    "aws_errors",
    "backoff_delay",
    "convert",
    "sanitize",
]


class ErrorCode(StrEnum):
    """The fixed set of error codes: bounded, so usable as a Prometheus label."""

    ACCESS_DENIED = "access_denied"
    KMS_ACCESS_DENIED = "kms_access_denied"
    ASSUME_ROLE_REFUSED = "assume_role_refused"
    NO_SUCH_BUCKET = "no_such_bucket"
    NO_SUCH_KEY = "no_such_key"
    OBJECT_CHANGED = "object_changed"
    NOT_FOUND = "not_found"
    WRONG_REGION = "wrong_region"
    THROTTLED = "throttled"
    SERVER_ERROR = "server_error"
    EXPIRED_CREDENTIALS = "expired_credentials"
    INVALID_CREDENTIALS = "invalid_credentials"
    NO_CREDENTIALS = "no_credentials"
    ENDPOINT_UNREACHABLE = "endpoint_unreachable"
    INVALID_REQUEST = "invalid_request"
    OTHER = "other"


# --- sanitizing ---------------------------------------------------------------------------

_REDACTED = "<redacted>"
_B64 = "A-Za-z0-9/+="
# Query parameters and header fields that carry a credential or a signature.
_SECRET_PARAMS = re.compile(
    r"(?i)\b(X-Amz-Security-Token|X-Amz-Credential|X-Amz-Signature|Signature|Credential|"
    r"AWSAccessKeyId|SessionToken|SecurityToken|SecretAccessKey|aws_secret_access_key|"
    r"aws_session_token|aws_security_token)(\s*=\s*[\"']?)[^&\s\"'<>,;]*"
)
# The same fields as XML elements or JSON members (an echoed STS response, a config dump).
_SECRET_ELEMENTS = re.compile(
    r"(?i)(<(SecretAccessKey|SessionToken|SecurityToken|Token)>)[^<]*(</\2>)"
)
_SECRET_MEMBERS = re.compile(
    r"(?i)([\"']?(?:secret_?access_?key|session_?token|security_?token|secret_?key|token)"
    r"[\"']?\s*:\s*b?[\"']?)[^\"'\s,}]+"
)
# Signature version 2 Authorization header: "AWS <key id>:<signature>".
_SIGV2 = re.compile(r"\bAWS [A-Z0-9]{16,128}:[" + _B64 + r"]+")
_ACCESS_KEY_ID = re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA|ABIA|ACCA)[A-Z0-9]{12,124}\b")
# Runs of base64 characters bounded by anything else: a secret access key is 40 of them, a
# session token hundreds. "=" only pads the end of base64, so it may precede a run
# ("key=<secret>") but not start one.
_B64_RUN = re.compile(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40,}={0,2}(?![" + _B64 + r"])")
# A secret access key's length; a session token is several hundred characters.
_SECRET_KEY_LENGTH = 40
_TOKEN_MIN_LENGTH = 100
# What precedes a run that makes it a credential rather than a path: a word naming a secret
# ("secret", "password", "token", "credentials", "...key") and a separator, or an access key
# id (a "AKIA... <secret>" pair, as in a credentials file or CSV).
_SECRET_CONTEXT = re.compile(
    r"(?i)(?:secret|passw(?:or)?d|token|credentials?|key)[\"']?"
    r"(?:\s*[:=>]\s*|\s+is\s+|\s+)b?[\"'(<]?$"
    r"|\b(?:AKIA|ASIA)[A-Z0-9]{16}[\s,:;|\"'=]+$"
)
_CONTEXT_WINDOW = 40


def _mixed_case(run: str) -> bool:
    return any(c.isupper() for c in run) and any(c.islower() for c in run)


def _looks_secret(run: str, before: str) -> bool:
    """Whether a base64 run is a credential, from its shape and what precedes it.

    A 40-character run alone is not enough: S3 locations are full of them
    (``soak-trail/AWSLogs/111122223333/CloudTrail/us``). It is a secret when the text names it
    as one, or when it is long and dense enough to be a session token.
    """
    if not _mixed_case(run):
        return False
    body = run.rstrip("=")
    key_length = len(body) == _SECRET_KEY_LENGTH or len(body) >= _TOKEN_MIN_LENGTH
    if key_length and _SECRET_CONTEXT.search(before):
        return True
    if len(body) < _TOKEN_MIN_LENGTH:
        return False
    # A long run of short "/" segments is a path; a token has "+", padding or long segments.
    longest_segment = max(len(part) for part in body.split("/"))
    return "+" in body or run.endswith("=") or longest_segment >= _SECRET_KEY_LENGTH


def _mask_key_id(match: re.Match[str]) -> str:
    return "****" + match.group(0)[-4:]


def sanitize(text: str, *, keep: Sequence[str | None] = ()) -> str:
    """Remove credentials, signatures and anything shaped like a secret from ``text``.

    The secrets this process holds (``harvester.known_secrets``) go whatever their shape;
    others by the field that carries them (headers, XML, JSON, query strings), by what
    precedes them ("secret: ...", an access key id), or by the shape of a session token.

    ``keep`` lists strings known to be safe (the bucket, key, role ARN of the request) that
    must survive unchanged even if they happen to look like a secret.
    """
    for secret in known_secrets.known():
        text = text.replace(secret, _REDACTED)
    protected: dict[str, str] = {}
    for index, safe in enumerate(s for s in keep if s and len(s) >= 8):
        placeholder = f"\x00{index}\x00"
        if safe in text:
            text = text.replace(safe, placeholder)
            protected[placeholder] = safe
    text = _SECRET_PARAMS.sub(lambda m: f"{m.group(1)}{m.group(2)}{_REDACTED}", text)
    text = _SECRET_ELEMENTS.sub(lambda m: f"{m.group(1)}{_REDACTED}{m.group(3)}", text)
    text = _SECRET_MEMBERS.sub(lambda m: f"{m.group(1)}{_REDACTED}", text)
    text = _SIGV2.sub("AWS " + _REDACTED, text)
    text = _B64_RUN.sub(
        lambda m: (
            _REDACTED
            if _looks_secret(m.group(0), m.string[max(0, m.start() - _CONTEXT_WINDOW) : m.start()])
            else m.group(0)
        ),
        text,
    )
    text = _ACCESS_KEY_ID.sub(_mask_key_id, text)
    for placeholder, safe in protected.items():
        text = text.replace(placeholder, safe)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that sanitizes every record passing through a handler.

    botocore logs request headers (with ``X-Amz-Security-Token``) and STS response bodies
    (with ``SecretAccessKey``) at DEBUG. Attach this to the handlers of the process's logging
    setup so that turning DEBUG on cannot write credentials to a log; handler filters see the
    records of every logger, where a logger's own filters would miss its children.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001  a broken record is logging's problem, not ours
            return True
        record.msg = sanitize(message)
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            # The formatted traceback would repeat the exception's own text unsanitized.
            record.exc_text = sanitize("".join(traceback.format_exception(*record.exc_info)))
            record.exc_info = None
        return True


# --- backoff -------------------------------------------------------------------------------


def backoff_delay(
    attempt: int, base: float = 1.0, cap: float = 60.0, rng: Callable[[], float] = random.random
) -> float:
    """Exponential backoff with full jitter: uniform in ``[0, min(cap, base * 2**attempt))``.

    Full jitter spreads a fleet of workers that were throttled together, so they do not all
    come back at the same instant (AWS Architecture Blog, "Exponential Backoff and Jitter").
    ``rng`` returns a float in [0, 1); inject a fixed one in tests.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be >= 0, got {attempt}")
    if base <= 0 or cap <= 0:
        raise ValueError("base and cap must be positive")
    ceiling = min(cap, base * 2.0 ** min(attempt, 64))
    return ceiling * rng()


# --- the errors ------------------------------------------------------------------------------


def _restore(cls: type[AwsError], message: str, state: dict[str, Any]) -> AwsError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class AwsError(Exception):
    """An AWS call failed; ``str()`` says what failed, ``remedy`` what to do about it."""

    code: ClassVar[ErrorCode] = ErrorCode.OTHER
    default_retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        operation: str,
        remedy: str,
        retryable: bool | None = None,
        aws_code: str | None = None,
        http_status: int | None = None,
        request_id: str | None = None,
        bucket: str | None = None,
        key: str | None = None,
        role_arn: str | None = None,
    ) -> None:
        message = sanitize(message, keep=(bucket, key, role_arn))
        super().__init__(message)
        self.message = message
        self.operation = operation
        self.remedy = sanitize(remedy, keep=(bucket, key, role_arn))
        self.retryable = self.default_retryable if retryable is None else retryable
        self.aws_code = aws_code
        self.http_status = http_status
        self.request_id = request_id
        self.bucket = bucket
        self.key = key
        self.role_arn = role_arn

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code.value!r}, operation={self.operation!r}, "
            f"retryable={self.retryable}, message={self.message!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors do not survive the default Exception pickling, and a
        # Celery result backend or a retry pickles the exception.
        return (_restore, (type(self), self.message, dict(self.__dict__)))

    def describe(self) -> str:
        """The message and the remedy, for a log line or a health reason."""
        return f"{self.message} Fix: {self.remedy}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code.value,
            "retryable": self.retryable,
            "operation": self.operation,
            "message": self.message,
            "remedy": self.remedy,
            "aws_code": self.aws_code,
            "http_status": self.http_status,
            "request_id": self.request_id,
            "bucket": self.bucket,
            "key": self.key,
        }


class AccessDenied(AwsError):
    code = ErrorCode.ACCESS_DENIED

    def __init__(
        self,
        message: str,
        *,
        action: str | None = None,
        resource: str | None = None,
        principal: str | None = None,
        reason: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.action = action
        self.resource = resource
        self.principal = principal
        self.reason = reason


class KmsAccessDenied(AccessDenied):
    code = ErrorCode.KMS_ACCESS_DENIED

    def __init__(self, message: str, *, kms_key_arn: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.kms_key_arn = kms_key_arn


class AssumeRoleRefused(AwsError):
    code = ErrorCode.ASSUME_ROLE_REFUSED

    def __init__(
        self,
        message: str,
        *,
        hop: str | None = None,
        principal: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.hop = hop
        self.principal = principal


class NotFound(AwsError):
    code = ErrorCode.NOT_FOUND


class NoSuchBucket(NotFound):
    code = ErrorCode.NO_SUCH_BUCKET


class NoSuchKey(NotFound):
    code = ErrorCode.NO_SUCH_KEY


class ObjectChanged(NotFound):
    """The object was replaced since it was listed (its ETag no longer matches)."""

    code = ErrorCode.OBJECT_CHANGED
    default_retryable = False


class WrongRegion(AwsError):
    code = ErrorCode.WRONG_REGION

    def __init__(
        self,
        message: str,
        *,
        region: str | None = None,
        configured_region: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.region = region
        self.configured_region = configured_region


class Throttled(AwsError):
    code = ErrorCode.THROTTLED
    default_retryable = True

    def __init__(self, message: str, *, retry_after: float = 1.0, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(AwsError):
    code = ErrorCode.SERVER_ERROR
    default_retryable = True


class CredentialsError(AwsError):
    """The credentials themselves are the problem (missing, expired, wrong)."""


class ExpiredCredentials(CredentialsError):
    code = ErrorCode.EXPIRED_CREDENTIALS
    # A refreshable session fetches new credentials on the next attempt.
    default_retryable = True


class InvalidCredentials(CredentialsError):
    code = ErrorCode.INVALID_CREDENTIALS


class NoCredentials(CredentialsError):
    code = ErrorCode.NO_CREDENTIALS


class EndpointUnreachable(AwsError):
    code = ErrorCode.ENDPOINT_UNREACHABLE
    default_retryable = True


class InvalidRequest(AwsError):
    code = ErrorCode.INVALID_REQUEST


class OtherAwsError(AwsError):
    code = ErrorCode.OTHER


# --- classification ------------------------------------------------------------------------

THROTTLING_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
EXPIRED_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "TokenRefreshRequired", "InvalidToken.Expired"}
)
INVALID_CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
        "InvalidAccessKeyId",
        "UnrecognizedClientException",
        "InvalidToken",
        "AuthFailure",
        "IncompleteSignature",
        "InvalidSecurity",
        "MissingAuthenticationToken",
    }
)
CLOCK_SKEW_CODES = frozenset({"RequestTimeTooSkewed", "RequestExpired", "RequestInTheFuture"})
ACCESS_DENIED_CODES = frozenset(
    {
        "AccessDenied",
        "AccessDeniedException",
        "AllAccessDisabled",
        "UnauthorizedOperation",
        "UnauthorizedAccess",
        "Forbidden",
        "403",
        "AuthorizationError",
    }
)
WRONG_REGION_CODES = frozenset(
    {
        "PermanentRedirect",
        "AuthorizationHeaderMalformed",
        "IllegalLocationConstraintException",
        "301",
    }
)
NOT_FOUND_CODES = frozenset(
    {
        "ResourceNotFoundException",
        "NoSuchEntity",
        "NoSuchEntityException",
        "NotFoundException",
        "NotFound",
        "NoSuchBucketPolicy",
        "ServerSideEncryptionConfigurationNotFoundError",
        "NoSuchLifecycleConfiguration",
        "404",
    }
)
SERVER_ERROR_CODES = frozenset(
    {
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "ServiceFailure",
        "ServiceException",
    }
)
INVALID_REQUEST_CODES = frozenset(
    {
        "ValidationError",
        "ValidationException",
        "InvalidRequest",
        "InvalidArgument",
        "InvalidParameterValue",
        "InvalidParameterException",
        "MalformedPolicyDocument",
        "InvalidBucketName",
        "InvalidRange",
        "400",
    }
)
KMS_CODES_PREFIX = "KMS."
KMS_CODES = frozenset(
    {
        "KMSAccessDeniedException",
        "KMSDisabledException",
        "KMSInvalidStateException",
        "KMSNotFoundException",
        "KMSOptInRequired",
        "KMSInvalidKeyUsageException",
        "KmsThrottled",
    }
)

# The IAM action a call needs, to name it in an access-denied message.
IAM_ACTIONS: Mapping[str, str] = {
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "HeadBucket": "s3:ListBucket",
    "GetBucketLocation": "s3:GetBucketLocation",
    "GetBucketPolicy": "s3:GetBucketPolicy",
    "GetBucketPolicyStatus": "s3:GetBucketPolicyStatus",
    "GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "AssumeRole": "sts:AssumeRole",
    "AssumeRoleWithWebIdentity": "sts:AssumeRoleWithWebIdentity",
    "GetCallerIdentity": "sts:GetCallerIdentity",
    "ListRolePolicies": "iam:ListRolePolicies",
    "GetRolePolicy": "iam:GetRolePolicy",
    "ListAttachedRolePolicies": "iam:ListAttachedRolePolicies",
    "GetPolicy": "iam:GetPolicy",
    "GetPolicyVersion": "iam:GetPolicyVersion",
    "GetRole": "iam:GetRole",
    "DescribeKey": "kms:DescribeKey",
    "Decrypt": "kms:Decrypt",
    "DescribeCluster": "eks:DescribeCluster",
    "ListClusters": "eks:ListClusters",
    "DescribeTrails": "cloudtrail:DescribeTrails",
}
_OBJECT_OPERATIONS = frozenset({"GetObject", "HeadObject"})

# "User: arn:... is not authorized to perform: s3:GetObject on resource: "arn:..." because ..."
_NOT_AUTHORIZED = re.compile(
    r"User: (?P<principal>arn:[^\s]+) is not authorized to perform: (?P<action>[A-Za-z0-9_:*.-]+)"
    r"(?: on resource: \"?(?P<resource>[^\"\s]+)\"?)?"
    r"(?:.*? because (?P<reason>[^.]+))?"
)
_KMS_KEY_ARN = re.compile(r"arn:aws[A-Za-z0-9_-]*:kms:[A-Za-z0-9_-]+:[0-9]{12}:key/[A-Za-z0-9_-]+")
_WRONG_REGION_IN_MESSAGE = re.compile(r"expecting '(?P<region>[a-z]{2}(?:-[a-z]+)+-[0-9]+)'")


def _arn_partition(arn: str | None) -> str:
    if arn and arn.startswith("arn:"):
        parts = arn.split(":", 2)
        if len(parts) > 1 and parts[1]:
            return parts[1]
    return "aws"


def _s3_resource(partition: str, bucket: str | None, key: str | None, operation: str) -> str | None:
    if bucket is None:
        return None
    if operation in _OBJECT_OPERATIONS:
        return f"arn:{partition}:s3:::{bucket}/{key or '*'}"
    return f"arn:{partition}:s3:::{bucket}"


def _where(bucket: str | None, key: str | None) -> str:
    if bucket and key:
        return f" on s3://{bucket}/{key}"
    if bucket:
        return f" on bucket {bucket}"
    return ""


def _sentence(text: str) -> str:
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def _context_kwargs(
    operation: str, bucket: str | None, key: str | None, role_arn: str | None
) -> dict[str, Any]:
    return {"operation": operation, "bucket": bucket, "key": key, "role_arn": role_arn}


def _convert_client_error(
    exc: ClientError,
    *,
    operation: str,
    bucket: str | None,
    key: str | None,
    role_arn: str | None,
    principal: str | None,
    region: str | None,
    sse_kms: bool,
    attempt: int,
    rng: Callable[[], float],
) -> AwsError:
    response: Mapping[str, Any] = exc.response or {}
    error: Mapping[str, Any] = response.get("Error") or {}
    metadata: Mapping[str, Any] = response.get("ResponseMetadata") or {}
    headers: Mapping[str, str] = metadata.get("HTTPHeaders") or {}
    aws_code = str(error.get("Code") or "")
    raw_message = str(error.get("Message") or "")
    status = metadata.get("HTTPStatusCode")
    status = int(status) if isinstance(status, int | str) and str(status).isdigit() else None
    retries = int(metadata.get("RetryAttempts") or 0)
    request_id = metadata.get("RequestId") or headers.get("x-amz-request-id") or None

    aws_message = sanitize(raw_message, keep=(bucket, key, role_arn, principal))
    said = f" (AWS said: {aws_message.rstrip('.')})" if aws_message else ""
    common: dict[str, Any] = {
        **_context_kwargs(operation, bucket, key, role_arn),
        "aws_code": aws_code or None,
        "http_status": status,
        "request_id": request_id,
    }
    where = _where(bucket, key)
    partition = _arn_partition(role_arn or principal)
    parsed = _NOT_AUTHORIZED.search(raw_message)
    who = (parsed["principal"] if parsed else None) or principal or role_arn
    action = (parsed["action"] if parsed else None) or IAM_ACTIONS.get(operation)
    resource = (
        parsed["resource"].rstrip(".") if parsed and parsed["resource"] else None
    ) or _s3_resource(partition, bucket, key, operation)
    reason = parsed["reason"].strip() if parsed and parsed["reason"] else None

    if aws_code in THROTTLING_CODES or status in (429, 503):
        retry_after = backoff_delay(max(attempt, retries), rng=rng)
        return Throttled(
            _sentence(
                f"AWS throttled {operation}{where} ({aws_code or status}) after {retries} "
                f"retries; retry in about {retry_after:.1f}s"
            ),
            remedy=(
                "Lower the fetch concurrency or spread the schedule; S3 allows about 5,500 "
                "GET requests per second per prefix, and the request will be retried."
            ),
            retry_after=retry_after,
            **common,
        )

    is_kms = (
        aws_code.startswith(KMS_CODES_PREFIX)
        or aws_code in KMS_CODES
        or "kms:Decrypt" in raw_message
        or "kms:GenerateDataKey" in raw_message
        or (sse_kms and (aws_code in ACCESS_DENIED_CODES or status == 403))
    )
    if is_kms and operation not in ("AssumeRole", "AssumeRoleWithWebIdentity"):
        kms_match = _KMS_KEY_ARN.search(raw_message)
        kms_key = kms_match.group(0) if kms_match else None
        return KmsAccessDenied(
            _sentence(
                f"KMS refused to decrypt for {operation}{where}"
                + (f" with key {kms_key}" if kms_key else "")
                + (f" for {who}" if who else "")
                + said
            ),
            remedy=(
                "Allow kms:Decrypt on the bucket's KMS key for the harvesting role in the key "
                "policy (and in the role's policy), with the role in the bucket's account."
            ),
            kms_key_arn=kms_key,
            action="kms:Decrypt",
            resource=kms_key,
            principal=who,
            reason=reason,
            **common,
        )

    if operation in ("AssumeRole", "AssumeRoleWithWebIdentity") and (
        aws_code in ACCESS_DENIED_CODES or aws_code in INVALID_REQUEST_CODES
    ):
        target = role_arn or "the role"
        return AssumeRoleRefused(
            _sentence(f"{who or 'the caller'} may not assume {target}{said}"),
            remedy=(
                f"Check that the trust policy of {target} names the calling principal and that "
                "its sts:ExternalId condition matches the configured external ID."
            ),
            principal=who,
            **common,
        )

    if aws_code in EXPIRED_CODES:
        return ExpiredCredentials(
            _sentence(f"the credentials used for {operation}{where} have expired{said}"),
            remedy=(
                "Nothing if it passes on retry (sessions refresh themselves); otherwise check "
                "the machine's clock and the instance profile or web identity token."
            ),
            **common,
        )
    if aws_code in CLOCK_SKEW_CODES:
        return InvalidCredentials(
            _sentence(f"AWS rejected the signature time of {operation}{where}{said}"),
            remedy="Synchronise this machine's clock (NTP); AWS allows 5 minutes of skew.",
            **common,
        )
    if aws_code in INVALID_CREDENTIAL_CODES:
        return InvalidCredentials(
            _sentence(f"AWS rejected the credentials used for {operation}{where} ({aws_code})"),
            remedy=(
                "Store a current access key pair for this role configuration, or fix the "
                "instance profile; a deleted, deactivated or mistyped key cannot sign requests."
            ),
            **common,
        )

    if aws_code in WRONG_REGION_CODES or status == 301:
        real = headers.get("x-amz-bucket-region") or error.get("Region")
        if not real:
            found = _WRONG_REGION_IN_MESSAGE.search(raw_message)
            real = found["region"] if found else None
        return WrongRegion(
            _sentence(
                f"bucket {bucket or '?'} is not in region {region or 'the configured region'}"
                + (f"; it is in {real}" if real else "")
            ),
            remedy=(
                f"Set the source's region to {real}."
                if real
                else "Set the source's region to the bucket's region (see the S3 console)."
            ),
            region=real,
            configured_region=region,
            **common,
        )

    if aws_code in ACCESS_DENIED_CODES or status == 403:
        whom = who or "the harvesting principal"
        what = action or operation
        on = f" on {resource}" if resource else ""
        because = f" because {reason}" if reason else ""
        return AccessDenied(
            _sentence(f"access denied: {whom} may not {what}{on}{because}"),
            remedy=(
                f"Allow {what}{on} for {whom} in its identity policy, and check that no "
                "bucket policy, SCP or permissions boundary denies it."
            ),
            action=action,
            resource=resource,
            principal=who,
            reason=reason,
            **common,
        )

    if aws_code == "NoSuchBucket" or (operation == "HeadBucket" and status == 404):
        return NoSuchBucket(
            _sentence(f"bucket {bucket or '?'} does not exist"),
            remedy="Check the bucket name in the source's configuration (and its partition).",
            **common,
        )
    if aws_code == "PreconditionFailed" or status == 412:
        return ObjectChanged(
            _sentence(f"object s3://{bucket or '?'}/{key or '?'} changed since it was listed"),
            remedy="Nothing: the next listing finds the new version and reads it.",
            **common,
        )
    if aws_code in ("NoSuchKey", "NoSuchVersion") or (
        operation in _OBJECT_OPERATIONS and status == 404
    ):
        return NoSuchKey(
            _sentence(f"object s3://{bucket or '?'}/{key or '?'} does not exist"),
            remedy=(
                "Nothing to do if it was removed by a lifecycle rule; otherwise relist the "
                "source, the object may have been replaced."
            ),
            **common,
        )
    if aws_code in NOT_FOUND_CODES or status == 404:
        return NotFound(
            _sentence(f"{operation}{where} found nothing ({aws_code or status}){said}"),
            remedy="Check the name or ARN in the configuration.",
            **common,
        )

    if aws_code in SERVER_ERROR_CODES or (status is not None and status >= 500):
        return ServerError(
            _sentence(f"AWS failed on {operation}{where} ({aws_code or status}){said}"),
            remedy="Nothing: this is on AWS's side and the request will be retried.",
            **common,
        )
    if aws_code in INVALID_REQUEST_CODES or status == 400:
        return InvalidRequest(
            _sentence(f"AWS rejected the {operation} request{where} ({aws_code or status}){said}"),
            remedy="Check the source's configuration (bucket name, prefix, region, role ARN).",
            **common,
        )
    return OtherAwsError(
        _sentence(f"{operation}{where} failed ({aws_code or status or 'unknown error'}){said}"),
        remedy="See the AWS error code in the AWS documentation for this operation.",
        retryable=status is not None and status >= 500,
        **common,
    )


def convert(
    exc: BaseException,
    *,
    operation: str,
    bucket: str | None = None,
    key: str | None = None,
    role_arn: str | None = None,
    principal: str | None = None,
    region: str | None = None,
    sse_kms: bool = False,
    attempt: int = 0,
    rng: Callable[[], float] = random.random,
) -> AwsError:
    """Turn any exception raised by a boto3 call into the matching :class:`AwsError`.

    ``operation`` is the API operation (``GetObject``); ``bucket``, ``key``, ``role_arn`` and
    ``principal`` name what was involved, for the message; ``region`` is the region the
    caller configured; ``sse_kms`` says the object is known to be SSE-KMS encrypted, which
    makes a bare S3 AccessDenied a KMS denial; ``attempt`` is the caller's own retry count,
    for the throttling delay suggestion.
    """
    if isinstance(exc, AwsError):
        return exc
    context = _context_kwargs(operation, bucket, key, role_arn)
    where = _where(bucket, key)
    if isinstance(exc, ClientError):
        return _convert_client_error(
            exc,
            operation=operation,
            bucket=bucket,
            key=key,
            role_arn=role_arn,
            principal=principal,
            region=region,
            sse_kms=sse_kms,
            attempt=attempt,
            rng=rng,
        )
    if isinstance(exc, NoCredentialsError | PartialCredentialsError | CredentialRetrievalError):
        detail = "" if isinstance(exc, NoCredentialsError) else f" ({type(exc).__name__})"
        return NoCredentials(
            _sentence(f"no AWS credentials were found for {operation}{where}{detail}"),
            remedy=(
                "Attach an instance profile, task role or IRSA service account to this machine, "
                "or store an access key for the role configuration."
            ),
            **context,
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        endpoint = getattr(exc, "kwargs", {}).get("endpoint_url")
        return EndpointUnreachable(
            _sentence(
                f"could not connect to the AWS endpoint{f' {endpoint}' if endpoint else ''} "
                f"for {operation}{where}"
            ),
            remedy=(
                "Check network access to AWS from this machine (proxy, VPC endpoint, security "
                "group, DNS) and the AWS_ENDPOINT_URL settings."
            ),
            **context,
        )
    if isinstance(
        exc,
        ReadTimeoutError
        | ConnectionClosedError
        | ResponseStreamingError
        | IncompleteReadError
        | HTTPClientError,
    ):
        return EndpointUnreachable(
            _sentence(
                f"the connection to AWS broke during {operation}{where} ({type(exc).__name__})"
            ),
            remedy="Nothing if it passes on retry; otherwise check the network path to AWS.",
            **context,
        )
    if isinstance(exc, ParamValidationError):
        return InvalidRequest(
            _sentence(f"invalid {operation} request{where}: {sanitize(str(exc))}"),
            remedy="Check the source's configuration (bucket, prefix, role ARN, session name).",
            **context,
        )
    if isinstance(exc, NoRegionError):
        return InvalidRequest(
            _sentence(f"no region was given for {operation}"),
            remedy="Set the source's region.",
            **context,
        )
    if isinstance(exc, BotoCoreError):
        return OtherAwsError(
            _sentence(f"{operation}{where} failed in botocore ({type(exc).__name__})"),
            remedy="Check the configuration; the botocore error type names the problem.",
            **context,
        )
    return OtherAwsError(
        _sentence(f"{operation}{where} failed ({type(exc).__name__})"),
        remedy="This is unexpected; report it with the operation named here.",
        **context,
    )


@contextmanager
def aws_errors(
    *,
    operation: str,
    bucket: str | None = None,
    key: str | None = None,
    role_arn: str | None = None,
    principal: str | None = None,
    region: str | None = None,
    sse_kms: bool = False,
    attempt: int = 0,
) -> Iterator[None]:
    """Run a boto3 call and raise any botocore error converted, ``from None``.

    ``from None`` keeps botocore's exception (and whatever request detail it carries) out of
    printed tracebacks; the domain error says everything the operator needs.
    """
    try:
        yield
    except AwsError:
        raise
    except (ClientError, BotoCoreError) as exc:
        raise convert(
            exc,
            operation=operation,
            bucket=bucket,
            key=key,
            role_arn=role_arn,
            principal=principal,
            region=region,
            sse_kms=sse_kms,
            attempt=attempt,
        ) from None
