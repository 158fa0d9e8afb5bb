"""Every settings class tagstream has, who reads it, and its values shown safely.

The one list behind ``tagstream settings show`` and the generated
``docs/configuration.md``. Classes are imported only when asked for, so the CLI stays
fast.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings

MASK = "**********"
_URL_PASSWORD = re.compile(r"(://[^:/@]+:)[^@]+@")


@dataclass(frozen=True, slots=True)
class SettingsClass:
    """One settings class: ``name`` as ``--service`` takes it, who reads it."""

    name: str
    module: str
    attribute: str
    readers: str
    title: str

    def load(self) -> type[BaseSettings]:
        cls: type[BaseSettings] = getattr(importlib.import_module(self.module), self.attribute)
        return cls


SERVICES = ("ingest", "classifier", "review", "feedback", "rollout")
CATALOG: dict[str, SettingsClass] = {
    "shared": SettingsClass(
        "shared",
        "shared.settings",
        "Settings",
        "every service and the `tagstream` commands",
        "Shared by every part",
    ),
    **{
        name: SettingsClass(
            name,
            f"services.{name}.settings",
            f"{name.title()}Settings",
            f"the {name} service",
            f"{name.title()} (`services/{name}`)",
        )
        for name in SERVICES
    },
    "client": SettingsClass(
        "client",
        "tagstream.cli.client_settings",
        "ClientSettings",
        "the `tagstream` commands that call a service",
        "Command-line clients of running services",
    ),
    "demo": SettingsClass(
        "demo",
        "tagstream.demo.settings",
        "DemoSettings",
        "`tagstream demo` (`make demo`)",
        "The flywheel demo (`tagstream demo`)",
    ),
}


def env_name(cls: type[BaseSettings], field: str) -> str:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return f"{prefix}{field}".upper()


@dataclass(frozen=True, slots=True)
class FieldDoc:
    """One setting as the reference lists it."""

    variable: str
    type: str
    default: str
    description: str
    readers: tuple[str, ...]


def describe_type(annotation: Any) -> str:
    """A short, stable name of a field's type (``a | b`` for choices)."""
    origin = get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(str(a) for a in get_args(annotation))
    args = [a for a in get_args(annotation) if a is not type(None)]
    if origin in (tuple, list, set, frozenset):
        return f"list of {describe_type(args[0])}" if args else "list"
    if args and len(args) < len(get_args(annotation)):  # Optional[X]
        return describe_type(args[0]) if len(args) == 1 else " \\| ".join(map(describe_type, args))
    if annotation is SecretStr:
        return "secret"
    if annotation is Path:
        return "path"
    if isinstance(annotation, type):
        return {"str": "text", "int": "integer", "float": "number", "bool": "true/false"}.get(
            annotation.__name__, annotation.__name__
        )
    return str(annotation).replace("typing.", "")


def show_default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        return "computed at start-up"
    return show_value(field.default) if field.default is not None else "unset"


def show_value(value: Any) -> str:
    """A value as ``settings show`` prints it: secrets masked, URL passwords hidden."""
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return MASK if value.get_secret_value() else ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, tuple | list | frozenset | set):
        return ",".join(show_value(v) for v in value) if value else "none"
    if isinstance(value, Path):
        return str(value)
    return _URL_PASSWORD.sub(rf"\1{MASK}@", str(value))


def fields_by_class() -> Iterator[tuple[SettingsClass, list[FieldDoc]]]:
    """Each class with the fields it adds (a field once, under the first class that has
    it), and every class that reads each field."""
    loaded = {name: entry.load() for name, entry in CATALOG.items()}
    listed: set[str] = set()
    for name, entry in CATALOG.items():
        cls = loaded[name]
        docs = []
        for field_name, field in cls.model_fields.items():
            if field_name in listed:
                continue
            listed.add(field_name)
            extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
            readers = (
                (str(extra["read_by"]),)
                if "read_by" in extra
                else tuple(
                    CATALOG[other].readers
                    for other, other_cls in loaded.items()
                    if field_name in other_cls.model_fields
                )
            )
            docs.append(
                FieldDoc(
                    env_name(cls, field_name),
                    describe_type(field.annotation),
                    show_default(field),
                    " ".join((field.description or "").split()),
                    readers[:1] if name == "shared" else readers,
                )
            )
        yield entry, docs


def effective(settings: BaseSettings) -> list[tuple[str, str, bool]]:
    """(variable, value shown safely, whether it is the default) for each field."""
    cls = type(settings)
    rows = []
    for field_name in cls.model_fields:
        value = getattr(settings, field_name)
        is_default = field_name not in settings.model_fields_set
        rows.append((env_name(cls, field_name), show_value(value), is_default))
    return rows
