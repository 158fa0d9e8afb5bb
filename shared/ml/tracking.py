"""Experiment tracking: a training run logged to MLflow when ``MLFLOW_TRACKING_URI`` is set.

The registry stays the source of truth for what serves; MLflow is where people compare
runs. Each training logs one run, named and tagged with the registry version it produced,
with the parameters, every numeric metric (nested keys joined with dots:
``test.macro_f1``) and the artifacts a person opens: the evaluation report, the model
card and the ONNX model. The experiment is ``MLFLOW_EXPERIMENT_NAME`` or the model's name.

Needs the optional ``mlflow`` extra (``pip install tagstream[mlflow]``). Tracking is a
side channel: an unset URI does nothing, and a missing extra or an unreachable server is
logged as an error without failing the training (the version is registered either way).
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog

from shared.ml.report import CONFUSION_PNG, CURVE_PNG, REPORT_HTML, REPORT_JSON
from shared.registry import ModelVersion
from shared.registry.models import MODEL_ARTIFACT

log = structlog.get_logger(__name__)

URI_VARIABLE = "MLFLOW_TRACKING_URI"
EXPERIMENT_VARIABLE = "MLFLOW_EXPERIMENT_NAME"
#: The registry version a run produced: how a run and a served model find each other.
VERSION_TAG = "tagstream.registry_version"
#: MLflow's limits on a parameter's value and on a key.
MAX_PARAM_CHARS = 6000
MAX_KEY_CHARS = 250
#: What a person opens from a run (the report's files are added by their names).
TRACKED_ARTIFACTS = (MODEL_ARTIFACT, "model_card.md")
REPORT_FILES = (REPORT_HTML, REPORT_JSON, CONFUSION_PNG, CURVE_PNG)


def tracking_uri(environ: Mapping[str, str] = os.environ) -> str | None:
    uri = environ.get(URI_VARIABLE, "").strip()
    return uri or None


def flatten(values: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``{"test": {"f1": 0.9}}`` -> ``("test.f1", 0.9)``, leaves in key order."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            yield from flatten(value, f"{name}.")
        else:
            yield name, value


def log_training_run(
    version: ModelVersion,
    artifacts: Mapping[str, bytes],
    *,
    environ: Mapping[str, str] = os.environ,
) -> str | None:
    """Log ``version``'s training to MLflow; the run id, or None when not tracked."""
    uri = tracking_uri(environ)
    if uri is None:
        return None
    try:
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        log.error(
            "mlflow_not_installed",
            hint="pip install 'tagstream[mlflow]' or unset " + URI_VARIABLE,
        )
        return None
    try:
        client = MlflowClient(tracking_uri=uri)
        name = environ.get(EXPERIMENT_VARIABLE, "").strip() or version.name
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        run = client.create_run(experiment_id, run_name=version.version, tags=_tags(version))
        run_id = run.info.run_id
        now_ms = int(time.time() * 1000)
        params = [
            Param(key[:MAX_KEY_CHARS], str(value)[:MAX_PARAM_CHARS])
            for key, value in flatten(version.params)
        ]
        metrics = [
            Metric(key[:MAX_KEY_CHARS], float(value), now_ms, 0)
            for key, value in flatten(version.metrics)
            if isinstance(value, int | float) and not isinstance(value, bool)
        ]
        # log_batch takes at most 100 params and 1000 metrics a call
        for start in range(0, len(params), 100):
            client.log_batch(run_id, params=params[start : start + 100])
        for start in range(0, len(metrics), 1000):
            client.log_batch(run_id, metrics=metrics[start : start + 1000])
        with tempfile.TemporaryDirectory() as folder:
            for file_name in (*TRACKED_ARTIFACTS, *REPORT_FILES):
                content = artifacts.get(file_name)
                if content is None:
                    continue
                path = Path(folder) / file_name
                path.write_bytes(content)
                client.log_artifact(run_id, str(path))
        client.set_terminated(run_id)
    except Exception as exc:  # tracking must never undo a registered training
        log.error("mlflow_logging_failed", uri=uri, version=version.version, error=repr(exc))
        return None
    log.info("mlflow_run_logged", run_id=run_id, experiment=name, version=version.version)
    return str(run_id)


def _tags(version: ModelVersion) -> dict[str, str]:
    tags = {
        VERSION_TAG: version.version,
        "tagstream.model_name": version.name,
        "tagstream.status": str(version.status),
        "tagstream.data_hash": version.data_hash,
        "tagstream.parent_version": version.parent_version or "none",
    }
    verdict = (version.gate or {}).get("verdict")
    if verdict is not None:
        tags["tagstream.gate"] = str(verdict)
    return tags
