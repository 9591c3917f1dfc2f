"""Error conversion at the AWS boundary: classification, remedies, backoff and sanitizing."""

from __future__ import annotations

import logging
import pickle
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)
from hypothesis import given
from hypothesis import strategies as st

from harvester.aws.errors import (
    AccessDenied,
    AssumeRoleRefused,
    AwsError,
    EndpointUnreachable,
    ErrorCode,
    ExpiredCredentials,
    InvalidCredentials,
    InvalidRequest,
    KmsAccessDenied,
    NoCredentials,
    NoSuchBucket,
    NoSuchKey,
    NotFound,
    ObjectChanged,
    OtherAwsError,
    RedactingFilter,
    ServerError,
    Throttled,
    WrongRegion,
    aws_errors,
    backoff_delay,
    convert,
    sanitize,
)

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
TOKEN = (
    "FQoGZXIvYXdzEJr//////////wEaDOx2yvnj3Q8nYXkN+yK3A3Vz0k7Lh1Q6a0ZqS+Qe2wq3mC7d0o9b"
    "Kp1Ld8fX3Tq2vA4M7e8ZgP1cQ9nH5rS2uV6wX0yB3zE4fG8hI9jK1lM2nO3pQ4rS5tU6vW7xY8zA9bC0dE1f"
    "G2hI3jK4lM5nO6pQ7rS8tU9vW0xY1zA2bC3dE4fG5hI6jK7lM8nO9pQ0rS1tU2vW3xY4zA5bC6dE7fG8hI9j="
)
ROLE = "arn:aws:iam::111122223333:role/harvest-bucket"
SESSION = "arn:aws:sts::111122223333:assumed-role/harvest-bucket/audit-harvester"


def client_error(
    code: str,
    message: str = "",
    *,
    status: int = 400,
    operation: str = "GetObject",
    headers: dict[str, str] | None = None,
    retries: int = 0,
    **extra: str,
) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message, **extra},
        "ResponseMetadata": {
            "HTTPStatusCode": status,
            "HTTPHeaders": headers or {},
            "RetryAttempts": retries,
            "RequestId": "REQ123",
        },
    }
    return ClientError(response, operation)


# --- backoff -------------------------------------------------------------------------------


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    top = [backoff_delay(n, base=0.5, cap=10.0, rng=lambda: 0.999999) for n in range(8)]
    assert top[0] == pytest.approx(0.5, rel=1e-3)
    assert top[1] == pytest.approx(1.0, rel=1e-3)
    assert top[4] == pytest.approx(8.0, rel=1e-3)
    assert top[5] == pytest.approx(10.0, rel=1e-3)
    assert top[7] == pytest.approx(10.0, rel=1e-3)


def test_backoff_is_full_jitter_from_zero() -> None:
    assert backoff_delay(5, base=1.0, cap=60.0, rng=lambda: 0.0) == 0.0
    assert backoff_delay(5, base=1.0, cap=60.0, rng=lambda: 0.5) == pytest.approx(16.0)


def test_backoff_survives_huge_attempts_and_rejects_nonsense() -> None:
    assert backoff_delay(10_000, base=1.0, cap=30.0, rng=lambda: 0.5) == pytest.approx(15.0)
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, rng=lambda: 0.5)
    with pytest.raises(ValueError, match="positive"):
        backoff_delay(1, base=0.0, rng=lambda: 0.5)


@given(st.integers(min_value=0, max_value=500), st.floats(min_value=0.0, max_value=0.999999))
def test_backoff_stays_within_bounds(attempt: int, draw: float) -> None:
    delay = backoff_delay(attempt, base=0.25, cap=20.0, rng=lambda: draw)
    assert 0.0 <= delay <= 20.0
    assert delay <= 0.25 * 2.0 ** min(attempt, 64)


# --- classification --------------------------------------------------------------------------

CASES: list[tuple[ClientError, type[AwsError], ErrorCode, bool]] = [
    (
        client_error("SlowDown", "Please reduce your request rate.", status=503),
        Throttled,
        ErrorCode.THROTTLED,
        True,
    ),
    (
        client_error("Throttling", "Rate exceeded", operation="AssumeRole"),
        Throttled,
        ErrorCode.THROTTLED,
        True,
    ),
    (client_error("ThrottlingException", "Rate exceeded"), Throttled, ErrorCode.THROTTLED, True),
    (client_error("RequestLimitExceeded", "limit"), Throttled, ErrorCode.THROTTLED, True),
    (
        client_error("TooManyRequestsException", "x", status=429),
        Throttled,
        ErrorCode.THROTTLED,
        True,
    ),
    (
        client_error("503", "Service Unavailable", status=503, operation="HeadObject"),
        Throttled,
        ErrorCode.THROTTLED,
        True,
    ),
    (
        client_error("ExpiredToken", "The provided token has expired."),
        ExpiredCredentials,
        ErrorCode.EXPIRED_CREDENTIALS,
        True,
    ),
    (
        client_error("InvalidClientTokenId", "The security token is invalid.", status=403),
        InvalidCredentials,
        ErrorCode.INVALID_CREDENTIALS,
        False,
    ),
    (
        client_error("SignatureDoesNotMatch", "sig", status=403),
        InvalidCredentials,
        ErrorCode.INVALID_CREDENTIALS,
        False,
    ),
    (
        client_error("InvalidAccessKeyId", "no such key id", status=403),
        InvalidCredentials,
        ErrorCode.INVALID_CREDENTIALS,
        False,
    ),
    (
        client_error("RequestTimeTooSkewed", "skew", status=403),
        InvalidCredentials,
        ErrorCode.INVALID_CREDENTIALS,
        False,
    ),
    (
        client_error("AccessDenied", "Access Denied", status=403),
        AccessDenied,
        ErrorCode.ACCESS_DENIED,
        False,
    ),
    (
        client_error("403", "Forbidden", status=403, operation="HeadObject"),
        AccessDenied,
        ErrorCode.ACCESS_DENIED,
        False,
    ),
    (
        client_error("KMS.AccessDeniedException", "no", status=403),
        KmsAccessDenied,
        ErrorCode.KMS_ACCESS_DENIED,
        False,
    ),
    (
        client_error("KMS.DisabledException", "key disabled", status=400),
        KmsAccessDenied,
        ErrorCode.KMS_ACCESS_DENIED,
        False,
    ),
    (
        client_error("NoSuchBucket", "The specified bucket does not exist", status=404),
        NoSuchBucket,
        ErrorCode.NO_SUCH_BUCKET,
        False,
    ),
    (
        client_error("404", "Not Found", status=404, operation="HeadBucket"),
        NoSuchBucket,
        ErrorCode.NO_SUCH_BUCKET,
        False,
    ),
    (
        client_error("NoSuchKey", "The specified key does not exist.", status=404),
        NoSuchKey,
        ErrorCode.NO_SUCH_KEY,
        False,
    ),
    (
        client_error("404", "Not Found", status=404, operation="HeadObject"),
        NoSuchKey,
        ErrorCode.NO_SUCH_KEY,
        False,
    ),
    (
        client_error("PreconditionFailed", "pre", status=412),
        ObjectChanged,
        ErrorCode.OBJECT_CHANGED,
        False,
    ),
    (
        client_error("ResourceNotFoundException", "No cluster found", operation="DescribeCluster"),
        NotFound,
        ErrorCode.NOT_FOUND,
        False,
    ),
    (
        client_error("PermanentRedirect", "endpoint", status=301),
        WrongRegion,
        ErrorCode.WRONG_REGION,
        False,
    ),
    (
        client_error("InternalError", "We encountered an internal error.", status=500),
        ServerError,
        ErrorCode.SERVER_ERROR,
        True,
    ),
    (
        client_error("InvalidArgument", "bad", status=400),
        InvalidRequest,
        ErrorCode.INVALID_REQUEST,
        False,
    ),
    (client_error("WeirdNewCode", "?", status=409), OtherAwsError, ErrorCode.OTHER, False),
]


@pytest.mark.parametrize(("exc", "cls", "code", "retryable"), CASES)
def test_client_errors_are_classified(
    exc: ClientError, cls: type[AwsError], code: ErrorCode, retryable: bool
) -> None:
    operation = exc.operation_name
    error = convert(exc, operation=operation, bucket="logs-bucket", key="AWSLogs/x.json.gz")
    assert type(error) is cls
    assert error.code is code
    assert error.retryable is retryable
    assert error.operation == operation
    assert error.remedy
    assert error.message.endswith(".")
    assert error.request_id == "REQ123"


def test_every_error_class_has_a_code_from_the_fixed_set() -> None:
    classes = {cls for _, cls, _, _ in CASES} | {NoCredentials, EndpointUnreachable}
    assert {cls.code for cls in classes} <= set(ErrorCode)
    assert all(code.value == code.value.lower() for code in ErrorCode)


def test_throttled_suggests_a_jittered_delay_and_counts_retries() -> None:
    exc = client_error("SlowDown", "Please reduce your request rate.", status=503, retries=4)
    error = convert(exc, operation="GetObject", bucket="b1", key="k", rng=lambda: 0.5)
    assert isinstance(error, Throttled)
    assert error.retry_after == pytest.approx(8.0)  # 0.5 * 2**4
    assert "after 4 retries" in error.message
    more = convert(exc, operation="GetObject", attempt=6, rng=lambda: 0.5)
    assert isinstance(more, Throttled)
    assert more.retry_after == pytest.approx(30.0)  # capped at 60, times 0.5


def test_access_denied_names_principal_action_resource_and_reason() -> None:
    message = (
        f"User: {SESSION} is not authorized to perform: s3:GetObject on resource: "
        '"arn:aws:s3:::logs-bucket/AWSLogs/1.json.gz" with an explicit deny in a '
        "resource-based policy"
    )
    error = convert(
        client_error("AccessDenied", message, status=403),
        operation="GetObject",
        bucket="logs-bucket",
        key="AWSLogs/1.json.gz",
    )
    assert isinstance(error, AccessDenied)
    assert error.principal == SESSION
    assert error.action == "s3:GetObject"
    assert error.resource == "arn:aws:s3:::logs-bucket/AWSLogs/1.json.gz"
    assert SESSION in str(error)
    assert "s3:GetObject" in error.remedy


def test_bare_access_denied_is_explained_from_the_context() -> None:
    error = convert(
        client_error("AccessDenied", "Access Denied", status=403),
        operation="ListObjectsV2",
        bucket="logs-bucket",
        key="AWSLogs/",
        principal=SESSION,
    )
    assert isinstance(error, AccessDenied)
    assert error.action == "s3:ListBucket"
    assert error.resource == "arn:aws:s3:::logs-bucket"
    assert str(error) == (
        f"access denied: {SESSION} may not s3:ListBucket on arn:aws:s3:::logs-bucket."
    )


def test_govcloud_resources_carry_their_partition() -> None:
    error = convert(
        client_error("AccessDenied", "Access Denied", status=403),
        operation="GetObject",
        bucket="gov-logs",
        key="k",
        role_arn="arn:aws-us-gov:iam::111122223333:role/r",
    )
    assert isinstance(error, AccessDenied)
    assert error.resource == "arn:aws-us-gov:s3:::gov-logs/k"


def test_kms_denials_are_recognised_by_message_and_by_sse_kms() -> None:
    by_message = convert(
        client_error(
            "AccessDenied",
            f"User: {SESSION} is not authorized to perform: kms:Decrypt on resource: "
            "arn:aws:kms:us-east-1:444455556666:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            status=403,
        ),
        operation="GetObject",
        bucket="b1",
        key="k",
    )
    assert isinstance(by_message, KmsAccessDenied)
    assert by_message.kms_key_arn is not None
    assert by_message.kms_key_arn.endswith("1234567890ab")
    assert "kms:Decrypt" in by_message.remedy
    bare = convert(
        client_error("AccessDenied", "Access Denied", status=403),
        operation="GetObject",
        bucket="b1",
        key="k",
        sse_kms=True,
    )
    assert isinstance(bare, KmsAccessDenied)
    not_kms = convert(
        client_error("AccessDenied", "Access Denied", status=403), operation="GetObject"
    )
    assert not isinstance(not_kms, KmsAccessDenied)


def test_assume_role_refusal_hints_at_trust_policy_and_external_id() -> None:
    error = convert(
        client_error(
            "AccessDenied",
            f"User: {SESSION} is not authorized to perform: sts:AssumeRole on resource: {ROLE}",
            status=403,
            operation="AssumeRole",
        ),
        operation="AssumeRole",
        role_arn=ROLE,
    )
    assert isinstance(error, AssumeRoleRefused)
    assert error.principal == SESSION
    assert ROLE in error.message
    assert "trust policy" in error.remedy
    assert "external ID" in error.remedy
    assert not error.retryable


def test_wrong_region_gives_the_real_region() -> None:
    from_header = convert(
        client_error(
            "301",
            "Moved Permanently",
            status=301,
            operation="HeadBucket",
            headers={"x-amz-bucket-region": "eu-west-1"},
        ),
        operation="HeadBucket",
        bucket="b1",
        region="us-east-1",
    )
    assert isinstance(from_header, WrongRegion)
    assert from_header.region == "eu-west-1"
    assert from_header.configured_region == "us-east-1"
    assert "eu-west-1" in from_header.remedy
    from_body = convert(
        client_error(
            "AuthorizationHeaderMalformed",
            "the region 'us-east-1' is wrong; expecting 'ap-southeast-2'",
            Region="ap-southeast-2",
        ),
        operation="ListObjectsV2",
        bucket="b1",
    )
    assert isinstance(from_body, WrongRegion)
    assert from_body.region == "ap-southeast-2"


def test_botocore_exceptions_are_converted() -> None:
    none = convert(NoCredentialsError(), operation="ListObjectsV2", bucket="b1")
    assert isinstance(none, NoCredentials)
    assert none.code is ErrorCode.NO_CREDENTIALS
    assert "instance profile" in none.remedy
    unreachable = convert(
        EndpointConnectionError(endpoint_url="https://s3.us-east-1.amazonaws.com"),
        operation="GetObject",
    )
    assert isinstance(unreachable, EndpointUnreachable)
    assert unreachable.retryable
    assert "s3.us-east-1.amazonaws.com" in unreachable.message
    timeout = convert(
        ConnectTimeoutError(endpoint_url="https://sts.amazonaws.com"), operation="AssumeRole"
    )
    assert isinstance(timeout, EndpointUnreachable)
    broken = convert(ReadTimeoutError(endpoint_url="https://x"), operation="GetObject")
    assert isinstance(broken, EndpointUnreachable)
    assert broken.retryable
    invalid = convert(ParamValidationError(report="Invalid bucket name"), operation="GetObject")
    assert isinstance(invalid, InvalidRequest)
    assert not invalid.retryable
    already = AccessDenied("x.", operation="GetObject", remedy="y.")
    assert convert(already, operation="Other") is already


def test_aws_errors_raises_from_none() -> None:
    with (
        pytest.raises(NoSuchKey) as caught,
        aws_errors(operation="GetObject", bucket="b1", key="k"),
    ):
        raise client_error("NoSuchKey", "The specified key does not exist.", status=404)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    assert caught.value.key == "k"


def test_aws_errors_lets_other_exceptions_through() -> None:
    with pytest.raises(KeyError), aws_errors(operation="GetObject"):
        raise KeyError("not ours")


def test_errors_survive_pickling() -> None:
    error = convert(
        client_error("SlowDown", "slow", status=503, retries=2),
        operation="GetObject",
        bucket="b1",
        key="k",
        rng=lambda: 0.25,
    )
    restored = pickle.loads(pickle.dumps(error))  # noqa: S301  our own object
    assert type(restored) is Throttled
    assert isinstance(restored, Throttled)
    assert restored.retry_after == error.retry_after
    assert str(restored) == str(error)
    assert restored.remedy == error.remedy


# --- sanitizing ------------------------------------------------------------------------------

LEAKY_MESSAGES = [
    f"https://logs-bucket.s3.amazonaws.com/k?X-Amz-Security-Token={TOKEN}&X-Amz-Signature=abc123",
    f"url https://b.s3.amazonaws.com/k?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature={SECRET}",
    "Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/"
    "aws4_request, SignedHeaders=host;x-amz-date, Signature=fe5f80f77d5fa3beca038a248ff027",
    f"<Credentials><SecretAccessKey>{SECRET}</SecretAccessKey>"
    f"<SessionToken>{TOKEN}</SessionToken></Credentials>",
    f"{{'X-Amz-Security-Token': b'{TOKEN}', 'SecretAccessKey': '{SECRET}'}}",
    f"the secret is {SECRET} and the token {TOKEN}.",
    f"AWS AKIAIOSFODNN7EXAMPLE:{SECRET}",
]


@pytest.mark.parametrize("message", LEAKY_MESSAGES)
def test_sanitize_removes_credentials(message: str) -> None:
    clean = sanitize(message)
    assert SECRET not in clean
    assert TOKEN not in clean
    assert TOKEN[:40] not in clean
    assert "AKIAIOSFODNN7EXAMPLE" not in clean


@pytest.mark.parametrize("message", LEAKY_MESSAGES)
def test_no_credential_reaches_an_error(message: str) -> None:
    error = convert(
        client_error("AccessDenied", message, status=403), operation="GetObject", bucket="b1"
    )
    for text in (str(error), repr(error), error.describe(), str(error.to_dict()), error.remedy):
        assert SECRET not in text
        assert TOKEN[:40] not in text


def test_sanitize_keeps_arns_keys_and_prose() -> None:
    key = (
        "AWSLogs/o-a1b2c3d4e5/111122223333/CloudTrail/us-east-1/2026/01/15/"
        "111122223333_CloudTrail_us-east-1_20260115T1200Z_AbCdEf0123456789.json.gz"
    )
    eks_key = "EKSLogs/111122223333/ProductionCluster/2026/01/15/12/firehose-1-2026-01-15-12"
    text = f"{SESSION} may not s3:GetObject on arn:aws:s3:::logs-bucket/{key}; see {eks_key}"
    assert sanitize(text, keep=(key, eks_key)) == text
    assert sanitize("Access Denied") == "Access Denied"
    assert sanitize(f"role {ROLE} refused") == f"role {ROLE} refused"


_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@given(
    secret=st.text(alphabet=_B64, min_size=40, max_size=40).filter(
        lambda s: any(c.isupper() for c in s) and any(c.islower() for c in s)
    ),
    before=st.sampled_from(
        [
            "key=",
            "secret: ",
            "SecretAccessKey='",
            '"aws_secret_access_key": "',
            "<SecretAccessKey>",
            "the secret is ",
            "password (",
            "AKIAIOSFODNN7EXAMPLE ",
            "AKIAIOSFODNN7EXAMPLE,",
            "Credentials: ",
        ]
    ),
    after=st.sampled_from(["", " ", "&", "'", '"', "</SecretAccessKey>", ".", ",", ")", "\n"]),
    prose=st.text(alphabet="abc XYZ.,:;-_", max_size=30),
)
def test_sanitize_never_leaks_a_secret_key_in_context(
    secret: str, before: str, after: str, prose: str
) -> None:
    # Named or paired, as a credential is in a header, a URL, XML, JSON, a CSV or prose.
    assert secret not in sanitize(f"{prose} {before}{secret}{after} {prose}")


@given(
    run=st.text(alphabet=_B64, min_size=40, max_size=99),
    prose=st.sampled_from(["object s3://soak-", "listed ", "(", "key ", "\n"]),
)
def test_sanitize_keeps_forty_character_runs_out_of_context(run: str, prose: str) -> None:
    """Not any 40-character run: S3 locations are full of them (issue 12, item 9)."""
    text = f"{prose}{run}-west-1/ done"
    assert sanitize(text) == text


def test_s3_locations_survive_redaction() -> None:
    # Once logged as s3://soak-<redacted>-west-1/...
    location = "s3://soak-trail/AWSLogs/111122223333/CloudTrail/us-west-1/2026/01/15/"
    line = f"object {location}x.json.gz: corrupt: bad_gzip"
    assert sanitize(line) == line


def test_secrets_the_process_holds_are_redacted_whatever_their_shape() -> None:
    from harvester import known_secrets

    held = "hunter2-is-not-shaped-like-a-key"
    assert sanitize(f"config dump: {held}!") == f"config dump: {held}!"
    known_secrets.remember(held)
    assert sanitize(f"config dump: {held}!") == "config dump: <redacted>!"


def test_redacting_filter_cleans_log_records(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("botocore.test_redaction")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.DEBUG, logger="botocore.test_redaction"):
        logger.debug("Response body: %r", f"<SecretAccessKey>{SECRET}</SecretAccessKey>".encode())
        logger.debug("headers={'X-Amz-Security-Token': b'%s'}", TOKEN)
        try:
            raise RuntimeError(f"boom: the secret is {SECRET}")
        except RuntimeError:
            logger.exception("failed")
    assert len(caplog.records) == 3
    assert SECRET not in caplog.text
    assert TOKEN[:40] not in caplog.text
    assert "boom" in caplog.text
