"""``tagstream model``: train, evaluate, predict with, inspect and promote model versions.

Each command imports what it uses when it runs: the training stack (scikit-learn, scipy,
onnx, matplotlib) takes seconds to load, and ``tagstream --help`` or ``model list`` must
not wait for it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tagstream.cli.common import err, load_settings, out, user_errors

if TYPE_CHECKING:
    from shared.registry import ModelRegistry, ModelVersion
    from shared.settings import Settings

app = typer.Typer(
    help="Model lifecycle: train, evaluate, predict, list, show, promote.", no_args_is_help=True
)

VersionOpt = Annotated[
    str | None, typer.Option("--model", help="Model version; default: the stable one.")
]


def _pick(registry: ModelRegistry, version: str | None) -> ModelVersion:
    if version:
        return registry.get(version)
    stable = registry.stable()
    if stable is None:
        err.print("[red]error:[/red] no stable model registered; run `tagstream model train`")
        raise typer.Exit(1)
    return stable


def _fmt(value: object) -> str:
    return "n/a" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)


@app.command()
def train(
    data: Annotated[
        str | None, typer.Option(help="CSV path or URL; default TAGSTREAM_DATA_LOCATION.")
    ] = None,
    with_feedback: Annotated[
        bool,
        typer.Option(
            "--with-feedback",
            help="Add the gold labels of the feedback store (TAGSTREAM_DATABASE_URL) to "
            "the training split.",
        ),
    ] = False,
    params: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            metavar="NAME=VALUE",
            help="Set one hyper-parameter (repeatable; overrides --config): "
            "ngram_max, min_df, max_features, c, class_weight, max_iter; 'none' for none.",
        ),
    ] = None,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="TOML or JSON file of hyper-parameters (top level or a [model] table).",
        ),
    ] = None,
) -> None:
    """Train, check ONNX parity, calibrate, evaluate and register a model version.

    Hyper-parameters come from the defaults, then --config, then each --param; they are
    recorded in the model card and the version's params. The registered version is
    printed alone on the last line of standard output.
    """
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    # the feedback service owns the gold labels: ask its module, never its tables
    from services.feedback.gold import load_gold
    from shared.ml import training
    from shared.ml.config import load_model_config

    settings = load_settings()
    with user_errors():
        config = load_model_config(config_file, params or ())
        # Read either way: the offline gate always uses the golden share of the gold labels;
        # --with-feedback also trains on the rest.
        stored_gold = load_gold(settings.database_url, settings.approved_tags)
    gold = stored_gold if with_feedback else None
    if with_feedback:
        err.print(f"gold labels from the feedback store: {len(stored_gold.items)} item(s)")
    with (
        user_errors(),
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=False,
        ) as progress,
    ):
        task = progress.add_task("training", total=len(training.STEPS))

        def on_step(name: str) -> None:
            progress.update(task, description=name, completed=training.STEPS.index(name))

        result = training.train(
            settings,
            data_location=data,
            config=config,
            on_step=on_step,
            gold=gold,
            golden_from=stored_gold,
        )
        progress.update(task, description="done", completed=len(training.STEPS))
    report, version = result.report, result.version
    table = Table(title=f"{version.version} ({version.status})", show_header=False)
    table.add_row(
        "items (train/validation/test)",
        "/".join(str(len(p)) for p in result.splits.as_dict().values()),
    )
    table.add_row("test weighted F1", _fmt(report.overall.f1_weighted))
    table.add_row("test accuracy", _fmt(report.overall.accuracy))
    if result.checks is not None:
        table.add_row(
            "baselines' test weighted F1",
            ", ".join(f"{c.name} {c.f1_weighted:.3f}" for c in result.checks.baselines[:2]),
        )
    table.add_row("auto-accepted coverage (test)", _fmt(report.auto.coverage))
    table.add_row("auto-accepted precision (test)", _fmt(report.auto.precision))
    table.add_row("thresholds", ", ".join(f"{t} {v:.3f}" for t, v in version.thresholds.items()))
    table.add_row(
        "ONNX parity max |Δp|", f"{max(p.max_abs_diff for p in result.parity.values()):.1e}"
    )
    gate = version.gate or {}
    table.add_row("offline gate", f"{gate.get('verdict', 'not_run')}: {gate.get('reason', '')}")
    table.add_row("artifacts", str(_version_dir(settings, version)))
    err.print(table)
    for problem in result.checks.problems if result.checks else ():
        err.print(f"[yellow]check:[/yellow] {problem}", highlight=False)
    if result.announced is False:
        err.print(
            f"note: {settings.topic_models} not reachable; the candidate is registered all the "
            "same (the rollout service finds it on its next poll, or start its rollout with "
            "`tagstream rollout start VERSION`)"
        )
    print(version.version)


def _version_dir(settings: Settings, version: ModelVersion) -> Path:
    from shared.registry import ModelRegistry

    with ModelRegistry.open(settings) as registry:
        return registry.version_dir(version.version)


@app.command()
def ensure() -> None:
    """Train the default model unless a stable version is registered; say where it is."""
    from shared.registry import ModelRegistry

    settings = load_settings()
    with user_errors(), ModelRegistry.open(settings) as registry:
        stable = registry.stable()
        if stable is not None:
            out.print(f"stable model {stable.version} at {registry.version_dir(stable.version)}")
            return
    err.print(f"no stable model yet: training on {settings.data_location}")
    train(data=None)


@app.command("evaluate")
def evaluate_cmd(
    data: Annotated[
        str,
        typer.Option(
            help="Labelled CSV (path or URL) with title and tag columns; description and id "
            "are used when present."
        ),
    ],
    model: VersionOpt = None,
    compare: Annotated[
        str | None,
        typer.Option(
            "--compare",
            metavar="VERSION",
            help="Also score VERSION on the same rows and compare the two, paired "
            "(McNemar exact test, paired difference with its 95% interval).",
        ),
    ] = None,
    unseen_only: Annotated[
        bool,
        typer.Option(
            "--unseen-only",
            help="Leave out the rows a scored version fitted on (same text or title, train or "
            "validation).",
        ),
    ] = False,
) -> None:
    """Evaluate a version on labelled data; writes report.json and report.html beside it.

    Figures come with 95% Wilson intervals, so small sets read for what they prove. Rows
    the version fitted on are counted and warned about.
    """
    from shared.ml.data import DataError, dataset_hash
    from shared.ml.offline_evaluation import evaluate_version, fitted_rows, load_labelled_csv
    from shared.ml.report import write_report
    from shared.ml.scorecard import compare_paired
    from shared.registry import ModelRegistry

    settings = load_settings()
    with user_errors(), ModelRegistry.open(settings) as registry:
        version = _pick(registry, model)
        versions = [version] + ([registry.get(compare)] if compare else [])
        items = load_labelled_csv(data, settings.approved_tags)
        warnings: list[str] = []  # printed
        overlaps: list[str] = []  # printed, and at the top of the report
        seen = [False] * len(items)
        for v in versions:
            fitted = fitted_rows(registry, v, items)
            if fitted is None:
                warnings.append(
                    f"{v.version} does not record what it fitted on: rows it trained on "
                    "cannot be told apart"
                )
                continue
            seen = [a or b for a, b in zip(seen, fitted, strict=True)]
            if any(fitted):
                overlaps.append(
                    f"{sum(fitted)} of {len(items)} rows are in {v.version}'s training or "
                    "validation data (same text or title): "
                    + (
                        "left out (--unseen-only)"
                        if unseen_only
                        else "its figures on them are optimistic (--unseen-only leaves them out)"
                    )
                )
        if unseen_only:
            items = [item for item, was_seen in zip(items, seen, strict=True) if not was_seen]
            if not items:
                raise DataError("every row was fitted on: nothing is left to evaluate")
        data_hash = dataset_hash(items)
        results = [evaluate_version(registry, v, items, settings.approved_tags) for v in versions]
        mine = results[0]
        out_dir = registry.version_dir(version.version) / "evaluations" / data_hash[:12]
        paths = write_report(
            mine.report,
            out_dir,
            title=f"Evaluation of {version.version}",
            context={
                "model version": version.version,
                "data": data,
                "data hash": data_hash,
                "rows": len(items),
            },
            scorecards=[r.scorecard for r in results],
            problems=[] if unseen_only else overlaps,
        )
        comparison = None
        if len(results) == 2:
            other = results[1]
            comparison = compare_paired(mine.version, other.version, mine.right, other.right)
            compare_path = out_dir / f"compare-{other.version}.json"
            compare_path.write_text(comparison.model_dump_json(indent=2) + "\n", encoding="utf-8")
    for warning in [*warnings, *overlaps]:
        err.print(f"[yellow]warning:[/yellow] {warning}", highlight=False, soft_wrap=True)
    if data_hash == version.data_hash:
        err.print(
            "[yellow]note:[/yellow] this is the training data; its test split's "
            "report is the model's own report.json"
        )
    for r in results:
        card = r.scorecard
        out.print(
            f"{r.version} on {card.n} rows: accuracy {_fmt(card.accuracy)} "
            f"({_interval(card.accuracy_interval)}), weighted F1 {_fmt(card.f1_weighted)}, "
            f"auto coverage {_fmt(card.auto_coverage)} at precision {_fmt(card.auto_precision)}"
            + (
                f" ({_interval(card.auto_precision_interval)}, {card.auto_correct}/{card.n_auto})"
                if card.auto_precision_interval
                else ""
            ),
            highlight=False,
            soft_wrap=True,
        )
    if comparison is not None:
        c = comparison
        out.print(
            f"paired on {c.n} rows: {c.a} minus {c.b} accuracy {c.difference:+.3f} "
            f"({_interval(c.difference_interval, signed=True)}); right only by {c.a}: "
            f"{c.a_only_correct}, only by {c.b}: {c.b_only_correct}; "
            f"McNemar exact p = {c.mcnemar_p:.3g}",
            highlight=False,
            soft_wrap=True,
        )
        out.print(f"comparison: {compare_path}", highlight=False, soft_wrap=True)
    out.print(f"report: {paths['report.html']}", highlight=False, soft_wrap=True)
    out.print(f"json:   {paths['report.json']}", highlight=False, soft_wrap=True)


def _interval(interval: object, *, signed: bool = False) -> str:
    low, high = getattr(interval, "low", None), getattr(interval, "high", None)
    if low is None or high is None:
        return "95% interval n/a"
    form = "+.3f" if signed else ".3f"
    return f"95% {low:{form}} to {high:{form}}"


@app.command()
def predict(
    input: Annotated[Path, typer.Option("--input", help="CSV with title, description (id).")],
    output: Annotated[Path, typer.Option("--output", help="JSONL file to write ('-' = stdout).")],
    engine: Annotated[str, typer.Option(help="onnx or sklearn.")] = "onnx",
    model: VersionOpt = None,
) -> None:
    """Score a CSV: one JSON line per row, or an error line naming the bad field."""
    if engine not in ("onnx", "sklearn"):
        raise typer.BadParameter("must be onnx or sklearn", param_hint="--engine")
    from shared.ml.data import parse_csv, read_text
    from shared.ml.scoring import load_tagger
    from shared.registry import ModelRegistry
    from shared.serving.scoring import load_cascade_stage2, score_rows

    settings = load_settings()
    with user_errors(), ModelRegistry.open(settings) as registry:
        version = _pick(registry, model)
        tagger = load_tagger(registry, version, "sklearn" if engine == "sklearn" else "onnx")
        stage2 = load_cascade_stage2(registry, version, settings)  # TAGSTREAM_CASCADE_ENABLED
        rows = parse_csv(read_text(str(input)), required=("title",))
        sink = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8")
        counts = {"scored": 0, "errors": 0}
        try:
            for result in score_rows(rows, tagger, version, settings, stage2):
                counts["errors" if "error" in result else "scored"] += 1
                sink.write(json.dumps(result, ensure_ascii=False) + "\n")
        finally:
            if sink is not sys.stdout:
                sink.close()
    err.print(f"{counts['scored']} scored, {counts['errors']} error line(s) with {version.version}")


@app.command("list")
def list_cmd(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Registered versions, newest first."""
    from shared.registry import ModelRegistry

    settings = load_settings()
    with user_errors(), ModelRegistry.open(settings) as registry:
        versions = registry.list_versions()
    if as_json:
        print(json.dumps([v.model_dump(mode="json", exclude={"model_card"}) for v in versions]))
        return
    table = Table("version", "status", "created", "weighted F1", "auto coverage", "parent")
    for v in versions:
        test = v.metrics.get("test", {})
        auto = v.metrics.get("auto", {})
        table.add_row(
            v.version,
            v.status,
            f"{v.created_at:%Y-%m-%d %H:%M}",
            _fmt(test.get("f1_weighted")),
            _fmt(auto.get("coverage")),
            v.parent_version or "-",
        )
    out.print(table)


@app.command()
def show(
    version: str,
    as_json: Annotated[
        bool, typer.Option("--json", help="The version's record, with its offline gate.")
    ] = False,
) -> None:
    """The model card of VERSION: data hash, params, metrics, thresholds, parent, gate."""
    from shared.registry import ModelRegistry

    settings = load_settings()
    with user_errors(), ModelRegistry.open(settings) as registry:
        v = registry.get(version)
        directory = registry.version_dir(v.version)
    if as_json:
        record = v.model_dump(mode="json")
        # Always an object: versions registered before the gate existed say so.
        record["gate"] = v.gate or {"verdict": "not_run", "reason": "registered before the gate"}
        print(json.dumps(record))
        return
    out.print(f"[bold]{v.version}[/bold] status={v.status} artifacts={directory}")
    print(v.model_card)


@app.command()
def promote(version: str) -> None:
    """Make VERSION the stable model (the previous stable one is retired)."""
    from shared.registry import ModelRegistry

    settings = load_settings()
    with user_errors(), ModelRegistry.open(settings) as registry:
        before = registry.stable()
        after = registry.promote(version, reason="manual promote from the CLI")
    out.print(f"{after.version} is stable" + (f" (was {before.version})" if before else ""))
