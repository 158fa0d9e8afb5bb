"""The ``tagstream model`` commands as a user runs them: a real process, only env settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.data import synthetic_rows, write_rows
from tests.fixtures.db import migrated


def run(env: dict[str, str], *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "tagstream.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Only the two settings that isolate a registry (migrated, as by the init job)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TAGSTREAM_")}
    return {
        **clean,
        "TAGSTREAM_REGISTRY_DIR": str(tmp_path / "registry"),
        "TAGSTREAM_DATABASE_URL": migrated(f"sqlite:///{tmp_path / 'registry.db'}"),
    }


def train(env: dict[str, str], data: Path) -> str:
    proc = run(env, "model", "train", "--data", str(data))
    version = proc.stdout.strip().splitlines()[-1]
    assert version.startswith("v")
    assert len(version) == 13
    return version


def test_train_predict_list_show_promote(
    env: dict[str, str], tiny_dataset: Path, tmp_path: Path
) -> None:
    first = train(env, tiny_dataset)
    rows = [{k: v for k, v in r.items() if k != "tag"} for r in synthetic_rows(per_tag=3, seed=9)]
    rows[1]["title"] = ""
    rows[2]["title"] = "x" * 301
    items = write_rows(tmp_path / "items.csv", rows, ["id", "title", "description", "extra"])
    out = tmp_path / "out.jsonl"
    off = tmp_path / "off.jsonl"
    run({**env, "TAGSTREAM_CASCADE_ENABLED": "false"}, "model", "predict", "--input", str(items),
        "--output", str(off))  # fmt: skip
    without = [json.loads(line) for line in off.read_text().splitlines()]
    assert {line.get("stage") for line in without if "error" not in line} == {1}
    run(env, "model", "predict", "--input", str(items), "--output", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    for on_line, off_line in zip(lines, without, strict=True):
        if on_line.get("stage") == 1:  # stage 1's own decisions do not change
            assert on_line == off_line
        elif "error" not in on_line:  # stage 2 only re-decides stage 1's doubts
            assert off_line["route"] == "review"
    assert [line["id"] for line in lines] == [r["id"] for r in rows]
    assert lines[1]["error"] == "title: must not be empty"
    assert lines[2]["error"].startswith("title: longer than 300")
    good = [line for line in lines if "error" not in line]
    assert len(good) == len(rows) - 2
    for line in good:
        assert set(line) == {
            "id", "tag", "probabilities", "confidence", "route", "stage", "model_version"
        }  # fmt: skip
        assert line["model_version"] == first
        assert line["stage"] in (1, 2)
        assert len(line["probabilities"]) == 4
        assert line["route"] in ("auto", "review")

    sk = tmp_path / "sk.jsonl"
    run(env, "model", "predict", "--input", str(items), "--output", str(sk), "--engine", "sklearn")
    for a, b in zip(lines, map(json.loads, sk.read_text().splitlines()), strict=True):
        assert a.get("tag") == b.get("tag")

    more = write_rows(tmp_path / "more.csv", synthetic_rows(per_tag=80, seed=1, mark=" more"))
    second = train(env, more)
    listed = json.loads(run(env, "model", "list", "--json").stdout)
    assert [(v["version"], v["status"]) for v in listed] == [
        (second, "candidate"),
        (first, "stable"),
    ]
    shown = run(env, "model", "show", second).stdout
    assert "Model card" in shown
    assert first in shown
    assert "Offline gate" in shown
    record = json.loads(run(env, "model", "show", second, "--json").stdout)
    gate = record["gate"]
    assert gate["verdict"] in ("passed", "failed")  # paired against the stable `first`
    assert gate["stable_version"] == first
    assert gate["overall"]["n"] == gate["test_items"] > 0
    first_gate = json.loads(run(env, "model", "show", first, "--json").stdout)["gate"]
    assert first_gate["verdict"] == "not_run"
    run(env, "model", "promote", second)
    listed = json.loads(run(env, "model", "list", "--json").stdout)
    assert [v["status"] for v in listed] == ["stable", "retired"]


def test_evaluate_writes_reports_beside_the_model(
    env: dict[str, str], tiny_dataset: Path, tmp_path: Path
) -> None:
    version = train(env, tiny_dataset)
    other = write_rows(tmp_path / "other.csv", synthetic_rows(per_tag=12, seed=5))
    proc = run(env, "model", "evaluate", "--data", str(other))
    assert "weighted F1" in proc.stdout
    report_dir = Path(env["TAGSTREAM_REGISTRY_DIR"]) / "tagstream-tagger" / version / "evaluations"
    (folder,) = report_dir.iterdir()
    assert {p.name for p in folder.iterdir()} >= {
        "report.json",
        "report.html",
        "confusion_matrix.png",
    }
    assert json.loads((folder / "report.json").read_text())["n_items"] == 48


def test_bad_data_is_a_clear_error_not_a_traceback(env: dict[str, str], tmp_path: Path) -> None:
    rows = synthetic_rows(per_tag=12)
    rows[3]["tag"] = "robotics"
    proc = run(
        env, "model", "train", "--data", str(write_rows(tmp_path / "bad.csv", rows)), ok=False
    )
    assert proc.returncode == 1
    assert "tag 'robotics' is not an approved tag" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_predict_without_a_model_says_what_to_do(env: dict[str, str], tmp_path: Path) -> None:
    items = write_rows(tmp_path / "i.csv", synthetic_rows(per_tag=1))
    proc = run(env, "model", "predict", "--input", str(items), "--output", "-", ok=False)
    assert proc.returncode == 1
    assert "no stable model" in proc.stderr


def test_bad_settings_are_named(env: dict[str, str]) -> None:
    proc = run({**env, "TAGSTREAM_TARGET_PRECISION": "2"}, "model", "list", ok=False)
    assert proc.returncode == 2
    assert "TAGSTREAM_TARGET_PRECISION" in proc.stderr


@pytest.mark.slow
def test_contract_train_then_predict_on_the_real_dataset(
    env: dict[str, str], dataset_path: Path, tmp_path: Path
) -> None:
    version = train(env, dataset_path)
    out = tmp_path / "pred.jsonl"
    run(env, "model", "predict", "--input", str(dataset_path), "--output", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 764
    assert {line["model_version"] for line in lines} == {version}
    assert sum(line["route"] == "auto" for line in lines) > 400
