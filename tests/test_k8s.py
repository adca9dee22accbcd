"""The rendered manifests agree with each other and with the app: settings that exist, workers that fit
the partitions, a KafkaTopic for every topic the app uses, ACLs for exactly what it reads and writes, the
workers wired to the Secrets Strimzi creates, and hardened pods."""
from __future__ import annotations

import importlib
import os
import re
from collections import defaultdict

import pytest

from k8s_manifests import K8S, OVERLAYS, WORKER_KUSTOMIZATIONS, REPO, every, examples, only, rendered
from streams.settings import Settings

STRIMZI_LAYERS = ("kafka", *(f"overlays/{name}" for name in OVERLAYS))


def settings_of(objects: list[dict], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The app's settings as the workers get them: the ConfigMap over the defaults, nothing else."""
    for name in [n for n in os.environ if n.startswith("ASCOLTA_")]:
        monkeypatch.delenv(name)
    for name, value in only(objects, "ConfigMap", "ascolta-config")["data"].items():
        monkeypatch.setenv(name, value)
    return Settings()


def table_names() -> set[str]:
    """Names of the app's Faust tables, from their declarations in streams/: ``app.Table("name", ...)`` and
    ``SeenKeys(app, "name", ...)``. Each has a changelog topic ``<app_id>-<name>-changelog``."""
    declaration = re.compile(r'(?:app\.Table|SeenKeys)\(\s*(?:app\s*,\s*)?"([^"]+)"')
    names = {name for path in (REPO / "streams").rglob("*.py") for name in declaration.findall(path.read_text())}
    assert names, "no table declaration found in streams/: update table_names()"
    return names


def changelog(settings: Settings, table: str) -> str:
    return f"{settings.app_id}-{table}-changelog"


def leader_topic(settings: Settings) -> str:
    """Faust's partition-assignment topic (faust/assignor/leader_assignor.py: ``_leader_topic_name``)."""
    return f"{settings.app_id}-__assignor-__leader"


def expected_topics(settings: Settings) -> dict[str, int]:
    """Every topic the app uses, with the partition count it expects."""
    pipeline = [*settings.raw_topics, settings.valid_topic, settings.arrivals_topic, settings.scored_topic,
                settings.enriched_topic, settings.deadletter_topic, settings.alerts_topic,
                settings.alerts_deadletter_topic, settings.timeline_topic, settings.ticks_topic]
    topics = {name: settings.partitions for name in pipeline}
    topics |= {changelog(settings, table): settings.partitions for table in table_names()}
    topics[leader_topic(settings)] = 1
    return topics


def expected_worker_acls(settings: Settings) -> dict[tuple[str, str], set[str]]:
    """What the workers do: ingest reads raw; enrich, stories, detect and notify read valid, arrivals, scored,
    enriched and alerts, which the stage before writes; both dead-letter topics are written only; tables read
    and write their changelogs; Faust declares its own topics (Create) and reads the leader topic; one consumer
    group."""
    acls: dict[tuple[str, str], set[str]] = defaultdict(set)
    for topic in settings.raw_topics:
        acls[("topic", topic)] |= {"Describe", "Read"}
    for topic in (settings.valid_topic, settings.arrivals_topic, settings.scored_topic, settings.enriched_topic,
                  settings.alerts_topic, settings.timeline_topic, settings.ticks_topic):
        acls[("topic", topic)] |= {"Describe", "Read", "Write"}
    for topic in (settings.deadletter_topic, settings.alerts_deadletter_topic):
        acls[("topic", topic)] |= {"Describe", "Write"}
    for table in table_names():
        acls[("topic", changelog(settings, table))] |= {"Describe", "Read", "Write", "Create"}
    acls[("topic", leader_topic(settings))] |= {"Describe", "Read", "Create"}
    acls[("group", settings.app_id)] |= {"Read"}
    return dict(acls)


def granted(user: dict) -> dict[tuple[str, str], set[str]]:
    acls: dict[tuple[str, str], set[str]] = defaultdict(set)
    for acl in user["spec"]["authorization"]["acls"]:
        resource = acl["resource"]
        assert resource.get("patternType", "literal") == "literal" and acl.get("type", "allow") == "allow"
        acls[(resource["type"], resource["name"])] |= set(acl["operations"])
    return dict(acls)


def worker_pod(objects: list[dict]) -> dict:
    return only(objects, "Deployment", "ascolta-worker")["spec"]["template"]["spec"]


def worker_container(objects: list[dict]) -> dict:
    (worker,) = worker_pod(objects)["containers"]
    return worker


@pytest.mark.parametrize("directory", WORKER_KUSTOMIZATIONS)
def test_configmap_sets_only_known_settings(directory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    known = set(re.findall(r'_env\w*\("(\w+)"', (REPO / "streams" / "settings.py").read_text()))
    known.add("LOG_LEVEL")  # read by the CLI
    objects = rendered(directory)
    data = only(objects, "ConfigMap", "ascolta-config")["data"]
    assert {key.removeprefix("ASCOLTA_") for key in data} <= known
    assert all(isinstance(value, str) for value in data.values())
    settings_of(objects, monkeypatch)  # the app accepts every value
    assert "ASCOLTA_RAW_TOPIC_PATTERN" not in data  # the ACLs and KafkaTopics name topics literally


@pytest.mark.parametrize("directory", WORKER_KUSTOMIZATIONS)
def test_worker_deployment_fits_the_partitions_and_probes_the_web_port(directory: str) -> None:
    objects = rendered(directory)
    deployment = only(objects, "Deployment", "ascolta-worker")
    config = only(objects, "ConfigMap", "ascolta-config")["data"]
    assert 1 <= deployment["spec"].get("replicas", 1) <= int(config["ASCOLTA_PARTITIONS"])
    pod, worker = worker_pod(objects), worker_container(objects)
    assert worker["command"] + worker["args"] == ["ascolta", "worker"]
    assert {port["name"]: port["containerPort"] for port in worker["ports"]} == {"web": int(config["ASCOLTA_WEB_PORT"])}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert worker[probe]["httpGet"]["port"] == "web"
    assert "streams.sentiment.build --data-dir /data" in " ".join(pod["initContainers"][0]["command"])
    assert {v["name"] for v in pod["volumes"] if "emptyDir" in v} >= {"data"}


def assert_hardened(pod: dict) -> None:
    """Non-root, seccomp RuntimeDefault, no API token, read-only root, no capabilities, sized."""
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod.get("initContainers", []) + pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys()
        assert "memory" in container["resources"]["limits"]


@pytest.mark.parametrize("directory", WORKER_KUSTOMIZATIONS)
def test_worker_pods_run_hardened(directory: str) -> None:
    assert_hardened(worker_pod(rendered(directory)))


def test_the_replay_job_runs_hardened_as_the_replay_user() -> None:
    job = only(examples(), "Job")
    pod = job["spec"]["template"]["spec"]
    assert_hardened(pod)
    (replay,) = pod["containers"]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in replay["env"]}
    assert env["ASCOLTA_SASL_USERNAME"] == "ascolta-replay"
    assert env["ASCOLTA_SASL_PASSWORD"] == {"secretKeyRef": {"name": "ascolta-replay", "key": "password"}}


@pytest.mark.parametrize("directory", WORKER_KUSTOMIZATIONS)
def test_service_pdb_and_network_policies_select_the_workers(directory: str) -> None:
    objects = rendered(directory)
    labels = only(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    service, pdb = only(objects, "Service"), only(objects, "PodDisruptionBudget")
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    annotations = service["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) in {p["port"] for p in service["spec"]["ports"]}
    policies = every(objects, "NetworkPolicy")
    assert len(policies) == 2
    for policy in policies:
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= labels.items()
    ingress = [rule for policy in policies for rule in policy["spec"].get("ingress", [])]
    assert [port["port"] for rule in ingress for port in rule["ports"]] == ["web"]  # nothing else comes in


@pytest.mark.parametrize("directory", STRIMZI_LAYERS)
def test_every_topic_the_app_uses_is_declared_with_the_partitions_it_expects(
        directory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = rendered(directory)
    settings = settings_of(objects, monkeypatch)
    declared = {t["spec"].get("topicName", t["metadata"]["name"]): t["spec"]["partitions"]
                for t in every(objects, "KafkaTopic")}
    assert declared == expected_topics(settings)
    for topic in every(objects, "KafkaTopic"):
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == only(objects, "Kafka")["metadata"]["name"]
        assert "replicas" not in topic["spec"]  # the cluster's default.replication.factor, set once
        if topic["metadata"]["name"].endswith("-changelog"):
            assert topic["spec"]["config"]["cleanup.policy"] == "compact"


@pytest.mark.parametrize("directory", STRIMZI_LAYERS)
def test_worker_acls_cover_exactly_what_the_app_reads_and_writes(
        directory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = rendered(directory)
    settings = settings_of(objects, monkeypatch)
    worker = only(objects, "KafkaUser", settings.sasl_username)
    assert worker["spec"]["authentication"]["type"] == "scram-sha-512"
    assert granted(worker) == expected_worker_acls(settings)
    replay = only(objects, "KafkaUser", "ascolta-replay")
    assert granted(replay) == {("topic", topic): {"Describe", "Write"} for topic in settings.raw_topics}


@pytest.mark.parametrize("directory", STRIMZI_LAYERS)
def test_workers_log_in_with_the_secrets_strimzi_creates(directory: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = rendered(directory)
    settings = settings_of(objects, monkeypatch)
    kafka = only(objects, "Kafka")
    cluster = kafka["metadata"]["name"]
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    assert listener["tls"] is True and listener["authentication"]["type"] == "scram-sha-512"
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple"
    assert (settings.security_protocol, settings.sasl_mechanism) == ("SASL_SSL", "SCRAM-SHA-512")
    host, port = settings.bootstrap_servers.split(":")
    assert host.split(".")[0] == f"{cluster}-kafka-bootstrap" and int(port) == listener["port"]

    pod, worker = worker_pod(objects), worker_container(objects)
    password = {e["name"]: e.get("valueFrom") for e in worker["env"]}["ASCOLTA_SASL_PASSWORD"]
    assert password == {"secretKeyRef": {"name": settings.sasl_username, "key": "password"}}
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = [m for m in worker["volumeMounts"] if settings.ssl_cafile.startswith(m["mountPath"] + "/")]
    (mount,) = mounts
    ca = volumes[mount["name"]]["secret"]
    assert ca["secretName"] == f"{cluster}-cluster-ca-cert"
    assert {"key": "ca.crt", "path": settings.ssl_cafile.removeprefix(mount["mountPath"] + "/")} in ca["items"]

    egress = only(objects, "NetworkPolicy", "ascolta-worker-kafka")["spec"]["egress"]
    assert egress == [{"to": [{"podSelector": {"matchLabels": {"strimzi.io/cluster": cluster,
                                                               "strimzi.io/broker-role": "true"}}}],
                       "ports": [{"port": listener["port"], "protocol": "TCP"}]}]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_replication_fits_the_brokers(overlay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = rendered(f"overlays/{overlay}")
    settings = settings_of(objects, monkeypatch)
    config = only(objects, "Kafka")["spec"]["kafka"]["config"]
    brokers = sum(p["spec"]["replicas"] for p in every(objects, "KafkaNodePool") if "broker" in p["spec"]["roles"])
    controllers = sum(p["spec"]["replicas"] for p in every(objects, "KafkaNodePool")
                      if "controller" in p["spec"]["roles"])
    assert config["default.replication.factor"] == settings.replication <= brokers
    assert config["offsets.topic.replication.factor"] == settings.replication
    assert config["min.insync.replicas"] == max(1, settings.replication - 1)
    assert controllers % 2 == 1  # a KRaft quorum needs a majority
    assert config["auto.create.topics.enable"] is False


def test_dev_is_one_worker_and_one_kafka_node() -> None:
    objects = rendered("overlays/dev")
    assert only(objects, "Deployment")["spec"]["replicas"] == 1
    (pool,) = every(objects, "KafkaNodePool")
    assert pool["spec"]["replicas"] == 1 and sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert not every(objects, "ScaledObject")


def test_keda_scales_on_the_lag_of_raw_and_valid_within_the_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    objects = rendered("overlays/strimzi")
    settings = settings_of(objects, monkeypatch)
    scaled = only(objects, "ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "ascolta-worker"
    assert "replicas" not in only(objects, "Deployment")["spec"]  # the HPA owns it
    partitions = {t["spec"].get("topicName", t["metadata"]["name"]): t["spec"]["partitions"]
                  for t in every(objects, "KafkaTopic")}
    triggers = scaled["spec"]["triggers"]
    assert {t["metadata"]["topic"] for t in triggers} == {*settings.raw_topics, settings.valid_topic}
    pdb = only(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] < scaled["spec"]["minReplicaCount"]
    assert scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= min(
        partitions[t["metadata"]["topic"]] for t in triggers)
    authentication = only(objects, "TriggerAuthentication")
    for trigger in triggers:
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == settings.app_id
        assert trigger["metadata"]["bootstrapServers"] == settings.bootstrap_servers
        assert (trigger["metadata"]["sasl"], trigger["metadata"]["tls"]) == ("scram_sha512", "enable")
        assert trigger["authenticationRef"]["name"] == authentication["metadata"]["name"]
    (username,) = authentication["spec"]["configMapTargetRef"]
    assert (username["parameter"], username["name"], username["key"]) == (
        "username", "ascolta-config", "ASCOLTA_SASL_USERNAME")
    secrets = {ref["parameter"]: (ref["name"], ref["key"]) for ref in authentication["spec"]["secretTargetRef"]}
    cluster = only(objects, "Kafka")["metadata"]["name"]
    assert secrets == {"password": (settings.sasl_username, "password"), "ca": (f"{cluster}-cluster-ca-cert", "ca.crt")}


def test_dockerfile_pins_cpu_torch_and_prepares_the_model() -> None:
    dockerfile = (K8S / "Dockerfile").read_text()
    assert "torch==2.13.0" in dockerfile and "TORCH_INDEX_URL" in dockerfile
    assert "python -m streams.sentiment.build --data-dir" in dockerfile
    assert callable(importlib.import_module("streams.sentiment.build").main)  # the module the image runs exists
