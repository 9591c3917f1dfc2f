"""deploy/docker-compose.yml, parsed (no Docker engine here): services, commands, wiring."""

from __future__ import annotations

import re
from typing import Any

import pytest

from harvester.health_files import HEALTH_DIR_ENV
from harvester.metrics import MULTIPROC_ENV
from tests.unit.deploy.helpers import DEPLOY, REPO, fleet, load_yaml

COMPOSE = DEPLOY / "docker-compose.yml"
HARVESTER_SERVICES = (
    "migrate",
    "beat",
    "harvest-worker",
    "score-worker",
    "notify-worker",
    "metrics",
    "console",
    "demo-seed",
)


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    loaded: dict[str, Any] = load_yaml(COMPOSE)["services"]
    return loaded


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(?:(\d+)m)?(?:(\d+)s)?", duration)
    assert match, duration
    return int(match[1] or 0) * 60 + int(match[2] or 0)


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_every_service_is_there(services: dict[str, Any]) -> None:
    others = {"redis", "postgres", "prometheus", "grafana", "moto"}
    assert set(services) == others | set(HARVESTER_SERVICES)


def test_redis_never_evicts(services: dict[str, Any]) -> None:
    command = services["redis"]["command"]
    assert _option(command, "--maxmemory-policy") == "noeviction"


def test_harvester_services_share_one_image_built_from_the_repo(services: dict[str, Any]) -> None:
    images = {services[name]["image"] for name in HARVESTER_SERVICES}
    assert len(images) == 1
    for name in HARVESTER_SERVICES:
        build = services[name]["build"]
        assert (
            COMPOSE.parent / build["context"] / build["dockerfile"]
        ).resolve() == REPO / "Dockerfile"


def test_migrations_run_first(services: dict[str, Any]) -> None:
    assert services["migrate"]["command"] == ["db", "upgrade"]
    assert services["migrate"]["restart"] == "no"
    for name in ("beat", "harvest-worker", "score-worker", "metrics", "console", "demo-seed"):
        condition = services[name]["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_one_worker_service_per_queue(services: dict[str, Any]) -> None:
    queues, timing = fleet()
    consumed: dict[str, str] = {}
    for name, service in services.items():
        command = service.get("command") or []
        if command[:1] == ["worker"]:
            for queue in _option(command, "--queues").split(","):
                assert queue not in consumed, (
                    f"{queue} consumed by {consumed.get(queue)} and {name}"
                )
                consumed[queue] = name
            # The grace period outlives the hard time limit: running tasks finish on stop.
            assert _seconds(service["stop_grace_period"]) > timing.hard_time_limit, name
            assert service["environment"][MULTIPROC_ENV].startswith("/run/harvester/")
            assert service["environment"][HEALTH_DIR_ENV].startswith("/run/harvester")
    assert set(consumed) == set(queues.values())


def _port_of(service: dict[str, Any]) -> int:
    command = service["command"]
    for option in ("--metrics-port", "--port"):
        if option in command:
            return int(_option(command, option))
    raise AssertionError(f"no port in {command}")


@pytest.mark.parametrize("name", ["beat", "harvest-worker", "score-worker", "metrics", "console"])
def test_healthchecks_ask_readyz_on_the_port_the_service_serves(
    services: dict[str, Any], name: str
) -> None:
    service = services[name]
    health = service["healthcheck"]["test"]
    assert health == [
        "CMD",
        "python",
        "-m",
        "harvester.health_files",
        "get",
        f"http://127.0.0.1:{_port_of(service)}/readyz",
    ]


def test_the_console_is_served_on_this_host_only(services: dict[str, Any]) -> None:
    console = services["console"]
    assert console["command"][0] == "web"
    assert console["ports"] == [f"127.0.0.1:{_port_of(console)}:{_port_of(console)}"]
    allowed = [
        v for i, v in enumerate(console["command"]) if console["command"][i - 1] == "--allowed-host"
    ]
    assert set(allowed) == {"localhost", "127.0.0.1"}


def test_exactly_one_beat(services: dict[str, Any]) -> None:
    beats = [name for name, s in services.items() if (s.get("command") or [])[:1] == ["beat"]]
    assert beats == ["beat"]
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_the_secret_key_must_be_given(services: dict[str, Any]) -> None:
    value = services["beat"]["environment"]["HARVESTER_SECRET_KEY"]
    assert value.startswith("${HARVESTER_SECRET_KEY:?"), "an unset key must stop compose"


def test_metrics_ports_match_the_prometheus_targets(services: dict[str, Any]) -> None:
    config = load_yaml(DEPLOY / "prometheus" / "prometheus.yml")
    targets: dict[str, int] = {}
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                targets[name] = sd["port"]
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.split(":")
                targets[host] = int(port)
    assert targets["metrics"] == int(_option(services["metrics"]["command"], "--port"))
    assert services["metrics"]["command"][:2] == ["metrics", "serve"]
    for name in ("harvest-worker", "score-worker", "beat"):
        assert targets[name] == int(_option(services[name]["command"], "--metrics-port")), name


def test_prometheus_and_grafana_mount_files_that_exist(services: dict[str, Any]) -> None:
    for name in ("prometheus", "grafana", "demo-seed"):
        for volume in services[name].get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (COMPOSE.parent / source).exists(), f"{name}: {source}"
    mounts = [v.split(":")[1] for v in services["prometheus"]["volumes"]]
    assert "/etc/prometheus/rules" in mounts


def test_the_demo_profile(services: dict[str, Any]) -> None:
    in_demo = {name for name, s in services.items() if "demo" in s.get("profiles", [])}
    assert in_demo == {"moto", "demo-seed"}
    seed = services["demo-seed"]
    assert seed["environment"]["AWS_ENDPOINT_URL"] == "http://moto:5000"
    assert seed["entrypoint"] == ["python", "/opt/demo/seed_demo.py"]
    assert "moto" in seed["depends_on"]


def test_the_demo_seeds_the_days_its_attacks_fall_on(services: dict[str, Any]) -> None:
    """The docs promise the injected attacks on the anomalies dashboard: the seeded days (and
    the first harvest's lookback the docs tell to set) must reach the last attack day."""
    from harvester.synth.org import ATTACKS

    needed = max(attack.day for attack in ATTACKS) + 1  # days are counted from 0
    default = re.fullmatch(
        r"\$\{DEMO_DAYS:-(\d+)\}", services["demo-seed"]["environment"]["DEMO_DAYS"]
    )
    assert default is not None
    assert int(default[1]) >= needed
    script = (DEPLOY / "compose" / "seed_demo.py").read_text()
    assert f'os.environ.get("DEMO_DAYS", "{default[1]}")' in script
    for text in (COMPOSE.read_text(), (REPO / "docs" / "operations.md").read_text()):
        (lookback,) = set(re.findall(r"HARVESTER_FIRST_HARVEST_LOOKBACK=(\d+)d", text))
        assert int(lookback) > int(default[1])


def test_the_seed_script_calls_what_exists() -> None:
    import ast

    import harvester.demo
    import harvester.inventory.plan

    tree = ast.parse((DEPLOY / "compose" / "seed_demo.py").read_text())
    imported = {
        (node.module, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("harvester")
        for alias in node.names
    }
    modules = {
        "harvester.demo": harvester.demo,
        "harvester.inventory.plan": harvester.inventory.plan,
    }
    for module, name in imported:
        if module in modules:
            assert hasattr(modules[module], name), f"{module}.{name}"
