"""Destinations through the CLI: applied from the inventory file, listed without secrets,
exported without secrets, tried with `destinations test` against a real receiver."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.conftest import Cli
from tests.integration.notify.receiver import Receiver

pytestmark = pytest.mark.integration

SECRET = "whsec-cli-test-9f8e7d6c5b4a"


def _file(tmp_path: Path, receiver: Receiver) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(
        "destinations:\n"
        "  - name: soc\n"
        "    type: webhook\n"
        f"    url: {receiver.url}/hook\n"
        "    secret: ${SOC_HOOK_SECRET}\n"
        "    min_severity: high\n"
    )
    return path


def test_apply_list_export_and_test(
    cli: Cli, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOC_HOOK_SECRET", SECRET)
    path = _file(tmp_path, receiver)
    applied = cli("inventory", "apply", "-f", str(path))
    assert applied.code == 0, applied.err
    assert "+ destination soc" in applied.out
    assert "no change" in cli("inventory", "apply", "-f", str(path)).out

    listed = cli("destinations", "list", "--output", "json")
    assert listed.code == 0, listed.err
    (soc,) = json.loads(listed.out)
    assert (soc["name"], soc["type"], soc["min_severity"], soc["has_secret"]) == (
        "soc", "webhook", "high", True,
    )  # fmt: skip
    assert SECRET not in listed.out
    assert SECRET not in cli("destinations", "list").out

    exported = cli("inventory", "export")
    assert "name: soc" in exported.out
    assert SECRET not in exported.out
    # The export applies as "no change": the stored secret is kept.
    (tmp_path / "exported.yaml").write_text(exported.out)
    assert "no change" in cli("inventory", "apply", "-f", str(tmp_path / "exported.yaml")).out

    tried = cli("destinations", "test", "soc")
    assert tried.code == 0, tried.err
    assert "soc (webhook): accepted, HTTP 200" in tried.out
    assert 'answer: {"ok":true}' in tried.out
    (got,) = receiver.received
    body = got.json()
    assert (body["kind"], body["event"], body["detector"]) == ("test", "test", "notify.test")
    assert body["title"].startswith("TEST")
    assert "X-Harvester-Signature-256" in got.headers
    assert SECRET not in tried.out + tried.err


def test_a_failing_receiver_is_reported(
    cli: Cli, tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOC_HOOK_SECRET", SECRET)
    cli("inventory", "apply", "-f", str(_file(tmp_path, receiver)))
    receiver.answer = lambda _r: (403, {}, b"bad signature", 0.0)
    tried = cli("destinations", "test", "soc")
    assert tried.code == 1
    assert "NOT accepted, HTTP 403" in tried.out
    assert "answer: bad signature" in tried.out
    unknown = cli("destinations", "test", "nope")
    assert unknown.code != 0
    assert "no destination named 'nope'" in unknown.err
