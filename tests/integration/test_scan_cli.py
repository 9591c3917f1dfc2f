"""``harvester scan`` and ``parse`` on an s3:// URL served by the moto server, and on a folder."""

from __future__ import annotations

import gzip
import json
import random
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from harvester.cli.main import main
from harvester.synth.logs import cloudtrail_record

KEY = (
    "AWSLogs/111122223333/CloudTrail/us-east-1/2026/01/15/"
    "111122223333_CloudTrail_us-east-1_20260115T1200Z_abcdefabcdef0001.json.gz"
)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trail(aws: str) -> list[str]:
    rng = random.Random(3)
    when = datetime(2026, 1, 15, 12, tzinfo=UTC)
    records = [
        cloudtrail_record(rng, account_id="111122223333", region="us-east-1", when=when)
        for _ in range(25)
    ]
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="scan-trail")
    s3.put_object(
        Bucket="scan-trail", Key=KEY, Body=gzip.compress(json.dumps({"Records": records}).encode())
    )
    s3.put_object(
        Bucket="scan-trail", Key=KEY.replace("0001", "0002"), Body=b"\x1f\x8b\x08\x00broken"
    )
    return [r["eventID"] for r in records]


def test_scan_s3_url(aws: str, trail: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys, "scan", "s3://scan-trail/AWSLogs/", "--endpoint-url", aws, "-o", "jsonl"
    )
    assert code == 0, err
    findings = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert all(f["type"] in ("anomaly", "incident") for f in findings)
    assert all(set(f["event_ids"]) <= set(trail) for f in findings if f["type"] == "anomaly")
    # The summary goes to stderr with jsonl; the corrupt object is named there, the scan went on.
    assert "111122223333" in err
    assert "25" in err
    assert "corrupt:" in err
    assert KEY.replace("0001", "0002") in err


def test_parse_s3_url_to_file(
    aws: str, trail: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "events.jsonl"
    code, _, err = run(
        capsys, "parse", "s3://scan-trail/", "--endpoint-url", aws, "-o", str(target)
    )
    assert code == 0, err
    ids = [json.loads(line)["id"] for line in target.read_text().splitlines()]
    assert sorted(ids) == sorted(trail)
    assert "wrote 25 events from 2 objects" in err


def write_trail(folder: Path, *, seed: int, records: int) -> None:
    """A generated CloudTrail object where ``aws s3 sync`` would leave it under ``folder``."""
    rng = random.Random(seed)
    when = datetime(2026, 1, 15, 12, tzinfo=UTC)
    path = folder / KEY
    path.parent.mkdir(parents=True)
    body = [
        cloudtrail_record(rng, account_id="111122223333", region="us-east-1", when=when)
        for _ in range(records)
    ]
    path.write_bytes(gzip.compress(json.dumps({"Records": body}).encode()))


def test_scan_local_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_trail(tmp_path, seed=4, records=10)
    code, out, err = run(capsys, "scan", str(tmp_path))
    assert code == 0, err
    assert "Scanned" in out
    assert "us-east-1" in out


def test_scan_bad_url_is_explained(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "scan", "s3:/typo")
    assert code == 2
    assert out == ""
    assert "not an s3:// URL" in err


def test_scan_says_when_its_memory_ceiling_made_it_forget(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from harvester.cli import scan_cmds
    from harvester.scan_limits import ScanLimits

    # Caps small enough for 200 principals to overflow them (the real ones take millions).
    tiny = ScanLimits(256, state_bytes=20_000, claims=50, anomalies=3)
    monkeypatch.setattr(scan_cmds.ScanLimits, "for_megabytes", lambda mb: tiny)
    write_trail(tmp_path, seed=5, records=200)
    code, out, err = run(capsys, "scan", str(tmp_path), "-o", "jsonl")
    assert code == 0, err
    assert "memory ceiling 256 MB reached: forgot" in err
    assert "baseline(s)" in err
    assert "event id(s)" in err
    assert len([line for line in out.splitlines() if '"anomaly"' in line]) <= 3


def test_scan_refuses_a_ceiling_too_small_to_run(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "scan", "--memory-mb", "10", ".")
    assert code == 2
    assert "--memory-mb" in err
    assert "below the 256 MB the process needs" in err


def _records(count: int) -> list[dict[str, object]]:
    rng = random.Random(5)
    when = datetime(2026, 1, 15, 12, tzinfo=UTC)
    return [
        cloudtrail_record(rng, account_id="111122223333", region="us-east-1", when=when)
        for _ in range(count)
    ]


def test_parse_a_renamed_object_by_its_content(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    trail = tmp_path / "trail.json.gz"
    trail.write_bytes(gzip.compress(json.dumps({"Records": _records(25)}).encode()))
    out = tmp_path / "events.jsonl"
    code, _, err = run(capsys, "parse", str(trail), "-o", str(out))
    assert code == 0, err
    assert "wrote 25 events from 1 objects" in err
    assert len(out.read_text().splitlines()) == 25


def test_a_named_file_that_is_no_log_fails_and_folders_list_theirs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes.json"
    notes.write_text('{"hello": "world"}')
    folder = tmp_path / "sync"
    folder.mkdir()
    (folder / "export.csv").write_text("a,b\n")
    code, _, err = run(capsys, "parse", str(notes), str(folder), "-o", str(tmp_path / "o.jsonl"))
    assert code == 1
    assert f"unrecognised: {notes}: not a CloudTrail log file" in err
    assert "skipped 1 files" in err
    assert f"unrecognised: {folder / 'export.csv'}" in err


def test_control_characters_in_keys_are_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An OSC 52 clipboard write and a screen clear in a file name reach the terminal as text.
    hostile = tmp_path / "x\x1b]52;c;ZXZpbA==\x07\x1b[2J.json.gz"
    hostile.write_bytes(b"\x1f\x8b\x08\x00broken")
    code, _, err = run(capsys, "scan", str(tmp_path))
    assert code == 0
    assert "\x1b" not in err
    assert "\x07" not in err
    assert "x\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J.json.gz" in err
