"""The Kubernetes manifests parse, reference each other consistently and only set settings that exist."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

K8S = Path(__file__).resolve().parents[1] / "k8s"
REPO = K8S.parent


def _documents() -> dict[str, list[dict]]:
    return {path.name: [d for d in yaml.safe_load_all(path.read_text()) if d] for path in sorted(K8S.glob("*.yaml"))}


def _one(kind: str) -> dict:
    (found,) = [d for docs in _documents().values() for d in docs if d["kind"] == kind]
    return found


def test_every_manifest_parses_and_kustomization_lists_existing_files() -> None:
    documents = _documents()
    assert all(docs for docs in documents.values())
    resources = _one("Kustomization")["resources"]
    assert all((K8S / name).is_file() for name in resources)
    assert "secret-sasl.example.yaml" not in resources  # credentials are created out of band


def test_configmap_sets_only_known_settings() -> None:
    known = set(re.findall(r'_env\w*\("(\w+)"', (REPO / "streams" / "settings.py").read_text()))
    known.add("LOG_LEVEL")  # read by the CLI
    data = _one("ConfigMap")["data"]
    assert {key.removeprefix("ASCOLTA_") for key in data} <= known
    assert all(isinstance(value, str) for value in data.values())
    assert data["ASCOLTA_REPLICATION"] == "3"


def test_worker_deployment_fits_the_partitions_and_probes_the_web_port() -> None:
    deployment = _one("Deployment")
    config = _one("ConfigMap")["data"]
    assert 1 <= deployment["spec"]["replicas"] <= int(config["ASCOLTA_PARTITIONS"])
    pod = deployment["spec"]["template"]["spec"]
    (worker,) = pod["containers"]
    assert worker["command"] + worker["args"] == ["ascolta", "worker"]
    ports = {port["name"]: port["containerPort"] for port in worker["ports"]}
    assert ports == {"web": int(config["ASCOLTA_WEB_PORT"])}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert worker[probe]["httpGet"]["port"] == "web"
    assert "streams.model_build --data-dir /data" in " ".join(pod["initContainers"][0]["command"])
    assert {v["name"] for v in pod["volumes"] if "emptyDir" in v} >= {"data"}


def test_service_and_pdb_select_the_workers() -> None:
    labels = _one("Deployment")["spec"]["template"]["metadata"]["labels"]
    service, pdb = _one("Service"), _one("PodDisruptionBudget")
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) in {p["port"] for p in service["spec"]["ports"]}


def test_dockerfile_pins_cpu_torch_and_prepares_the_model() -> None:
    dockerfile = (K8S / "Dockerfile").read_text()
    assert "torch==2.13.0" in dockerfile and "TORCH_INDEX_URL" in dockerfile
    assert "python -m streams.model_build --data-dir" in dockerfile
