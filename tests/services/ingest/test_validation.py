"""Validation, normalisation and canonical URLs: pure functions, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.ingest import validation
from services.ingest.schemas import ItemIn
from services.ingest.validation import (
    ItemLimits,
    ItemRejected,
    canonical_url,
    clean_item,
    parse_item,
)
from shared.http.errors import FieldError

LIMITS = ItemLimits(max_title_chars=20, max_description_chars=50)


def rejection(**fields: object) -> list[FieldError]:
    with pytest.raises(ItemRejected) as caught:
        parse_item(fields, LIMITS)
    return caught.value.errors


def test_text_is_nfkc_normalised_and_control_characters_removed() -> None:
    item = clean_item(
        ItemIn(title="  ﬁne\u0000 tuning\x07\n BERT ", description="Ｆｕｌｌ\twidth\r\n"), LIMITS
    )
    assert item.title == "fine tuning BERT"
    assert item.description == "Full width"


def test_optional_fields_empty_after_normalisation_become_absent() -> None:
    item = clean_item(ItemIn(title="t", source=" \t", external_id="\x00", url=" "), LIMITS)
    assert (item.source, item.external_id, item.url, item.description) == (None, None, None, "")


@pytest.mark.parametrize("title", ["", "   ", "\x00\x01\x7f", "\u200b\n"[1:]])
def test_title_empty_after_normalisation_is_rejected(title: str) -> None:
    errors = rejection(title=title)
    assert [(e.field, e.category) for e in errors] == [("title", "title_empty")]


@pytest.mark.parametrize(
    ("field", "limit"),
    [("title", 20), ("description", 50), ("url", 2048), ("source", 200), ("external_id", 200)],
)
def test_field_lengths_are_limited(field: str, limit: int) -> None:
    value = "x" * (limit + 1)
    fields = {"title": "ok", field: f"https://e.org/{value}" if field == "url" else value}
    errors = rejection(**fields)
    assert errors[0].field == field
    assert errors[0].category == f"{field}_too_long"
    assert f"at most {limit}" in errors[0].reason


def test_length_is_measured_after_normalisation() -> None:
    # 23 characters as sent, 20 once white space is collapsed
    assert clean_item(ItemIn(title="a    b" + "c" * 17), LIMITS).title == "a b" + "c" * 17


def test_every_error_is_reported_not_just_the_first() -> None:
    errors = rejection(title="", url="ftp://x.org/f", description="d" * 51)
    assert {e.field for e in errors} == {"title", "url", "description"}


@pytest.mark.parametrize(
    ("url", "category"),
    [
        ("ftp://example.org/file", "bad_url_scheme"),
        ("javascript:alert(1)", "bad_url_scheme"),
        ("example.org/page", "bad_url_scheme"),
        ("http://", "bad_url"),
        ("https://user:pw@example.org/", "bad_url"),
        ("http://[::1", "bad_url"),
        ("http://example.org:99999/", "bad_url"),
        ("http://exa mple.org/", "bad_url"),
    ],
)
def test_bad_urls_are_rejected(url: str, category: str) -> None:
    errors = rejection(title="t", url=url)
    assert [(e.field, e.category) for e in errors] == [("url", category)]


def test_scheme_reason_is_spelled_out() -> None:
    assert rejection(title="t", url="ftp://x.org")[0].reason == "scheme must be http or https"


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTPS://Example.ORG/Path/", "https://example.org/Path"),
        ("https://example.org/", "https://example.org"),
        ("https://example.org", "https://example.org"),
        ("http://example.org:80/a#section", "http://example.org/a"),
        ("https://example.org:8443/a", "https://example.org:8443/a"),
        (
            "https://example.org/a/?utm_source=x&id=3&UTM_Medium=y&b=2",
            "https://example.org/a?id=3&b=2",
        ),
        ("https://example.org/?utm_campaign=z", "https://example.org"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ],
)
def test_canonical_url(url: str, canonical: str) -> None:
    assert canonical_url(url) == canonical


def test_item_url_is_sent_canonical() -> None:
    assert clean_item(ItemIn(title="t", url="HTTP://A.org/x/#f"), LIMITS).url == "http://a.org/x"


def test_lone_surrogates_are_rejected_not_crashed_on() -> None:
    errors = rejection(title="bad \ud800 text")
    assert [(e.field, e.category) for e in errors] == [("title", "bad_unicode")]


def test_created_at_naive_is_utc_and_aware_is_converted() -> None:
    naive = clean_item(ItemIn(title="t", created_at=datetime(2024, 5, 1, 12)), LIMITS)
    assert naive.created_at == datetime(2024, 5, 1, 12, tzinfo=UTC)
    offset = timezone(timedelta(hours=2))
    aware = clean_item(
        ItemIn(title="t", created_at=datetime(2024, 5, 1, 12, tzinfo=offset)), LIMITS
    )
    assert aware.created_at == datetime(2024, 5, 1, 10, tzinfo=UTC)


def test_created_at_out_of_range_is_a_field_error() -> None:
    errors = rejection(title="t", created_at="9999-12-31T23:59:59-23:00")
    assert [(e.field, e.category) for e in errors] == [("created_at", "bad_created_at")]


def test_unknown_fields_and_wrong_types_name_the_field() -> None:
    errors = rejection(title=5, tags=["x"])
    assert {(e.field, e.category) for e in errors} == {
        ("title", "invalid_value"),
        ("tags", "unknown_field"),
    }


def test_a_batch_element_that_is_not_an_object_is_named_item() -> None:
    with pytest.raises(ItemRejected) as caught:
        parse_item("just a string", LIMITS)
    assert caught.value.errors[0].field == "item"


def test_bidi_controls_and_zero_width_characters_are_removed_joiners_kept() -> None:
    item = clean_item(
        ItemIn(title="evil\u202egnp.exe \u2066x\u2069\u200b", description="a\u200db\ufeffc"),
        LIMITS,
    )
    assert item.title == "evilgnp.exe x"
    assert item.description == "a\u200dbc"  # a zero-width joiner shapes some scripts


def test_a_field_far_over_its_limit_is_refused_before_it_is_normalised(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    normalised: list[int] = []
    real = validation.normalise
    monkeypatch.setattr(validation, "normalise", lambda v: normalised.append(len(v)) or real(v))
    at_cap = "a" + " " * (validation.RAW_CHARS_FACTOR * 20 - 2) + "b"  # 80 as sent, "a b"
    assert clean_item(ItemIn(title=at_cap), LIMITS).title == "a b"
    errors = rejection(title="t", description="\ufdfa" * (validation.RAW_CHARS_FACTOR * 50 + 1))
    assert [(e.field, e.category) for e in errors] == [("description", "description_too_long")]
    assert "201 as sent" in errors[0].reason
    assert normalised == [80, 1]  # the title above, then this title: never the description
