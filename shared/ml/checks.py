"""The checks every trained model gets beside its test-split evaluation.

* baselines: the majority class and the keyword rules (``shared.ml.baselines``) scored with
  the model(s) on the same test split, so the report says how much better than "day one"
  the model is;
* can-it-overfit: the pipeline learns a small training subset by heart
  (``shared.ml.overfit``);
* behavioural tests (``shared.ml.behaviour``) on the model that serves.

None of them stops a registration; the report and model card show every failure, and
``problems`` lists them for the CLI to print.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from shared.ml.baselines import KeywordBaseline, MajorityBaseline
from shared.ml.behaviour import BehaviourReport, run_behaviour
from shared.ml.config import ModelConfig
from shared.ml.data import Splits
from shared.ml.overfit import Fit, OverfitCheck, overfit_check
from shared.ml.pipeline import build_pipeline
from shared.ml.predictor import Predictor, ThresholdPredictor
from shared.ml.scorecard import Scorecard, score
from shared.ml.scoring import SklearnTagger

CHECKS_JSON = "checks.json"


class ModelChecks(BaseModel):
    model_config = ConfigDict(frozen=True)

    split: str
    baselines: list[Scorecard]
    """Baselines first, then the models, in the order given; all on the same items."""
    overfit: OverfitCheck
    behaviour: BehaviourReport

    @property
    def problems(self) -> list[str]:
        """What a person should look at, one line each (empty when all is well)."""
        found = []
        if not self.overfit.passed:
            found.append(
                f"can-it-overfit FAILED: {self.overfit.train_accuracy:.1%} accuracy on the "
                f"{self.overfit.n_items} items it was fitted on (needs "
                f"{self.overfit.min_accuracy:.0%}): the training pipeline is suspect"
            )
        models = self.baselines[2:]
        rules = self.baselines[1]
        for model in models:
            if model.f1_weighted <= rules.f1_weighted:
                found.append(
                    f"{model.name} does not beat the keyword rules on the {self.split} split "
                    f"(weighted F1 {model.f1_weighted:.3f} vs {rules.f1_weighted:.3f})"
                )
        for failure in self.behaviour.failures:
            shown = failure.variant or failure.title
            found.append(
                f"behavioural {failure.kind} ({failure.name}) failed: {shown!r} -> "
                f"{failure.predicted}, expected {failure.expected}"
            )
        return found


def stage_one_fit(config: ModelConfig, seed: int) -> Fit:
    """Fit today's pipeline (TF-IDF + logistic regression) the way training does."""

    def fit(texts: Sequence[str], tags: Sequence[str]) -> Predictor:
        pipeline = build_pipeline(config, seed).fit(list(texts), list(tags))
        tagger = SklearnTagger(pipeline)
        return ThresholdPredictor(tagger, {}, tagger.classes, name="stage 1 (subset)")

    return fit


def run_checks(models: Sequence[Predictor], splits: Splits, *, fit: Fit, seed: int) -> ModelChecks:
    """Score the baselines and ``models`` on the test split; overfit ``fit`` on a training
    subset; run the behavioural tests on the last of ``models`` (the one that serves)."""
    if not models:
        raise ValueError("no model to check")
    train_tags = [i.tag for i in splits.train]
    texts, tags = [i.text for i in splits.test], [i.tag for i in splits.test]
    predictors: list[Predictor] = [
        MajorityBaseline.fit(train_tags),
        KeywordBaseline.fit(train_tags),
        *models,
    ]
    return ModelChecks(
        split="test",
        baselines=[score(p, texts, tags) for p in predictors],
        overfit=overfit_check(fit, splits.train, seed=seed),
        behaviour=run_behaviour(models[-1]),
    )


def checks_metrics(checks: ModelChecks) -> dict[str, object]:
    """The checks in a version's metrics (the registry record): figures, not every case."""
    return {
        "baselines": {
            card.name: {
                "accuracy": card.accuracy,
                "f1_weighted": card.f1_weighted,
                "auto_coverage": card.auto_coverage,
                "auto_precision": card.auto_precision,
            }
            for card in checks.baselines
        },
        "overfit": {
            "train_accuracy": checks.overfit.train_accuracy,
            "passed": checks.overfit.passed,
        },
        "behaviour": {
            "passed": checks.behaviour.n_passed,
            "cases": len(checks.behaviour.results),
            "failed": [f"{r.kind}: {r.variant or r.title}" for r in checks.behaviour.failures],
        },
        "problems": checks.problems,
    }
