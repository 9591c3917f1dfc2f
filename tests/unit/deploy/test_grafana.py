"""The Grafana dashboards and provisioning: valid JSON, exported metrics only, wired to compose."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy.helpers import DEPLOY, exported, load_yaml, metric_names

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


def queries(node: Any) -> Iterator[str]:
    """Every PromQL string of a dashboard: panel targets and templating queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "definition", "query") and isinstance(value, str):
                yield value
            else:
                yield from queries(value)
    elif isinstance(node, list):
        for item in node:
            yield from queries(item)


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_the_three_dashboards_exist() -> None:
    titles = {json.loads(path.read_text())["title"] for path in DASHBOARDS}
    assert titles == {
        "audit-harvester / Pipeline overview",
        "audit-harvester / Sources health",
        "audit-harvester / Anomalies",
    }


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_names_only_exported_metrics(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    used: set[str] = set()
    for query in queries(dashboard):
        used |= metric_names(query)
    assert len(used) >= 3
    assert used <= exported(), f"not exported by the code: {sorted(used - exported())}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    dashboard = json.loads(path.read_text())
    assert dashboard["uid"].startswith("harvester-")
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in panels(dashboard):
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        for target in panel.get("targets", []):
            # Every query goes to the chosen Prometheus, never to a hard-coded datasource.
            assert target["datasource"]["uid"] == "${datasource}"


def test_uids_are_unique() -> None:
    uids = [json.loads(path.read_text())["uid"] for path in DASHBOARDS]
    assert len(uids) == len(set(uids))


def _all_queries(name: str) -> str:
    return "\n".join(queries(json.loads((GRAFANA / "dashboards" / name).read_text())))


def test_pipeline_overview_shows_what_operators_need() -> None:
    text = _all_queries("pipeline-overview.json")
    for metric in (
        "harvester_events_total",
        "harvester_objects_total",
        "harvester_object_bytes_total",
        "harvester_sources_lag_quantile_seconds",
        "harvester_parse_errors_total",
        "harvester_queue_messages",
        "harvester_worker_processes",
    ):
        assert metric in text, metric


def test_sources_dashboard_lists_degraded_sources_with_reasons() -> None:
    dashboard = json.loads((GRAFANA / "dashboards" / "sources-health.json").read_text())
    tables = {p["title"]: p for p in panels(dashboard) if p["type"] == "table"}
    degraded = tables["Degraded sources"]["targets"][0]
    assert 'harvester_source_info{health="degraded"}' in degraded["expr"]
    assert degraded["format"] == "table"
    assert "harvester_source_stale" in tables["Stale sources"]["targets"][0]["expr"]


def test_anomalies_dashboard_splits_by_severity_and_detector() -> None:
    text = _all_queries("anomalies.json")
    assert "sum by (severity) (increase(harvester_anomalies_total" in text
    assert "sum by (detector) (increase(harvester_anomalies_total" in text


def test_provisioning_matches_the_compose_mounts() -> None:
    compose = load_yaml(DEPLOY / "docker-compose.yml")
    mounts = dict(volume.rsplit(":", 2)[:2] for volume in compose["services"]["grafana"]["volumes"])
    provider = load_yaml(GRAFANA / "provisioning" / "dashboards" / "harvester.yml")["providers"][0]
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"
    (source,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert "prometheus" in compose["services"]
