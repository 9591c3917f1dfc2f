"""Peak memory of ``harvester scan`` on a log object with millions of distinct principals.

    python -m benchmarks.scan_memory                      # 2,000,000 principals
    python -m benchmarks.scan_memory --principals 200000  # quicker

The input is one generated CloudTrail object (gzip, cached in ``--cache-dir``): every record
is made by a different principal (IAM users, assumed-role sessions, federated users), from
varied networks and tools, with a few sensitive calls among the reads, so that every
behavioural detector keeps a baseline per principal and some rules fire. Each measurement
runs ``harvester scan FILE --output jsonl`` in a fresh process (the command an operator runs)
and reads its peak RSS from the kernel (``wait4``).

The baseline, measured in the same run, is the same scan with the caps lifted
(``HARVESTER_SCAN_MEMORY_MB=0``, what every release before the caps did): its peak RSS
against the capped scan's is the ratio printed. The documented ceiling is 512 MB
(docs/operations.md, "Offline scan memory").

Measured on the development machine (2 CPUs shared with other work, Python 3.11), 2,000,000
principals (89 MB gzip, 2 million records): before the ceiling existed, ``harvester scan``
peaked at 1,594 MB RSS; with the default ceiling, 432 MB (5.6 million baselines and 1.8
million event ids forgotten, and said so). 200,000 principals: 646 MB with the caps lifted,
456 MB capped (with the earlier shares of 40/10/6%; now 30/8/5%).
"""

from __future__ import annotations

import argparse
import gzip
import os
import random
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

CEILING_MB = 512
SEED = 20261206
ACCOUNT = "210987654321"
_CALLS = (
    ("ec2.amazonaws.com", "DescribeInstances", True),
    ("s3.amazonaws.com", "ListBuckets", True),
    ("sts.amazonaws.com", "GetCallerIdentity", True),
    ("iam.amazonaws.com", "ListRoles", True),
    ("kms.amazonaws.com", "Decrypt", True),
    ("secretsmanager.amazonaws.com", "GetSecretValue", True),
    ("iam.amazonaws.com", "CreateAccessKey", False),
    ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", False),
)
_AGENTS = (
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1 lang/python#3.11.8",
    "APN/1.0 HashiCorp/1.0 Terraform/1.7.5 (+https://www.terraform.io)",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/122.0",
)
_REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")


def _identity(n: int) -> str:
    kind = n % 3
    if kind == 0:
        return (
            f'{{"type":"IAMUser","principalId":"AIDA{n:016d}","arn":"arn:aws:iam::{ACCOUNT}:'
            f'user/user-{n}","accountId":"{ACCOUNT}","accessKeyId":"AKIA{n:016d}",'
            f'"userName":"user-{n}"}}'
        )
    if kind == 1:
        return (
            f'{{"type":"AssumedRole","principalId":"AROA{n % 97:016d}:session-{n}","arn":'
            f'"arn:aws:sts::{ACCOUNT}:assumed-role/role-{n % 97}/session-{n}","accountId":'
            f'"{ACCOUNT}","accessKeyId":"ASIA{n:016d}","sessionContext":{{"sessionIssuer":'
            f'{{"type":"Role","principalId":"AROA{n % 97:016d}","arn":"arn:aws:iam::{ACCOUNT}:'
            f'role/role-{n % 97}","accountId":"{ACCOUNT}","userName":"role-{n % 97}"}},'
            f'"attributes":{{"creationDate":"2026-11-30T00:00:00Z","mfaAuthenticated":"false"}}}}}}'
        )
    return (
        f'{{"type":"FederatedUser","principalId":"{ACCOUNT}:fed-{n}","arn":"arn:aws:sts::'
        f'{ACCOUNT}:federated-user/fed-{n}","accountId":"{ACCOUNT}","accessKeyId":'
        f'"ASIA{n:016d}"}}'
    )


def generate(path: Path, principals: int) -> None:
    """One CloudTrail object: ``principals`` records, each by a principal of its own."""
    rng = random.Random(SEED)
    start = 1_764_547_200  # 2025-12-01T00:00:00Z: the records span about 9 days
    step = max(1, 9 * 86400 // principals)
    tmp = path.with_suffix(".tmp")
    with gzip.open(tmp, "wt", compresslevel=6) as out:
        out.write('{"Records":[')
        for n in range(principals):
            source, name, read_only = _CALLS[0 if rng.random() < 0.7 else rng.randrange(8)]
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + n * step))
            ip = f"{rng.randrange(1, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{n % 250 + 1}"
            out.write(
                f'{"," if n else ""}{{"eventVersion":"1.09","userIdentity":{_identity(n)},'
                f'"eventTime":"{when}","eventSource":"{source}","eventName":"{name}",'
                f'"awsRegion":"{_REGIONS[n % 4]}","sourceIPAddress":"{ip}",'
                f'"userAgent":"{_AGENTS[n % 4]}","requestParameters":null,'
                f'"responseElements":null,"requestID":"r{n:012x}","eventID":'
                f'"00000000-0000-4000-8000-{n:012x}","readOnly":{"true" if read_only else "false"},'
                f'"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":'
                f'"{ACCOUNT}","eventCategory":"Management"}}'
            )
        out.write("]}")
    tmp.rename(path)


@dataclass(frozen=True)
class Run:
    peak_rss_mb: float
    seconds: float
    code: int
    stderr_tail: str


def measure(path: Path, *, memory_mb: int | None) -> Run:
    """``harvester scan`` in a fresh process; its peak RSS from the kernel."""
    env = dict(os.environ)
    if memory_mb is not None:
        env["HARVESTER_SCAN_MEMORY_MB"] = str(memory_mb)
    started = time.perf_counter()
    child = subprocess.Popen(
        [Path(sys.executable).with_name("harvester"), "scan", str(path), "--output", "jsonl"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert child.stderr is not None
    stderr = child.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    tail = "\n".join(line for line in stderr.splitlines()[-3:] if line.strip())
    # ru_maxrss is in KiB on Linux.
    return Run(usage.ru_maxrss / 1024, time.perf_counter() - started, child.returncode, tail)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--principals", type=int, default=2_000_000)
    parser.add_argument("--cache-dir", type=Path, default=Path("benchmarks/.cache"))
    parser.add_argument(
        "--skip-baseline", action="store_true", help="Measure the capped scan only."
    )
    args = parser.parse_args(argv)
    args.cache_dir.mkdir(parents=True, exist_ok=True)
    # A CloudTrail file name, so that scan knows what the object holds.
    name = f"{ACCOUNT}_CloudTrail_us-east-1_20251201T0000Z_p{args.principals}s{SEED}.json.gz"
    path = args.cache_dir / name
    if not path.exists():
        print(f"generating {path} ...", flush=True)
        generate(path, args.principals)
    print(
        f"input: {path} ({path.stat().st_size / 1e6:.1f} MB gzip, {args.principals:,} principals)"
    )
    capped = measure(path, memory_mb=None)
    print(
        f"scan (capped, default):   peak RSS {capped.peak_rss_mb:,.0f} MB in {capped.seconds:.0f}s"
        f" (exit {capped.code}); ceiling {CEILING_MB} MB"
    )
    if capped.stderr_tail:
        print("  stderr: " + capped.stderr_tail.replace("\n", "\n          "))
    if not args.skip_baseline:
        lifted = measure(path, memory_mb=0)
        print(
            f"scan (caps lifted):       peak RSS {lifted.peak_rss_mb:,.0f} MB in "
            f"{lifted.seconds:.0f}s (exit {lifted.code})"
        )
        print(f"ratio lifted / capped:    {lifted.peak_rss_mb / capped.peak_rss_mb:.2f}x")
    return 0 if capped.peak_rss_mb <= CEILING_MB and capped.code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
