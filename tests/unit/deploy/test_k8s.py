"""deploy/k8s, parsed: a Deployment and a KEDA ScaledObject per queue, beat, probes, secrets."""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest

from harvester.health_files import HEALTH_DIR_ENV
from harvester.metrics import MULTIPROC_ENV
from tests.unit.deploy.helpers import DEPLOY, fleet, load_yaml, load_yaml_all

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
    assert {"Deployment", "Job", "ScaledObject", "TriggerAuthentication", "ConfigMap"} <= kinds
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


def _probe_command(probe: dict[str, Any]) -> list[str]:
    command: list[str] = probe["exec"]["command"]
    return command


def test_probes_read_files_not_the_broker() -> None:
    health_dir = of_kind("ConfigMap")["audit-harvester"]["data"][HEALTH_DIR_ENV]
    probed = [*worker_deployments().values(), of_kind("Deployment")["beat"]]
    for deployment in probed:
        c = container(deployment)
        liveness = _probe_command(c["livenessProbe"])
        readiness = _probe_command(c["readinessProbe"])
        assert liveness[:4] == ["python", "-m", "harvester.health_files", "check"]
        assert liveness[4] == f"{health_dir}/heartbeat"
        assert "--max-age" in liveness
        assert readiness[:5] == [
            "python",
            "-m",
            "harvester.health_files",
            "check",
            f"{health_dir}/ready",
        ]
        assert _probe_command(c["startupProbe"]) == liveness
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert health_dir in mounts
    for path in K8S.glob("*.yaml"):
        assert "inspect ping" not in path.read_text().replace("not `celery inspect ping`", "")


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
    image = KUSTOMIZATION["images"][0]
    assert f"image: {image['newName']}:{image['newTag']}" in rendered.stdout
    assert "namespace: audit-harvester" in rendered.stdout
