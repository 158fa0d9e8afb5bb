"""k8s/: every overlay builds with kustomize and validates against the Kubernetes schemas
(strict: unknown fields fail); the tagstream rules hold in what is built.

Custom resources: ServiceMonitor and PrometheusRule validate against the schemas of the
Prometheus Operator's models (package cloudcoil-models-prometheus-operator), made strict
the same way. Strimzi's kinds (KafkaTopic, KafkaUser, Kafka, KafkaNodePool) have no
schema in any package this project can install: their JSON Schema validation is skipped,
and only those kinds, in favour of the structural checks below.
"""

from __future__ import annotations

import base64
import functools
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from shared.kafka.topics import topic_names
from shared.settings import Settings
from tests.deploy.settings_env import build, unknown_variables
from tests.deploy.tools import ROOT, run, tool

pytestmark = pytest.mark.deploy

OVERLAYS = sorted(p.name for p in (ROOT / "k8s/overlays").iterdir() if p.is_dir())
KUBERNETES_VERSION = "1.30.0"
STRIMZI_KINDS = {"KafkaTopic", "KafkaUser", "Kafka", "KafkaNodePool"}
PROMETHEUS_OPERATOR_KINDS = {"ServiceMonitor", "PrometheusRule"}
PORTS = {"ingest": 8001, "classifier": 8002, "review": 8003, "feedback": 8004, "rollout": 8005}
Resource = dict[str, Any]


@functools.cache
def built(overlay: str) -> tuple[Resource, ...]:
    out = run(tool("kubectl"), "kustomize", ROOT / "k8s/overlays" / overlay)
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def of_kind(overlay: str, kind: str) -> dict[str, Resource]:
    return {r["metadata"]["name"]: r for r in built(overlay) if r["kind"] == kind}


def pod_specs(overlay: str) -> dict[str, Resource]:
    specs = {}
    for resource in built(overlay):
        kind, name = resource["kind"], resource["metadata"]["name"]
        if kind in ("Deployment", "StatefulSet", "Job"):
            specs[f"{kind}/{name}"] = resource["spec"]["template"]["spec"]
        elif kind == "CronJob":
            specs[f"{kind}/{name}"] = resource["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return specs


def strict(schema: Any) -> Any:
    """``schema`` with unknown properties refused wherever properties are listed."""
    if isinstance(schema, dict):
        schema = {k: strict(v) for k, v in schema.items()}
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
    elif isinstance(schema, list):
        schema = [strict(v) for v in schema]
    return schema


@functools.cache
def prometheus_operator_validator(kind: str) -> jsonschema.Validator:
    from cloudcoil.models.prometheus_operator import v1

    schema = getattr(v1, kind).model_json_schema(by_alias=True)
    return jsonschema.Draft202012Validator(strict(schema))


def schema_errors(resource: Resource) -> list[str]:
    kind = resource["kind"]
    if kind in STRIMZI_KINDS:
        return []  # no schema available: see the module docstring
    if kind in PROMETHEUS_OPERATOR_KINDS:
        validator = prometheus_operator_validator(kind)
        return [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(resource)
        ]
    try:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        return [f"{'/'.join(map(str, exc.path))}: {exc.message}"]
    return []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_validates_against_the_kubernetes_schemas(overlay: str) -> None:
    problems = {
        f"{r['kind']}/{r['metadata']['name']}": errors
        for r in built(overlay)
        if (errors := schema_errors(r))
    }
    assert not problems


def test_the_overlays_are_dev_and_prod() -> None:
    assert OVERLAYS == ["dev", "prod"]


def test_schema_validation_catches_mistakes() -> None:
    deployment = dict(of_kind("dev", "Deployment")["tagstream-ingest"])
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGett"] = {}
    assert schema_errors(broken)
    monitor = yaml.safe_load(yaml.safe_dump(of_kind("dev", "ServiceMonitor")["tagstream"]))
    monitor["spec"]["endpoints"][0]["intervall"] = "15s"
    assert schema_errors(monitor)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_strimzi_resources_are_well_formed(overlay: str) -> None:
    for resource in built(overlay):
        if resource["kind"] not in STRIMZI_KINDS:
            continue
        assert resource["apiVersion"] == "kafka.strimzi.io/v1beta2"
        if resource["kind"] != "Kafka":
            assert resource["metadata"]["labels"]["strimzi.io/cluster"] == "tagstream-kafka"
    for topic in of_kind(overlay, "KafkaTopic").values():
        spec = topic["spec"]
        assert set(spec) <= {"topicName", "partitions", "replicas", "config"}
        assert isinstance(spec["partitions"], int)
        assert spec["partitions"] >= 1
        assert isinstance(spec["replicas"], int)
        assert spec["replicas"] >= 1
        assert all(isinstance(v, str | int | bool) for v in spec.get("config", {}).values())
    (cluster,) = of_kind(overlay, "Kafka").values()
    assert cluster["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert "zookeeper" not in cluster["spec"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_topic_tagstream_uses_is_declared(overlay: str) -> None:
    declared = {t["spec"]["topicName"] for t in of_kind(overlay, "KafkaTopic").values()}
    assert declared == set(topic_names(Settings()))


def config(overlay: str) -> dict[str, str]:
    (configmap,) = of_kind(overlay, "ConfigMap").values()
    return dict(configmap["data"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_classifier_replicas_never_exceed_the_partitions(overlay: str) -> None:
    partitions = of_kind(overlay, "KafkaTopic")["content-raw"]["spec"]["partitions"]
    hpa = of_kind(overlay, "HorizontalPodAutoscaler")["tagstream-classifier"]["spec"]
    assert hpa["scaleTargetRef"]["name"] == "tagstream-classifier"
    assert 1 <= hpa["minReplicas"] <= hpa["maxReplicas"] == partitions
    assert int(config(overlay)["TAGSTREAM_KAFKA_PARTITIONS"]) == partitions
    assert "replicas" not in of_kind(overlay, "Deployment")["tagstream-classifier"]["spec"]
    replication = int(config(overlay)["TAGSTREAM_KAFKA_REPLICATION_FACTOR"])
    assert {t["spec"]["replicas"] for t in of_kind(overlay, "KafkaTopic").values()} == {replication}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollout_controller_is_a_single_replica(overlay: str) -> None:
    rollout = of_kind(overlay, "Deployment")["tagstream-rollout"]["spec"]
    assert rollout["replicas"] == 1
    assert rollout["strategy"] == {"type": "Recreate"}
    targets = {
        h["spec"]["scaleTargetRef"]["name"]
        for h in built(overlay)
        if h["kind"] == ("HorizontalPodAutoscaler")
    }
    assert "tagstream-rollout" not in targets


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_have_probes_resources_and_a_service(overlay: str) -> None:
    deployments = of_kind(overlay, "Deployment")
    services = of_kind(overlay, "Service")
    for name, port in PORTS.items():
        deployment = deployments[f"tagstream-{name}"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["python", "-m", f"services.{name}"]
        assert container["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
        service = services[f"tagstream-{name}"]
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
        assert service["spec"]["ports"][0]["name"] == "http"
    budgets = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
        for p in (of_kind(overlay, "PodDisruptionBudget").values())
    }
    assert {"tagstream-ingest", "tagstream-classifier", "tagstream-review"} <= budgets


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_non_root_with_a_read_only_root_and_limits(overlay: str) -> None:
    for where, spec in pod_specs(overlay).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), where
            assert "memory" in resources["limits"], where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_servicemonitor_scrapes_every_service(overlay: str) -> None:
    (monitor,) = of_kind(overlay, "ServiceMonitor").values()
    selector = monitor["spec"]["selector"]["matchLabels"]
    for name in PORTS:
        labels = of_kind(overlay, "Service")[f"tagstream-{name}"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
    assert monitor["spec"]["endpoints"][0]["port"] == "http"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_prometheusrule_passes_promtool(overlay: str, tmp_path: Path) -> None:
    (rule,) = of_kind(overlay, "PrometheusRule").values()
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    assert "SUCCESS" in run(tool("promtool"), "check", "rules", path)


def secret_values(overlay: str) -> dict[tuple[str, str], str]:
    """(secret, key) -> value: generated ones (dev) or stand-ins for those made out of band."""
    values = {
        ("tagstream-secrets", "database-url"): "postgresql://tagstream:pw@db:5432/tagstream",
        ("tagstream-secrets", "ingest-api-keys"): "k" * 32,
        ("tagstream-secrets", "feedback-api-keys"): "k" * 32,
        ("tagstream-secrets", "rollout-admin-keys"): "k" * 32,
        ("tagstream-secrets", "review-session-secret"): "s" * 48,
        ("tagstream-app", "password"): "scram-password",
    }
    for secret in of_kind(overlay, "Secret").values():
        base = secret["metadata"]["name"].rsplit("-", 1)[0]
        for key, encoded in secret.get("data", {}).items():
            values[(base, key)] = base64.b64decode(encoded).decode()
    return values


def environment(overlay: str, container: Resource) -> dict[str, str]:
    env = dict(config(overlay))
    secrets = secret_values(overlay)
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            name = ref["name"]
            base = (
                name.rsplit("-", 1)[0] if (name.rsplit("-", 1)[0], ref["key"]) in secrets else name
            )
            if overlay == "dev" and base == "tagstream-app":
                continue  # optional: no KafkaUser in dev, the variable stays unset
            env[item["name"]] = secrets[(base, ref["key"])]
    return env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_starts_with_the_settings_it_is_given(overlay: str) -> None:
    names = set(config(overlay))
    for name in PORTS:
        deployment = of_kind(overlay, "Deployment")[f"tagstream-{name}"]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env = environment(overlay, container)
        names |= set(env)
        settings = build(name, env)
        if settings is None:  # the rollout settings may not exist yet
            continue
        assert getattr(settings, f"{name}_port") == PORTS[name]
        assert settings.kafka_enable_idempotence is True  # type: ignore[attr-defined]
    assert not unknown_variables(names)


def test_prod_talks_sasl_ssl_with_the_cluster_ca_mounted() -> None:
    data = config("prod")
    assert data["TAGSTREAM_KAFKA_SECURITY_PROTOCOL"] == "SASL_SSL"
    assert data["TAGSTREAM_KAFKA_SASL_MECHANISM"] == "SCRAM-SHA-512"
    assert data["TAGSTREAM_ENVIRONMENT"] == "production"
    cafile = Path(data["TAGSTREAM_KAFKA_SSL_CAFILE"])
    (user,) = of_kind("prod", "KafkaUser")
    assert data["TAGSTREAM_KAFKA_SASL_USERNAME"] == user
    for where, spec in pod_specs("prod").items():
        if "postgres" in where:
            continue
        (container,) = spec["containers"]
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volume = {v["name"]: v for v in spec["volumes"]}[mounts[str(cafile.parent)]]
        assert volume["secret"]["secretName"] == "tagstream-kafka-cluster-ca-cert", where
        passwords = [e for e in container["env"] if e["name"] == "TAGSTREAM_KAFKA_SASL_PASSWORD"]
        assert passwords[0]["valueFrom"]["secretKeyRef"]["name"] == user, where


def test_training_runs_as_a_job_and_a_cronjob_with_the_registry_volume() -> None:
    for overlay in OVERLAYS:
        specs = pod_specs(overlay)
        init = specs["Job/tagstream-init"]["containers"][0]["command"]
        assert "tagstream db upgrade" in init[-1]
        assert "tagstream model ensure" in init[-1]
        train = specs["CronJob/tagstream-train"]["containers"][0]["command"]
        assert train[:3] == ["tagstream", "model", "train"]
        for where in ("Job/tagstream-init", "CronJob/tagstream-train"):
            claims = [v.get("persistentVolumeClaim") for v in specs[where]["volumes"]]
            assert {"claimName": "tagstream-registry"} in claims
        (pvc,) = of_kind(overlay, "PersistentVolumeClaim").values()
        assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
