"""The Prometheus config and alert rules: they parse, name only exported metrics, and pass promtool."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.unit.deploy.helpers import DEPLOY, exported, load_yaml, metric_names

PROMETHEUS = DEPLOY / "prometheus"
RULES = PROMETHEUS / "rules" / "harvester.rules.yml"
RULE_TESTS = PROMETHEUS / "tests" / "harvester.rules.test.yml"
PROMTOOL_MISSING = (
    "promtool is missing, so the alert rules were not checked: install it with "
    "`apt-get install -y prometheus` (Debian/Ubuntu) or put the promtool binary of a "
    "Prometheus release on PATH"
)


def alerts() -> dict[str, dict[str, object]]:
    found: dict[str, dict[str, object]] = {}
    for group in load_yaml(RULES)["groups"]:
        for rule in group["rules"]:
            assert "alert" in rule, "recording rules would need their own naming check"
            found[str(rule["alert"])] = rule
    return found


def test_the_required_alerts_exist() -> None:
    expected = {
        "HarvesterSourceStale",  # a source stale for 3x its cadence
        "HarvesterSourceLagHigh",  # lag above a threshold
        "HarvesterObjectErrorRatioHigh",  # error ratio
        "HarvesterQueueGrowing",  # a queue growing for 20 minutes
        "HarvesterDispatcherNotRunning",
        "HarvesterNoWorkers",
        "HarvesterSourcesSilent",  # harvests work, but no new logs arrive
    }
    assert expected <= set(alerts())


@pytest.mark.parametrize("name", sorted(alerts()))
def test_each_alert_is_complete_and_names_only_exported_metrics(name: str) -> None:
    rule = alerts()[name]
    expr = str(rule["expr"])
    names = metric_names(expr)
    assert names, f"{name} names no harvester metric"
    assert names <= exported(), (
        f"{name} uses metrics the code does not export: {names - exported()}"
    )
    labels = rule["labels"]
    assert isinstance(labels, dict)
    assert labels["severity"] in ("warning", "critical")
    annotations = rule["annotations"]
    assert isinstance(annotations, dict)
    assert annotations.get("summary")
    assert annotations.get("description")
    assert "for" in rule


def test_queue_growing_waits_twenty_minutes() -> None:
    assert alerts()["HarvesterQueueGrowing"]["for"] == "20m"


def test_scrape_config_reads_the_rules_where_compose_mounts_them() -> None:
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    assert config["rule_files"] == ["/etc/prometheus/rules/*.yml"]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert {
        "harvester-inventory",
        "harvester-harvest-workers",
        "harvester-score-workers",
        "harvester-beat",
    } <= jobs


def test_promtool_checks_and_unit_tests_the_rules() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(PROMTOOL_MISSING)
    check = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    tests = subprocess.run(
        [promtool, "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
        cwd=RULE_TESTS.parent,
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr
    config = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(PROMETHEUS / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert config.returncode == 0, config.stdout + config.stderr


def test_the_rule_unit_tests_cover_at_least_two_alerts() -> None:
    tested = {
        case["alertname"]
        for test in load_yaml(RULE_TESTS)["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    assert len(tested) >= 2
    assert tested <= set(alerts())
