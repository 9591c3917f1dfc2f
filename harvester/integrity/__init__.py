"""CloudTrail log file integrity validation: digests, signatures, the chain, the log files.

The harvest calls :func:`verify_new_digests` once per CloudTrail source run; ``harvester
verify`` calls :func:`find_digests` and :func:`verify_digests` on a bucket or a local copy.
"""

from harvester.integrity.digest import (
    Digest,
    DigestFormatError,
    LogFileEntry,
    parse_digest,
    signing_string,
)
from harvester.integrity.keys import (
    CloudTrailPublicKeys,
    FilePublicKeys,
    KeyCache,
    PublicKey,
    PublicKeyError,
    PublicKeyProvider,
)
from harvester.integrity.service import (
    IntegrityPolicy,
    IntegrityRunResult,
    find_digests,
    verify_digests,
    verify_new_digests,
)
from harvester.integrity.stores import LocalTrailStore, S3TrailStore, TrailStore
from harvester.integrity.verify import (
    ChainStatus,
    DigestCheck,
    DigestStatus,
    LogStatus,
    SignatureStatus,
    Verifier,
    VerifyPolicy,
)

__all__ = [
    "ChainStatus",
    "CloudTrailPublicKeys",
    "Digest",
    "DigestCheck",
    "DigestFormatError",
    "DigestStatus",
    "FilePublicKeys",
    "IntegrityPolicy",
    "IntegrityRunResult",
    "KeyCache",
    "LocalTrailStore",
    "LogFileEntry",
    "LogStatus",
    "PublicKey",
    "PublicKeyError",
    "PublicKeyProvider",
    "S3TrailStore",
    "SignatureStatus",
    "TrailStore",
    "Verifier",
    "VerifyPolicy",
    "find_digests",
    "parse_digest",
    "signing_string",
    "verify_digests",
    "verify_new_digests",
]
