"""Kafka security settings reach every client tagstream builds (producer, consumer, admin)."""

from __future__ import annotations

import ast
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import shared.kafka.topics
from shared.kafka import client_options, create_consumer, create_producer, ensure_topics
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
CLIENT_CLASSES = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A self-signed CA certificate and a client certificate + key (openssl)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "client.crt", folder / "client.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-subj", "/CN=tagstream-test", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, cert, key


@pytest.fixture
def secure(tls_files: tuple[Path, Path, Path]) -> Settings:
    ca, cert, key = tls_files
    return Settings(
        kafka_bootstrap_servers="broker-0:9093,broker-1:9093",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="tagstream",
        kafka_sasl_password="s3cret-password",  # type: ignore[arg-type]
        kafka_ssl_cafile=ca,
        kafka_ssl_certfile=cert,
        kafka_ssl_keyfile=key,
        kafka_enable_idempotence=True,
    )


def assert_secure(client: Any) -> None:
    """``client`` is the aiokafka connection layer (``producer.client``, ``_client``)."""
    assert client._bootstrap_servers == "broker-0:9093,broker-1:9093"
    assert client._security_protocol == "SASL_SSL"
    assert client._sasl_mechanism == "SCRAM-SHA-512"
    assert client._sasl_plain_username == "tagstream"
    assert client._sasl_plain_password == "s3cret-password"
    context = client._ssl_context
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_client_options_carry_sasl_and_tls(secure: Settings) -> None:
    options = client_options(secure)
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "s3cret-password"
    assert isinstance(options["ssl_context"], ssl.SSLContext)


def test_plaintext_has_no_tls_or_sasl() -> None:
    options = client_options(Settings())
    assert options == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}


async def test_producer_gets_security_and_idempotence(secure: Settings) -> None:
    producer = create_producer(secure)
    try:
        assert_secure(producer.client)
        assert producer._txn_manager is not None  # idempotent: a producer id is requested
    finally:
        await producer.stop()


async def test_producer_without_idempotence_by_default() -> None:
    producer = create_producer(Settings())
    try:
        assert producer._txn_manager is None
    finally:
        await producer.stop()


async def test_consumer_gets_security(secure: Settings) -> None:
    consumer = create_consumer(secure, "content.raw", group_id="g")
    try:
        assert_secure(consumer._client)
    finally:
        await consumer.stop()


async def test_admin_client_gets_security(
    secure: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    class Recorder:
        def __init__(self, **options: Any) -> None:
            seen.update(options)

        async def start(self) -> None:
            raise ConnectionError("recorded, not connected")

    monkeypatch.setattr(shared.kafka.topics, "AIOKafkaAdminClient", Recorder)
    with pytest.raises(ConnectionError):
        await ensure_topics(secure)
    assert seen["security_protocol"] == "SASL_SSL"
    assert seen["sasl_plain_username"] == "tagstream"
    assert isinstance(seen["ssl_context"], ssl.SSLContext)


def direct_constructions() -> list[tuple[str, int, str, bool]]:
    """Every ``AIOKafka*(...)`` call in shared/ and services/: whether it passes
    ``**client_options(...)`` (or, in clients.py, options built from it)."""
    found = []
    for path in sorted([*ROOT.glob("shared/**/*.py"), *ROOT.glob("services/**/*.py")]):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            name = getattr(node.func, "id", getattr(node.func, "attr", None))
            if name not in CLIENT_CLASSES:
                continue
            spread = [ast.unparse(k.value) for k in node.keywords if k.arg is None]
            ok = any("client_options(" in s for s in spread) or (
                path.name == "clients.py" and any("options" in s for s in spread)
            )
            found.append((str(path.relative_to(ROOT)), node.lineno, str(name), ok))
    return found


def test_every_kafka_client_is_built_with_the_security_options() -> None:
    found = direct_constructions()
    assert {name for _, _, name, _ in found} == CLIENT_CLASSES
    missing = [f"{path}:{line} {name}" for path, line, name, ok in found if not ok]
    assert not missing, f"built without **client_options(settings): {missing}"


@pytest.mark.parametrize(
    "fields",
    [
        {"kafka_security_protocol": "SASL_SSL"},
        {
            "kafka_security_protocol": "SASL_PLAINTEXT",
            "kafka_sasl_mechanism": "SCRAM-SHA-256",
            "kafka_sasl_username": "u",
        },
        {"kafka_security_protocol": "SSL", "kafka_ssl_certfile": "/c.crt"},
        {"kafka_ssl_cafile": "/ca.crt"},
    ],
)
def test_incomplete_security_settings_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Settings(**fields)


def test_security_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tls_files: tuple[Path, Path, Path]
) -> None:
    ca, _, _ = tls_files
    monkeypatch.setenv("TAGSTREAM_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TAGSTREAM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TAGSTREAM_KAFKA_SASL_USERNAME", "tagstream")
    monkeypatch.setenv("TAGSTREAM_KAFKA_SASL_PASSWORD", "from-a-secret")
    monkeypatch.setenv("TAGSTREAM_KAFKA_SSL_CAFILE", str(ca))
    options = client_options(Settings())
    assert options["sasl_plain_password"] == "from-a-secret"
    assert isinstance(options["ssl_context"], ssl.SSLContext)
