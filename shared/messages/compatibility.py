"""Which changes to a committed message schema a rolling deploy survives.

During a rolling deploy old and new code run side by side, on both ends of a topic: an
old consumer reads a new producer's messages (it ignores fields it does not know) and a
new consumer reads an old producer's (it takes the defaults of fields the old one did
not send). Within one ``schema_version`` the only change both survive is an **added
optional field**. Everything else breaks one side: a removed field or a field that
became optional (old consumers require it), a new required field or a field that became
required (old producers do not send it), a changed type or constraint, and a changed
enum (narrowed: old producers' values are refused; widened: old consumers refuse the new
values). Titles, descriptions and examples are documentation and may change.

Such a change needs a new ``schema_version``, which consumers that do not support it
dead-letter: a deliberate step, not an edit of a field.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

DOCUMENTATION = frozenset({"title", "description", "examples"})
"""Keywords that describe a schema without constraining it."""
_NAMED = frozenset({"properties", "$defs"})
"""Keywords whose value maps names to schemas (a field named "title" is no annotation)."""


def breaking_changes(committed: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """What in ``current`` a rolling deploy from ``committed`` would not survive; empty if none.

    Both are JSON Schemas as pydantic generates them: an object per message, nested
    models under ``$defs``.
    """
    problems: list[str] = []
    _compare_object("", committed, current, problems)
    old_defs: Mapping[str, Any] = committed.get("$defs", {})
    new_defs: Mapping[str, Any] = current.get("$defs", {})
    for name, old in old_defs.items():
        if name not in new_defs:
            problems.append(f"$defs.{name}: nested type removed or renamed")
        else:
            _compare_object(f"$defs.{name}", old, new_defs[name], problems)
    return problems


def _compare_object(
    where: str, old: Mapping[str, Any], new: Mapping[str, Any], problems: list[str]
) -> None:
    old_fields: Mapping[str, Any] = old.get("properties", {})
    new_fields: Mapping[str, Any] = new.get("properties", {})
    old_required, new_required = set(old.get("required", ())), set(new.get("required", ()))
    for name, old_field in old_fields.items():
        path = f"{where}.{name}" if where else name
        if name not in new_fields:
            problems.append(f"{path}: field removed (old consumers require or read it)")
            continue
        if name in old_required and name not in new_required:
            problems.append(f"{path}: no longer required (old consumers require it)")
        elif name in new_required and name not in old_required:
            problems.append(f"{path}: now required (old producers may not send it)")
        problems.extend(_field_change(path, old_field, new_fields[name]))
    for name in new_fields.keys() - old_fields.keys():
        if name in new_required:
            path = f"{where}.{name}" if where else name
            problems.append(
                f"{path}: new required field (old producers do not send it; give it a default)"
            )
    rest = (old.keys() | new.keys()) - {"properties", "required", "$defs"} - DOCUMENTATION
    for key in sorted(rest):
        if _contract(old.get(key)) != _contract(new.get(key)):
            problems.append(
                f"{where or 'message'}: {key} changed from {old.get(key)!r} to {new.get(key)!r}"
            )


def _field_change(path: str, old: Any, new: Any) -> list[str]:
    before, after = _contract(old), _contract(new)
    if before == after:
        return []
    problems = []
    old_values, new_values = _values(before), _values(after)
    if old_values is not None and old_values != new_values:
        removed = [v for v in old_values if v not in (new_values or ())]
        added = [v for v in new_values or () if v not in old_values]
        problems.append(
            f"{path}: enum changed"
            + (f", values removed {removed} (old producers send them)" if removed else "")
            + (f", values added {added} (old consumers refuse them)" if added else "")
        )
        before, after = _without_values(before), _without_values(after)
    if before != after:
        problems.append(
            f"{path}: type, default or constraints changed from {_contract(old)!r} "
            f"to {_contract(new)!r}"
        )
    return problems


def _values(schema: Any) -> list[Any] | None:
    """The allowed values of an enum (a one-value Literal is a ``const``), else None."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return list(schema["enum"])
    return [schema["const"]] if "const" in schema else None


def _without_values(schema: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in schema.items() if k not in ("enum", "const")}


def _contract(schema: Any) -> Any:
    """``schema`` without its documentation keywords, at every depth."""
    if isinstance(schema, list):
        return [_contract(s) for s in schema]
    if not isinstance(schema, Mapping):
        return schema
    return {
        key: (
            {name: _contract(s) for name, s in value.items()}
            if key in _NAMED and isinstance(value, Mapping)
            else _contract(value)
        )
        for key, value in schema.items()
        if key not in DOCUMENTATION
    }
