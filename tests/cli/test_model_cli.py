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
    """Only the two settings that isolate a registry (migrated, as by the init job), and
    the session's tiny test encoder (tests/conftest.py), as every other training here."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TAGSTREAM_")}
    return {
        **clean,
        "TAGSTREAM_ENCODER_DIR": os.environ["TAGSTREAM_ENCODER_DIR"],
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


def test_evaluate_any_labelled_csv_warns_of_overlap_and_compares_paired(
    env: dict[str, str], tiny_dataset: Path, tmp_path: Path
) -> None:
    first = train(env, tiny_dataset)
    second = train(
        env, write_rows(tmp_path / "more.csv", synthetic_rows(per_tag=40, seed=1, mark=" more"))
    )
    # title and tag only: 20 rows the first version saw (or held out), 20 it never saw
    seen = synthetic_rows(per_tag=5)
    unseen = synthetic_rows(per_tag=5, seed=3, mark=" unseen")
    path = write_rows(tmp_path / "eval.csv", seen + unseen, ["title", "tag"])
    proc = run(env, "model", "evaluate", "--data", str(path), "--compare", second)
    assert "Traceback" not in proc.stderr
    assert f"rows are in {first}'s training or validation data" in proc.stderr
    assert f"{first} on 40 rows: accuracy" in proc.stdout
    assert f"{second} on 40 rows: accuracy" in proc.stdout
    assert "95% " in proc.stdout
    assert f"paired on 40 rows: {first} minus {second}" in proc.stdout
    assert "McNemar exact p" in proc.stdout
    folder = Path(env["TAGSTREAM_REGISTRY_DIR"]) / "tagstream-tagger" / first / "evaluations"
    (reports,) = folder.iterdir()
    comparison = json.loads((reports / f"compare-{second}.json").read_text())
    assert comparison["n"] == 40
    assert comparison["a"] == first
    assert comparison["b"] == second
    counts = ("both_correct", "a_only_correct", "b_only_correct", "neither_correct")
    assert sum(comparison[k] for k in counts) == 40
    report = json.loads((reports / "report.json").read_text())
    assert [card["name"] for card in report["scorecards"]] == [first, second]
    assert any(first in problem for problem in report["problems"])

    only_unseen = run(env, "model", "evaluate", "--data", str(path), "--unseen-only")
    kept = int(only_unseen.stdout.split(" on ")[1].split(" rows")[0])
    assert 20 <= kept < 40
    assert "left out (--unseen-only)" in only_unseen.stderr


@pytest.mark.parametrize(
    ("rows", "columns", "message"),
    [
        ([{"title": "Image models", "tag": "mlops"}], ["title"], "lacks required column(s) tag"),
        (
            [{"title": "Image models", "tag": "robotics"}],
            ["title", "tag"],
            "line 2: unknown tag 'robotics'",
        ),
    ],
)
def test_evaluate_bad_csv_is_a_clear_error(
    env: dict[str, str],
    tiny_dataset: Path,
    tmp_path: Path,
    rows: list[dict[str, str]],
    columns: list[str],
    message: str,
) -> None:
    train(env, tiny_dataset)
    path = write_rows(tmp_path / "bad.csv", rows, columns)
    proc = run(env, "model", "evaluate", "--data", str(path), ok=False)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_takes_hyperparameters_from_a_file_and_params(
    env: dict[str, str], tiny_dataset: Path, tmp_path: Path
) -> None:
    config = tmp_path / "hp.toml"
    config.write_text("[model]\nc = 2.0\nngram_max = 3\n")
    proc = run(
        env,
        "model",
        "train",
        "--data",
        str(tiny_dataset),
        "--config",
        str(config),
        "--param",
        "ngram_max=2",
        "--param",
        "max_features=none",
    )
    version = proc.stdout.strip().splitlines()[-1]
    record = json.loads(run(env, "model", "show", version, "--json").stdout)
    params = record["params"]
    assert (params["c"], params["ngram_max"], params["max_features"]) == (2.0, 2, None)
    assert params["hyperparameters_set"] == ["c", "max_features", "ngram_max"]
    assert "| ngram_max | `2` |" in record["model_card"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--param", "gamma=1"), "unknown hyper-parameter(s) gamma"),
        (("--param", "c=0"), "c='0': Input should be greater than 0"),
        (("--config", "/nonexistent/hp.toml"), "config file not found"),
    ],
)
def test_bad_hyperparameters_are_a_clear_error(
    env: dict[str, str], tiny_dataset: Path, args: tuple[str, ...], message: str
) -> None:
    proc = run(env, "model", "train", "--data", str(tiny_dataset), *args, ok=False)
    assert proc.returncode == 1
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


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
    env = {k: v for k, v in env.items() if k != "TAGSTREAM_ENCODER_DIR"}  # the real encoder
    version = train(env, dataset_path)
    out = tmp_path / "pred.jsonl"
    run(env, "model", "predict", "--input", str(dataset_path), "--output", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 764
    assert {line["model_version"] for line in lines} == {version}
    assert sum(line["route"] == "auto" for line in lines) > 400
