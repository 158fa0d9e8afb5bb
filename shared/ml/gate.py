"""The offline gate: is a candidate no worse than the stable version, before any traffic?

Both versions' ONNX taggers score the same items, so the comparison is paired: per item,
each model is right or wrong, and only the items where exactly one of them is right
(``candidate_only``, ``stable_only``) say anything about the difference. The items are the
frozen test split (the same split for the same data and seed) and the golden set: a
reserved share of human gold labels that never enters training
(``shared.ml.gold.is_golden``), a
living reference of recent traffic.

A test item counts only if neither version fitted on it: each version records the digests
of the texts it fitted on (``FITTED_ARTIFACT``), and the candidate's test items whose text
the stable version fitted on are left out (``unseen_by``). Without that, a candidate
trained on another CSV, or split by another seed, is judged partly on the stable
version's training items, where the stable version looks better than it is.

The rule is non-inferiority: the one-sided lower confidence bound of the accuracy
difference (candidate minus stable) must not fall below ``-margin``, overall and on every
slice (per data set, per tag) with at least ``min_slice_items`` items. Overall, a bound
that clears passes on any number of items; one that does not, on fewer than
``min_slice_items`` items, is inconclusive rather than evidence of harm, so the verdict is
``not_run`` with ``inconclusive: true`` unless the candidate is proven worse (the upper
bound below ``-margin``): the rollout's online checks then decide.

The bound is the Agresti-Min interval for paired proportions (a Wald interval on the
paired difference after adding half an item to each cell of the 2x2 table): it stays
honest when the two models disagree on no item at all, where a plain Wald interval has
zero width.

No training library here: the gate needs onnxruntime only (``shared.serving``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shared.ml.data import LabeledItem
from shared.proportions import agresti_min_bounds
from shared.serving.onnx_tagger import OnnxTagger
from shared.serving.text import prepare_text

Verdict = Literal["passed", "failed", "not_run"]
METHOD = "paired accuracy difference, one-sided Agresti-Min lower bound vs -margin"
TEST, GOLDEN = "test", "golden"
FITTED_ARTIFACT = "fitted_texts.json"
"""Registry artifact: sha256 of every text a version fitted on (train and validation)."""


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fitted_texts_json(items: Iterable[LabeledItem]) -> bytes:
    """The ``FITTED_ARTIFACT`` of a version that fitted on ``items``.

    ``title_sha256`` (digests of the prepared titles alone) lets ``model evaluate`` spot a
    training item in a CSV that carries its title without its description."""
    fitted = list(items)
    digests = sorted({text_digest(item.text) for item in fitted})
    titles = sorted({text_digest(prepare_text(item.title)) for item in fitted})
    return json.dumps({"sha256": digests, "title_sha256": titles}, indent=0).encode()


def read_fitted_texts(raw: bytes) -> frozenset[str]:
    return frozenset(json.loads(raw)["sha256"])


def read_fitted_titles(raw: bytes) -> frozenset[str]:
    """Digests of the prepared titles; empty for versions registered before they were kept."""
    return frozenset(json.loads(raw).get("title_sha256", ()))


def unseen_by(fitted: frozenset[str], items: Sequence[LabeledItem]) -> list[LabeledItem]:
    """The items whose text a version that fitted on ``fitted`` has never seen."""
    return [item for item in items if text_digest(item.text) not in fitted]


@dataclass(frozen=True, slots=True)
class GateConfig:
    margin: float
    min_slice_items: int
    confidence: float


@dataclass(frozen=True, slots=True)
class PairedSlice:
    """One slice's paired counts: the 2x2 table of right/wrong for candidate and stable."""

    both: int = 0
    candidate_only: int = 0
    stable_only: int = 0
    neither: int = 0

    @property
    def n(self) -> int:
        return self.both + self.candidate_only + self.stable_only + self.neither

    def add(self, candidate_right: bool, stable_right: bool) -> PairedSlice:
        return PairedSlice(
            self.both + (candidate_right and stable_right),
            self.candidate_only + (candidate_right and not stable_right),
            self.stable_only + (stable_right and not candidate_right),
            self.neither + (not candidate_right and not stable_right),
        )

    def bounds(self, confidence: float) -> tuple[float, float]:
        """Agresti-Min interval of candidate minus stable accuracy (each side one-sided)."""
        return agresti_min_bounds(self.candidate_only, self.stable_only, self.n, confidence)

    def figures(self, config: GateConfig, *, always_judged: bool = False) -> dict[str, Any]:
        n = self.n
        judged = n > 0 and (always_judged or n >= config.min_slice_items)
        low, high = self.bounds(config.confidence) if n else (None, None)
        return {
            "n": n,
            "candidate_accuracy": _ratio(self.both + self.candidate_only, n),
            "stable_accuracy": _ratio(self.both + self.stable_only, n),
            "difference": _ratio(self.candidate_only - self.stable_only, n),
            "lower_bound": _round(low),
            "upper_bound": _round(high),
            "candidate_only_correct": self.candidate_only,
            "stable_only_correct": self.stable_only,
            "judged": judged,
            "passed": (low is not None and low >= -config.margin) if judged else None,
        }


def _top_tags(tagger: OnnxTagger, texts: list[str]) -> list[str]:
    classes = tagger.classes
    return [classes[int(i)] for i in tagger.predict_proba(texts).argmax(axis=1)]


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 6) if den else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def not_run(reason: str, config: GateConfig) -> dict[str, Any]:
    """The gate's record when there is nothing to compare with (e.g. no stable version)."""
    return {"verdict": "not_run", "reason": reason, **_settings(config)}


def _settings(config: GateConfig) -> dict[str, Any]:
    return {
        "method": METHOD,
        "margin": config.margin,
        "confidence": config.confidence,
        "min_slice_items": config.min_slice_items,
    }


def run_gate(
    candidate: OnnxTagger,
    stable: OnnxTagger,
    *,
    stable_version: str,
    test: Sequence[LabeledItem],
    golden: Sequence[LabeledItem],
    config: GateConfig,
) -> dict[str, Any]:
    """Score every item with both versions and judge the candidate; JSON-ready figures.

    Slices: ``data:test``, ``data:golden`` and ``tag:<true tag>``. (Items carry no source,
    so there is no per-source slice.)
    """
    items = [(item, TEST) for item in test] + [(item, GOLDEN) for item in golden]
    if not items:
        return not_run("no test or golden items to compare on", config)
    texts = [item.text for item, _ in items]
    by_candidate, by_stable = _top_tags(candidate, texts), _top_tags(stable, texts)
    overall = PairedSlice()
    slices: dict[str, PairedSlice] = {}
    for (item, dataset), mine, theirs in zip(items, by_candidate, by_stable, strict=True):
        right = (mine == item.tag, theirs == item.tag)
        overall = overall.add(*right)
        for name in (f"data:{dataset}", f"tag:{item.tag}"):
            slices[name] = slices.get(name, PairedSlice()).add(*right)
    verdict, reason, failed = judge(overall, slices, config, stable_version)
    return {
        "verdict": verdict,
        "reason": reason,
        "inconclusive": verdict == "not_run",
        "stable_version": stable_version,
        **_settings(config),
        "test_items": len(test),
        "golden_items": len(golden),
        "overall": overall.figures(config, always_judged=True),
        "slices": {name: s.figures(config) for name, s in sorted(slices.items())},
        "failed_slices": failed,
    }


def judge(
    overall: PairedSlice, slices: dict[str, PairedSlice], config: GateConfig, stable_version: str
) -> tuple[Verdict, str, list[str]]:
    """The verdict, its reason and the failed slices (``overall`` first when it failed)."""
    figures = {name: s.figures(config) for name, s in sorted(slices.items())}
    overall_figures = overall.figures(config, always_judged=True)
    failed = [name for name, f in figures.items() if f["passed"] is False]
    shown_no_worse = overall_figures["passed"] is True
    proven_worse = overall_figures["upper_bound"] < -config.margin
    verdict: Verdict
    if shown_no_worse or proven_worse or overall.n >= config.min_slice_items:
        if not shown_no_worse:
            failed.insert(0, "overall")
        verdict = "failed" if failed else "passed"
        reason = (
            f"worse than {stable_version} beyond the margin on: {', '.join(failed)}"
            if failed
            else f"no worse than {stable_version} beyond the margin overall and on every "
            "judged slice"
        )
    else:
        verdict, failed = "not_run", []
        reason = (
            f"inconclusive on only {overall.n} items neither version fitted on (at least "
            f"{config.min_slice_items} are needed to fail a candidate that is not shown "
            f"worse than {stable_version}): the online canary decides"
        )
    return verdict, reason, failed
