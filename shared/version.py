"""tagstream's one version: the installed distribution's, from ``pyproject.toml``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tagstream")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
