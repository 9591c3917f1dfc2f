"""The inventory file's destinations: parsed with ${ENV} secrets, validated, exported without them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from harvester.detect.model import Severity
from harvester.inventory.yamlfile import InventoryFileError, dump_inventory, parse_inventory

DOC = """\
destinations:
  - name: soc-hook
    type: webhook
    url: https://hooks.example.com/harvester
    secret: ${HOOK_SECRET}
    min_severity: high
    detectors: ["cloudtrail.*"]
    accounts: ["111122223333"]
    renotify_after: 12h
    rate_limit: 30
  - name: pager
    type: pagerduty
    secret: ${PD_KEY}
"""


def test_destinations_are_read_with_env_secrets() -> None:
    spec = parse_inventory(DOC, environ={"HOOK_SECRET": "s3cr3t-value", "PD_KEY": "R0UTINGKEY"})
    hook, pager = spec.destinations
    assert hook.secret == "s3cr3t-value"
    assert hook.min_severity is Severity.high
    assert hook.detectors == ("cloudtrail.*",)
    assert hook.renotify_after == timedelta(hours=12)
    assert hook.rate_limit == 30
    assert (pager.type, pager.secret, pager.min_severity) == (
        "pagerduty",
        "R0UTINGKEY",
        Severity.medium,
    )


def test_export_leaves_secrets_out_and_reads_back_the_same() -> None:
    spec = parse_inventory(DOC, environ={"HOOK_SECRET": "s3cr3t-value", "PD_KEY": "R0UTINGKEY"})
    text = dump_inventory(spec.with_secrets_removed())
    assert "s3cr3t-value" not in text
    assert "R0UTINGKEY" not in text
    again = parse_inventory(text, environ={})
    assert again.destinations == spec.with_secrets_removed().destinations


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("name: x\n    type: carrier-pigeon", "type"),
        ("name: x\n    type: webhook", "needs url"),
        ("name: x\n    type: webhook\n    url: ftp://example.com/", "http"),
        ("name: x\n    type: sns\n    topic_arn: not-an-arn", "topic ARN"),
        (
            "name: x\n    type: webhook\n    url: https://a.example/\n    min_severity: urgent",
            "severity",
        ),
        ("name: x\n    type: webhook\n    url: https://a.example/\n    kinds: [alert]", "kinds"),
        ("name: x\n    type: webhook\n    url: https://a.example/\n    colour: red", "unknown key"),
    ],
)
def test_bad_destinations_are_explained_with_their_line(entry: str, message: str) -> None:
    with pytest.raises(InventoryFileError) as err:
        parse_inventory(f"destinations:\n  - {entry}\n", path="inv.yaml", environ={})
    assert message in str(err.value)
    assert str(err.value).startswith("inv.yaml:")


def test_destination_names_are_unique() -> None:
    doc = "destinations:\n" + "  - {name: a, type: webhook, url: 'https://a.example/'}\n" * 2
    with pytest.raises(InventoryFileError, match="unique"):
        parse_inventory(doc, environ={})
