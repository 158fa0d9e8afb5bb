"""Which ``TAGSTREAM_*`` variables tagstream reads, and building a service's settings from
the environment a deployment file gives it."""

from __future__ import annotations

import importlib
import inspect
import os
import re
from collections.abc import Mapping
from unittest import mock

from pydantic_settings import BaseSettings

from shared.settings import Settings

SERVICES = ("ingest", "classifier", "review", "feedback", "rollout")
#: Read by the image, not by a settings class: the Dockerfile's HEALTHCHECK URL.
IMAGE_VARIABLES = frozenset({"TAGSTREAM_HEALTHCHECK_URL"})
#: Settings of a service whose settings module is not there yet (the rollout controller,
#: issue 5): its variables are accepted by prefix until the module exists.
PENDING = {"rollout": ("TAGSTREAM_ROLLOUT_", "TAGSTREAM_PROMETHEUS_URL")}


def settings_class(service: str) -> type[BaseSettings] | None:
    """The settings class of ``services.<service>.settings``, None while it does not exist."""
    try:
        module = importlib.import_module(f"services.{service}.settings")
    except ModuleNotFoundError:
        return None
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Settings)
        and obj is not Settings
        and obj.__module__ == module.__name__
    ]
    assert len(classes) == 1, f"services.{service}.settings: {classes}"
    return classes[0]


def variables(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


def unknown_variables(names: set[str]) -> set[str]:
    """The ``TAGSTREAM_*`` names no settings class (nor the image) reads."""
    known = variables(Settings) | IMAGE_VARIABLES
    pending: list[str] = []
    for service in SERVICES:
        cls = settings_class(service)
        if cls is None:
            pending += PENDING.get(service, ())
        else:
            known |= variables(cls)
    return {
        name
        for name in names
        if name.startswith("TAGSTREAM_")
        and name not in known
        and not any(name.startswith(p) for p in pending)
    }


_INTERPOLATION = re.compile(r"\$\{(\w+)(?::?[-?]([^}]*))?\}")


def interpolate(value: object) -> str:
    """A compose value with ``${VAR:-default}`` replaced by its default (an empty shell)."""
    return _INTERPOLATION.sub(lambda m: m.group(2) or "", str(value))


def build(service: str, environment: Mapping[str, str]) -> BaseSettings | None:
    """The service's settings as its process would read them from ``environment`` alone
    (variables other services read are ignored, as the process ignores them)."""
    cls = settings_class(service)
    if cls is None:
        return None
    with mock.patch.dict(os.environ, dict(environment), clear=True):
        return cls(_env_file=None)  # type: ignore[call-arg]
