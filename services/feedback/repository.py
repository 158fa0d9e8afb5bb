"""SQL of the feedback store. Every method is blocking: callers run them in worker threads.

One consumer batch is one transaction (``apply_batch``): labels are inserted once per
``label_id``, predictions (model decisions; a human decision is not one) and item texts
upserted, the gold row of every item with a new label recomputed from all of its labels.
Redelivered batches therefore change nothing.

Predictions are every model version's answer for an item, from ``content.classified``
(the version that decided) and ``content.shadow`` (the other one while a canary runs),
one row per (item, version, role): that is what lets ``paired`` compare two versions
on the same labelled items.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Engine, and_, case, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, sessionmaker

from services.feedback import report_requests
from services.feedback.metrics import AccuracyRow, AuditRow, PairedRow
from services.feedback.service import LabelView, Reconciled, reconcile
from services.feedback.tables import (
    ConflictRow,
    FeedbackItemRow,
    FeedbackLabelRow,
    GoldLabelRow,
    PredictionRow,
    ReportRequestRow,
    RetrainRunRow,
)
from shared.db.session import make_session_factory
from shared.messages import Classification, ContentItem, FeedbackLabel, ReviewRequest


@dataclass(slots=True)
class BatchEffects:
    """What one batch changed: for metrics, logs and the review requests to produce."""

    new_labels: Counter[str] = field(default_factory=Counter)
    new_conflicts: list[str] = field(default_factory=list)
    requeue: list[tuple[int, ReviewRequest]] = field(default_factory=list)
    #: user reports passed on to review: (their label ids, the request)
    reports: list[tuple[tuple[str, ...], ReviewRequest]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RunRecord:
    id: int
    trigger: str
    started_at: datetime
    result: str
    label_count: int
    version: str | None


MODEL_ROUTES = ("auto", "review")
"""Routes a model decides; any other route on content.classified is not a model's answer."""


def _insert(session: Session, table: Any) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


class FeedbackStore:
    """The feedback tables on one engine."""

    def __init__(self, engine: Engine, approved_tags: Collection[str]) -> None:
        self._engine = engine
        self._approved = frozenset(approved_tags)
        self._reads: sessionmaker[Session] = make_session_factory(engine)
        self._writes: sessionmaker[Session] = make_session_factory(engine, immediate=True)

    # -- the consumer's batch ----------------------------------------------------------

    def apply_batch(
        self,
        *,
        labels: Sequence[FeedbackLabel] = (),
        predictions: Sequence[Classification] = (),
        items: Sequence[ContentItem] = (),
        requeued: Collection[int] = (),
        reported: Collection[str] = (),
        now: datetime | None = None,
    ) -> BatchEffects:
        now = now or datetime.now(UTC)
        effects = BatchEffects()
        with self._writes.begin() as session:
            if requeued:
                session.execute(
                    update(ConflictRow)
                    .where(ConflictRow.id.in_(list(requeued)))
                    .values(requeued_at=now)
                )
            report_requests.mark_sent(session, reported, now)
            self._upsert_items(session, items)
            self._upsert_predictions(session, predictions)
            changed, fresh = self._insert_labels(session, labels, now, effects)
            for item_id in sorted(changed):
                self._reconcile_item(session, item_id, now, effects)
            report_requests.record_reports(
                session, (label for label in fresh if label.source == "user_report")
            )
            touched = changed | {i.item_id for i in items} | {p.item_id for p in predictions}
            effects.requeue = self._pending_requeues(session, touched, now)
            effects.reports = report_requests.pending_requests(
                session, touched, self._approved, self._latest
            )
        return effects

    def _upsert_items(self, session: Session, items: Sequence[ContentItem]) -> None:
        rows = {
            i.item_id: {
                "item_id": i.item_id,
                "title": i.title,
                "description": i.description,
                "url": i.url,
                "received_at": i.received_at,
            }
            for i in items
        }
        if rows:
            stmt = _insert(session, FeedbackItemRow).values(list(rows.values()))
            session.execute(stmt.on_conflict_do_nothing(index_elements=["item_id"]))

    def _upsert_predictions(self, session: Session, predictions: Sequence[Classification]) -> None:
        # Only a model's answers: a person's decision on the item is a label, not a
        # prediction of the version it names, and must not overwrite that version's guess.
        predictions = [p for p in predictions if p.route in MODEL_ROUTES]
        rows = {
            (p.item_id, p.model_version, p.role): {
                "item_id": p.item_id,
                "model_version": p.model_version,
                "role": p.role,
                "predicted_tag": p.predicted_tag or p.tag,
                "route": p.route,
                "confidence": p.confidence,
                "probabilities": dict(p.probabilities),
                "decided_at": p.decided_at,
            }
            for p in predictions
        }
        if not rows:
            return
        stmt = _insert(session, PredictionRow).values(list(rows.values()))
        excluded = stmt.excluded
        session.execute(
            stmt.on_conflict_do_update(
                index_elements=["item_id", "model_version", "role"],
                set_={
                    "predicted_tag": excluded.predicted_tag,
                    "route": excluded.route,
                    "confidence": excluded.confidence,
                    "probabilities": excluded.probabilities,
                    "decided_at": excluded.decided_at,
                },
            )
        )

    def _insert_labels(
        self,
        session: Session,
        labels: Sequence[FeedbackLabel],
        now: datetime,
        effects: BatchEffects,
    ) -> tuple[set[str], list[FeedbackLabel]]:
        """Insert the labels not stored yet: (their item ids, the labels)."""
        fresh = {label.label_id: label for label in labels}
        if not fresh:
            return set(), []
        known = set(
            session.scalars(
                select(FeedbackLabelRow.label_id).where(FeedbackLabelRow.label_id.in_(list(fresh)))
            )
        )
        for label_id, label in fresh.items():
            if label_id in known:
                continue  # append-only: a redelivered label is the same label
            session.add(
                FeedbackLabelRow(
                    label_id=label_id,
                    item_id=label.item_id,
                    tag=label.tag,
                    source=label.source,
                    labeler=label.labeler,
                    model_version=label.model_version,
                    predicted_tag=label.predicted_tag,
                    audit=label.audit,
                    comment=label.comment,
                    labeled_at=label.labeled_at,
                    received_at=now,
                )
            )
            effects.new_labels[label.source] += 1
        session.flush()
        new = [label for label_id, label in fresh.items() if label_id not in known]
        return {label.item_id for label in new}, new

    def _reconcile_item(
        self, session: Session, item_id: str, now: datetime, effects: BatchEffects
    ) -> Reconciled | None:
        rows = session.scalars(select(FeedbackLabelRow).where(FeedbackLabelRow.item_id == item_id))
        views = [
            LabelView(
                r.label_id,
                r.item_id,
                r.tag,
                cast(Any, r.source),
                r.labeler,
                r.labeled_at,
            )
            for r in rows
        ]
        result = reconcile(views)
        if result is None:
            return None  # user reports only: in review (report_requests), not gold
        previous = session.get(GoldLabelRow, item_id)
        if previous is None:
            previous_status = None
            session.add(
                GoldLabelRow(
                    item_id=item_id,
                    tag=result.tag,
                    source=result.source,
                    status=result.status,
                    n_labels=result.n_labels,
                    updated_at=now,
                )
            )
        else:
            previous_status = previous.status
            previous.tag = result.tag
            previous.source = result.source
            previous.status = result.status
            previous.n_labels = result.n_labels
            previous.updated_at = now
        if result.status == "conflict" and previous_status != "conflict":
            session.add(
                ConflictRow(
                    item_id=item_id,
                    tags=",".join(result.conflicting_tags),
                    detected_at=now,
                )
            )
            effects.new_conflicts.append(item_id)
        session.flush()
        return result

    def _pending_requeues(
        self, session: Session, item_ids: Collection[str], now: datetime
    ) -> list[tuple[int, ReviewRequest]]:
        """Review requests for unresolved conflicts whose item text and prediction are known."""
        if not item_ids:
            return []
        pending = session.execute(
            select(ConflictRow.id, ConflictRow.item_id)
            .join(GoldLabelRow, GoldLabelRow.item_id == ConflictRow.item_id)
            .where(
                ConflictRow.item_id.in_(list(item_ids)),
                ConflictRow.requeued_at.is_(None),
                GoldLabelRow.status == "conflict",
            )
        ).all()
        requests: list[tuple[int, ReviewRequest]] = []
        for conflict_id, item_id in pending:
            item = session.get(FeedbackItemRow, item_id)
            prediction = self._latest(session, item_id)
            if item is None or prediction is None:
                continue  # kept pending: requeued once both are known
            predicted = prediction.predicted_tag
            request = ReviewRequest(
                item_id=item_id,
                title=item.title,
                description=item.description,
                url=item.url,
                # A second opinion is needed; the enum has no "conflict" reason on purpose.
                reason="low_confidence",
                predicted_tag=predicted if predicted in self._approved else None,
                confidence=min(1.0, max(0.0, prediction.confidence)),
                probabilities=prediction.probabilities,
                model_version=prediction.model_version,
                received_at=item.received_at,
                requested_at=now,
            )
            requests.append((conflict_id, request))
        return requests

    @staticmethod
    def _latest(session: Session, item_id: str) -> PredictionRow | None:
        return session.scalars(
            select(PredictionRow)
            .where(PredictionRow.item_id == item_id)
            .order_by((PredictionRow.role == "stable").desc(), PredictionRow.decided_at.desc())
            .limit(1)
        ).first()

    # -- reads -------------------------------------------------------------------------

    def latest_prediction(self, item_id: str) -> tuple[str, str | None] | None:
        """(model_version, approved predicted tag or None) of the item's latest decision."""
        with self._reads() as session:
            row = self._latest(session, item_id)
            if row is None:
                return None
            approved = row.predicted_tag in self._approved
            return row.model_version, row.predicted_tag if approved else None

    def accuracy(self) -> list[AccuracyRow]:
        """Gold tag vs each version's prediction, per (model version, role)."""
        return [
            AccuracyRow(version, role, int(n), int(c or 0))
            for version, role, n, c in self._accuracy_rows(by_route=False)
        ]

    def accuracy_by_route(self) -> list[dict[str, Any]]:
        """The same, split by route: audit labels make the ``auto`` figure unbiased."""
        return [
            {
                "model_version": version,
                "role": role,
                "route": route,
                "samples": int(n),
                "correct": int(c or 0),
            }
            for version, role, route, n, c in self._accuracy_rows(by_route=True)
        ]

    def _accuracy_rows(self, *, by_route: bool) -> list[Any]:
        correct = func.sum(case((PredictionRow.predicted_tag == GoldLabelRow.tag, 1), else_=0))
        keys: list[Any] = [PredictionRow.model_version, PredictionRow.role]
        if by_route:
            keys.append(PredictionRow.route)
        query = (
            select(*keys, func.count(), correct)
            .join(GoldLabelRow, GoldLabelRow.item_id == PredictionRow.item_id)
            .where(GoldLabelRow.status == "agreed", GoldLabelRow.tag.is_not(None))
            .group_by(*keys)
            .order_by(*keys)
        )
        with self._reads() as session:
            return list(session.execute(query).all())

    def audit_precision(self) -> list[AuditRow]:
        """Precision of each version's auto-accepted items, on the audit sample only.

        The audit sample is a random share of auto-accepted items sent to review anyway
        (labels with ``audit`` set, naming the version that decided): unlike the items a
        model routed to review, it is an unbiased sample of what reached users untouched.
        """
        audited = (
            select(FeedbackLabelRow.item_id)
            .where(
                FeedbackLabelRow.audit.is_(True),
                FeedbackLabelRow.model_version == PredictionRow.model_version,
            )
            .correlate(PredictionRow)
        )
        correct = func.sum(case((PredictionRow.predicted_tag == GoldLabelRow.tag, 1), else_=0))
        query = (
            select(PredictionRow.model_version, func.count(), correct)
            .join(GoldLabelRow, GoldLabelRow.item_id == PredictionRow.item_id)
            .where(
                GoldLabelRow.status == "agreed",
                GoldLabelRow.tag.is_not(None),
                PredictionRow.route == "auto",
                PredictionRow.item_id.in_(audited),
            )
            .group_by(PredictionRow.model_version)
            .order_by(PredictionRow.model_version)
        )
        with self._reads() as session:
            return [AuditRow(v, int(n), int(c or 0)) for v, n, c in session.execute(query)]

    def paired(self) -> list[PairedRow]:
        """Per (stable, canary) pair: labelled items both answered, by which was right."""
        stable, canary = aliased(PredictionRow), aliased(PredictionRow)

        def count(stable_right: bool, canary_right: bool) -> Any:
            s_ok = stable.predicted_tag == GoldLabelRow.tag
            c_ok = canary.predicted_tag == GoldLabelRow.tag
            both = and_(s_ok if stable_right else ~s_ok, c_ok if canary_right else ~c_ok)
            return func.sum(case((both, 1), else_=0))

        query = (
            select(
                stable.model_version,
                canary.model_version,
                count(True, True),
                count(False, True),
                count(True, False),
                count(False, False),
            )
            .select_from(stable)
            .join(canary, and_(canary.item_id == stable.item_id, canary.role == "canary"))
            .join(GoldLabelRow, GoldLabelRow.item_id == stable.item_id)
            .where(
                stable.role == "stable",
                GoldLabelRow.status == "agreed",
                GoldLabelRow.tag.is_not(None),
            )
            .group_by(stable.model_version, canary.model_version)
            .order_by(stable.model_version, canary.model_version)
        )
        with self._reads() as session:
            return [
                PairedRow(s, c, int(both or 0), int(c_only or 0), int(s_only or 0), int(no or 0))
                for s, c, both, c_only, s_only, no in session.execute(query)
            ]

    def gold_count(self) -> int:
        """Agreed gold labels whose item text is known (what a training run would use)."""
        with self._reads() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(GoldLabelRow)
                    .join(FeedbackItemRow, FeedbackItemRow.item_id == GoldLabelRow.item_id)
                    .where(GoldLabelRow.status == "agreed")
                )
                or 0
            )

    def recent_texts(self, limit: int) -> list[tuple[str, str]]:
        with self._reads() as session:
            return [
                (title, description)
                for title, description in session.execute(
                    select(FeedbackItemRow.title, FeedbackItemRow.description)
                    .order_by(FeedbackItemRow.received_at.desc())
                    .limit(limit)
                )
            ]

    def prune_items(self, keep: int) -> int:
        """Drop the oldest item texts beyond ``keep``, except those with a gold label or a
        user report still waiting to go to review (its request needs the text)."""
        with self._writes.begin() as session:
            cutoff = session.scalar(
                select(FeedbackItemRow.received_at)
                .order_by(FeedbackItemRow.received_at.desc())
                .offset(keep)
                .limit(1)
            )
            if cutoff is None:
                return 0
            result = session.execute(
                delete(FeedbackItemRow).where(
                    FeedbackItemRow.received_at <= cutoff,
                    FeedbackItemRow.item_id.not_in(select(GoldLabelRow.item_id)),
                    FeedbackItemRow.item_id.not_in(
                        select(ReportRequestRow.item_id).where(ReportRequestRow.sent_at.is_(None))
                    ),
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def ping(self) -> None:
        with self._engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    # -- retraining runs ---------------------------------------------------------------

    def start_run(
        self, trigger: str, label_count: int, gold_hash: str | None, drift: float | None
    ) -> int:
        with self._writes.begin() as session:
            row = RetrainRunRow(
                trigger=trigger,
                started_at=datetime.now(UTC),
                result="running",
                label_count=label_count,
                gold_hash=gold_hash,
                drift_score=drift,
            )
            session.add(row)
            session.flush()
            return row.id

    def finish_run(
        self,
        run_id: int,
        *,
        result: str,
        version: str | None = None,
        version_status: str | None = None,
        error: str | None = None,
        label_count: int | None = None,
        gold_hash: str | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "result": result,
            "finished_at": datetime.now(UTC),
            "version": version,
            "version_status": version_status,
            "error": error,
        }
        if label_count is not None:
            values["label_count"] = label_count
        if gold_hash is not None:
            values["gold_hash"] = gold_hash
        with self._writes.begin() as session:
            session.execute(update(RetrainRunRow).where(RetrainRunRow.id == run_id).values(values))

    def runs(self, limit: int = 20) -> list[RunRecord]:
        with self._reads() as session:
            rows: Iterable[RetrainRunRow] = session.scalars(
                select(RetrainRunRow).order_by(RetrainRunRow.id.desc()).limit(limit)
            )
            return [
                RunRecord(r.id, r.trigger, r.started_at, r.result, r.label_count, r.version)
                for r in rows
            ]
