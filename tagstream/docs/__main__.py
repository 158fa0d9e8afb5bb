"""``python -m tagstream.docs [--check]``: regenerate (or check) the reference documents."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tagstream.docs import GENERATED, stale, write


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    parser.add_argument("--check", action="store_true", help="only report stale files")
    args = parser.parse_args(argv)
    if args.check:
        outdated = stale(args.root)
        for name in outdated:
            print(f"{name} is stale: run `make docs`", file=sys.stderr)
        return 1 if outdated else 0
    changed = write(args.root)
    print(f"rewrote {', '.join(changed)}" if changed else f"up to date: {', '.join(GENERATED)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
