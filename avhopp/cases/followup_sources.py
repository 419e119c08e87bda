"""The defector track's generated follow-ups: the risk reassessment date of the latest
assessment of each open track."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from avhopp.cases.models import RiskAssessment
from avhopp.casework.models import OPEN_STATUSES, Track
from avhopp.followups.services import register_source
from avhopp.followups.settings import FollowUpSettings
from avhopp.followups.sources import at_morning


def risk_reassessment(session: Session, now: dt.datetime, settings: FollowUpSettings) -> Any:
    latest = (select(RiskAssessment.track_id,
                     func.max(RiskAssessment.created_at).label("at"))
              .group_by(RiskAssessment.track_id).subquery())
    rows = session.execute(
        select(RiskAssessment.id, RiskAssessment.track_id, RiskAssessment.reassess_by)
        .join(latest, (latest.c.track_id == RiskAssessment.track_id)
              & (latest.c.at == RiskAssessment.created_at))
        .join(Track, Track.id == RiskAssessment.track_id)
        .where(RiskAssessment.reassess_by.is_not(None), Track.status.in_(OPEN_STATUSES)))
    for assessment_id, track_id, reassess_by in rows:
        yield (f"risk:{assessment_id}", track_id, "risk_reassessment",
               at_morning(reassess_by, settings))


register_source("risk_reassessment", risk_reassessment)
