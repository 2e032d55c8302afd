"""Which of a person's synced sources may be out of date: shown with the calendar."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from calendar_app.domain.visibility import Sight, neutral_unit, unit_label
from calendar_app.models import (
    Provider,
    ProviderKind,
    ReviewState,
    Source,
    SourceReview,
    SourceState,
)


def settings_of(source: Source) -> dict[str, str]:
    """A source's public settings (never its secrets)."""
    try:
        value = json.loads(source.settings or "{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def pending_by_source(session: Session, person_id: int | None) -> dict[int, int]:
    """Pending review ids by source (of one person, or all); no commit."""
    query = select(SourceReview.source_id, SourceReview.id).where(
        SourceReview.state == ReviewState.PENDING
    )
    if person_id is not None:
        query = query.where(SourceReview.person_id == person_id)
    return {source_id: review_id for source_id, review_id in session.execute(query).all()}


@dataclass(frozen=True)
class SourceWarning:
    """A source whose bookings may be out of date, for the calendar's viewers."""

    source_id: int
    unit: str  # '' when the viewer may not see the unit's name (see unit_neutral)
    state: str  # stale, failing or held
    since_utc: datetime | None  # the last good read; None if there never was one
    review_id: int | None
    provider_id: int = 0
    provider_kind: str = ""
    unit_neutral: bool = False  # the unit is named only neutrally to this viewer

    def seen_with(self, sight: Sight) -> SourceWarning:
        """The warning as a viewer with ``sight`` of the unit may see it: a unit they see
        only as busy time is not named (nor is a sensitive one below the full level)."""
        return dataclasses.replace(
            self,
            unit=unit_label(self.unit, sight),
            unit_neutral=neutral_unit(sight),
            review_id=self.review_id if sight.full else None,
        )


def source_warnings(
    session: Session, person_id: int, *, include_personal: bool
) -> list[SourceWarning]:
    """The person's sources that are stale, failing or held; personal ones only on request
    (others must not learn even that the person keeps such a calendar); no commit."""
    query = (
        select(Source, Provider)
        .join(Provider, Provider.id == Source.provider_id)
        .where(
            Source.person_id == person_id,
            Source.enabled.is_(True),
            Source.state.in_([SourceState.STALE, SourceState.FAILING, SourceState.HELD]),
        )
        .order_by(Provider.name, Source.id)
    )
    if not include_personal:
        query = query.where(Provider.kind != ProviderKind.PERSONAL)
    pending = pending_by_source(session, person_id)
    return [
        SourceWarning(
            source_id=source.id,
            unit=provider.name,
            state=source.state.value,
            since_utc=source.last_success_utc,
            review_id=pending.get(source.id),
            provider_id=provider.id,
            provider_kind=provider.kind.value,
        )
        for source, provider in session.execute(query).all()
    ]
