"""Files read at run time come through importlib.resources, so a wheel serves them too."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from tagstream.local import prometheus


def test_the_embedded_prometheus_config_and_its_rules_are_package_data() -> None:
    package = resources.files("tagstream.local")
    config = yaml.safe_load((package / "embedded.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert yaml.safe_load((package / "alerts.yml").read_text())["groups"]


def test_up_writes_the_config_with_its_rules_beside_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prometheus.shutil, "which", lambda name: f"/usr/bin/{name}")
    spec = prometheus.prometheus_spec(
        {"ingest": 18001, "review": 18003},
        tmp_path,
        port=19090,
        scrape_interval="2s",
        runbook_base_url="https://wiki.example.com/tagstream",
    )
    assert spec is not None
    folder = tmp_path / "prometheus"
    config = yaml.safe_load((folder / "prometheus.yml").read_text())
    assert config["rule_files"] == [str(folder / "alerts.yml")]
    assert (folder / "alerts.yml").read_text() == prometheus.read_resource("alerts.yml")
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    assert targets["tagstream-ingest"] == ["127.0.0.1:18001"]
    assert targets["prometheus"] == ["127.0.0.1:19090"]
    assert config["global"]["scrape_interval"] == "2s"
    assert config["global"]["external_labels"]["runbook_base_url"] == (
        "https://wiki.example.com/tagstream"
    )
    assert f"--config.file={folder / 'prometheus.yml'}" in spec.argv


def test_the_review_pages_and_static_files_are_package_data() -> None:
    package = resources.files("services.review")
    for name in ["login.html.j2", "base.html.j2", "review.html.j2"]:
        assert (package / "templates" / name).is_file(), name
    for name in ["review.css", "review.js"]:
        assert (package / "static" / name).is_file(), name
