"""The offline gate as training runs it, on both databases: a sound candidate passes, a
worse one (labels shuffled) fails, and the verdict is in the registry and the model card."""

from __future__ import annotations

import random
from pathlib import Path

from shared.ml import training
from shared.ml.data import LabeledItem
from shared.ml.gate import FITTED_ARTIFACT
from shared.ml.gold import GoldSet, golden_items
from shared.registry import ModelRegistry
from shared.settings import Settings
from tests.fixtures.data import synthetic_rows, write_rows


def data(tmp_path: Path, name: str, rows: list[dict[str, str]]) -> str:
    return str(write_rows(tmp_path / name, rows))


def gold_from(rows: list[dict[str, str]]) -> GoldSet:
    items = [
        LabeledItem(f"gold:{r['id']}-g", r["title"] + " gold", r["description"], r["tag"])
        for r in rows
    ]
    return GoldSet(items=items, label_ids_hash="h", n_labels=len(items))


def test_a_sound_candidate_passes_and_a_worse_one_fails(settings: Settings, tmp_path: Path) -> None:
    settings = settings.model_copy(update={"golden_share": 0.5, "gate_min_slice_items": 35})
    stable = training.train(settings, data_location=data(tmp_path, "a.csv", synthetic_rows(60)))
    assert stable.version.gate is not None
    assert stable.version.gate["verdict"] == "not_run"

    gold = gold_from(synthetic_rows(80, seed=7))
    sound = training.train(
        settings, data_location=data(tmp_path, "b.csv", synthetic_rows(60, seed=1)), gold=gold
    )
    gate = sound.version.gate
    assert gate is not None
    assert gate["verdict"] == "passed", gate["reason"]
    assert gate["stable_version"] == stable.version.version
    assert gate["golden_items"] > 0
    assert gate["slices"]["data:golden"]["n"] == gate["golden_items"]
    assert gate["overall"]["n"] == gate["test_items"] + gate["golden_items"]
    assert gate["overall"]["lower_bound"] >= -settings.gate_margin
    judged = [name for name, figures in gate["slices"].items() if figures["judged"]]
    assert "data:golden" in judged
    assert any(name.startswith("tag:") for name in judged)
    # The golden share never entered training.
    assert sound.version.params["golden_labels"] == gate["golden_items"]
    golden = {i.id for i in golden_items(gold.items, settings.golden_share)}
    trained = {i.id for i in sound.splits.train}
    assert len(golden) == gate["golden_items"]
    assert not golden & trained
    assert {i.id for i in gold.items} - golden <= trained

    rows = synthetic_rows(60, seed=2)
    tags = [r["tag"] for r in rows]
    random.Random(3).shuffle(tags)
    shuffled = [{**r, "tag": t} for r, t in zip(rows, tags, strict=True)]
    worse = training.train(settings, data_location=data(tmp_path, "c.csv", shuffled))
    gate = worse.version.gate
    assert gate is not None
    assert gate["verdict"] == "failed"
    assert "overall" in gate["failed_slices"]
    assert gate["overall"]["difference"] < -settings.gate_margin

    with ModelRegistry.open(settings) as registry:
        stored = registry.get(worse.version.version)
    assert stored.gate == gate
    assert "## Offline gate: failed" in stored.model_card
    assert "## Offline gate: passed" in registry_card(settings, sound.version.version)


def registry_card(settings: Settings, version: str) -> str:
    with ModelRegistry.open(settings) as registry:
        return registry.get(version).model_card


def test_training_without_gold_still_gates_on_the_golden_share(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"golden_share": 0.5})
    training.train(settings, data_location=data(tmp_path, "a.csv", synthetic_rows(60)))
    gold = gold_from(synthetic_rows(20, seed=7))
    trained = training.train(
        settings,
        data_location=data(tmp_path, "b.csv", synthetic_rows(60, seed=1)),
        golden_from=gold,
    )
    gate = trained.version.gate
    assert gate is not None
    assert gate["golden_items"] == len(golden_items(gold.items, 0.5)) > 0
    assert not {i.id for i in trained.splits.train} & {i.id for i in gold.items}


def test_a_candidate_split_by_another_seed_is_judged_only_on_items_stable_held_out(
    settings: Settings, tmp_path: Path
) -> None:
    """An item the stable version trained on would make it look better than it is."""
    location = data(tmp_path, "a.csv", synthetic_rows(120))
    stable = training.train(settings, data_location=location)
    other = settings.model_copy(update={"seed": settings.seed + 1})
    candidate = training.train(other, data_location=location)

    gate = candidate.version.gate
    assert gate is not None
    held_out = {i.id for i in stable.splits.test}
    own_test = {i.id for i in candidate.splits.test}
    assert gate["test_items"] == len(held_out & own_test)
    assert gate["test_items"] < len(own_test)  # the seeds' splits do differ


def test_a_candidate_trained_on_other_data_is_judged_only_on_texts_stable_never_fitted_on(
    settings: Settings, tmp_path: Path
) -> None:
    """Same seed, another CSV (the stable's rows and more): the splits differ, so many of
    the candidate's test items were in the stable version's training split."""
    rows = synthetic_rows(60)
    stable = training.train(settings, data_location=data(tmp_path, "a.csv", rows))
    more = [{**r, "id": str(1000 + i)} for i, r in enumerate(synthetic_rows(60, seed=5))]
    candidate = training.train(settings, data_location=data(tmp_path, "b.csv", rows + more))

    with ModelRegistry.open(settings) as registry:
        assert FITTED_ARTIFACT in registry.get(stable.version.version).artifacts
    fitted = {i.text for i in (*stable.splits.train, *stable.splits.validation)}
    unseen = [i for i in candidate.splits.test if i.text not in fitted]
    assert 0 < len(unseen) < len(candidate.splits.test)
    gate = candidate.version.gate
    assert gate is not None
    assert gate["test_items"] == len(unseen)
