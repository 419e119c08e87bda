"""Operations on tracks both kinds share: opening (consent first, then the person), reading
content with a purpose, journal, plan goals, consents, agency contacts, status, team and
break-glass access.

Every function checks access through `avhopp.casework.policy.authorize`, writes its audit event
(ids, codes and field names only, never values) in the caller's transaction, and flushes; none
commits. A refusal is recorded before it is raised and nothing else has changed by then, so the
caller commits after a DomainError to keep the denied event.
"""

from __future__ import annotations

import datetime as dt
import logging
import unicodedata
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import delete, exists, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from avhopp.accounts.models import User
from avhopp.audit.policy import Actor
from avhopp.audit.services import record, register_actions
from avhopp.casework import queries
from avhopp.casework.codes import new_code
from avhopp.casework.models import (
    ACCESS_LEVELS,
    AGENCIES,
    CLOSURE_REASONS,
    CONSENT_FORMS,
    CONSENT_TYPES,
    CONTACT_TYPES,
    DATA_CATEGORIES,
    GOAL_STATUSES,
    LEGAL_BASES,
    LIFE_DOMAINS,
    OPEN_STATUSES,
    PROTECTED_DATA_LEVELS,
    REFERRAL_SOURCES,
    SENSITIVITIES,
    STATUSES,
    AgencyContact,
    BreakGlassGrant,
    Consent,
    JournalEntry,
    Person,
    PlanGoal,
    TeamMember,
    Track,
)
from avhopp.casework.policy import Access, Need, authorize, is_on_team
from avhopp.db import utcnow
from avhopp.errors import Conflict, Forbidden, NotFound, ValidationError
from avhopp.identifiers import (
    InvalidIdentifier,
    normalise_email,
    normalise_personnummer,
    normalise_phone,
)
from avhopp.permissions import role_has

logger = logging.getLogger(__name__)

Child = TypeVar("Child")

register_actions({
    "track.opened": frozenset({"kind", "consents", "status"}),
    "track.content_read": frozenset({"sections", "via", "reveal_contact", "hidden"}),
    "track.status_changed": frozenset({"from_status", "to_status", "closure_reason"}),
    "track.reopened": frozenset({"from_status", "to_status"}),
    "track.team_added": frozenset({"user_id"}),
    "track.team_removed": frozenset({"user_id"}),
    "track.owner_changed": frozenset({"user_id"}),
    "track.break_glass": frozenset({"minutes", "rule", "grant_id"}),
    "journal.added": frozenset({"entry_id", "sensitivity", "contact_type", "corrects_id"}),
    "plan.goal_added": frozenset({"goal_id", "life_domain"}),
    "plan.goal_updated": frozenset({"goal_id", "fields", "reason"}),
    "consent.added": frozenset({"consent_id", "consent_type", "recipient_agency"}),
    "consent.revoked": frozenset({"consent_id", "consent_type"}),
    "agency.contact_added": frozenset({"contact_id", "agency", "legal_basis", "categories",
                                       "rule"}),
})

# Why content was read: a short code from this list (stored in the audit entry's purpose).
PURPOSES = ("casework", "planning", "follow_up", "supervision", "emergency",
            "data_subject_request", "quality_review")
SECTIONS = ("person", "journal", "plan", "consents", "agency_contacts")

MAX_SHORT_TEXT = 500
MAX_LONG_TEXT = 20_000
# Status workflow: inquiry -> intake -> active <-> dormant -> closed -> after-care; reopening
# (closed or after-care back to active) is allowed and recorded as such.
TRANSITIONS: dict[str, frozenset[str]] = {
    "inquiry": frozenset({"intake", "closed"}),
    "intake": frozenset({"active", "closed"}),
    "active": frozenset({"dormant", "closed"}),
    "dormant": frozenset({"active", "closed"}),
    "closed": frozenset({"after_care", "active"}),
    "after_care": frozenset({"closed", "active"}),
}
REOPEN_FROM = frozenset({"closed", "after_care"})
CODE_ATTEMPTS = 20


@dataclass(frozen=True)
class CaseworkSettings:
    """Settings the track services need, taken from the app config by the web or CLI layer."""

    reauth_minutes: int = 5
    break_glass_minutes: int = 60
    retention_days: int = 3 * 365

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> CaseworkSettings:
        return cls(
            reauth_minutes=int(config.get("REAUTH_MINUTES", cls.reauth_minutes)),
            break_glass_minutes=int(config.get("BREAK_GLASS_MINUTES", cls.break_glass_minutes)),
            retention_days=int(config.get("RETENTION_DAYS_AFTER_CLOSURE", cls.retention_days)),
        )


# --- input --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonInput:
    """Identity fields of a new person (all optional but a name or an alias)."""

    name: str | None = None
    alias: str | None = None
    personnummer: str | None = None
    birth_year: int | None = None
    phone: str | None = None
    email: str | None = None
    address: str | None = None
    protected_data_level: str | None = None


@dataclass(frozen=True)
class ConsentInput:
    consent_type: str
    form: str
    valid_from: dt.date
    valid_to: dt.date | None = None
    recipient_agency: str | None = None
    recipient: str | None = None
    scope: Sequence[str] = ()
    purpose: str | None = None
    withheld: str | None = None


@dataclass(frozen=True)
class GoalInput:
    life_domain: str
    goal: str
    sub_goal: str | None = None
    intervention: str | None = None
    provider: str | None = None
    start_on: dt.date | None = None
    target_on: dt.date | None = None
    status: str = "not_started"
    agreed_on: dt.date | None = None


GOAL_FIELDS = ("life_domain", "goal", "sub_goal", "intervention", "provider", "start_on",
               "target_on", "status", "agreed_on")


# --- validation helpers (messages never contain the value) --------------------------------------


def choice(value: Any, allowed: Collection[str], code: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ValidationError(f"{code}: not one of the allowed values", code=code)
    return value


def optional_choice(value: Any, allowed: Collection[str], code: str) -> str | None:
    return None if value is None else choice(value, allowed, code)


def clean_text(
    value: Any, *, code: str, max_length: int = MAX_SHORT_TEXT, required: bool = False
) -> str | None:
    """NFC, trimmed, no NUL or other control characters except tab and line breaks (B8)."""
    if value is None:
        if required:
            raise ValidationError(f"{code} is required", code=f"{code}_required")
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{code} must be text", code=code)
    text = unicodedata.normalize("NFC", value).strip()
    if any(unicodedata.category(ch) == "Cc" and ch not in "\t\n\r" for ch in text):
        raise ValidationError(f"{code} contains control characters", code=code)
    if len(text) > max_length:
        raise ValidationError(f"{code} is too long", code=f"{code}_too_long")
    if not text:
        if required:
            raise ValidationError(f"{code} is required", code=f"{code}_required")
        return None
    return text


def aware(value: Any, code: str) -> dt.datetime:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise ValidationError(f"{code} must be an aware datetime", code=code)
    return value.astimezone(dt.UTC)


def optional_aware(value: Any, code: str) -> dt.datetime | None:
    return None if value is None else aware(value, code)


def a_date(value: Any, code: str) -> dt.date:
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise ValidationError(f"{code} must be a date", code=code)
    return value


def optional_date(value: Any, code: str) -> dt.date | None:
    return None if value is None else a_date(value, code)


def categories(values: Iterable[Any], code: str) -> list[str]:
    chosen = [choice(v, DATA_CATEGORIES, code) for v in values]
    return sorted(set(chosen))


def _identifier(raw: str | None, normalise: Any, code: str) -> str | None:
    text = clean_text(raw, code=code, max_length=200)
    if text is None:
        return None
    try:
        return str(normalise(text))
    except InvalidIdentifier as exc:
        raise ValidationError(exc.message_sv, code=f"invalid_{code}") from None


def _now(now: dt.datetime | None) -> dt.datetime:
    return now or utcnow()


def load_child(session: Session, model: type[Child], row_id: Any, track: Track, code: str) -> Child:
    """A child row of `track`; ids of other tracks' rows are answered like unknown ids."""
    row = session.get(model, row_id) if isinstance(row_id, uuid.UUID) else None
    if row is None or getattr(row, "track_id", None) != track.id:
        raise NotFound(f"no such {code} on this track", code=f"{code}_not_found")
    return row


def field_names(names: Iterable[str]) -> str:
    """Changed field names for an audit entry (at most 64 characters; a count beyond)."""
    joined = ",".join(sorted(names))
    return joined if len(joined) <= 64 else f"{len(joined.split(','))} fields"


# --- opening a track ----------------------------------------------------------------------------


def _consent_row(consent: ConsentInput, *, track: Track, person: Person, recorded_by: uuid.UUID,
                 now: dt.datetime) -> Consent:
    consent_type = choice(consent.consent_type, CONSENT_TYPES, "consent_type")
    valid_from = a_date(consent.valid_from, "valid_from")
    valid_to = optional_date(consent.valid_to, "valid_to")
    if valid_to is not None and valid_to < valid_from:
        raise ValidationError("consent ends before it starts", code="valid_to_before_from")
    agency = optional_choice(consent.recipient_agency, AGENCIES, "recipient_agency")
    recipient = clean_text(consent.recipient, code="recipient")
    if consent_type == "sharing" and agency is None:
        raise ValidationError("a sharing consent names its recipient", code="recipient_required")
    if consent_type == "relative_contact" and recipient is None:
        raise ValidationError("name the relative", code="recipient_required")
    row = Consent(
        track_id=track.id, person_id=person.id, consent_type=consent_type,
        recipient_agency=agency, scope=categories(consent.scope, "scope"),
        form=choice(consent.form, CONSENT_FORMS, "form"), recorded_by=recorded_by,
        recorded_at=now, valid_from=valid_from, valid_to=valid_to,
    )
    row.recipient = recipient
    row.purpose = clean_text(consent.purpose, code="purpose", max_length=MAX_LONG_TEXT)
    row.withheld = clean_text(consent.withheld, code="withheld", max_length=MAX_LONG_TEXT)
    return row


def _person_row(data: PersonInput) -> Person:
    name = clean_text(data.name, code="name", max_length=200)
    alias = clean_text(data.alias, code="alias", max_length=200)
    if name is None and alias is None:
        raise ValidationError("a name or an alias is needed", code="name_required")
    birth_year = data.birth_year
    if birth_year is not None and (
        isinstance(birth_year, bool) or not isinstance(birth_year, int)
        or not 1900 <= birth_year <= utcnow().year
    ):
        raise ValidationError("impossible birth year", code="birth_year")
    person = Person()
    person.name = name
    person.alias = alias
    person.personnummer = _identifier(data.personnummer, normalise_personnummer, "personnummer")
    person.birth_year = birth_year
    person.phone = _identifier(data.phone, normalise_phone, "phone")
    person.email = _identifier(data.email, normalise_email, "email")
    person.address = clean_text(data.address, code="address")
    person.protected_data_level = optional_choice(
        data.protected_data_level, PROTECTED_DATA_LEVELS, "protected_data_level")
    return person


class PossibleDuplicate(Conflict):
    """The person may already have a track; `codes` are those the actor may know of."""

    def __init__(self, codes: Sequence[str]) -> None:
        super().__init__("a person with the same identifier has a track", code="duplicate")
        self.codes = list(codes)


def _unused_code(session: Session, kind: str) -> str:
    for _ in range(CODE_ATTEMPTS):
        code = new_code(kind)
        if not session.scalar(select(exists().where(Track.code == code))):
            return code
    raise Conflict("no free track code found", code="no_free_code")


def _eligible_worker(session: Session, user_id: uuid.UUID) -> User:
    user = session.get(User, user_id) if isinstance(user_id, uuid.UUID) else None
    if user is None or not user.is_active or not role_has(user.role, "tracks.work"):
        # Board and admin never join a team: they must never see content.
        raise ValidationError("not a staff member who works tracks", code="not_a_worker")
    return user


def open_track(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    consents: Sequence[ConsentInput],
    person: PersonInput,
    referral_source: str,
    municipality: str | None = None,
    owner_id: uuid.UUID | None = None,
    status: str = "intake",
    access_level: str = "normal",
    allow_duplicate: bool = False,
    now: dt.datetime | None = None,
) -> Track:
    """Intake: the consent first (a processing consent is required), then the person with
    encrypted identity fields and blind indexes, then the track with a fresh random code.

    Before anything is created the person's identifiers are looked up by blind index; if a
    track the actor may know of matches, PossibleDuplicate carries those codes (and only those)
    unless `allow_duplicate` is set.
    """
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.INTAKE, now=now)
    kind = choice(kind, ("defector", "relative"), "kind")
    if not any(c.consent_type == "processing" for c in consents):
        raise ValidationError("a consent to processing comes first", code="consent_required")
    referral = choice(referral_source, REFERRAL_SOURCES, "referral_source")
    status = choice(status, ("inquiry", "intake", "active"), "status")
    access_level = choice(access_level, ACCESS_LEVELS, "access_level")
    municipality = clean_text(municipality, code="municipality", max_length=8)
    if municipality is not None and not municipality.isdigit():
        raise ValidationError("a municipality code is four digits", code="municipality")
    owner = _eligible_worker(session, owner_id or access.user_id)
    new_person = _person_row(person)
    if not allow_duplicate and (new_person.personnummer or new_person.phone or new_person.email):
        codes = queries.search_identifiers(
            session, access=access, actor=actor, personnummer=new_person.personnummer,
            phone=new_person.phone, email=new_person.email, now=now, kind=kind)
        if codes:
            raise PossibleDuplicate(codes)
    session.add(new_person)
    # Without relationships the unit of work does not order these inserts: flush parents first.
    session.flush()
    track = Track(
        id=uuid.uuid4(), kind=kind, code=_unused_code(session, kind), status=status,
        owner_id=owner.id, person_id=new_person.id, opened_at=now, referral_source=referral,
        municipality=municipality, access_level=access_level,
    )
    session.add(track)
    session.flush()
    rows = [_consent_row(c, track=track, person=new_person, recorded_by=access.user_id, now=now)
            for c in consents]
    session.add_all(rows)
    session.flush()
    record(session, action="track.opened", actor=actor, object_type="track",
           object_id=track.code, now=now,
           details={"kind": kind, "consents": len(rows), "status": status})
    return track


# --- reading content ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PersonView:
    name: str | None
    alias: str | None
    personnummer: str | None
    birth_year: int | None
    phone: str | None
    email: str | None
    address: str | None
    protected_data_level: str | None
    # Protected personal data: address and contact details are withheld unless asked for.
    contact_hidden: bool


@dataclass(frozen=True)
class JournalView:
    id: uuid.UUID
    occurred_at: dt.datetime
    duration_minutes: int | None
    contact_type: str
    contact_achieved: bool
    participants: str | None
    note: str | None
    sensitivity: str
    corrects_id: uuid.UUID | None
    corrected_by: tuple[uuid.UUID, ...]
    author_id: uuid.UUID
    created_at: dt.datetime
    next_contact_at: dt.datetime | None


@dataclass(frozen=True)
class GoalView:
    id: uuid.UUID
    life_domain: str
    goal: str | None
    sub_goal: str | None
    intervention: str | None
    provider: str | None
    start_on: dt.date | None
    target_on: dt.date | None
    status: str
    agreed_on: dt.date | None
    version: int


@dataclass(frozen=True)
class ConsentView:
    id: uuid.UUID
    consent_type: str
    recipient_agency: str | None
    recipient: str | None
    scope: tuple[str, ...]
    purpose: str | None
    form: str
    recorded_by: uuid.UUID
    valid_from: dt.date
    valid_to: dt.date | None
    revoked_at: dt.datetime | None
    withheld: str | None
    is_valid: bool


@dataclass(frozen=True)
class AgencyContactView:
    id: uuid.UUID
    agency: str
    unit: str | None
    contact_role: str | None
    purpose: str | None
    outcome: str | None
    categories: tuple[str, ...]
    legal_basis: str
    consent_id: uuid.UUID | None
    occurred_at: dt.datetime
    author_id: uuid.UUID


@dataclass(frozen=True)
class TrackContent:
    """What a reader asked for; sections not asked for stay None (and were not decrypted)."""

    track: queries.TrackRow
    via: str
    person: PersonView | None = None
    journal: list[JournalView] | None = None
    hidden_entries: int = 0
    plan: list[GoalView] | None = None
    consents: list[ConsentView] | None = None
    agency_contacts: list[AgencyContactView] | None = None
    team: list[uuid.UUID] = field(default_factory=list)


def check_sections(sections: Iterable[str], allowed: Sequence[str]) -> list[str]:
    chosen = [choice(s, allowed, "section") for s in sections]
    if not chosen:
        raise ValidationError("ask for at least one section", code="section")
    return [s for s in allowed if s in chosen]


def record_content_read(
    session: Session, *, actor: Actor, access: Access, purpose: str, sections: Sequence[str],
    now: dt.datetime, reveal_contact: bool = False, hidden: int = 0,
) -> None:
    """The audit entry of a content read, written before any value is returned."""
    details: dict[str, Any] = {"sections": ",".join(sections), "via": access.via}
    if reveal_contact:
        details["reveal_contact"] = True
    if hidden:
        details["hidden"] = hidden
    record(session, action="track.content_read", actor=actor, object_type="track",
           object_id=access.track_or_fail.code, purpose=purpose, details=details, now=now)


def authorize_read(
    session: Session, *, actor: Actor, track_id: uuid.UUID, purpose: str, now: dt.datetime
) -> Access:
    access = authorize(session, actor=actor, need=Need.READ, track_id=track_id, now=now)
    choice(purpose, PURPOSES, "purpose")
    return access


def read_track_content(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    purpose: str,
    sections: Iterable[str] = SECTIONS,
    reveal_contact: bool = False,
    now: dt.datetime | None = None,
) -> TrackContent:
    """The shared sections of a track's content, for a stated purpose (a PURPOSES code).

    The read is recorded before anything is decrypted; if the audit write fails, nothing is
    returned. A break-glass reader does not see journal entries marked `team`, and nobody but
    the author and the named users sees entries marked `named`.
    """
    now = _now(now)
    access = authorize_read(session, actor=actor, track_id=track_id, purpose=purpose, now=now)
    track = access.track_or_fail
    chosen = check_sections(sections, SECTIONS)
    entries: list[JournalEntry] = []
    hidden = 0
    if "journal" in chosen:
        all_entries = list(session.scalars(
            select(JournalEntry).where(JournalEntry.track_id == track.id)
            .order_by(JournalEntry.occurred_at.desc(), JournalEntry.created_at.desc())))
        entries = [e for e in all_entries if access.sees_entry(e)]
        hidden = len(all_entries) - len(entries)
    record_content_read(session, actor=actor, access=access, purpose=purpose, sections=chosen,
                        now=now, reveal_contact=reveal_contact, hidden=hidden)
    row = queries.to_row(session.execute(queries.row_select().where(Track.id == track.id)).one())
    content: dict[str, Any] = {"track": row, "via": access.via, "hidden_entries": hidden,
                               "team": team_of(session, track)}
    if "person" in chosen:
        content["person"] = _person_view(session.get(Person, track.person_id), reveal_contact)
    if "journal" in chosen:
        content["journal"] = _journal_views(entries)
    if "plan" in chosen:
        content["plan"] = [_goal_view(g) for g in session.scalars(
            select(PlanGoal).where(PlanGoal.track_id == track.id)
            .order_by(PlanGoal.created_at, PlanGoal.id))]
    if "consents" in chosen:
        content["consents"] = [_consent_view(c, now) for c in session.scalars(
            select(Consent).where(Consent.track_id == track.id)
            .order_by(Consent.recorded_at, Consent.id))]
    if "agency_contacts" in chosen:
        content["agency_contacts"] = [_agency_view(a) for a in session.scalars(
            select(AgencyContact).where(AgencyContact.track_id == track.id)
            .order_by(AgencyContact.occurred_at.desc(), AgencyContact.id))]
    return TrackContent(**content)


def team_of(session: Session, track: Track) -> list[uuid.UUID]:
    members = session.scalars(select(TeamMember.user_id).where(TeamMember.track_id == track.id))
    return [track.owner_id, *sorted(members, key=str)]


def _person_view(person: Person | None, reveal_contact: bool) -> PersonView:
    if person is None:  # a track always has its person; a missing row is not "no data"
        raise NotFound("the track's person is missing", code="person_not_found")
    level = person.protected_data_level
    hide = level not in (None, "none") and not reveal_contact
    return PersonView(
        name=person.name, alias=person.alias, personnummer=person.personnummer,
        birth_year=person.birth_year,
        phone=None if hide else person.phone,
        email=None if hide else person.email,
        address=None if hide else person.address,
        protected_data_level=level, contact_hidden=hide,
    )


def _journal_views(entries: list[JournalEntry]) -> list[JournalView]:
    corrected_by: dict[uuid.UUID, list[uuid.UUID]] = {}
    for entry in entries:
        if entry.corrects_id is not None:
            corrected_by.setdefault(entry.corrects_id, []).append(entry.id)
    return [
        JournalView(
            id=e.id, occurred_at=e.occurred_at, duration_minutes=e.duration_minutes,
            contact_type=e.contact_type, contact_achieved=e.contact_achieved,
            participants=e.participants, note=e.note, sensitivity=e.sensitivity,
            corrects_id=e.corrects_id, corrected_by=tuple(corrected_by.get(e.id, ())),
            author_id=e.author_id, created_at=e.created_at, next_contact_at=e.next_contact_at,
        )
        for e in entries
    ]


def _goal_view(goal: PlanGoal) -> GoalView:
    return GoalView(
        id=goal.id, life_domain=goal.life_domain, goal=goal.goal, sub_goal=goal.sub_goal,
        intervention=goal.intervention, provider=goal.provider, start_on=goal.start_on,
        target_on=goal.target_on, status=goal.status, agreed_on=goal.agreed_on,
        version=goal.version,
    )


def _consent_view(consent: Consent, now: dt.datetime) -> ConsentView:
    return ConsentView(
        id=consent.id, consent_type=consent.consent_type,
        recipient_agency=consent.recipient_agency, recipient=consent.recipient,
        scope=tuple(consent.scope or ()), purpose=consent.purpose, form=consent.form,
        recorded_by=consent.recorded_by, valid_from=consent.valid_from,
        valid_to=consent.valid_to, revoked_at=consent.revoked_at, withheld=consent.withheld,
        is_valid=consent.is_valid_on(now.date()),
    )


def _agency_view(contact: AgencyContact) -> AgencyContactView:
    return AgencyContactView(
        id=contact.id, agency=contact.agency, unit=contact.unit,
        contact_role=contact.contact_role, purpose=contact.purpose, outcome=contact.outcome,
        categories=tuple(contact.categories or ()), legal_basis=contact.legal_basis,
        consent_id=contact.consent_id, occurred_at=contact.occurred_at,
        author_id=contact.author_id,
    )


# --- journal (append-only) ----------------------------------------------------------------------


def _named_users(session: Session, track: Track, sensitivity: str,
                 named_user_ids: Iterable[uuid.UUID], author_id: uuid.UUID) -> list[str]:
    ids = {u for u in named_user_ids}
    if sensitivity != "named":
        if ids:
            raise ValidationError("only a `named` entry names users", code="named_users")
        return []
    if not ids - {author_id}:
        raise ValidationError("name at least one other team member", code="named_users")
    for user_id in ids:
        if not isinstance(user_id, uuid.UUID) or not is_on_team(
                session, track=track, user_id=user_id):
            raise ValidationError("named users must be on the team", code="named_user_not_team")
    return sorted(str(u) for u in ids)


def _journal_row(
    session: Session, *, access: Access, occurred_at: dt.datetime, contact_type: str,
    contact_achieved: bool, note: str | None, participants: str | None,
    duration_minutes: int | None, sensitivity: str, named_user_ids: Iterable[uuid.UUID],
    next_contact_at: dt.datetime | None, corrects: JournalEntry | None, now: dt.datetime,
) -> JournalEntry:
    track = access.track_or_fail
    if not isinstance(contact_achieved, bool):
        raise ValidationError("contact achieved is yes or no", code="contact_achieved")
    if duration_minutes is not None and (
        isinstance(duration_minutes, bool) or not isinstance(duration_minutes, int)
        or not 0 <= duration_minutes <= 24 * 60
    ):
        raise ValidationError("duration in minutes, at most a day", code="duration_minutes")
    sensitivity = choice(sensitivity, SENSITIVITIES, "sensitivity")
    occurred = aware(occurred_at, "occurred_at")
    if occurred > now + dt.timedelta(minutes=5):
        raise ValidationError("a journal entry records what has happened", code="occurred_at")
    entry = JournalEntry(
        track_id=track.id, person_id=track.person_id, occurred_at=occurred,
        duration_minutes=duration_minutes,
        contact_type=choice(contact_type, CONTACT_TYPES, "contact_type"),
        contact_achieved=contact_achieved, sensitivity=sensitivity,
        named_user_ids=_named_users(session, track, sensitivity, named_user_ids,
                                    access.user_id),
        corrects_id=corrects.id if corrects is not None else None,
        author_id=access.user_id, created_at=now,
        next_contact_at=optional_aware(next_contact_at, "next_contact_at"),
    )
    entry.note = clean_text(note, code="note", max_length=MAX_LONG_TEXT, required=True)
    entry.participants = clean_text(participants, code="participants")
    return entry


def add_journal_entry(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    occurred_at: dt.datetime,
    contact_type: str,
    contact_achieved: bool,
    note: str,
    participants: str | None = None,
    duration_minutes: int | None = None,
    sensitivity: str = "normal",
    named_user_ids: Iterable[uuid.UUID] = (),
    next_contact_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> JournalEntry:
    """Append a journal entry (team only). Entries are never edited or deleted."""
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    entry = _journal_row(
        session, access=access, occurred_at=occurred_at, contact_type=contact_type,
        contact_achieved=contact_achieved, note=note, participants=participants,
        duration_minutes=duration_minutes, sensitivity=sensitivity,
        named_user_ids=named_user_ids, next_contact_at=next_contact_at, corrects=None, now=now)
    return _append(session, actor=actor, access=access, entry=entry, now=now)


def correct_journal_entry(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    entry_id: uuid.UUID,
    note: str,
    occurred_at: dt.datetime | None = None,
    contact_type: str | None = None,
    contact_achieved: bool | None = None,
    participants: str | None = None,
    duration_minutes: int | None = None,
    sensitivity: str | None = None,
    named_user_ids: Iterable[uuid.UUID] | None = None,
    next_contact_at: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> JournalEntry:
    """Correct an entry by appending a new one that points at it; the original stays as it
    was. Fields not given are taken over from the corrected entry (the note is always new)."""
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    original = load_child(session, JournalEntry, entry_id, access.track_or_fail, "journal_entry")
    if not access.sees_entry(original):
        # The caller cannot see this entry: answered as if it did not exist.
        raise NotFound("no such journal_entry on this track", code="journal_entry_not_found")
    entry = _journal_row(
        session, access=access,
        occurred_at=occurred_at if occurred_at is not None else original.occurred_at,
        contact_type=contact_type if contact_type is not None else original.contact_type,
        contact_achieved=(contact_achieved if contact_achieved is not None
                          else original.contact_achieved),
        note=note,
        participants=participants if participants is not None else original.participants,
        duration_minutes=(duration_minutes if duration_minutes is not None
                          else original.duration_minutes),
        sensitivity=sensitivity if sensitivity is not None else original.sensitivity,
        named_user_ids=(named_user_ids if named_user_ids is not None
                        else [uuid.UUID(u) for u in original.named_user_ids or []]),
        next_contact_at=next_contact_at, corrects=original, now=now)
    return _append(session, actor=actor, access=access, entry=entry, now=now)


def _append(session: Session, *, actor: Actor, access: Access, entry: JournalEntry,
            now: dt.datetime) -> JournalEntry:
    track = access.track_or_fail
    session.add(entry)
    if entry.next_contact_at is not None:
        track.next_contact_at = entry.next_contact_at
    session.flush()
    details: dict[str, Any] = {"entry_id": str(entry.id), "sensitivity": entry.sensitivity,
                               "contact_type": entry.contact_type}
    if entry.corrects_id is not None:
        details["corrects_id"] = str(entry.corrects_id)
    record(session, action="journal.added", actor=actor, object_type="track",
           object_id=track.code, details=details, now=now)
    return entry


# --- plan goals ---------------------------------------------------------------------------------


def _goal_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Validated values of the goal fields present in `data`."""
    values: dict[str, Any] = {}
    for name, value in data.items():
        if name == "life_domain":
            values[name] = choice(value, LIFE_DOMAINS, name)
        elif name == "status":
            values[name] = choice(value, GOAL_STATUSES, name)
        elif name == "goal":
            values[name] = clean_text(value, code=name, max_length=MAX_LONG_TEXT, required=True)
        elif name in ("sub_goal", "intervention", "provider"):
            values[name] = clean_text(value, code=name, max_length=MAX_LONG_TEXT)
        elif name in ("start_on", "target_on", "agreed_on"):
            values[name] = optional_date(value, name)
        else:
            raise ValidationError("not a goal field", code="goal_field")
    return values


def add_plan_goal(
    session: Session, *, actor: Actor, track_id: uuid.UUID, goal: GoalInput,
    now: dt.datetime | None = None,
) -> PlanGoal:
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    values = _goal_values({name: getattr(goal, name) for name in GOAL_FIELDS})
    _check_goal_dates(values)
    row = PlanGoal(track_id=track.id, person_id=track.person_id, created_by=access.user_id,
                   created_at=now)
    for name, value in values.items():
        setattr(row, name, value)
    session.add(row)
    session.flush()
    record(session, action="plan.goal_added", actor=actor, object_type="track",
           object_id=track.code, details={"goal_id": str(row.id),
                                          "life_domain": row.life_domain}, now=now)
    return row


def _check_goal_dates(values: Mapping[str, Any]) -> None:
    start, target = values.get("start_on"), values.get("target_on")
    if start is not None and target is not None and target < start:
        raise ValidationError("the target date is before the start", code="target_before_start")


def apply_versioned_update(
    session: Session,
    *,
    actor: Actor,
    track: Track,
    row: Any,
    expected_version: int,
    values: Mapping[str, Any],
    action: str,
    id_key: str | None,
    noun: str,
    now: dt.datetime,
    validate: Callable[[], None] | None = None,
) -> list[str]:
    """Optimistic-locking update shared by every editable child row (D6) and each kind's case
    row (whose id is the track's: `id_key` None leaves it out of the audit details).

    A version other than the one the user saw is refused with Conflict and recorded; so is a
    concurrent save that wins the race inside the database's own version check. Returns the
    names of the fields that changed (the audit entry carries names, never values).
    """
    row_id = {id_key: str(row.id)} if id_key is not None else {}
    if row.version != expected_version:
        record(session, action=action, actor=actor, outcome="denied", object_type="track",
               object_id=track.code, details={**row_id, "reason": "stale_version"}, now=now)
        raise Conflict(f"the {noun} was changed by someone else", code="stale_version")
    if validate is not None:
        validate()
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    for name in changed:
        setattr(row, name, values[name])
    try:
        session.flush()
    except StaleDataError:
        raise Conflict(f"the {noun} was changed by someone else", code="stale_version") from None
    record(session, action=action, actor=actor, object_type="track", object_id=track.code,
           details={**row_id, "fields": field_names(changed)}, now=now)
    return changed


def update_plan_goal(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    goal_id: uuid.UUID,
    expected_version: int,
    changes: Mapping[str, Any],
    now: dt.datetime | None = None,
) -> PlanGoal:
    """Change fields of a goal that the caller saw at `expected_version`.

    A stale version is refused with Conflict (code `stale_version`) and changes nothing; the
    refusal is recorded. Two concurrent saves of the same version: the database's version check
    lets one through and the other gets the same Conflict.
    """
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    goal = load_child(session, PlanGoal, goal_id, track, "plan_goal")
    values = _goal_values(changes)
    apply_versioned_update(
        session, actor=actor, track=track, row=goal, expected_version=expected_version,
        values=values, action="plan.goal_updated", id_key="goal_id", noun="goal", now=now,
        validate=lambda: _check_goal_dates(
            {"start_on": goal.start_on, "target_on": goal.target_on, **values}),
    )
    return goal


# --- consents -----------------------------------------------------------------------------------


def add_consent(
    session: Session, *, actor: Actor, track_id: uuid.UUID, consent: ConsentInput,
    now: dt.datetime | None = None,
) -> Consent:
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    person = session.get(Person, track.person_id)
    if person is None:
        raise NotFound("the track's person is missing", code="person_not_found")
    row = _consent_row(consent, track=track, person=person, recorded_by=access.user_id, now=now)
    session.add(row)
    session.flush()
    details: dict[str, Any] = {"consent_id": str(row.id), "consent_type": row.consent_type}
    if row.recipient_agency:
        details["recipient_agency"] = row.recipient_agency
    record(session, action="consent.added", actor=actor, object_type="track",
           object_id=track.code, details=details, now=now)
    return row


def revoke_consent(
    session: Session, *, actor: Actor, track_id: uuid.UUID, consent_id: uuid.UUID,
    now: dt.datetime | None = None,
) -> Consent:
    """Record that a consent was withdrawn (from `now`); the row stays as evidence."""
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    consent = load_child(session, Consent, consent_id, track, "consent")
    if consent.revoked_at is not None:
        raise ValidationError("the consent is already revoked", code="already_revoked")
    consent.revoked_at = now
    session.flush()
    record(session, action="consent.revoked", actor=actor, object_type="track",
           object_id=track.code,
           details={"consent_id": str(consent.id), "consent_type": consent.consent_type},
           now=now)
    return consent


# --- agency contacts ----------------------------------------------------------------------------


def add_agency_contact(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    agency: str,
    shared_categories: Iterable[str],
    legal_basis: str,
    occurred_at: dt.datetime,
    consent_id: uuid.UUID | None = None,
    unit: str | None = None,
    contact_role: str | None = None,
    purpose: str | None = None,
    outcome: str | None = None,
    now: dt.datetime | None = None,
) -> AgencyContact:
    """Record a disclosure to an authority. With `legal_basis="consent"` it needs a sharing
    consent of this track for this agency, in force on the day, covering every shared data
    category; otherwise it is refused (Forbidden, code `no_valid_consent`) and the refusal is
    recorded. A legal obligation or vital interest needs no consent; the audit entry carries
    the legal basis so the board sees it."""
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    agency = choice(agency, AGENCIES, "agency")
    basis = choice(legal_basis, LEGAL_BASES, "legal_basis")
    shared = categories(shared_categories, "categories")
    if not shared:
        raise ValidationError("name the data categories shared", code="categories_required")
    when = aware(occurred_at, "occurred_at")
    consent = None
    if consent_id is not None:
        consent = load_child(session, Consent, consent_id, track, "consent")
    if basis == "consent":
        rule = _consent_problem(consent, agency=agency, shared=shared, day=when.date())
        if rule is not None:
            record(session, action="agency.contact_added", actor=actor, outcome="denied",
                   object_type="track", object_id=track.code,
                   details={"agency": agency, "legal_basis": basis, "rule": rule}, now=now)
            raise Forbidden("no valid consent for this recipient and data",
                            code="no_valid_consent")
    row = AgencyContact(
        track_id=track.id, person_id=track.person_id, agency=agency, categories=shared,
        legal_basis=basis, consent_id=consent.id if consent is not None else None,
        occurred_at=when, author_id=access.user_id, created_at=now,
    )
    row.unit = clean_text(unit, code="unit")
    row.contact_role = clean_text(contact_role, code="contact_role")
    row.purpose = clean_text(purpose, code="purpose", max_length=MAX_LONG_TEXT)
    row.outcome = clean_text(outcome, code="outcome", max_length=MAX_LONG_TEXT)
    session.add(row)
    session.flush()
    record(session, action="agency.contact_added", actor=actor, object_type="track",
           object_id=track.code, now=now,
           details={"contact_id": str(row.id), "agency": agency, "legal_basis": basis,
                    "categories": len(shared)})
    return row


def _consent_problem(consent: Consent | None, *, agency: str, shared: list[str],
                     day: dt.date) -> str | None:
    if consent is None:
        return "no_consent"
    if consent.consent_type != "sharing" or consent.recipient_agency != agency:
        return "other_recipient"
    if not consent.is_valid_on(day):
        return "not_in_force"
    if not set(shared) <= set(consent.scope or ()):
        return "outside_scope"
    return None


# --- status -------------------------------------------------------------------------------------


def change_status(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    to_status: str,
    closure_reason: str | None = None,
    expected_version: int | None = None,
    settings: CaseworkSettings | None = None,
    now: dt.datetime | None = None,
) -> Track:
    """Move a track along inquiry -> intake -> active <-> dormant -> closed -> after-care.

    Other transitions are refused (ValidationError, code `invalid_transition`). Closing needs a
    closure reason (`closure_reason_required`) and sets the retention date; reopening (closed or
    after-care to active) clears both and is recorded as `track.reopened`.
    """
    now = _now(now)
    settings = settings or CaseworkSettings()
    access = authorize(session, actor=actor, need=Need.WORK, track_id=track_id, now=now)
    track = access.track_or_fail
    to_status = choice(to_status, STATUSES, "status")
    from_status = track.status
    if expected_version is not None and track.version != expected_version:
        raise Conflict("the track was changed by someone else", code="stale_version")
    if to_status not in TRANSITIONS.get(from_status, frozenset()):
        raise ValidationError(f"a track cannot go from {from_status} to {to_status}",
                              code="invalid_transition")
    reason = optional_choice(closure_reason, CLOSURE_REASONS, "closure_reason")
    details: dict[str, Any] = {"from_status": from_status, "to_status": to_status}
    if to_status == "closed":
        if from_status in OPEN_STATUSES:
            if reason is None:
                raise ValidationError("closing needs a reason", code="closure_reason_required")
            track.closure_reason = reason
            track.closed_at = now
        elif reason is not None:
            track.closure_reason = reason
        track.retention_until = now.date() + dt.timedelta(days=settings.retention_days)
        details["closure_reason"] = track.closure_reason or ""
    elif reason is not None:
        raise ValidationError("a closure reason belongs to closing", code="closure_reason")
    action = "track.status_changed"
    if from_status in REOPEN_FROM and to_status == "active":
        action = "track.reopened"
        track.closed_at = None
        track.closure_reason = None
        track.retention_until = None
    track.status = to_status
    try:
        session.flush()
    except StaleDataError:
        raise Conflict("the track was changed by someone else", code="stale_version") from None
    record(session, action=action, actor=actor, object_type="track", object_id=track.code,
           details=details, now=now)
    return track


# --- team, owner, break-glass -------------------------------------------------------------------


def add_team_member(
    session: Session, *, actor: Actor, track_id: uuid.UUID, user_id: uuid.UUID,
    now: dt.datetime | None = None,
) -> TeamMember:
    """Put a support worker or coordinator on a track's team (coordinators; no content)."""
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.ASSIGN, track_id=track_id, now=now)
    track = access.track_or_fail
    user = _eligible_worker(session, user_id)
    if is_on_team(session, track=track, user_id=user.id):
        raise ValidationError("already on the team", code="already_on_team")
    member = TeamMember(track_id=track.id, user_id=user.id, added_at=now,
                        added_by=access.user_id)
    session.add(member)
    session.flush()
    record(session, action="track.team_added", actor=actor, object_type="track",
           object_id=track.code, details={"user_id": str(user.id)}, now=now)
    return member


def remove_team_member(
    session: Session, *, actor: Actor, track_id: uuid.UUID, user_id: uuid.UUID,
    now: dt.datetime | None = None,
) -> None:
    """Take someone off the team; their access ends with their next request."""
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.ASSIGN, track_id=track_id, now=now)
    track = access.track_or_fail
    if track.owner_id == user_id:
        raise ValidationError("the owner stays on the team; change the owner first",
                              code="owner")
    member = session.get(TeamMember, (track.id, user_id)) if isinstance(
        user_id, uuid.UUID) else None
    if member is None:
        raise NotFound("not on the team", code="not_on_team")
    session.delete(member)
    session.flush()
    record(session, action="track.team_removed", actor=actor, object_type="track",
           object_id=track.code, details={"user_id": str(user_id)}, now=now)


def change_owner(
    session: Session, *, actor: Actor, track_id: uuid.UUID, user_id: uuid.UUID,
    now: dt.datetime | None = None,
) -> Track:
    """Make `user_id` the owner; the previous owner stays on the team as a member."""
    now = _now(now)
    access = authorize(session, actor=actor, need=Need.ASSIGN, track_id=track_id, now=now)
    track = access.track_or_fail
    user = _eligible_worker(session, user_id)
    previous = track.owner_id
    if previous == user.id:
        raise ValidationError("already the owner", code="already_owner")
    session.execute(delete(TeamMember).where(TeamMember.track_id == track.id,
                                             TeamMember.user_id == user.id))
    track.owner_id = user.id
    session.add(TeamMember(track_id=track.id, user_id=previous, added_at=now,
                           added_by=access.user_id))
    session.flush()
    record(session, action="track.owner_changed", actor=actor, object_type="track",
           object_id=track.code, details={"user_id": str(user.id)}, now=now)
    return track


def break_glass(
    session: Session,
    *,
    actor: Actor,
    track_id: uuid.UUID,
    reason: str,
    reauthenticated_at: dt.datetime | None,
    settings: CaseworkSettings | None = None,
    now: dt.datetime | None = None,
) -> BreakGlassGrant:
    """Emergency access (nödåtkomst) to a track outside the caller's team: read-only, for
    `settings.break_glass_minutes`, with a reason, and only right after a step-up
    (`reauthenticated_at` within `settings.reauth_minutes`). Recorded as `track.break_glass`,
    which the board's review flags; refused attempts are recorded under the same action."""
    now = _now(now)
    settings = settings or CaseworkSettings()
    access = authorize(session, actor=actor, need=Need.BREAK_GLASS, track_id=track_id, now=now)
    track = access.track_or_fail
    if is_on_team(session, track=track, user_id=access.user_id):
        raise ValidationError("you are on the team already", code="already_on_team")

    def refuse(rule: str, error: Exception) -> Exception:
        record(session, action="track.break_glass", actor=actor, outcome="denied",
               object_type="track", object_id=track.code, details={"rule": rule}, now=now)
        return error

    try:
        text = clean_text(reason, code="reason", max_length=MAX_SHORT_TEXT, required=True)
    except ValidationError as exc:
        raise refuse("reason_required", exc) from None
    if text is None or len(text) < 10:
        raise refuse("reason_required", ValidationError(
            "give the reason in a sentence", code="reason_required"))
    stamp = reauthenticated_at
    if (stamp is None or stamp.tzinfo is None or stamp > now
            or now - stamp > dt.timedelta(minutes=settings.reauth_minutes)):
        raise refuse("reauth_required", Forbidden(
            "confirm your password first", code="reauth_required"))
    grant = BreakGlassGrant(
        track_id=track.id, person_id=track.person_id, user_id=access.user_id, granted_at=now,
        expires_at=now + dt.timedelta(minutes=settings.break_glass_minutes),
    )
    grant.reason = text
    session.add(grant)
    session.flush()
    record(session, action="track.break_glass", actor=actor, object_type="track",
           object_id=track.code, purpose="emergency",
           details={"minutes": settings.break_glass_minutes, "grant_id": str(grant.id)},
           now=now)
    return grant
