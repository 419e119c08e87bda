"""`avhopp dev seed --tracks N`: synthetic, clearly marked defector tracks for development and
benchmarks, created through the same services as real data (so encrypted and audited).

Every seeded person's name ends in "(TESTDATA)", their personnummer has a valid checksum but
comes from a generator, their phone numbers are in the range the Swedish regulator reserves for
fiction (070-174 06 05 to 070-174 06 99) and their e-mail is at example.com. Refused in
production.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from avhopp.accounts import services as accounts
from avhopp.accounts.models import User
from avhopp.audit.services import record, register_actions
from avhopp.cases import services as cases
from avhopp.cases.models import (
    ARENAS,
    ENVIRONMENTS,
    INVOLVEMENTS,
    RISK_DIMENSIONS,
    DefectorCase,
    RiskAssessment,
)
from avhopp.casework import services as casework
from avhopp.casework.codes import new_code
from avhopp.casework.models import (
    CONTACT_TYPES,
    LIFE_DOMAINS,
    REFERRAL_SOURCES,
    RISK_LEVELS,
    Consent,
    JournalEntry,
    Person,
    PlanGoal,
    Track,
)
from avhopp.db import session_scope, utcnow
from avhopp.identifiers import normalise_email, normalise_personnummer, normalise_phone

register_actions({"dev.seeded": frozenset({"tracks", "bulk"})})

MARK = "(TESTDATA)"
COORDINATOR = "demo.samordnare"
WORKERS = ("demo.stodperson1", "demo.stodperson2", "demo.stodperson3")

FIRST_NAMES = (
    "Adam", "Ali", "Alma", "Anna", "Astrid", "Axel", "Ebba", "Elias", "Elin", "Emil", "Erik",
    "Fatima", "Filip", "Hanna", "Hugo", "Ida", "Isak", "Johan", "Karin", "Lars", "Leo", "Linnea",
    "Lucas", "Maja", "Mohammed", "Nils", "Noah", "Olivia", "Oskar", "Sara", "Sofia", "Viktor",
)
LAST_NAMES = (
    "Andersson", "Berg", "Bergström", "Ekström", "Eriksson", "Hansson", "Holm", "Jakobsson",
    "Johansson", "Karlsson", "Larsson", "Lindberg", "Lindqvist", "Lundgren", "Nilsson",
    "Nyström", "Olsson", "Persson", "Sandberg", "Sjöberg", "Svensson", "Wallin", "Åberg",
)
MUNICIPALITIES = ("0180", "1280", "1480", "0380", "0580", "1880", "2480", "0680")
NOTES = (
    "Samtal om boende och ekonomi. Klienten vill komma vidare med studier.",
    "Uppföljning av säkerhetsplanen; inga nya hot rapporterade.",
    "Telefonkontakt, kort avstämning inför möte med socialtjänsten.",
    "Klienten berättar om kontakt från tidigare bekanta; vi går igenom kontaktvägar.",
    "Gemensamt möte med arbetsförmedlingen om praktikplats.",
)
GOALS = (
    "Eget förstahandskontrakt", "Avsluta gymnasiet", "Regelbunden kontakt med vården",
    "Nytt socialt sammanhang", "Radera gamla konton i sociala medier",
)


def luhn_digit(nine_digits: str) -> int:
    total = 0
    for i, ch in enumerate(nine_digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return (10 - total % 10) % 10


def synthetic_personnummer(rng: random.Random) -> str:
    """A valid-checksum personnummer (YYYYMMDD-NNNC) born 1970-2005."""
    start = dt.date(1970, 1, 1)
    birth = start + dt.timedelta(days=rng.randrange((dt.date(2005, 12, 31) - start).days))
    serial = f"{rng.randrange(1000):03d}"
    nine = birth.strftime("%y%m%d") + serial
    number = f"{birth:%Y%m%d}-{serial}{luhn_digit(nine)}"
    normalise_personnummer(number)  # a generator bug must fail here, not slip into data
    return number


@dataclass(frozen=True)
class DemoStaff:
    coordinator_id: uuid.UUID
    worker_ids: tuple[uuid.UUID, ...]
    one_time_passwords: dict[str, str]


def ensure_staff(session: Session, *, policy: accounts.AccountPolicy) -> DemoStaff:
    """The demo coordinator and support workers, created once (their one-time passwords are
    returned only when created)."""
    created: dict[str, str] = {}
    ids: dict[str, uuid.UUID] = {}
    for name, role in ((COORDINATOR, "coordinator"),
                       *((w, "support_worker") for w in WORKERS)):
        user = session.scalars(select(User).where(User.username == name)).first()
        if user is None:
            user, one_time = accounts.create_user(session, actor=None, username=name, role=role,
                                                  policy=policy)
            created[name] = one_time
        ids[name] = user.id
    session.flush()
    return DemoStaff(ids[COORDINATOR], tuple(ids[w] for w in WORKERS), created)


def seed_track(session: Session, *, rng: random.Random, staff: DemoStaff,
               now: dt.datetime) -> str:
    """One synthetic defector track with consents, a plan, a risk assessment and a journal."""
    coordinator = session.get(User, staff.coordinator_id)
    owner = session.get(User, rng.choice(staff.worker_ids))
    if coordinator is None or owner is None:
        raise click.ClickException("demo staff missing")
    opened = now - dt.timedelta(days=rng.randrange(10, 700))
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    fiction_phone = f"+4670174{rng.randrange(605, 700):04d}"
    track = cases.open_defector_track(
        session, actor=coordinator,
        consents=[casework.ConsentInput(consent_type="processing", form="written",
                                        valid_from=opened.date()),
                  casework.ConsentInput(consent_type="special_category", form="written",
                                        valid_from=opened.date()),
                  casework.ConsentInput(consent_type="sharing", form="written",
                                        valid_from=opened.date(),
                                        recipient_agency="social_services",
                                        recipient="Socialtjänsten, vuxenenheten",
                                        scope=["identity", "planned_interventions"],
                                        purpose="Samordning av stödinsatser")],
        person=casework.PersonInput(
            name=f"{first} {last} {MARK}", alias=first,
            personnummer=synthetic_personnummer(rng), birth_year=None,
            phone=fiction_phone, email=f"{first}.{last}.{rng.randrange(10**6)}@example.com"
            .lower().replace("ö", "o").replace("å", "a").replace("ä", "a"),
            protected_data_level=rng.choice(("none", "none", "none", "confidentiality_mark")),
        ),
        background=cases.BackgroundInput(
            environment=rng.choice(ENVIRONMENTS), involvement=rng.choice(INVOLVEMENTS),
            years_in_environment=rng.randrange(1, 15), arena=rng.choice(ARENAS),
            reasons_for_leaving="Vill ha ett annat liv (syntetisk testdata).",
            voluntariness_confirmed_on=opened.date(),
        ),
        referral_source=rng.choice(REFERRAL_SOURCES), municipality=rng.choice(MUNICIPALITIES),
        owner_id=owner.id, status="intake", allow_duplicate=True, now=opened,
    )
    casework.change_status(session, actor=owner, track_id=track.id, to_status="active",
                           now=opened)
    cases.add_risk_assessment(
        session, actor=owner, track_id=track.id, assessed_on=opened.date(),
        levels={d: rng.choice(("low", "low", "medium", "high")) for d in RISK_DIMENSIONS},
        comments={"threat_from_environment": "Syntetisk bedömning."},
        protective_factors="Stöd från familj (syntetiskt).",
        reassess_by=opened.date() + dt.timedelta(days=90), now=opened)
    for _ in range(rng.randrange(1, 3)):
        casework.add_plan_goal(session, actor=owner, track_id=track.id, goal=casework.GoalInput(
            life_domain=rng.choice(LIFE_DOMAINS), goal=rng.choice(GOALS), status="ongoing",
            start_on=opened.date(), target_on=opened.date() + dt.timedelta(days=180)),
            now=opened)
    when = opened
    for _ in range(rng.randrange(2, 6)):
        when = min(when + dt.timedelta(days=rng.randrange(1, 30)), now)
        casework.add_journal_entry(
            session, actor=owner, track_id=track.id, occurred_at=when,
            contact_type=rng.choice(CONTACT_TYPES), contact_achieved=rng.random() > 0.2,
            note=rng.choice(NOTES), duration_minutes=rng.choice((15, 30, 45, 60)),
            next_contact_at=when + dt.timedelta(days=7), now=when)
    return track.code


def seed_tracks(
    factory: sessionmaker[Session], *, count: int, policy: accounts.AccountPolicy,
    rng_seed: int | None = None, now: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[str], DemoStaff]:
    """Create `count` tracks, one transaction each (an interrupted run keeps what it made)."""
    now = now or utcnow()
    rng = random.Random(rng_seed)  # noqa: S311  # nosec B311  synthetic demo data
    with session_scope(factory) as session:
        staff = ensure_staff(session, policy=policy)
    codes = []
    for _ in range(count):
        with session_scope(factory) as session:
            codes.append(seed_track(session, rng=rng, staff=staff, now=now))
        if progress is not None:
            progress(1)
    return codes, staff


# --- bulk seeding (benchmarks) ------------------------------------------------------------------


def _bulk_rows(rng: random.Random, *, staff: DemoStaff, now: dt.datetime,
               codes: set[str]) -> tuple[Person, Track, list[Any]]:
    """One synthetic track as ORM rows, built without the services' per-call checks and audit
    events. The values are the ones seed_track would give; the encryption is the real one (the
    rows are sealed by FieldCrypto when flushed)."""
    opened = now - dt.timedelta(days=rng.randrange(10, 700))
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    person = Person()
    person.name = f"{first} {last} {MARK}"
    person.alias = first
    person.personnummer = normalise_personnummer(synthetic_personnummer(rng))
    person.phone = normalise_phone(f"+4670174{rng.randrange(605, 700):04d}")
    person.email = normalise_email(
        f"{first}.{last}.{rng.randrange(10**6)}@example.com".lower()
        .replace("ö", "o").replace("å", "a").replace("ä", "a"))
    person.protected_data_level = rng.choice(("none", "none", "none", "confidentiality_mark"))
    code = new_code("defector")
    while code in codes:
        code = new_code("defector")
    codes.add(code)
    owner_id = rng.choice(staff.worker_ids)
    levels = {d: rng.choice(("low", "low", "medium", "high")) for d in RISK_DIMENSIONS}
    overall = max(levels.values(), key=RISK_LEVELS.index)
    track = Track(id=uuid.uuid4(), kind="defector", code=code, status="active",
                  owner_id=owner_id, person_id=person.id, opened_at=opened,
                  referral_source=rng.choice(REFERRAL_SOURCES),
                  municipality=rng.choice(MUNICIPALITIES), access_level="normal",
                  risk_level=overall)
    case = DefectorCase(id=track.id, person_id=person.id)
    case.environment = rng.choice(ENVIRONMENTS)
    case.involvement = rng.choice(INVOLVEMENTS)
    case.years_in_environment = rng.randrange(1, 15)
    case.arena = rng.choice(ARENAS)
    case.reasons_for_leaving = "Vill ha ett annat liv (syntetisk testdata)."
    case.voluntariness_confirmed_on = opened.date()
    children: list[Any] = [case]
    for consent_type, extra in (
        ("processing", {}),
        ("special_category", {}),
        ("sharing", {"recipient_agency": "social_services",
                     "scope": ["identity", "planned_interventions"]}),
    ):
        consent = Consent(track_id=track.id, person_id=person.id, consent_type=consent_type,
                          form="written", recorded_by=staff.coordinator_id, recorded_at=opened,
                          valid_from=opened.date(), **extra)
        if consent_type == "sharing":
            consent.recipient = "Socialtjänsten, vuxenenheten"
            consent.purpose = "Samordning av stödinsatser"
        children.append(consent)
    risk = RiskAssessment(track_id=track.id, person_id=person.id, assessed_on=opened.date(),
                          assessor_id=owner_id, overall_level=overall,
                          reassess_by=opened.date() + dt.timedelta(days=90), created_at=opened)
    for dimension, level in levels.items():
        setattr(risk, dimension, level)
    risk.threat_from_environment_comment = "Syntetisk bedömning."
    risk.protective_factors = "Stöd från familj (syntetiskt)."
    children.append(risk)
    for _ in range(rng.randrange(1, 3)):
        goal = PlanGoal(track_id=track.id, person_id=person.id,
                        life_domain=rng.choice(LIFE_DOMAINS), status="ongoing",
                        start_on=opened.date(), target_on=opened.date() + dt.timedelta(days=180),
                        created_by=owner_id, created_at=opened)
        goal.goal = rng.choice(GOALS)
        children.append(goal)
    when = opened
    for _ in range(rng.randrange(2, 6)):
        when = min(when + dt.timedelta(days=rng.randrange(1, 30)), now)
        entry = JournalEntry(
            track_id=track.id, person_id=person.id, occurred_at=when,
            duration_minutes=rng.choice((15, 30, 45, 60)),
            contact_type=rng.choice(CONTACT_TYPES), contact_achieved=rng.random() > 0.2,
            sensitivity="normal", named_user_ids=[], author_id=owner_id, created_at=when,
            next_contact_at=when + dt.timedelta(days=7))
        entry.note = rng.choice(NOTES)
        children.append(entry)
    track.next_contact_at = when + dt.timedelta(days=7)
    return person, track, children


def bulk_seed_tracks(
    factory: sessionmaker[Session], *, count: int, staff: DemoStaff, batch: int = 250,
    rng_seed: int | None = None, now: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Create `count` synthetic tracks fast, for benchmarks: whole batches per transaction and
    one `dev.seeded` audit event per batch instead of one per row (the services would take
    about 25 ms a track). Every personal value is still sealed by the real FieldCrypto under a
    fresh per-person data key, with blind indexes."""
    now = now or utcnow()
    rng = random.Random(rng_seed)  # noqa: S311  # nosec B311  synthetic demo data
    made: list[str] = []
    with session_scope(factory) as session:
        codes = set(session.scalars(select(Track.code)))
    while len(made) < count:
        size = min(batch, count - len(made))
        built = [_bulk_rows(rng, staff=staff, now=now, codes=codes) for _ in range(size)]
        with session_scope(factory) as session:
            # No relationships order these inserts: parents are flushed first.
            session.add_all([person for person, _track, _children in built])
            session.flush()
            session.add_all([track for _person, track, _children in built])
            session.flush()
            session.add_all([c for _person, _track, children in built for c in children])
            session.flush()
            record(session, action="dev.seeded", details={"tracks": size, "bulk": True},
                   now=now)
        made += [track.code for _person, track, _children in built]
        if progress is not None:
            progress(size)
    return made


@click.group("dev")
def dev() -> None:
    """Development helpers (refused in production)."""


@dev.command("seed")
@click.option("--tracks", "count", type=click.IntRange(1, 100_000), default=20,
              show_default=True, help="How many synthetic defector tracks to create.")
@click.option("--seed", "rng_seed", type=int, default=None,
              help="Random seed, for a repeatable data set.")
@click.option("--if-empty", is_flag=True,
              help="Only seed a database that has no tracks yet (used by `make run`).")
@click.option("--bulk", is_flag=True,
              help="Fast path for benchmarks: batches of 250 tracks per transaction and one "
                   "audit event per batch (still encrypted).")
@with_appcontext
def seed_command(count: int, rng_seed: int | None, if_empty: bool, bulk: bool) -> None:
    """Create synthetic, clearly marked demo tracks through the real services."""
    from sqlalchemy import func, select

    from avhopp.casework.models import Track
    from avhopp.db import get_database, refresh_statistics

    if current_app.config["ENV"] == "production":
        raise click.ClickException("dev seed is refused in production")
    if if_empty:
        with get_database(current_app).scope() as session:
            if session.scalar(select(func.count()).select_from(Track)):
                click.echo("the database already has tracks; not seeding")
                return
    policy: Any = current_app.extensions["avhopp.account_policy"]
    factory = get_database(current_app).factory
    with click.progressbar(length=count, label="seeding tracks") as bar:
        if bulk:
            with session_scope(factory) as session:
                staff = ensure_staff(session, policy=policy)
            codes = bulk_seed_tracks(factory, count=count, staff=staff, rng_seed=rng_seed,
                                     progress=bar.update)
        else:
            codes, staff = seed_tracks(factory, count=count, policy=policy, rng_seed=rng_seed,
                                       progress=bar.update)
    # As the scheduler's daily duty would: the planner's statistics follow the new data.
    refresh_statistics(get_database(current_app).engine)
    click.echo(f"created {len(codes)} synthetic tracks")
    for name, one_time in staff.one_time_passwords.items():
        click.echo(f"demo user {name:20} one-time password: {one_time}")
