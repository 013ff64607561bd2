"""Deployment files: compose wiring, Kubernetes manifests against the Kubernetes schema (offline),
kustomize rendering, images, and the dashboard's metrics existing in the code."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_wires_the_services(compose):
    services = compose["services"]
    assert {"redis", "minio", "minio-init", "api", "worker", "worker-cpu", "webhooks", "flower"} <= set(services)
    assert services["webhooks"]["command"][services["webhooks"]["command"].index("-Q") + 1] == "webhooks"
    assert "--appendonly" in services["redis"]["command"] and "noeviction" in services["redis"]["command"]
    for name in ("redis", "minio", "api", "worker", "worker-cpu"):
        assert "healthcheck" in services[name], name
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    gpu = services["worker"]["deploy"]["resources"]["reservations"]["devices"][0]
    assert gpu["driver"] == "nvidia" and gpu["capabilities"] == ["gpu"]
    assert services["worker-cpu"]["profiles"] == ["cpu"] and "deploy" not in services["worker-cpu"]
    assert "ilm rule add" in services["minio-init"]["command"][0]  # results expire in the bucket too
    assert {"redis-data", "minio-data"} <= set(compose["volumes"])
    stop_grace = int(services["worker"]["environment"]["SNEAKY_STOP_GRACE_SECONDS"])
    for name in ("worker", "worker-cpu"):  # the job is handed back before compose kills the container
        assert int(services[name]["stop_grace_period"].rstrip("m")) * 60 >= stop_grace + 30


def test_compose_holds_no_secrets():
    text = (ROOT / "docker-compose.yml").read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET|ACCESS_KEY)[A-Z_]*:\s*\S", line):
            assert "${" in line, f"literal secret in docker-compose.yml: {line.strip()}"
    example = (ROOT / ".env.example").read_text()
    assert "MINIO_ROOT_PASSWORD=" in example and ".env" in (ROOT / ".gitignore").read_text().split()


def compose_commands() -> list[list[str]]:
    """Every Compose found here: the v2 plugin (`docker compose`) and Debian's docker-compose 1.x."""
    found = []
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        found.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        found.append(["docker-compose"])
    return found


def test_compose_config_with_every_compose_here(tmp_path):
    commands = compose_commands()
    if not commands:
        pytest.skip("neither docker compose nor docker-compose is installed here (structure is checked above)")
    env = tmp_path / ".env"
    env.write_text((ROOT / ".env.example").read_text())
    for command in commands:  # both read the file the same way: no `name:` (1.x refuses it)
        res = subprocess.run([*command, "--env-file", str(env), "-f", str(ROOT / "docker-compose.yml"), "config",
                              "--quiet"], capture_output=True, text=True, cwd=tmp_path)
        assert res.returncode == 0, (command, res.stderr)


def test_images_run_as_non_root_with_health_checks():
    api = (ROOT / "deploy/Dockerfile.api").read_text()
    worker = (ROOT / "deploy/Dockerfile.worker").read_text()
    for text in (api, worker):
        assert re.search(r"^USER 10001", text, re.M) and "HEALTHCHECK" in text
    assert "pip install torch" not in api and "[model]" not in api and "pip install $PIP_ARGS ." in api  # no torch
    # no index reachable: the build takes wheels from deploy/wheels where they are, by a build argument
    assert 'ARG PIP_ARGS=""' in api and "deploy/wheel[s]" in api
    assert "ARG BASE=nvidia/cuda:" in worker and "torch==2.14.1" in worker and "'.[model]'" in worker
    # the base image is a build argument (a local one where no registry can be reached), the public one by default
    for text, default in ((api, "python:3.11-slim"), (worker, "nvidia/cuda:")):
        assert f"ARG BASE={default}" in text and re.search(r"^FROM \$\{BASE\}$", text, re.M)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".git", ".sneaky", "runs", ".env"} <= set(ignored)


def rendered() -> list[dict]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (Debian kubernetes-client) is not installed; .ci/run installs it")
    res = subprocess.run([kubectl, "kustomize", str(ROOT / "deploy/k8s")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return [d for d in yaml.safe_load_all(res.stdout) if d]


def test_kustomize_renders_and_manifests_validate(tmp_path):
    import kubernetes_validate

    docs = rendered()
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert "Deployment/api" in kinds and "Deployment/worker" in kinds and "ScaledObject/worker-bulk" in kinds
    for doc in docs:
        if doc["apiVersion"].startswith("keda.sh/"):
            continue  # a CRD: checked below
        kubernetes_validate.validate(doc, "1.32.0", strict=True)
    by_name = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    worker = by_name[("Deployment", "worker")]["spec"]["template"]["spec"]
    container = worker["containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "-c" in container["args"] and container["args"][container["args"].index("-c") + 1] == "1"
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    assert worker["terminationGracePeriodSeconds"] > int(config["SNEAKY_JOB_TIME_LIMIT"])
    for name in ("worker", "worker-bulk"):  # the job is handed back before Kubernetes kills the pod
        grace = by_name[("Deployment", name)]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace >= int(config["SNEAKY_STOP_GRACE_SECONDS"]) + 30
    assert all("secretRef" in str(c.get("envFrom")) for c in [container])
    assert not any(d["kind"] == "Secret" for d in docs)  # secrets are created apart (docs/deploy.md)
    bulk = by_name[("ScaledObject", "worker-bulk")]["spec"]
    assert bulk["minReplicaCount"] == 0 and {t["metadata"]["listName"] for t in bulk["triggers"]} == {"bulk"}
    hooks = by_name[("Deployment", "worker-webhooks")]["spec"]["template"]["spec"]["containers"][0]
    assert hooks["args"][hooks["args"].index("-Q") + 1] == "webhooks" and "nvidia.com/gpu" not in str(hooks)
    main = by_name[("ScaledObject", "worker")]["spec"]
    assert {t["metadata"]["listName"] for t in main["triggers"]} == {"interactive", "bulk"}


def test_dashboard_queries_metrics_the_code_exports():
    from core import metrics

    exported = {m._name for m in vars(metrics).values() if hasattr(m, "_name")} | {"sneaky_queue_depth"}
    dashboard = json.loads((ROOT / "deploy/grafana/sneaky-dashboard.json").read_text())
    used = {name for p in dashboard["panels"] for t in p["targets"]
            for name in re.findall(r"sneaky_[a-z_]+", t["expr"])}
    base = {re.sub(r"_(bucket|sum|count|total)$", "", n) for n in used}
    assert base <= {re.sub(r"_total$", "", n) for n in exported}, base
    assert yaml.safe_load((ROOT / "deploy/prometheus.yml").read_text())["scrape_configs"]
