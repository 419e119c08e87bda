"""Operations of the defector track (avhopparärende): intake with background, the case's own
fields under optimistic locking, risk assessments, protective measures, closure and reading
the defector-specific content. Access, auditing and validation follow avhopp.casework."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from avhopp.audit.policy import Actor
from avhopp.audit.services import record, register_actions
from avhopp.cases.models import (
    ARENAS,
    ENVIRONMENTS,
    GENDERS,
    INVOLVEMENTS,
    MEASURE_KINDS,
    MEASURE_STATUSES,
    RISK_DIMENSIONS,
    DefectorCase,
    ProtectiveMeasure,
    RiskAssessment,
)
from avhopp.casework import services as casework
from avhopp.casework.models import CLOSURE_REASONS, RISK_LEVELS, Consent, Track
from avhopp.casework.policy import Need, authorize
from avhopp.casework.services import (
    MAX_LONG_TEXT,
    CaseworkSettings,
    ConsentInput,
    PersonInput,
    a_date,
    check_sections,
    choice,
    clean_text,
    field_names,
    optional_date,
)
from avhopp.db import utcnow
from avhopp.errors import Conflict, NotFound, ValidationError

register_actions({
    "case.updated": frozenset({"fields", "reason"}),
    "risk.assessed": frozenset({"assessment_id", "overall_level"}),
    "protection.measure_added": frozenset({"measure_id", "kind"}),
    "protection.measure_updated": frozenset({"measure_id", "fields", "reason"}),
})

SECTIONS = ("person_details", "background", "safe_contact", "risk", "protection", "closure")
PERSON_DETAIL_FIELDS = ("gender", "language", "interpreter_needed", "children_in_household")
BACKGROUND_FIELDS = ("environment", "involvement", "years_in_environment", "arena",
                     "reasons_for_leaving", "voluntariness_confirmed_on")
SAFE_CONTACT_FIELDS = ("safe_contact_channel", "safe_contact_times", "safe_contact_code_word",
                       "safe_contact_may_leave_messages", "environment_knows_of_contact")
# The case fields an edit may change (Z4: everything else is set by its own service).
CASE_FIELDS = (*PERSON_DETAIL_FIELDS, *BACKGROUND_FIELDS, *SAFE_CONTACT_FIELDS, "safety_plan")
YES_NO = ("yes", "no", "unknown")
MEASURE_FIELDS = ("status", "started_on", "ended_on", "note")
# The case fields that take a code from a list.
CASE_CHOICES: dict[str, tuple[str, ...]] = {
    "environment": ENVIRONMENTS, "involvement": INVOLVEMENTS, "arena": ARENAS, "gender": GENDERS,
    "safe_contact_may_leave_messages": YES_NO, "environment_knows_of_contact": YES_NO,
    "interpreter_needed": YES_NO, "children_in_household": YES_NO,
}


@dataclass(frozen=True)
class BackgroundInput:
    environment: str | None = None
    involvement: str | None = None
    years_in_environment: int | None = None
    arena: str | None = None
    reasons_for_leaving: str | None = None
    voluntariness_confirmed_on: dt.date | None = None


def _case_values(changes: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in CASE_FIELDS:
            raise ValidationError("not a case field", code="case_field")
        if value is None:
            values[name] = None
        elif name in CASE_CHOICES:
            values[name] = choice(value, CASE_CHOICES[name], name)
        elif name == "years_in_environment":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 80:
                raise ValidationError("years from 0 to 80", code=name)
            values[name] = value
        elif name == "voluntariness_confirmed_on":
            values[name] = a_date(value, name)
        elif name == "language":
            values[name] = clean_text(value, code=name, max_length=100)
        else:
            values[name] = clean_text(value, code=name, max_length=MAX_LONG_TEXT)
    return values


def _special_category_consent(session: Session, track: Track, day: dt.date) -> bool:
    """Whether the track has a consent to special-category data (GDPR art. 9) in force."""
    rows = session.scalars(select(Consent).where(Consent.track_id == track.id,
                                                 Consent.consent_type == "special_category"))
    return any(row.is_valid_on(day) for row in rows)


def _needs_special_category(values: Mapping[str, Any]) -> bool:
    # Environment and background are art. 9 data: recording them needs that consent first;
    # clearing them does not.
    return any(values.get(name) is not None for name in BACKGROUND_FIELDS)


def _load_case(session: Session, track: Track) -> DefectorCase:
    case = session.get(DefectorCase, track.id)
    if case is None:
        raise NotFound("not a defector track", code="case_not_found")
    return case


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or utcnow()


# --- intake -------------------------------------------------------------------------------------


def open_defector_track(
    session: Session,
    *,
    actor: Actor,
    consents: Sequence[ConsentInput],
    person: PersonInput,
    referral_source: str,
    background: BackgroundInput | None = None,
    municipality: str | None = None,
    owner_id: uuid.UUID | None = None,
    status: str = "intake",
    access_level: str = "normal",
    allow_duplicate: bool = False,
    now: dt.datetime | None = None,
) -> Track:
    """The intake wizard's end: consent, person, then background (see casework.open_track for
    the duplicate check). Returns the new track; its code is `track.code`.

    Background is special-category data: it is recorded only together with a consent of type
    `special_category` (ValidationError `special_category_consent_required` otherwise)."""
    now = _now(now)
    values = _case_values({
        name: getattr(background, name) for name in BACKGROUND_FIELDS
        if background is not None and getattr(background, name) is not None
    })
    if _needs_special_category(values) and not any(
            c.consent_type == "special_category" for c in consents):
        raise ValidationError("background needs a consent to special-category data",
                              code="special_category_consent_required")
    track = casework.open_track(
        session, actor=actor, kind="defector", consents=consents, person=person,
        referral_source=referral_source, municipality=municipality, owner_id=owner_id,
        status=status, access_level=access_level, allow_duplicate=allow_duplicate, now=now)
    case = DefectorCase(id=track.id, person_id=track.person_id)
    for name, value in values.items():
        setattr(case, name, value)
    session.add(case)
    session.flush()
    if values:
        record(session, action="case.updated", actor=actor, object_type="track",
               object_id=track.code, details={"fields": field_names(values)}, now=now)
    return track


# --- the case's own fields ----------------------------------------------------------------------


def update_case(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    expected_version: int,
    changes: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> DefectorCase:
    """Change background, safe-contact or safety-plan fields seen at `expected_version`.
    A stale version is refused (Conflict `stale_version`), recorded, and overwrites nothing.
    Background values need a special-category consent in force (recorded when refused)."""
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    case = _load_case(session, track)
    values = _case_values(changes)
    if _needs_special_category(values) and not _special_category_consent(
            session, track, now.date()):
        record(session, action="case.updated", actor=actor, outcome="denied",
               object_type="track", object_id=track.code,
               details={"reason": "consent_required"}, now=now)
        raise ValidationError("background needs a consent to special-category data",
                              code="special_category_consent_required")
    casework.apply_versioned_update(
        session, actor=actor, track=track, row=case, expected_version=expected_version,
        values=values, action="case.updated", id_key=None, noun="case", now=now)
    return case


# --- risk ---------------------------------------------------------------------------------------


def add_risk_assessment(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    assessed_on: dt.date,
    levels: Mapping[str, str],
    comments: Mapping[str, str | None] | None = None,
    protective_factors: str | None = None,
    overall_level: str | None = None,
    reassess_by: dt.date | None = None,
    now: dt.datetime | None = None,
) -> RiskAssessment:
    """A new assessment (earlier ones stay as history). Each of the five dimensions gets a level
    (low, medium, high, acute); the overall level defaults to the highest of them. The track's
    current level becomes that of its latest assessment (by date)."""
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    if set(levels) != set(RISK_DIMENSIONS):
        raise ValidationError("assess every dimension", code="risk_dimensions")
    checked = {d: choice(levels[d], RISK_LEVELS, d) for d in RISK_DIMENSIONS}
    comments = comments or {}
    if set(comments) - set(RISK_DIMENSIONS):
        raise ValidationError("comments belong to the dimensions", code="risk_dimensions")
    overall = (choice(overall_level, RISK_LEVELS, "overall_level") if overall_level is not None
               else max(checked.values(), key=RISK_LEVELS.index))
    assessed = a_date(assessed_on, "assessed_on")
    reassess = optional_date(reassess_by, "reassess_by")
    if reassess is not None and reassess < assessed:
        raise ValidationError("reassess after the assessment", code="reassess_by")
    row = RiskAssessment(track_id=track.id, person_id=track.person_id, assessed_on=assessed,
                         assessor_id=access.user_id, overall_level=overall,
                         reassess_by=reassess, created_at=now)
    for dimension in RISK_DIMENSIONS:
        setattr(row, dimension, checked[dimension])
        setattr(row, f"{dimension}_comment", clean_text(
            comments.get(dimension), code=f"{dimension}_comment", max_length=MAX_LONG_TEXT))
    row.protective_factors = clean_text(protective_factors, code="protective_factors",
                                        max_length=MAX_LONG_TEXT)
    session.add(row)
    session.flush()
    latest = session.scalars(
        select(RiskAssessment.overall_level).where(RiskAssessment.track_id == track.id)
        .order_by(RiskAssessment.assessed_on.desc(), RiskAssessment.created_at.desc())
        .limit(1)).first()
    track.risk_level = latest
    session.flush()
    record(session, action="risk.assessed", actor=actor, object_type="track",
           object_id=track.code,
           details={"assessment_id": str(row.id), "overall_level": overall}, now=now)
    return row


# --- protective measures ------------------------------------------------------------------------


def add_protective_measure(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    kind: str,
    status: str = "planned",
    started_on: dt.date | None = None,
    ended_on: dt.date | None = None,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> ProtectiveMeasure:
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    values = _measure_values({"status": status, "started_on": started_on, "ended_on": ended_on,
                              "note": note})
    row = ProtectiveMeasure(track_id=track.id, person_id=track.person_id,
                            kind=choice(kind, MEASURE_KINDS, "kind"),
                            created_by=access.user_id, created_at=now)
    for name, value in values.items():
        setattr(row, name, value)
    session.add(row)
    session.flush()
    record(session, action="protection.measure_added", actor=actor, object_type="track",
           object_id=track.code, details={"measure_id": str(row.id), "kind": row.kind}, now=now)
    return row


def _measure_values(changes: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name == "status":
            values[name] = choice(value, MEASURE_STATUSES, name)
        elif name in ("started_on", "ended_on"):
            values[name] = optional_date(value, name)
        elif name == "note":
            values[name] = clean_text(value, code=name, max_length=MAX_LONG_TEXT)
        else:
            raise ValidationError("not a measure field", code="measure_field")
    start, end = values.get("started_on"), values.get("ended_on")
    if start is not None and end is not None and end < start:
        raise ValidationError("ends before it starts", code="ended_before_started")
    return values


def update_protective_measure(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    measure_id: uuid.UUID,
    expected_version: int,
    changes: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> ProtectiveMeasure:
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    measure = casework.load_child(session, ProtectiveMeasure, measure_id, track, "measure")
    values = _measure_values(changes)
    casework.apply_versioned_update(
        session, actor=actor, track=track, row=measure, expected_version=expected_version,
        values=values, action="protection.measure_updated", id_key="measure_id",
        noun="measure", now=now,
    )
    return measure


# --- closure ------------------------------------------------------------------------------------


def close_track(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    closure_reason: str,
    closing_assessment: str | None = None,
    handed_over_to: str | None = None,
    expected_version: int | None = None,
    settings: CaseworkSettings | None = None,
    now: dt.datetime | None = None,
) -> Track:
    """Close a defector track with a reason (a CLOSURE_REASONS code), the closing assessment and,
    when handed over, to whom. Reopen with casework.change_status(to_status="active").

    `expected_version` is the track's version the closing user saw: if someone changed the
    track since, the close is refused (Conflict `stale_version`, recorded) and nothing changes."""
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    case = _load_case(session, track)
    if expected_version is not None and track.version != expected_version:
        record(session, action="track.status_changed", actor=actor, outcome="denied",
               object_type="track", object_id=track.code, now=now,
               details={"from_status": track.status, "to_status": "closed"})
        raise Conflict("the track was changed by someone else", code="stale_version")
    reason = choice(closure_reason, CLOSURE_REASONS, "closure_reason")
    assessment = clean_text(closing_assessment, code="closing_assessment",
                            max_length=MAX_LONG_TEXT)
    receiver = clean_text(handed_over_to, code="handed_over_to")
    if reason == "handed_over" and receiver is None:
        raise ValidationError("say to whom the track was handed over",
                              code="handed_over_to_required")
    track = casework.change_status(session, actor=actor, track_id=track_id, to_status="closed",
                                   closure_reason=reason, expected_version=expected_version,
                                   settings=settings, now=now)
    fields = {"closing_assessment": assessment, "handed_over_to": receiver}
    changed = [name for name, value in fields.items() if getattr(case, name) != value]
    for name in changed:
        setattr(case, name, fields[name])
    if changed:
        session.flush()
        record(session, action="case.updated", actor=actor, object_type="track",
               object_id=track.code, details={"fields": field_names(changed)}, now=now)
    return track


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RiskView:
    id: uuid.UUID
    assessed_on: dt.date
    assessor_id: uuid.UUID
    levels: dict[str, str | None]
    comments: dict[str, str | None]
    protective_factors: str | None
    overall_level: str
    reassess_by: dt.date | None


@dataclass(frozen=True)
class MeasureView:
    id: uuid.UUID
    kind: str
    status: str
    started_on: dt.date | None
    ended_on: dt.date | None
    note: str | None
    version: int


@dataclass(frozen=True)
class DefectorContent:
    """The defector-specific sections asked for; the others stay None (not decrypted)."""

    code: str
    via: str
    case_version: int
    background: dict[str, Any] | None = None
    person_details: dict[str, Any] | None = None
    safe_contact: dict[str, Any] | None = None
    risk: list[RiskView] | None = None
    current_risk_level: str | None = None
    safety_plan: str | None = None
    measures: list[MeasureView] | None = None
    closure: dict[str, Any] | None = None


def read_defector_content(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    purpose: str,
    sections: Iterable[str] = SECTIONS,
    now: dt.datetime | None = None,
) -> DefectorContent:
    """Background, safe contact, risk history, protection and closure, for a stated purpose.
    Recorded (`track.content_read`) before anything is decrypted."""
    now = _now(now)
    access = casework.authorize_read(session, actor=actor, track_id=track_id, purpose=purpose,
                                     now=now)
    track = access.track_or_fail
    chosen = check_sections(sections, SECTIONS)
    case = _load_case(session, track)
    casework.record_content_read(session, actor=actor, access=access, purpose=purpose,
                                 sections=chosen, now=now)
    content: dict[str, Any] = {"code": track.code, "via": access.via,
                               "case_version": case.version,
                               "current_risk_level": track.risk_level}
    if "person_details" in chosen:
        content["person_details"] = {name: getattr(case, name) for name in PERSON_DETAIL_FIELDS}
    if "background" in chosen:
        content["background"] = {name: getattr(case, name) for name in BACKGROUND_FIELDS}
    if "safe_contact" in chosen:
        content["safe_contact"] = {name: getattr(case, name) for name in SAFE_CONTACT_FIELDS}
    if "risk" in chosen:
        content["risk"] = [_risk_view(r) for r in session.scalars(
            select(RiskAssessment).where(RiskAssessment.track_id == track.id)
            .order_by(RiskAssessment.assessed_on.desc(), RiskAssessment.created_at.desc()))]
    if "protection" in chosen:
        content["safety_plan"] = case.safety_plan
        content["measures"] = [_measure_view(m) for m in session.scalars(
            select(ProtectiveMeasure).where(ProtectiveMeasure.track_id == track.id)
            .order_by(ProtectiveMeasure.created_at, ProtectiveMeasure.id))]
    if "closure" in chosen:
        content["closure"] = {
            "closure_reason": track.closure_reason, "closed_at": track.closed_at,
            "closing_assessment": case.closing_assessment,
            "handed_over_to": case.handed_over_to, "retention_until": track.retention_until,
        }
    return DefectorContent(**content)


def _risk_view(row: RiskAssessment) -> RiskView:
    return RiskView(
        id=row.id, assessed_on=row.assessed_on, assessor_id=row.assessor_id,
        levels={d: getattr(row, d) for d in RISK_DIMENSIONS},
        comments={d: getattr(row, f"{d}_comment") for d in RISK_DIMENSIONS},
        protective_factors=row.protective_factors, overall_level=row.overall_level,
        reassess_by=row.reassess_by,
    )


def _measure_view(row: ProtectiveMeasure) -> MeasureView:
    return MeasureView(id=row.id, kind=row.kind, status=row.status, started_on=row.started_on,
                       ended_on=row.ended_on, note=row.note, version=row.version)
