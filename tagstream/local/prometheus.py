"""The Prometheus server ``tagstream up`` runs beside the services, when one is installed.

The rollout controller decides on its metrics; without it rollouts stay paused, so
``up`` says so plainly instead of starting a controller that would decide blind.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from shared.settings import DEFAULT_RUNBOOK_BASE_URL
from tagstream.local.supervisor import ServiceSpec

# Package data (pyproject), so an installed wheel runs the same Prometheus as a checkout:
# embedded.yml is the scrape config, alerts.yml the alert rules that compose mounts and the
# Kubernetes PrometheusRule is generated from.
PACKAGE = "tagstream.local"
TEMPLATE = "embedded.yml"
DEFAULT_PORT = 9090
URL_VAR = "TAGSTREAM_PROMETHEUS_URL"
INSTALL_HINT = "apt-get install prometheus (Debian/Ubuntu)"


def read_resource(name: str) -> str:
    """The text of a configuration file shipped in this package."""
    return (resources.files(PACKAGE) / name).read_text(encoding="utf-8")


def render_config(
    ports: Mapping[str, int],
    port: int,
    scrape_interval: str,
    rules_dir: Path,
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL,
) -> dict[str, Any]:
    """``embedded.yml`` with the ports the services really use, its rules in ``rules_dir``
    and the alerts' runbook links under ``runbook_base_url``."""
    config: dict[str, Any] = yaml.safe_load(read_resource(TEMPLATE))
    config["global"]["external_labels"]["runbook_base_url"] = runbook_base_url
    config["global"]["scrape_interval"] = scrape_interval
    config["global"]["evaluation_interval"] = scrape_interval
    config["global"]["scrape_timeout"] = scrape_interval
    config["rule_files"] = [str(rules_dir / name) for name in config.get("rule_files", [])]
    for job in config["scrape_configs"]:
        name = job["job_name"].removeprefix("tagstream-")
        target = ports.get(name, port if name == "prometheus" else None)
        if target is not None:
            job["static_configs"] = [{"targets": [f"127.0.0.1:{target}"]}]
    return config


def prometheus_spec(
    ports: Mapping[str, int],
    var_dir: Path,
    *,
    port: int,
    scrape_interval: str,
    runbook_base_url: str = DEFAULT_RUNBOOK_BASE_URL,
) -> ServiceSpec | None:
    """The supervised Prometheus process, or None when no ``prometheus`` is installed."""
    binary = shutil.which("prometheus")
    if binary is None:
        return None
    folder = var_dir / "prometheus"
    folder.mkdir(parents=True, exist_ok=True)
    config = render_config(ports, port, scrape_interval, folder, runbook_base_url)
    # The rule files are copied beside the config: Prometheus needs real files, and a
    # package's resources need not be files on disk.
    for rule_file in config["rule_files"]:
        Path(rule_file).write_text(read_resource(Path(rule_file).name), encoding="utf-8")
    config_file = folder / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    argv = [
        binary,
        f"--config.file={config_file}",
        f"--storage.tsdb.path={folder / 'data'}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    return ServiceSpec("prometheus", argv, {}, port)
