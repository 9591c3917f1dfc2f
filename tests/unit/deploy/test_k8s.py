"""deploy/k8s, parsed: a Deployment and a KEDA ScaledObject per queue, beat, probes, secrets."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from harvester.health_files import HEALTH_DIR_ENV
from harvester.metrics import MULTIPROC_ENV
from tests.unit.deploy.helpers import DEPLOY, REPO, fleet, load_yaml, load_yaml_all

K8S = DEPLOY / "k8s"
KUSTOMIZATION = load_yaml(K8S / "kustomization.yaml")


def resources() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for name in KUSTOMIZATION["resources"]:
        docs += load_yaml_all(K8S / name)
    return docs


def of_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in resources() if doc["kind"] == kind}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


def pod_specs() -> list[dict[str, Any]]:
    specs = [d["spec"]["template"]["spec"] for d in of_kind("Deployment").values()]
    return specs + [j["spec"]["template"]["spec"] for j in of_kind("Job").values()]


def worker_deployments() -> dict[str, dict[str, Any]]:
    """queue → the Deployment whose worker consumes it."""
    found: dict[str, dict[str, Any]] = {}
    for deployment in of_kind("Deployment").values():
        args = container(deployment)["args"]
        if args[0] == "worker":
            for queue in args[args.index("--queues") + 1].split(","):
                assert queue not in found
                found[queue] = deployment
    return found


def test_every_listed_resource_exists_and_parses() -> None:
    for name in KUSTOMIZATION["resources"]:
        assert (K8S / name).is_file(), name
    kinds = {doc["kind"] for doc in resources()}
    assert {
        "Deployment",
        "Job",
        "ScaledObject",
        "TriggerAuthentication",
        "ConfigMap",
        "Service",
        "PodDisruptionBudget",
    } <= kinds
    # The real Secret is created from a secret store, never applied from the repository.
    assert "Secret" not in kinds
    assert (K8S / "secret.example.yaml").is_file()


def test_a_deployment_per_queue() -> None:
    queues, _ = fleet()
    workers = worker_deployments()
    assert set(workers) == set(queues.values())
    for queue, deployment in workers.items():
        assert deployment["metadata"]["name"] == f"{queue}-worker"


def test_grace_period_outlives_the_hard_time_limit() -> None:
    _, timing = fleet()
    for deployment in worker_deployments().values():
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > timing.hard_time_limit


def test_beat_is_one_replica_recreated() -> None:
    beat = of_kind("Deployment")["beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert container(beat)["args"][0] == "beat"
    assert "leader lock" in (K8S / "beat.yaml").read_text()


def test_keda_scales_each_worker_on_its_queue() -> None:
    queues, _ = fleet()
    workers = worker_deployments()
    scaled = of_kind("ScaledObject")
    assert len(scaled) == len(queues)
    auth = of_kind("TriggerAuthentication")
    for queue, deployment in workers.items():
        (obj,) = [
            s
            for s in scaled.values()
            if s["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
        ]
        (trigger,) = obj["spec"]["triggers"]
        assert trigger["type"] == "redis"
        assert trigger["metadata"]["listName"] == queue
        assert int(trigger["metadata"]["listLength"]) > 0
        assert trigger["authenticationRef"]["name"] in auth
    # harvest.dispatch runs on the harvest queue: zero harvest workers would never wake up.
    harvest = next(
        s for s in scaled.values() if s["spec"]["scaleTargetRef"]["name"] == "harvest-worker"
    )
    assert harvest["spec"]["minReplicaCount"] >= 1


def _http_probe(probe: dict[str, Any]) -> tuple[str, str]:
    get: dict[str, Any] = probe["httpGet"]
    return get["path"], get["port"]


def test_probes_ask_the_health_endpoints_not_the_broker() -> None:
    """/healthz for liveness (and start-up), /readyz for readiness, on a port the pod serves."""
    deployments = of_kind("Deployment")
    for deployment in deployments.values():
        c = container(deployment)
        ports = {p["name"] for p in c["ports"]}
        assert _http_probe(c["livenessProbe"])[0] == "/healthz"
        assert _http_probe(c["readinessProbe"])[0] == "/readyz"
        if "startupProbe" in c:
            assert c["startupProbe"]["httpGet"] == c["livenessProbe"]["httpGet"]
        for probe in ("livenessProbe", "readinessProbe"):
            assert _http_probe(c[probe])[1] in ports
    # The heartbeat file behind a worker's /healthz is written where the ConfigMap says.
    health_dir = of_kind("ConfigMap")["audit-harvester"]["data"][HEALTH_DIR_ENV]
    for deployment in [*worker_deployments().values(), deployments["beat"]]:
        mounts = {m["mountPath"] for m in container(deployment)["volumeMounts"]}
        assert health_dir in mounts
    for path in K8S.glob("**/*.yaml"):
        assert "celery inspect" not in path.read_text().replace("never `celery inspect ping`", "")


def test_keda_owns_the_worker_replica_count() -> None:
    scaled = {s["spec"]["scaleTargetRef"]["name"] for s in of_kind("ScaledObject").values()}
    assert scaled == {d["metadata"]["name"] for d in worker_deployments().values()}
    for name in scaled:
        assert "replicas" not in of_kind("Deployment")[name]["spec"], name


def test_keda_reads_the_broker_address_from_the_secret() -> None:
    (auth,) = of_kind("TriggerAuthentication").values()
    refs = {ref["parameter"]: ref for ref in auth["spec"]["secretTargetRef"]}
    assert {ref["name"] for ref in refs.values()} == {"audit-harvester"}
    for scaled in of_kind("ScaledObject").values():
        (trigger,) = scaled["spec"]["triggers"]
        assert "address" not in trigger["metadata"], "a literal address is a placeholder"
        assert "host" not in trigger["metadata"]
    # The example Secret holds the keys, and its address is the broker URL's host and port.
    (example,) = load_yaml_all(K8S / "secret.example.yaml")
    data = example["stringData"]
    broker = urlsplit(data["HARVESTER_BROKER_URL"])
    assert data[refs["address"]["key"]] == f"{broker.hostname}:{broker.port}"
    assert data[refs["password"]["key"]] == broker.password
    database = broker.path.strip("/")
    for scaled in of_kind("ScaledObject").values():
        assert scaled["spec"]["triggers"][0]["metadata"]["databaseIndex"] == database


def _pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def test_disruption_budgets_cover_workers_and_console_and_never_block_a_drain() -> None:
    budgets = of_kind("PodDisruptionBudget")
    covered = set()
    for budget in budgets.values():
        selector = budget["spec"]["selector"]["matchLabels"]
        (target,) = [
            name
            for name, d in of_kind("Deployment").items()
            if selector.items() <= _pod_labels(d).items()
        ]
        covered.add(target)
        assert budget["spec"].get("maxUnavailable", 1) >= 1
        replicas = of_kind("Deployment")[target]["spec"].get("replicas")
        if "minAvailable" in budget["spec"]:
            # A budget of all replicas would block every node drain.
            assert replicas is not None
            assert budget["spec"]["minAvailable"] < replicas
    assert covered == {"harvest-worker", "score-worker", "console"}


def test_the_console_runs_behind_tls_with_a_service() -> None:
    console = of_kind("Deployment")["console"]
    args = container(console)["args"]
    assert args[0] == "web"
    assert "--secure-cookies" in args
    (service,) = [s for s in of_kind("Service").values() if s["metadata"]["name"] == "console"]
    assert service["spec"]["selector"].items() <= _pod_labels(console).items()


MONITORING = K8S / "monitoring"


def test_the_service_monitor_scrapes_every_metrics_port() -> None:
    monitoring = load_yaml(MONITORING / "kustomization.yaml")
    docs = [doc for name in monitoring["resources"] for doc in load_yaml_all(MONITORING / name)]
    (monitor,) = [d for d in docs if d["kind"] == "ServiceMonitor"]
    selector = monitor["spec"]["selector"]["matchLabels"]
    (endpoint,) = monitor["spec"]["endpoints"]
    scraped = set()
    for service in of_kind("Service").values():
        if selector.items() <= service["metadata"]["labels"].items() and endpoint["port"] in {
            p["name"] for p in service["spec"]["ports"]
        }:
            for name, deployment in of_kind("Deployment").items():
                if service["spec"]["selector"].items() <= _pod_labels(deployment).items():
                    scraped.add(name)
    serving = {
        name
        for name, d in of_kind("Deployment").items()
        if "metrics" in {p["name"] for p in container(d)["ports"]}
    }
    assert serving == {"harvest-worker", "score-worker", "notify-worker", "beat", "metrics"}
    assert scraped == serving


def test_the_prometheus_rule_is_generated_from_the_rule_file_and_current() -> None:
    rules = load_yaml(DEPLOY / "prometheus" / "rules" / "harvester.rules.yml")
    (rule,) = load_yaml_all(MONITORING / "prometheusrule.yaml")
    assert rule["kind"] == "PrometheusRule"
    assert rule["spec"]["groups"] == rules["groups"]
    check = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "prometheusrule.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr


def test_the_generator_notices_a_stale_rule(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    target = tmp_path / "prometheusrule.yaml"
    text = (DEPLOY / "prometheus" / "rules" / "harvester.rules.yml").read_text()
    rules.write_text(text)
    script = [sys.executable, str(REPO / "scripts" / "prometheusrule.py")]
    paths = ["--rules", str(rules), "--target", str(target)]
    assert subprocess.run([*script, *paths], capture_output=True, check=False).returncode == 0
    assert (
        subprocess.run([*script, "--check", *paths], capture_output=True, check=False).returncode
        == 0
    )
    rules.write_text(text.replace("for: 30m", "for: 31m"))
    stale = subprocess.run(
        [*script, "--check", *paths], capture_output=True, text=True, check=False
    )
    assert stale.returncode == 1
    assert "out of date" in stale.stderr


def test_workers_run_metrics_in_multiprocess_mode_on_the_scraped_port() -> None:
    for deployment in [*worker_deployments().values(), of_kind("Deployment")["beat"]]:
        c = container(deployment)
        args = c["args"]
        port = int(args[args.index("--metrics-port") + 1])
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert int(annotations["prometheus.io/port"]) == port
        assert [p["containerPort"] for p in c["ports"]] == [port]
    for deployment in worker_deployments().values():
        env = {e["name"]: e["value"] for e in container(deployment)["env"]}
        assert env[MULTIPROC_ENV].startswith("/run/harvester/")


def test_secrets_come_from_the_secret_and_images_from_kustomize() -> None:
    (image,) = KUSTOMIZATION["images"]
    for spec in pod_specs():
        for c in spec["containers"]:
            assert c["image"] == image["name"] == "audit-harvester"
            refs = [ref for ref in c["envFrom"] if "secretRef" in ref]
            assert refs == [{"secretRef": {"name": "audit-harvester"}}]
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert spec["securityContext"]["runAsNonRoot"] is True
    config = of_kind("ConfigMap")["audit-harvester"]["data"]
    assert not [k for k in config if any(w in k for w in ("SECRET", "PASSWORD", "URL"))]


def test_migrations_run_as_a_job() -> None:
    (job,) = of_kind("Job").values()
    assert container(job)["args"] == ["db", "upgrade"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_kustomize_renders_the_manifests() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is missing: the kustomization was parsed but not rendered")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(K8S)], capture_output=True, text=True, check=False, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    monitoring = subprocess.run(
        [kubectl, "kustomize", str(MONITORING)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert monitoring.returncode == 0, monitoring.stderr
    assert "kind: PrometheusRule" in monitoring.stdout
    image = KUSTOMIZATION["images"][0]
    assert f"image: {image['newName']}:{image['newTag']}" in rendered.stdout
    assert "namespace: audit-harvester" in rendered.stdout
