"""The schema-compatibility rule: within a schema_version, only optional fields are added.

``test_every_message_is_compatible_with_its_committed_schema`` is the guard on the real
messages; the generator refuses to overwrite a committed schema with a breaking change,
so a breaking edit cannot be made to pass by regenerating. The other tests pin the rule
on small models, one kind of change each.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, create_model

from shared.messages import ContentItem
from shared.messages.compatibility import breaking_changes
from shared.messages.schemas import SCHEMA_DIR, incompatible, main, render


def test_every_message_is_compatible_with_its_committed_schema() -> None:
    refused = incompatible(render(), SCHEMA_DIR)
    report = "\n".join(f"  {name}: {p}" for name, problems in refused.items() for p in problems)
    assert not refused, (
        "message changes a rolling deploy would not survive (within a schema_version only "
        f"optional fields may be added; anything else needs a new schema_version):\n{report}"
    )


class Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    tag: str
    probability: float = Field(ge=0, le=1)


class Committed(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    schema_version: Literal[1] = 1
    item_id: str = Field(max_length=64, description="Id assigned by ingest.")
    route: Literal["auto", "review"]
    source: str | None = None
    best: Part


def schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


def redeclared(
    model: type[BaseModel], config: ConfigDict | None = None, **fields: Any
) -> type[BaseModel]:
    """``model`` under the same name with ``fields`` changed, as (type, default); None drops."""
    spec: dict[str, Any] = {n: (f.annotation, f) for n, f in model.model_fields.items()}
    for name, new in fields.items():
        if new is None:
            del spec[name]
        else:
            spec[name] = new
    return create_model(model.__name__, __config__=config or model.model_config, **spec)


def changes(**fields: Any) -> list[str]:
    """What breaks when ``Committed`` is redeclared with ``fields`` changed."""
    return breaking_changes(schema(Committed), schema(redeclared(Committed, **fields)))


def test_an_unchanged_schema_has_no_breaking_change() -> None:
    assert breaking_changes(schema(Committed), schema(Committed)) == []


def test_an_added_optional_field_is_compatible() -> None:
    assert changes(language=(str | None, None)) == []
    assert changes(audit=(bool, False)) == []


def test_an_added_optional_nested_field_is_compatible() -> None:
    assert changes(best=(redeclared(Part, calibrated=(bool | None, None)), ...)) == []


def test_documentation_may_change() -> None:
    described = Field(max_length=64, description="Another description.", title="Id")
    assert changes(item_id=(str, described)) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"source": None}, "source: field removed"),
        ({"item_id": None}, "item_id: field removed"),
        ({"language": (str, ...)}, "language: new required field"),
        ({"source": (str, ...)}, "source: now required"),
        ({"item_id": (str | None, None)}, "item_id: no longer required"),
        ({"item_id": (int, ...)}, "item_id: type, default or constraints changed"),
        ({"item_id": (str, Field(max_length=32))}, "item_id: type, default or constraints"),
        ({"source": (str | None, "ingest")}, "source: type, default or constraints"),
        ({"route": (Literal["auto"], ...)}, "route: enum changed, values removed ['review']"),
        ({"route": (Literal["auto", "review", "human"], ...)}, "values added ['human']"),
        ({"schema_version": (Literal[2], 2)}, "schema_version: type, default or constraints"),
    ],
    ids=lambda v: str(v)[:40] if isinstance(v, str) else None,
)
def test_a_change_that_is_not_an_added_optional_field_is_refused(
    change: dict[str, Any], expected: str
) -> None:
    problems = changes(**change)
    assert any(expected in p for p in problems), problems


def test_a_changed_nested_field_is_refused() -> None:
    dropped = changes(best=(redeclared(Part, probability=None), ...))
    required = changes(best=(redeclared(Part, calibrated=(bool, ...)), ...))

    assert any("$defs.Part.probability: field removed" in p for p in dropped), dropped
    assert any("$defs.Part.calibrated: new required field" in p for p in required), required


def test_unknown_fields_allowed_in_the_contract_is_refused() -> None:
    lenient = redeclared(Committed, config=ConfigDict(frozen=True, extra="ignore"))
    problems = breaking_changes(schema(Committed), schema(lenient))
    assert any("message: additionalProperties changed" in p for p in problems), problems


def test_the_generator_refuses_to_overwrite_with_a_breaking_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in SCHEMA_DIR.glob("*.json"):
        (tmp_path / path.name).write_text(path.read_text())
    narrowed = json.loads((tmp_path / "content.raw.json").read_text())
    narrowed["properties"]["title"]["minLength"] = 5  # what the code "used to" require
    before = json.dumps(narrowed)
    (tmp_path / "content.raw.json").write_text(before)
    monkeypatch.setattr("shared.messages.schemas.SCHEMA_DIR", tmp_path)

    assert main([]) == 1

    assert (tmp_path / "content.raw.json").read_text() == before
    assert (
        "content.raw.json: title: type, default or constraints changed" in capsys.readouterr().err
    )
    assert main(["--allow-breaking"]) == 0
    assert json.loads((tmp_path / "content.raw.json").read_text()) == schema(ContentItem)
