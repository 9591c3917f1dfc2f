"""audit-harvester: harvest CloudTrail and EKS audit logs from S3 and score them for anomalies."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("audit-harvester")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0"
