"""Where generated follow-ups come from in the shared casework rows: consent expiry, plan target
dates, after-care check-ins after closure, and the next contact planned in the journal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

from dateutil.relativedelta import relativedelta
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from avhopp.casework.models import OPEN_STATUSES, Consent, JournalEntry, PlanGoal, Track
from avhopp.followups.services import register_source
from avhopp.followups.settings import FollowUpSettings

Wanted = Iterator[tuple[str, object, str, dt.datetime]]
# Consents are renewed in the fortnight before they lapse.
CONSENT_NOTICE = dt.timedelta(days=14)
# A planned contact older than this is history, not a plan.
NEXT_CONTACT_HORIZON = dt.timedelta(days=30)
MORNING = dt.time(9, 0)


def at_morning(day: dt.date, settings: FollowUpSettings) -> dt.datetime:
    return dt.datetime.combine(day, MORNING, tzinfo=settings.zone).astimezone(dt.UTC)


def consent_expiry(session: Session, now: dt.datetime, settings: FollowUpSettings) -> Wanted:
    rows = session.execute(
        select(Consent.id, Consent.track_id, Consent.valid_to)
        .join(Track, Track.id == Consent.track_id)
        .where(Consent.valid_to.is_not(None), Consent.revoked_at.is_(None),
               Consent.valid_to >= now.date(), Track.status.in_(OPEN_STATUSES)))
    for consent_id, track_id, valid_to in rows:
        if valid_to is None:  # excluded by the query; keeps the type checker honest
            continue
        yield (f"consent:{consent_id}:{valid_to.isoformat()}", track_id, "consent_renewal",
               at_morning(valid_to - CONSENT_NOTICE, settings))


def plan_targets(session: Session, now: dt.datetime, settings: FollowUpSettings) -> Wanted:
    rows = session.execute(
        select(PlanGoal.id, PlanGoal.track_id, PlanGoal.target_on)
        .join(Track, Track.id == PlanGoal.track_id)
        .where(PlanGoal.target_on.is_not(None), PlanGoal.target_on >= now.date(),
               PlanGoal.status.in_(("not_started", "ongoing", "partly")),
               Track.status.in_(OPEN_STATUSES)))
    for goal_id, track_id, target_on in rows:
        if target_on is None:
            continue
        yield (f"goal:{goal_id}:{target_on.isoformat()}", track_id, "plan_target",
               at_morning(target_on, settings))


def after_care(session: Session, now: dt.datetime, settings: FollowUpSettings) -> Wanted:
    rows = session.execute(
        select(Track.id, Track.closed_at)
        .where(Track.status.in_(("closed", "after_care")), Track.closed_at.is_not(None)))
    for track_id, closed_at in rows:
        if closed_at is None:
            continue
        closed_day = closed_at.astimezone(settings.zone).date()
        for months in settings.after_care_months:
            day = closed_day + relativedelta(months=months)
            if day >= now.astimezone(settings.zone).date():
                yield (f"aftercare:{track_id}:{closed_day.isoformat()}:{months}", track_id,
                       "after_care", at_morning(day, settings))


def next_contact(session: Session, now: dt.datetime, settings: FollowUpSettings) -> Wanted:
    """The latest entry per track that plans a next contact, if that plan is recent."""
    latest = (select(JournalEntry.track_id, func.max(JournalEntry.created_at).label("at"))
              .where(JournalEntry.next_contact_at.is_not(None))
              .group_by(JournalEntry.track_id).subquery())
    rows = session.execute(
        select(JournalEntry.id, JournalEntry.track_id, JournalEntry.next_contact_at)
        .join(latest, (latest.c.track_id == JournalEntry.track_id)
              & (latest.c.at == JournalEntry.created_at))
        .join(Track, Track.id == JournalEntry.track_id)
        .where(JournalEntry.next_contact_at >= now - NEXT_CONTACT_HORIZON,
               Track.status.in_(OPEN_STATUSES)))
    for entry_id, track_id, when in rows:
        if when is not None:
            yield f"journal:{entry_id}", track_id, "contact", when


register_source("consent_expiry", consent_expiry)
register_source("plan_targets", plan_targets)
register_source("after_care", after_care)
register_source("next_contact", next_contact)
