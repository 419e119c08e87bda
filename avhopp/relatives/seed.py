"""`avhopp dev seed-relatives --tracks N`: synthetic, clearly marked relative tracks for
development, created through the same services as real data (encrypted and audited). Some are
linked to existing defector tracks (with a recorded consent); the others have none.

The same marking as the defector seed: names end in "(TESTDATA)", phone numbers are in the
range reserved for fiction (070-174 06 05 to 070-174 06 99), e-mail is at example.com.
Refused in production.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from avhopp.accounts.models import User
from avhopp.casework import services as casework
from avhopp.casework.models import CONTACT_TYPES, Track
from avhopp.db import session_scope, utcnow
from avhopp.permissions import role_has
from avhopp.relatives import services as relatives
from avhopp.relatives.models import (
    EXIT_ROLES,
    NEEDS,
    OBSERVED_SIGNS,
    PERCEIVED_ENVIRONMENTS,
    RELATIONS,
)

MARK = "(TESTDATA)"
FIRST_NAMES = ("Agneta", "Birgitta", "Eva", "Gunilla", "Hassan", "Jan", "Leila", "Mats",
               "Monica", "Per", "Rania", "Stefan", "Ulla", "Yusuf")
LAST_NAMES = ("Andersson", "Berg", "Eriksson", "Holm", "Karlsson", "Lind", "Nilsson",
              "Olsson", "Persson", "Svensson")
NOTES = (
    "Samtal om oron för sonen; mamman vill förstå vad som händer.",
    "Stödsamtal. Pratade om hur man kan hålla kontakten utan att pressa.",
    "Telefonkontakt; anhörigträff nästa vecka.",
)


def seed_relative_track(
    session: Session, *, rng: random.Random, coordinator: User, owner: User,
    now: dt.datetime, defector_code: str | None = None,
) -> str:
    opened = now - dt.timedelta(days=rng.randrange(5, 400))
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    track = relatives.open_relative_track(
        session, actor=coordinator, relation=rng.choice(RELATIONS),
        consents=[casework.ConsentInput(consent_type="processing", form="oral",
                                        valid_from=opened.date())],
        person=casework.PersonInput(
            name=f"{first} {last} {MARK}", phone=f"+4670174{rng.randrange(605, 700):04d}",
            email=f"anhorig.{rng.randrange(10**6)}@example.com"),
        referral_source=rng.choice(("relatives_helpline", "social_services", "school", "cve",
                                    "self")),
        concern=relatives.ConcernInput(birth_year=rng.randrange(1990, 2010),
                                       environment=rng.choice(PERCEIVED_ENVIRONMENTS)),
        safe_contact_method="Sms dagtid (syntetiskt)", concern_knows_of_contact="no",
        owner_id=owner.id, allow_duplicate=True, now=opened)
    casework.change_status(session, actor=owner, track_id=track.id, to_status="active",
                           now=opened)
    relatives.update_relative_case(
        session, actor=owner, track_id=track.id, expected_version=1, now=opened, changes={
            "observed_signs": rng.sample(OBSERVED_SIGNS, 2), "wellbeing": rng.randrange(2, 9),
            "needs": rng.sample(NEEDS, 2), "exit_role": rng.choice(EXIT_ROLES),
            "agreements": "Kontakt via sms, inga hembesök (syntetiskt)."})
    when = opened
    for _ in range(rng.randrange(1, 4)):
        when = min(when + dt.timedelta(days=rng.randrange(1, 30)), now)
        casework.add_journal_entry(
            session, actor=owner, track_id=track.id, occurred_at=when,
            contact_type=rng.choice(CONTACT_TYPES), contact_achieved=True,
            note=rng.choice(NOTES), next_contact_at=when + dt.timedelta(days=14), now=when)
    if defector_code is not None:
        relatives.link_to_defector(session, actor=coordinator, track_id=track.id,
                                   defector_code=defector_code, consent_form="oral",
                                   valid_from=opened.date(), now=opened)
    return track.code


def seed_relative_tracks(
    factory: sessionmaker[Session], *, count: int, link_share: float = 0.5,
    rng_seed: int | None = None, now: dt.datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """`count` relative tracks, one transaction each, owned by the existing support workers
    and opened by a coordinator (run `avhopp dev seed` first for the demo staff)."""
    now = now or utcnow()
    rng = random.Random(rng_seed)  # noqa: S311  # nosec B311  synthetic demo data
    with session_scope(factory) as session:
        users = list(session.scalars(select(User).where(User.is_active.is_(True))))
        coordinators = [u.id for u in users if role_has(u.role, "tracks.assign")]
        workers = [u.id for u in users if u.role == "support_worker"] or coordinators
        defectors: Sequence[str] = list(session.scalars(
            select(Track.code).where(Track.kind == "defector")))
    if not coordinators:
        raise click.ClickException("no coordinator: run `avhopp dev seed` first")
    codes = []
    for _ in range(count):
        with session_scope(factory) as session:
            coordinator = session.get(User, rng.choice(coordinators))
            owner = session.get(User, rng.choice(workers))
            assert coordinator is not None and owner is not None  # noqa: S101  # nosec B101
            linked = (rng.choice(defectors) if defectors and rng.random() < link_share
                      else None)
            codes.append(seed_relative_track(session, rng=rng, coordinator=coordinator,
                                             owner=owner, now=now, defector_code=linked))
        if progress is not None:
            progress(1)
    return codes


@click.command("seed-relatives")
@click.option("--tracks", "count", type=click.IntRange(1, 100_000), default=10,
              show_default=True, help="How many synthetic relative tracks to create.")
@click.option("--seed", "rng_seed", type=int, default=None, help="Random seed.")
@click.option("--if-empty", is_flag=True,
              help="Only seed when there is no relative track yet (used by `make run`).")
@with_appcontext
def seed_relatives_command(count: int, rng_seed: int | None, if_empty: bool) -> None:
    """Create synthetic, clearly marked relative tracks through the real services."""
    from sqlalchemy import func

    from avhopp.db import get_database

    if current_app.config["ENV"] == "production":
        raise click.ClickException("dev seed is refused in production")
    if if_empty:
        with get_database(current_app).scope() as session:
            if session.scalar(select(func.count()).select_from(Track)
                              .where(Track.kind == "relative")):
                click.echo("the database already has relative tracks; not seeding")
                return
    with click.progressbar(length=count, label="seeding relative tracks") as bar:
        codes = seed_relative_tracks(get_database(current_app).factory, count=count,
                                     rng_seed=rng_seed, progress=bar.update)
    click.echo(f"created {len(codes)} synthetic relative tracks")


