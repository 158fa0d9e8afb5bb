"""``tagstream model train --with-feedback`` reads gold labels from TAGSTREAM_DATABASE_URL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from services.feedback.repository import FeedbackStore
from shared.db.session import make_engine
from shared.registry import ModelRegistry
from shared.settings import Settings
from tests.fixtures.data import VOCAB
from tests.fixtures.db import migrated
from tests.services.feedback.helpers import content, label


def test_train_with_feedback_records_gold_lineage(tmp_path: Path, tiny_dataset: Path) -> None:
    url = f"sqlite:///{tmp_path / 'tagstream.db'}"
    migrated(url)
    engine = make_engine(url)
    store = FeedbackStore(engine, tuple(VOCAB))
    store.apply_batch(
        items=[content(f"g{n}", title=f"{VOCAB['other'][n]} cli gold {n:02d}") for n in range(3)],
        labels=[label(f"g{n}", "other", label_id=f"C{n}") for n in range(3)],
    )
    engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGSTREAM_")}
    env |= {"TAGSTREAM_REGISTRY_DIR": str(tmp_path / "registry"), "TAGSTREAM_DATABASE_URL": url}

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tagstream.cli.main",
            "model",
            "train",
            "--with-feedback",
            "--data",
            str(tiny_dataset),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert "gold labels from the feedback store: 3 item(s)" in proc.stderr
    version = proc.stdout.strip().splitlines()[-1]
    settings = Settings(environment="test", database_url=url, registry_dir=tmp_path / "registry")
    with ModelRegistry.open(settings) as registry:
        registered = registry.get(version)
    assert registered.params["gold_labels"] == 3
    assert registered.params["gold_label_records"] == 3
