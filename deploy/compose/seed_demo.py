"""The compose demo's seeding job: generated logs into the moto S3, the inventory into PostgreSQL.

Run by the ``demo-seed`` service of deploy/docker-compose.yml (profile ``demo``) in the
harvester image, after the migrations. It writes ``DEMO_DAYS`` days (default 14, as
``harvester demo``: the attacks fall on days 8 to 13) of an
organization's CloudTrail and EKS audit logs, with attacks injected, into the buckets the
demo inventory names, then applies that inventory; the fleet's beat and workers take it from
there. Idempotent enough for a demo: a second run writes the same objects again and applies
an unchanged inventory.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime

from harvester.demo import demo_inventory, demo_start, seed_bucket
from harvester.inventory.plan import apply
from harvester.runtime import Runtime
from harvester.settings import load_settings
from harvester.synth.org import default_org


def wait_for(url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/moto-api/", timeout=2):  # noqa: S310  the demo's moto
                return
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                sys.exit(f"error: the moto server at {url} did not answer in {timeout:.0f}s")
            time.sleep(1)


def main() -> int:
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    days = int(os.environ.get("DEMO_DAYS", "14"))
    wait_for(endpoint)
    org = default_org(7)
    start = demo_start(datetime.now(UTC), days)
    seeded = seed_bucket(endpoint, org, start=start, days=days, scale=0.5, progress=print)
    print(f"seeded {seeded.objects} objects ({seeded.records} records) into {endpoint}")
    rt = Runtime.build(load_settings())
    try:
        with rt.sessions.begin() as session:
            changes = apply(session, demo_inventory(org), box=rt.box, clock=rt.clock)
    finally:
        rt.close()
    print(f"applied the demo inventory ({len(changes)} change(s)); beat schedules it next")
    return 0


if __name__ == "__main__":
    sys.exit(main())
