"""Operations of the relative track (anhörigärende): intake with relation and person of
concern, the case's own fields under optimistic locking, closure, reading the relative-specific
content, and the consent-based link to a defector track.

Journal, plan goals, consents, status and team are the shared casework services: they belong to
exactly one track, so a relative's journal never appears on a defector track (or vice versa).
Access, auditing and validation follow avhopp.casework: ids, codes and field names go into the
audit log, never values.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from avhopp.audit.policy import Actor
from avhopp.audit.services import record, register_actions
from avhopp.casework import services as casework
from avhopp.casework.codes import normalise_code
from avhopp.casework.models import CLOSURE_REASONS, CONSENT_FORMS, Consent, Track
from avhopp.casework.policy import Access, Need, authorize, require_kind
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
)
from avhopp.db import utcnow
from avhopp.errors import NotFound, ValidationError
from avhopp.permissions import role_has
from avhopp.relatives.models import (
    EXIT_ROLES,
    NEEDS,
    OBSERVED_SIGNS,
    PERCEIVED_ENVIRONMENTS,
    RELATIONS,
    YES_NO,
    RelativeCase,
    TrackLink,
)

register_actions({
    "relative.updated": frozenset({"fields", "reason"}),
    "track.linked": frozenset({"link_id", "other_code", "consent_id", "rule"}),
    "track.unlinked": frozenset({"link_id", "other_code", "rule"}),
})

SECTIONS = ("concern", "situation", "needs", "closure", "link")
CONTACT_FIELDS = ("safe_contact_method", "concern_knows_of_contact")
CONCERN_FIELDS = ("concern_birth_year", "concern_environment", "observed_signs",
                  "observed_text")
SITUATION_FIELDS = ("children_in_household", "concern_report_on", "threats_against_relative",
                    "threats_text", "wellbeing", "wellbeing_text")
NEEDS_FIELDS = ("needs", "exit_role", "agreements")
# The fields an edit may change (Z4: closure has its own service).
CASE_FIELDS = ("relation", *CONTACT_FIELDS, *CONCERN_FIELDS, *SITUATION_FIELDS, *NEEDS_FIELDS)
MULTI_FIELDS = {"observed_signs": OBSERVED_SIGNS, "needs": NEEDS}


@dataclass(frozen=True)
class ConcernInput:
    """The person of concern when described rather than linked: minimal, encrypted."""

    birth_year: int | None = None
    environment: str | None = None


def _codes(value: Any, allowed: Sequence[str], code: str) -> str | None:
    """A multiple choice, stored as comma-separated codes in a fixed order."""
    if isinstance(value, str):
        raise ValidationError(f"{code}: a list of codes", code=code)
    chosen = {choice(v, allowed, code) for v in value}
    return ",".join(c for c in allowed if c in chosen) or None


def split_codes(value: str | None) -> list[str]:
    return [c for c in (value or "").split(",") if c]


def _case_values(changes: Mapping[str, Any]) -> dict[str, Any]:  # noqa: PLR0912  flat rules
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in CASE_FIELDS:
            raise ValidationError("not a relative-case field", code="case_field")
        if name == "relation":
            values[name] = choice(value, RELATIONS, name)
        elif value is None:
            values[name] = None
        elif name in MULTI_FIELDS:
            values[name] = _codes(value, MULTI_FIELDS[name], name)
        elif name == "concern_environment":
            values[name] = choice(value, PERCEIVED_ENVIRONMENTS, name)
        elif name in ("concern_knows_of_contact", "children_in_household",
                      "threats_against_relative"):
            values[name] = choice(value, YES_NO, name)
        elif name == "exit_role":
            values[name] = choice(value, EXIT_ROLES, name)
        elif name == "concern_birth_year":
            if (isinstance(value, bool) or not isinstance(value, int)
                    or not 1900 <= value <= utcnow().year):
                raise ValidationError("impossible birth year", code=name)
            values[name] = value
        elif name == "wellbeing":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
                raise ValidationError("wellbeing from 1 to 10", code=name)
            values[name] = value
        elif name == "concern_report_on":
            values[name] = a_date(value, name)
        elif name == "safe_contact_method":
            values[name] = clean_text(value, code=name)
        else:
            values[name] = clean_text(value, code=name, max_length=MAX_LONG_TEXT)
    return values


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or utcnow()


def _relative_track(session: Session, *, actor: Actor, track_id: uuid.UUID, need: Need,
                    now: dt.datetime) -> Access:
    """Authorize on a relative track; a defector track's id is answered as unknown."""
    if not isinstance(track_id, uuid.UUID):
        raise NotFound("no such track", code="track_not_found")
    require_kind(session, actor=actor, track_id=track_id, kind="relative", need=need, now=now)
    return authorize(session, actor=actor, need=need, track_id=track_id, now=now)


def _load_case(session: Session, track: Track) -> RelativeCase:
    case = session.get(RelativeCase, track.id)
    if case is None:
        raise NotFound("not a relative track", code="case_not_found")
    return case


# --- intake -------------------------------------------------------------------------------------


def open_relative_track(
    session: Session,
    *,
    actor: Actor,
    consents: Sequence[ConsentInput],
    person: PersonInput,
    relation: str,
    referral_source: str,
    concern: ConcernInput | None = None,
    safe_contact_method: str | None = None,
    concern_knows_of_contact: str | None = None,
    municipality: str | None = None,
    owner_id: uuid.UUID | None = None,
    status: str = "intake",
    allow_duplicate: bool = False,
    now: dt.datetime | None = None,
) -> Track:
    """Intake of a relative: consent, the relative as a Person of their own (own data key,
    blind indexes), the relation and, optionally, a minimal description of the person of
    concern. The duplicate check looks at relative tracks only."""
    now = _now(now)
    given = {"relation": relation, "safe_contact_method": safe_contact_method,
             "concern_knows_of_contact": concern_knows_of_contact}
    if concern is not None:
        given["concern_birth_year"] = concern.birth_year
        given["concern_environment"] = concern.environment
    values = _case_values(given)
    track = casework.open_track(
        session, actor=actor, kind="relative", consents=consents, person=person,
        referral_source=referral_source, municipality=municipality, owner_id=owner_id,
        status=status, access_level="normal", allow_duplicate=allow_duplicate, now=now)
    case = RelativeCase(id=track.id, person_id=track.person_id, relation=values.pop("relation"))
    for name, value in values.items():
        setattr(case, name, value)
    session.add(case)
    session.flush()
    filled = [name for name, value in values.items() if value is not None]
    record(session, action="relative.updated", actor=actor, object_type="track",
           object_id=track.code, details={"fields": field_names(["relation", *filled])},
           now=now)
    return track


# --- the case's own fields ----------------------------------------------------------------------


def update_relative_case(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    expected_version: int,
    changes: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> RelativeCase:
    """Change relation, contact, concern, situation, needs, role or agreements as seen at
    `expected_version`. A stale version is refused (Conflict `stale_version`), recorded, and
    overwrites nothing."""
    now = _now(now)
    track = _relative_track(session, actor=actor, track_id=track_id, need=Need.WORK,
                            now=now).track_or_fail
    case = _load_case(session, track)
    values = _case_values(changes)
    casework.apply_versioned_update(
        session, actor=actor, track=track, row=case, expected_version=expected_version,
        values=values, action="relative.updated", id_key=None, noun="case", now=now)
    return case


# --- closure ------------------------------------------------------------------------------------


def close_relative_track(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    closure_reason: str,
    closing_note: str | None = None,
    settings: CaseworkSettings | None = None,
    now: dt.datetime | None = None,
) -> Track:
    """Close a relative track with a reason (CLOSURE_REASONS) and an optional note; the date is
    the track's `closed_at`. Reopen with casework.change_status(to_status="active")."""
    now = _now(now)
    track = _relative_track(session, actor=actor, track_id=track_id, need=Need.WORK,
                            now=now).track_or_fail
    case = _load_case(session, track)
    reason = choice(closure_reason, CLOSURE_REASONS, "closure_reason")
    note = clean_text(closing_note, code="closing_note", max_length=MAX_LONG_TEXT)
    track = casework.change_status(session, actor=actor, track_id=track_id, to_status="closed",
                                   closure_reason=reason, settings=settings, now=now)
    if case.closing_note != note:
        case.closing_note = note
        session.flush()
        record(session, action="relative.updated", actor=actor, object_type="track",
               object_id=track.code, details={"fields": "closing_note"}, now=now)
    return track


# --- the link to a defector track ---------------------------------------------------------------


def _link_need(session: Session, actor: Actor) -> Need:
    """Coordinators link as the ones who assign (no content either side); a support worker
    links only tracks whose teams they are on both."""
    role = getattr(actor, "role", None)
    return Need.ASSIGN if role_has(role, "tracks.assign") else Need.WORK


def link_is_shown(link: TrackLink, consent: Consent | None, day: dt.date) -> bool:
    return link.removed_at is None and consent is not None and consent.is_valid_on(day)


def link_to_defector(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    defector_code: str,
    consent_form: str,
    valid_from: dt.date,
    valid_to: dt.date | None = None,
    now: dt.datetime | None = None,
) -> TrackLink:
    """Link the relative track to the defector track with `defector_code`, on the relative's
    consent, which is recorded here on the relative track (type `relative_contact`) and can be
    revoked there like any consent: a revoked or expired consent hides the link.

    Both tracks are authorized (coordinators: assign; others: work, i.e. on both teams); an
    unknown code, a relative track's code or a track the actor may not know of are refused the
    same way and recorded. The link carries ids only: each side shows the other's code."""
    now = _now(now)
    need = _link_need(session, actor)
    relative = _relative_track(session, actor=actor, track_id=track_id, need=need,
                               now=now).track_or_fail
    form = choice(consent_form, CONSENT_FORMS, "consent_form")
    start = a_date(valid_from, "valid_from")
    end = None if valid_to is None else a_date(valid_to, "valid_to")
    if end is not None and end < start:
        raise ValidationError("consent ends before it starts", code="valid_to_before_from")
    wanted = normalise_code(defector_code) if isinstance(defector_code, str) else None
    other_id = (session.scalar(select(Track.id).where(Track.code == wanted, Track.kind ==
                                                       "defector")) if wanted else None)
    if other_id is None:
        record(session, action="track.linked", actor=actor, outcome="denied",
               object_type="track", object_id=relative.code, details={"rule": "unknown_code"},
               now=now)
        raise NotFound("no such defector track", code="link_not_found")
    defector = authorize(session, actor=actor, need=need, track_id=other_id,
                         now=now).track_or_fail
    existing = session.scalars(select(TrackLink).where(
        TrackLink.relative_track_id == relative.id, TrackLink.defector_track_id == defector.id,
        TrackLink.removed_at.is_(None))).all()
    for link in existing:
        if link_is_shown(link, session.get(Consent, link.consent_id), now.date()):
            raise ValidationError("the tracks are linked already", code="already_linked")
    consent = Consent(
        track_id=relative.id, person_id=relative.person_id, consent_type="relative_contact",
        scope=[], form=form, recorded_by=actor.id, recorded_at=now, valid_from=start,
        valid_to=end)
    # A track code is not personal; it names what the consent is for.
    consent.recipient = defector.code
    consent.purpose = "track_link"
    session.add(consent)
    session.flush()
    link = TrackLink(relative_track_id=relative.id, defector_track_id=defector.id,
                     consent_id=consent.id, created_by=actor.id, created_at=now)
    session.add(link)
    session.flush()
    record(session, action="consent.added", actor=actor, object_type="track",
           object_id=relative.code,
           details={"consent_id": str(consent.id), "consent_type": consent.consent_type},
           now=now)
    record(session, action="track.linked", actor=actor, object_type="track",
           object_id=relative.code,
           details={"link_id": str(link.id), "other_code": defector.code,
                    "consent_id": str(consent.id)}, now=now)
    return link


def unlink(
    session: Session, *, actor: Actor, track_id: uuid.UUID, link_id: uuid.UUID,
    now: dt.datetime | None = None,
) -> TrackLink:
    """End a link (the row stays, with `removed_at`). Same access as linking, on the relative
    track; the defector track is not read."""
    now = _now(now)
    relative = _relative_track(session, actor=actor, track_id=track_id,
                               need=_link_need(session, actor), now=now).track_or_fail
    link = session.get(TrackLink, link_id) if isinstance(link_id, uuid.UUID) else None
    if link is None or link.relative_track_id != relative.id or link.removed_at is not None:
        raise NotFound("no such link on this track", code="link_not_found")
    link.removed_at = now
    session.flush()
    other = session.scalar(select(Track.code).where(Track.id == link.defector_track_id))
    record(session, action="track.unlinked", actor=actor, object_type="track",
           object_id=relative.code, details={"link_id": str(link.id), "other_code": other or ""},
           now=now)
    return link


def remove_links_of_person(
    session: Session, *, actor: Actor | None, person_id: uuid.UUID,
    now: dt.datetime | None = None,
) -> int:
    """Part of erasing a person (DOMAIN.md: crypto-shredding plus removal of their links):
    end every link of their relative tracks. The defector side is not touched otherwise.
    The caller (the erasure service) authorizes; returns the number of links ended."""
    now = _now(now)
    tracks = select(Track.id).where(Track.person_id == person_id)
    result = session.execute(
        update(TrackLink).where(TrackLink.removed_at.is_(None),
                                TrackLink.relative_track_id.in_(tracks)
                                | TrackLink.defector_track_id.in_(tracks))
        .values(removed_at=now).execution_options(synchronize_session="fetch"))
    count = int(getattr(result, "rowcount", 0) or 0)
    if count:
        record(session, action="track.unlinked", actor=actor, object_type="subject",
               object_id=str(person_id), details={"rule": "erasure"}, now=now)
    session.flush()
    return count


# --- reading ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkView:
    """What the other side of a link shows: that it exists, and the other track's code."""

    id: uuid.UUID
    other_code: str


@dataclass(frozen=True)
class RelativeContent:
    """The relative-specific sections asked for; the others stay None (not decrypted)."""

    code: str
    via: str
    case_version: int
    relation: str
    contact: dict[str, Any] | None = None
    concern: dict[str, Any] | None = None
    situation: dict[str, Any] | None = None
    needs: dict[str, Any] | None = None
    closure: dict[str, Any] | None = None
    links: list[LinkView] | None = None


def read_relative_content(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    purpose: str,
    sections: Iterable[str] = SECTIONS,
    now: dt.datetime | None = None,
) -> RelativeContent:
    """Concern, situation, needs and role, closure and the link, for a stated purpose.
    Recorded (`track.content_read`) before anything is decrypted."""
    now = _now(now)
    if not isinstance(track_id, uuid.UUID):
        raise NotFound("no such track", code="track_not_found")
    require_kind(session, actor=actor, track_id=track_id, kind="relative", need=Need.READ,
                 now=now)
    access = casework.authorize_read(session, actor=actor, track_id=track_id, purpose=purpose,
                                     now=now)
    track = access.track_or_fail
    chosen = check_sections(sections, SECTIONS)
    case = _load_case(session, track)
    casework.record_content_read(session, actor=actor, access=access, purpose=purpose,
                                 sections=chosen, now=now)
    content: dict[str, Any] = {"code": track.code, "via": access.via,
                               "case_version": case.version, "relation": case.relation}
    if "concern" in chosen:
        content["contact"] = {name: getattr(case, name) for name in CONTACT_FIELDS}
        content["concern"] = {name: getattr(case, name) for name in CONCERN_FIELDS}
        content["concern"]["observed_signs"] = split_codes(case.observed_signs)
    if "situation" in chosen:
        content["situation"] = {name: getattr(case, name) for name in SITUATION_FIELDS}
    if "needs" in chosen:
        content["needs"] = {name: getattr(case, name) for name in NEEDS_FIELDS}
        content["needs"]["needs"] = split_codes(case.needs)
    if "closure" in chosen:
        content["closure"] = {"closure_reason": track.closure_reason,
                              "closed_at": track.closed_at, "closing_note": case.closing_note,
                              "retention_until": track.retention_until}
    if "link" in chosen:
        content["links"] = shown_links(session, relative_track_id=track.id, day=now.date())
    return RelativeContent(**content)


def shown_links(session: Session, *, relative_track_id: uuid.UUID,
                day: dt.date) -> list[LinkView]:
    """The links of a relative track that are shown: not removed, consent in force."""
    rows = session.execute(
        select(TrackLink, Consent, Track.code)
        .join(Consent, Consent.id == TrackLink.consent_id)
        .join(Track, Track.id == TrackLink.defector_track_id)
        .where(TrackLink.relative_track_id == relative_track_id)
        .order_by(TrackLink.created_at, TrackLink.id)).all()
    return [LinkView(link.id, code) for link, consent, code in rows
            if link_is_shown(link, consent, day)]
