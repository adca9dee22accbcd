"""The Prometheus Operator and Grafana objects come from dashboards/, their one source, and find the workers."""
from __future__ import annotations

import importlib.util
import json

import yaml

from k8s_manifests import K8S, REPO, only, rendered


def _sync_monitoring():
    spec = importlib.util.spec_from_file_location("sync_monitoring", K8S / "sync_monitoring.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_copies_match_dashboards() -> None:
    """Fails after an edit of dashboards/ until `.venv/bin/python k8s/sync_monitoring.py` is run."""
    sync = _sync_monitoring()
    assert (K8S / "monitoring" / "prometheusrule.yaml").read_text() == sync.prometheus_rule()
    assert (K8S / "monitoring" / "ascolta-dashboard.json").read_text() == sync.DASHBOARD.read_text()


def test_prometheus_rule_and_dashboard_configmap_carry_dashboards_content() -> None:
    objects = rendered("monitoring")
    rules = yaml.safe_load((REPO / "dashboards" / "prometheus" / "rules.yml").read_text())
    assert only(objects, "PrometheusRule")["spec"] == rules
    dashboard = only(objects, "ConfigMap", "ascolta-grafana-dashboard")
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(dashboard["data"]["ascolta.json"]) == json.loads(
        (REPO / "dashboards" / "grafana" / "ascolta.json").read_text())


def test_service_monitor_scrapes_the_workers_as_job_ascolta() -> None:
    objects = rendered("overlays/strimzi")
    monitor, service = only(objects, "ServiceMonitor"), only(objects, "Service", "ascolta-worker")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] in {port["name"] for port in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    # The rules and the dashboard select job="ascolta" (dashboards/prometheus/prometheus.yml).
    assert service["metadata"]["labels"][monitor["spec"]["jobLabel"]] == "ascolta"
    assert 'job="ascolta"' in yaml.safe_dump(only(objects, "PrometheusRule")["spec"])
