"""Bearer API keys: hashed, compared in constant time, required in production."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from pydantic import ValidationError

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.security import ApiKeys
from shared.settings import Settings
from tests.services.ingest.conftest import API_KEY, ingest_settings, metric, running


def test_keys_are_identified_by_digest_only() -> None:
    keys = ApiKeys(["alpha", "beta"])
    assert keys.identify("beta") is not None
    assert keys.identify("alpha") != keys.identify("beta")
    assert keys.identify("gamma") is None
    assert keys.identify("") is None
    assert "alpha" not in repr(vars(keys))


def test_keys_come_comma_separated_and_stay_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGSTREAM_INGEST_API_KEYS", " k1 , k2,, ")
    settings = IngestSettings(environment="test")
    assert [k.get_secret_value() for k in settings.ingest_api_keys] == ["k1", "k2"]
    assert "k1" not in repr(settings)


def test_production_refuses_to_start_without_keys() -> None:
    with pytest.raises(ValidationError, match="TAGSTREAM_INGEST_API_KEYS"):
        IngestSettings(environment="production", database_url="postgresql://db/x")


def test_production_refuses_placeholder_keys() -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        IngestSettings(
            environment="production", database_url="postgresql://db/x", ingest_api_keys="dev"
        )


@pytest.mark.kafka
async def test_missing_wrong_and_right_keys(
    topics: Settings, metrics_registry: CollectorRegistry
) -> None:
    # a configured key that happens to look like a review token is still a key
    settings = ingest_settings(topics, ingest_api_keys=f"other-key,{API_KEY},tsr_a-key")
    async with running(
        create_app(settings, metrics_registry=metrics_registry), headers={}
    ) as client:
        item = {"title": "auth"}
        missing = await client.post("/v1/items", json=item)
        wrong = await client.post("/v1/items", json=item, headers={"Authorization": "Bearer nope"})
        basic = await client.post("/v1/items", json=item, headers={"Authorization": "Basic eA=="})
        batch = await client.post("/v1/items:batch", json={"items": [item]})
        right = await client.post(
            "/v1/items", json=item, headers={"Authorization": f"Bearer {API_KEY}"}
        )
        other = await client.post(
            "/v1/items", json={"title": "2"}, headers={"Authorization": "Bearer other-key"}
        )
        prefixed = await client.post(
            "/v1/items", json={"title": "3"}, headers={"Authorization": "Bearer tsr_a-key"}
        )
        review = await client.post(
            "/v1/items", json={"title": "4"}, headers={"Authorization": "Bearer tsr_xyz"}
        )

    for response in (missing, wrong, basic, batch):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        [error] = response.json()["detail"]
        assert error["field"] == "Authorization"
    assert (right.status_code, other.status_code, prefixed.status_code) == (202, 202, 202)
    assert review.status_code == 403
    assert "www-authenticate" not in review.headers
    assert review.json()["detail"] == [
        {
            "field": "Authorization",
            "reason": "a reviewer token cannot call the ingest API; "
            "use a key from TAGSTREAM_INGEST_API_KEYS",
        }
    ]
    assert metric(metrics_registry, "tagstream_ingest_rejections_total", reason="unauthorized") == 4
    assert metric(metrics_registry, "tagstream_ingest_rejections_total", reason="forbidden") == 1


@pytest.mark.kafka
async def test_without_keys_development_refuses_every_request_and_says_why(
    topics: Settings,
) -> None:
    settings = ingest_settings(topics, environment="development", ingest_api_keys="")
    async with running(create_app(settings)) as client:
        response = await client.post(
            "/v1/items", json={"title": "t"}, headers={"Authorization": "Bearer anything"}
        )

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "set TAGSTREAM_INGEST_API_KEYS" in response.json()["detail"][0]["reason"]
