"""A source whose harvests work but whose logs never came, or stopped, is ``silent``."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from harvester.cli.inventory_cmds import source_record
from harvester.db.models import Source
from harvester.embedded import run_cycle
from harvester.metrics_inventory import InventoryConfig, load_snapshot, snapshot_families
from harvester.runtime import Runtime
from tests.conftest import FixedClock
from tests.integration.seeding import ACCOUNTS, BUCKET, ORG, REGIONS, Bucket


def sources(rt: Runtime) -> dict[str, Source]:
    """account (or account/cluster) → its source row, with the account loaded."""
    with rt.sessions() as session:
        rows = session.scalars(
            select(Source).options(selectinload(Source.account), selectinload(Source.role))
        ).all()
        return {
            r.account.account_id + (f"/{r.cluster_name}" if r.cluster_name else ""): r for r in rows
        }


def silent_count(rt: Runtime, kind: str) -> float:
    with rt.sessions() as session:
        snapshot = load_snapshot(session, now=rt.clock(), config=InventoryConfig())
    (family,) = [
        f
        for f in snapshot_families(snapshot, config=InventoryConfig())
        if f.name == "harvester_sources"
    ]
    return sum(s.value for s in family.samples if s.labels == {"kind": kind, "health": "silent"})


def test_a_source_with_no_logs_is_silent_after_its_first_harvest(
    runtime: Runtime, bucket: Bucket, now: FixedClock
) -> None:
    # One account delivers; the other two and the EKS cluster have nothing at all.
    bucket.put_trail(ACCOUNTS[1], REGIONS[0], now() - timedelta(minutes=10))

    result = run_cycle(runtime)

    rows = sources(runtime)
    assert rows[ACCOUNTS[1]].health == "ok"
    assert rows[ACCOUNTS[1]].health_reason is None
    empty = rows[ACCOUNTS[0]]
    assert empty.health == "silent"
    folder = f"s3://{BUCKET}/AWSLogs/{ORG}/{ACCOUNTS[0]}/CloudTrail/"
    assert empty.health_reason is not None
    assert empty.health_reason.startswith(f"no CloudTrail logs under {folder} since the first")
    assert f"harvester doctor {empty.id}" in empty.health_reason
    assert "EKS audit logs under s3://eks-audit/EKSLogs/" in str(
        rows[f"{ACCOUNTS[0]}/payments"].health_reason
    )
    # `run --once` says so, `sources list` says so, and the inventory metric counts them.
    assert sorted(line.split(":")[0] for line in result.silent) == sorted(
        f"source {rows[key].id}" for key in (ACCOUNTS[0], ACCOUNTS[2], f"{ACCOUNTS[0]}/payments")
    )
    assert source_record(empty, now())["health"] == f"silent: {empty.health_reason}"
    assert silent_count(runtime, "cloudtrail") == 2
    assert silent_count(runtime, "eks") == 1


def test_a_source_whose_logs_stop_turns_silent_and_recovers(
    runtime: Runtime, bucket: Bucket, now: FixedClock
) -> None:
    account = ACCOUNTS[1]
    bucket.put_trail(account, REGIONS[0], now() - timedelta(minutes=10))
    run_cycle(runtime)
    assert sources(runtime)[account].health == "ok"

    # Within the CloudTrail expectation (1 hour by default): still fine.
    now.advance(timedelta(minutes=45))
    run_cycle(runtime)
    assert sources(runtime)[account].health == "ok"

    now.advance(timedelta(hours=2))
    result = run_cycle(runtime)
    row = sources(runtime)[account]
    assert row.health == "silent"
    assert "no new CloudTrail log under" in str(row.health_reason)
    assert "for 2h55m (expected one at least every 1h)" in str(row.health_reason)
    assert any(line.startswith(f"source {row.id}: no new CloudTrail log") for line in result.silent)
    # The run itself succeeded: silent is not stale.
    assert row.last_success_at == now()

    bucket.put_trail(account, REGIONS[0], now() - timedelta(minutes=2))
    now.advance(timedelta(minutes=6))  # its next slot
    run_cycle(runtime)
    row = sources(runtime)[account]
    assert (row.health, row.health_reason) == ("ok", None)
