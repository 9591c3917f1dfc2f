"""How much digest verification adds to a harvest: one region, one day, moto server on loopback.

    .venv/bin/python -m tests.integration.integrity.measure_overhead [--files-per-hour 12]
        [--records 100] [--rounds 3]

Each round starts a fresh SQLite database, harvests the day with the pipeline's own
functions (list, GET, gunzip, parse, normalize, encode batches: what the harvest workers do),
then verifies the day's 24 digests with ``verify_new_digests`` (the ledger's hashes, so no log
file is downloaded again). For comparison it also verifies with no ledger, downloading and
hashing every log file as ``aws cloudtrail validate-logs`` does. Prints medians and ratios.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
from sqlalchemy import select

from harvester.aws.identity import source_info_from_row
from harvester.db.migrate import upgrade
from harvester.db.models import Source
from harvester.integrity.keys import FilePublicKeys
from harvester.integrity.service import find_digests, verify_digests, verify_new_digests
from harvester.integrity.stores import S3TrailStore
from harvester.integrity.verify import Verifier
from harvester.inventory.plan import apply
from harvester.inventory.spec import AccountSpec, InventorySpec, StorageSpec
from harvester.pipeline import harvest_objects, harvest_source, load_source
from harvester.runtime import Runtime
from harvester.settings import load_settings
from harvester.sources.s3lister import S3Lister
from tests.conftest import FixedClock
from tests.unit.integrity.trail import ACCOUNT, BUCKET, START, Trail, public_keys_json, signing_key

REGION = "us-east-1"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto server did not start")


def _day(files_per_hour: int, records: int) -> Trail:
    trail = Trail()
    step = 60 // files_per_hour
    for hour in range(24):
        begin = START + timedelta(hours=hour)
        logs = [
            trail.log(REGION, begin + timedelta(minutes=1 + step * n), records=records)
            for n in range(files_per_hour)
        ]
        trail.digest(REGION, end=begin + timedelta(hours=1), logs=logs)
    return trail


def _timed(call: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    value = call()
    return time.perf_counter() - began, value


def _round(workdir: Path, keys: FilePublicKeys) -> dict[str, float]:
    clock = FixedClock(START + timedelta(hours=24, minutes=30))
    settings = load_settings(
        {
            "HARVESTER_DATA_DIR": str(workdir),
            "HARVESTER_DATABASE_URL": f"sqlite:///{workdir / 'h.db'}",
            "HARVESTER_SECRET_KEY": "measure",
        }
    )
    rt = Runtime.build(settings, clock=clock, embedded=True)
    upgrade(rt.engine)
    spec = InventorySpec(
        accounts=(
            AccountSpec(
                account_id=ACCOUNT,
                name="measured",
                cloudtrail=StorageSpec(BUCKET, REGION, "AWSLogs"),
            ),
        )
    )
    with rt.sessions.begin() as session:
        apply(session, spec, box=rt.box, clock=clock)
        source_id = session.scalars(select(Source.id)).one()

    def harvest() -> int:
        groups: list[Sequence[tuple[str, str]]] = []
        harvest_source(rt, source_id=source_id, enqueue=lambda _s, objs: groups.append(objs),
                       lease_ttl=timedelta(minutes=30))  # fmt: skip
        done = 0
        for objects in groups:
            result = harvest_objects(
                rt, source_id=source_id, objects=objects, emit=lambda _b, _n: None
            )
            done += sum(1 for o in result.objects if o.status == "done")
        return done

    harvest_seconds, harvested = _timed(harvest)
    with rt.sessions() as session:
        row = load_source(session, source_id)
        assert row is not None
        info = source_info_from_row(row, secret_box=rt.box)
    client = rt.aws.s3(info.chain, region=info.region)

    def verify() -> Any:
        with rt.sessions.begin() as session:
            return verify_new_digests(
                session, lister=S3Lister(client, BUCKET), s3=client, source_id=source_id,
                info=info, clock=clock, key_provider=keys,
            )  # fmt: skip

    if os.environ.get("MEASURE_PROFILE"):
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        verify_seconds, result = _timed(verify)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    else:
        verify_seconds, result = _timed(verify)
    assert result.digests_verified == 24, result.summary()
    assert result.log_files_downloaded == 0, result.summary()

    def verify_downloading() -> Any:
        lister = S3Lister(client, BUCKET)
        folder = f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/"
        digests = find_digests(lister, folders=[folder], since=START - timedelta(hours=1),
                               until=START + timedelta(hours=24))  # fmt: skip
        store = S3TrailStore(client, BUCKET)
        checks = verify_digests(digests, verifier=Verifier(store=store, keys=keys, clock=clock))
        assert len(checks) == 24
        assert store.downloads == harvested
        return checks

    download_seconds, _ = _timed(verify_downloading)
    rt.close()
    return {
        "harvest": harvest_seconds,
        "verify": verify_seconds,
        "verify_downloading": download_seconds,
        "objects": harvested,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files-per-hour", type=int, default=12)
    parser.add_argument("--records", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)

    proc, url = _start_moto()
    os.environ.update(
        AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="measure", AWS_SECRET_ACCESS_KEY="measure",
        AWS_DEFAULT_REGION=REGION, AWS_EC2_METADATA_DISABLED="true",
    )  # fmt: skip
    try:
        trail = _day(args.files_per_hour, args.records)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        trail.put_all(s3)
        logs = sum(len(v) for v in trail.logs_of.values())
        size = sum(len(o.body) for o in trail.objects.values())
        print(f"one region, one day: {logs} log files, 24 digests, {size / 1e6:.1f} MB gzip")
        keys = FilePublicKeys.from_json(public_keys_json(signing_key()))
        rounds = []
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as workdir:
                rounds.append(_round(Path(workdir), keys))
        harvest = statistics.median(r["harvest"] for r in rounds)
        verify = statistics.median(r["verify"] for r in rounds)
        downloading = statistics.median(r["verify_downloading"] for r in rounds)
        print(
            f"harvest (list, GET, parse, normalize, batch): {harvest:.2f} s (median of {len(rounds)})"
        )
        print(
            f"verify with the ledger's hashes:              {verify:.2f} s  -> {verify / harvest:.1%} of harvest"
        )
        print(
            f"verify downloading every log (no ledger):     {downloading:.2f} s  -> {downloading / harvest:.1%} of harvest"
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
