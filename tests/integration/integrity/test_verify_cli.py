"""``harvester verify`` on an s3:// URL, on a local copy and on an inventory source."""

from __future__ import annotations

import gzip
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from harvester.cli.context import AppContext
from harvester.cli.verify_cmds import verify
from harvester.db.migrate import upgrade
from harvester.inventory.plan import apply
from harvester.inventory.service import NotFound
from harvester.inventory.spec import AccountSpec, InventorySpec, StorageSpec
from harvester.inventory.validation import InvalidValue
from harvester.scan_s3 import S3UrlError
from harvester.settings import load_settings
from tests.conftest import FixedClock
from tests.integration.integrity.conftest import AFTER, log_keys
from tests.unit.integrity.trail import (
    ACCOUNT,
    BUCKET,
    START,
    Trail,
    altered_log,
    public_keys_json,
    signing_key,
)

pytestmark = pytest.mark.integration

USER_ERRORS = (InvalidValue, NotFound, S3UrlError)
RANGE = ["--since", "2026-01-15T00:00:00Z", "--until", "2026-01-15T06:00:00Z"]


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Cli:
    """The verify command in a small app with the main CLI's callback and error handling."""

    capsys: pytest.CaptureFixture[str]
    data_dir: Path
    keys: Path

    def __call__(self, *args: str) -> Result:
        app = typer.Typer(pretty_exceptions_enable=False)

        @app.callback()
        def main(ctx: typer.Context) -> None:
            settings = load_settings({"HARVESTER_DATA_DIR": str(self.data_dir)})
            ctx.obj = AppContext(settings=settings, clock=FixedClock(AFTER))
            ctx.call_on_close(ctx.obj.close)

        app.command("verify")(verify)
        self.capsys.readouterr()
        try:
            app(args=list(args), prog_name="harvester")
            code = 0
        except SystemExit as exc:
            code = int(exc.code or 0)
        except USER_ERRORS as exc:  # as harvester.cli.main prints them
            print(f"error: {exc}", file=sys.stderr)
            code = 2
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    keys = tmp_path / "public-keys.json"
    keys.write_text(public_keys_json(signing_key()))
    return Cli(capsys, tmp_path / "data", keys)


@pytest.fixture
def delivered(s3: Any, trail: Trail) -> Trail:
    trail.put_all(s3)
    return trail


def download(s3: Any, into: Path) -> Path:
    """What ``aws s3 sync s3://bucket into`` leaves: the keys as paths, no metadata."""
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET):
        for item in page.get("Contents", []):
            path = into / item["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read())
    return into


# --- s3:// ----------------------------------------------------------------------------------


def test_a_clean_bucket_verifies_hour_by_hour(cli: Cli, delivered: Trail) -> None:
    result = cli("verify", f"s3://{BUCKET}", *RANGE, "--public-keys", str(cli.keys), "-o", "json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["ok"] is True
    assert report["signatures_checked"] is True
    assert len(report["digests"]) == 12
    assert {d["status"] for d in report["digests"]} == {"ok"}
    assert {d["signature"] for d in report["digests"]} == {"valid"}
    assert sum(d["verified"] for d in report["digests"]) == 24
    assert report["downloaded_log_files"] == 24


def test_the_table_says_what_failed_and_the_exit_status_is_one(
    cli: Cli, delivered: Trail, s3: Any
) -> None:
    digest = delivered.digests["eu-west-1"][2]
    log = delivered.logs_of[digest][0]
    s3.put_object(Bucket=BUCKET, Key=log, Body=altered_log(delivered.objects[log].body))
    gone = delivered.digests["us-east-1"][4]
    s3.delete_object(Bucket=BUCKET, Key=gone)
    result = cli("verify", f"s3://{BUCKET}/AWSLogs/", *RANGE, "--public-keys", str(cli.keys))
    assert result.code == 1
    assert "CloudTrail digests, hour by hour" in result.out
    assert "FAILED: 1 log file altered" in result.out
    assert "MISSING (deleted)" in result.out
    assert "GAP: previous digest missing" in result.out
    assert (
        "9 of 11 digests verified; 21 of 22 log files verified, 0 missing, 1 altered." in result.out
    )
    assert f"altered: s3://{BUCKET}/{log}" in result.err


def test_a_prefix_inside_the_digest_folder_verifies_that_region(cli: Cli, delivered: Trail) -> None:
    prefix = f"AWSLogs/{ACCOUNT}/CloudTrail-Digest/eu-west-1/"
    result = cli(
        "verify", f"s3://{BUCKET}/{prefix}", *RANGE, "--public-keys", str(cli.keys), "-o", "json"
    )
    assert result.code == 0, result.err
    assert {d["region"] for d in result.json()["digests"]} == {"eu-west-1"}


def test_a_narrower_range_verifies_fewer_hours(cli: Cli, delivered: Trail) -> None:
    result = cli(
        "verify", f"s3://{BUCKET}", "--since", "2026-01-15T02:30:00Z", "--until",
        "2026-01-15T04:00:00Z", "--public-keys", str(cli.keys), "-o", "json",
    )  # fmt: skip
    assert result.code == 0, result.err
    ends = sorted({d["end"] for d in result.json()["digests"]})
    # The hours that overlap the range: the digest ending 04:00:31 covers 04:00.
    assert ends == ["2026-01-15T03:00:31+00:00", "2026-01-15T04:00:31+00:00"]


def test_digests_that_stopped_while_logs_arrived_fail_the_audit(
    cli: Cli, s3: Any, trail: Trail
) -> None:
    for key in trail.digests["us-east-1"][3:]:
        del trail.objects[key]
    trail.put_all(s3)
    # Up to now (an hour after the last hour): the 03:30 log's digest is over two hours late.
    result = cli("verify", f"s3://{BUCKET}", "--since", "2026-01-15T00:00Z", "--until",
                 AFTER.isoformat(), "--public-keys", str(cli.keys), "-o", "json")  # fmt: skip
    assert result.code == 1
    [late] = result.json()["overdue"]
    assert late["region"] == "us-east-1"
    assert late["last_digest_end"] == "2026-01-15T03:00:31+00:00"


def test_no_digests_in_range_is_a_failure_with_an_explanation(cli: Cli, delivered: Trail) -> None:
    result = cli("verify", f"s3://{BUCKET}", "--since", "2025-01-01T00:00Z", "--until",
                 "2025-01-02T00:00Z", "--public-keys", str(cli.keys))  # fmt: skip
    assert result.code == 1
    assert "No CloudTrail digest files were found" in result.err


def test_a_bad_public_key_file_is_an_operator_error(
    cli: Cli, delivered: Trail, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = cli("verify", f"s3://{BUCKET}", *RANGE, "--public-keys", str(bad))
    assert result.code == 2
    assert "--public-keys" in result.err


def test_a_missing_bucket_is_an_operator_error(cli: Cli, aws: str) -> None:
    result = cli("verify", "s3://no-such-trail-bucket", *RANGE, "--public-keys", str(cli.keys))
    assert result.code == 2
    assert "no-such-trail-bucket" in result.err


# --- a local copy ---------------------------------------------------------------------------


def test_a_local_copy_checks_the_hash_chain_and_log_files(
    cli: Cli, delivered: Trail, s3: Any, tmp_path: Path
) -> None:
    copy = download(s3, tmp_path / "copy")
    result = cli("verify", str(copy), *RANGE)
    assert result.code == 0, result.out + result.err
    assert "signatures were not checked" in result.out
    assert "present (signature not checked)" in result.out
    assert "12 of 12 digests verified; 24 of 24 log files verified" in result.out


def test_a_local_copy_catches_an_edited_digest_and_an_altered_log(
    cli: Cli, delivered: Trail, s3: Any, tmp_path: Path
) -> None:
    copy = download(s3, tmp_path / "copy")
    keys = delivered.digests["us-east-1"]
    path = copy / keys[1]
    document = json.loads(gzip.decompress(path.read_bytes()))
    document["logFiles"] = document["logFiles"][:1]
    path.write_bytes(gzip.compress(json.dumps(document).encode()))
    log = delivered.logs_of[delivered.digests["eu-west-1"][0]][1]
    (copy / log).write_bytes(altered_log((copy / log).read_bytes()))
    result = cli("verify", str(copy / "AWSLogs"), *RANGE, "-o", "json")
    assert result.code == 1
    report = result.json()
    assert report["signatures_checked"] is False
    by_digest = {d["digest"]: d for d in report["digests"]}
    assert by_digest[str(copy / keys[2])]["chain"] == "broken"
    assert by_digest[str(copy / delivered.digests["eu-west-1"][0])]["altered"] == [log]


def test_a_local_copy_of_a_prefixed_bucket_resolves_full_keys(
    cli: Cli, s3: Any, tmp_path: Path
) -> None:
    prefixed = Trail(prefix="org/audit/")
    prefixed.hours(["us-east-1"], count=3)
    prefixed.put_all(s3)
    # Synced from below the prefix: the copy starts at AWSLogs/.
    copy = download(s3, tmp_path / "copy") / "org" / "audit"
    result = cli("verify", str(copy), *RANGE, "-o", "json")
    assert result.code == 0, result.out + result.err
    assert [d["chain"] for d in result.json()["digests"]] == ["start", "intact", "intact"]


# --- an inventory source --------------------------------------------------------------------


@pytest.fixture
def source(cli: Cli, aws: str) -> str:
    settings = load_settings({"HARVESTER_DATA_DIR": str(cli.data_dir)})
    app = AppContext(settings=settings, clock=FixedClock(AFTER))
    upgrade(app.engine)
    spec = InventorySpec(
        accounts=(
            AccountSpec(
                account_id=ACCOUNT,
                name="audited",
                cloudtrail=StorageSpec(BUCKET, "us-east-1", "AWSLogs"),
            ),
        )
    )
    with app.session() as session:
        apply(session, spec, box=app.box, clock=app.clock)
    app.close()
    return ACCOUNT


def test_an_inventory_source_is_verified_with_its_role_and_ledger(
    cli: Cli, delivered: Trail, source: str
) -> None:
    result = cli("verify", source, *RANGE, "--public-keys", str(cli.keys), "-o", "json")
    assert result.code == 0, result.err
    report = result.json()
    assert report["target"].startswith("source ")
    assert len(report["digests"]) == 12
    # Nothing was harvested: every log file was read here, and each is reported unharvested.
    assert report["downloaded_log_files"] == 24
    assert sorted(k for d in report["digests"] for k in d["unharvested"]) == log_keys(delivered)


def test_an_unknown_source_is_an_operator_error(cli: Cli, source: str) -> None:
    result = cli("verify", "999999999999", *RANGE)
    assert result.code == 2
    assert "no source for account 999999999999" in result.err


def test_missing_log_in_local_copy(cli: Cli, delivered: Trail, s3: Any, tmp_path: Path) -> None:
    copy = download(s3, tmp_path / "copy")
    digest = delivered.digests["eu-west-1"][3]
    log = delivered.logs_of[digest][0]
    (copy / log).unlink()
    result = cli("verify", str(copy), *RANGE)
    assert result.code == 1
    assert "1 missing" in result.out
    assert f"missing: {copy / log}" in result.err


def test_the_local_copy_note_is_kept_out_of_json(
    cli: Cli, delivered: Trail, s3: Any, tmp_path: Path
) -> None:
    copy = download(s3, tmp_path / "copy")
    result = cli("verify", str(copy), *RANGE, "-o", "json")
    json.loads(result.out)  # nothing but the report on stdout
    assert START.isoformat() <= result.json()["digests"][0]["start"]
