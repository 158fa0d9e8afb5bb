"""Settings of the review service: the shared base plus queue, lease, auth and web knobs.

Field names carry a ``review_`` prefix: ``review_port`` is ``TAGSTREAM_REVIEW_PORT``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator

from shared.settings import Settings


class ReviewSettings(Settings):
    """What ``python -m services.review`` reads from ``TAGSTREAM_*`` at start-up."""

    review_host: str = Field("127.0.0.1", description="Interface the HTTP server listens on.")
    review_port: int = Field(8003, ge=1, le=65535, description="Port the HTTP server listens on.")
    review_lease_seconds: int = Field(
        300,
        ge=5,
        le=86_400,
        description="How long a claim holds an item; after that it is claimable again.",
    )
    review_undo_window_seconds: int = Field(
        120, ge=0, le=86_400, description="How long after labeling a reviewer may undo it."
    )
    review_priority: Literal["confidence", "oldest"] = Field(
        "confidence",
        description="Queue order: 'confidence' = lowest model confidence first, then oldest; "
        "'oldest' = oldest received first.",
    )
    review_labels_per_item: int = Field(
        1,
        ge=1,
        le=5,
        description="Distinct reviewers who must label an item before it leaves the queue; "
        "2 or more measures agreement.",
    )
    review_group_id: str = Field(
        "tagstream-review", description="Kafka consumer group reading review.requests."
    )
    review_batch_max_items: int = Field(
        200, ge=1, le=10_000, description="Most review requests stored per transaction."
    )
    review_batch_max_wait_ms: int = Field(
        200, ge=0, le=10_000, description="Longest wait for a batch of review requests to fill."
    )
    review_outbox_poll_seconds: float = Field(
        0.5, gt=0, le=60, description="Pause of the outbox relay when nothing is waiting."
    )
    review_outbox_batch: int = Field(
        100, ge=1, le=10_000, description="Most labels the relay produces per round."
    )
    review_gauge_refresh_seconds: float = Field(
        5.0, gt=0, le=600, description="How often queue depth and oldest age are measured."
    )
    review_retry_backoff_max_seconds: float = Field(
        5.0, gt=0, description="Longest pause before reconnecting to the broker after a failure."
    )
    review_stuck_after_seconds: float = Field(
        60.0,
        gt=0,
        description="Unready when review requests are waiting (lag > 0) and no offset was "
        "committed for this long.",
    )
    review_session_cookie_name: str = Field(
        "tagstream_review_session", description="Name of the web UI's session cookie."
    )
    review_session_cookie_secure: bool | None = Field(
        None,
        description="Send the session cookie over HTTPS only. Unset: true everywhere but "
        "development.",
    )
    review_session_secret: SecretStr | None = Field(
        None,
        description="Key that signs session cookies (32+ characters); required in production. "
        "Unset elsewhere: a random key per process, so logins end on restart.",
    )
    review_session_max_age_seconds: int = Field(
        8 * 3600, gt=0, description="Lifetime of a web UI login session."
    )

    review_token_max_age_seconds: int | None = Field(
        None,
        gt=0,
        description="Lifetime of an API token from its issue (`tagstream users add` or "
        "`rotate-token`); after that it is refused with 401. Unset: tokens do not expire.",
    )
    review_login_max_failures: int = Field(
        5,
        ge=1,
        description="Failed web logins allowed per account within "
        "review_login_window_seconds; past that its logins are refused (429) until the "
        "window has passed, even with the right password.",
    )
    review_login_max_failures_per_address: int = Field(
        20,
        ge=1,
        description="Failed web logins allowed per client address (any accounts) within "
        "review_login_window_seconds; past that the address is refused (429).",
    )
    review_login_window_seconds: int = Field(
        300, gt=0, description="The window over which failed web logins are counted."
    )

    @property
    def session_cookie_secure(self) -> bool:
        """The effective secure flag of the session cookie."""
        if self.review_session_cookie_secure is not None:
            return self.review_session_cookie_secure
        return self.environment != "development"

    @model_validator(mode="after")
    def _secure_cookie_in_production(self) -> ReviewSettings:
        if self.environment == "production" and self.review_session_cookie_secure is False:
            raise ValueError("production refuses TAGSTREAM_REVIEW_SESSION_COOKIE_SECURE=false")
        secret = self.review_session_secret
        if self.environment == "production" and (
            secret is None or len(secret.get_secret_value()) < 32
        ):
            raise ValueError("production needs TAGSTREAM_REVIEW_SESSION_SECRET (32+ characters)")
        return self
