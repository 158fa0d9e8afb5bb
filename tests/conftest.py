pytest_plugins = [
    "tests.fixtures.postgres_server",
    "tests.fixtures.db",
    "tests.fixtures.data",
    "tests.fixtures.kafka",
]


import os  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def tiny_encoder_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every training in the tests (in process or in a service process) builds its stage 2
    on a tiny random BERT, unless a test names another encoder: same code path, seconds
    instead of minutes. The slow quality test names the real one."""
    from tests.fixtures.encoder import write_tiny_encoder

    folder = write_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))
    before = os.environ.get("TAGSTREAM_ENCODER_DIR")
    os.environ["TAGSTREAM_ENCODER_DIR"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("TAGSTREAM_ENCODER_DIR", None)
    else:
        os.environ["TAGSTREAM_ENCODER_DIR"] = before
