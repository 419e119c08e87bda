"""`avhopp dev seed`: synthetic tracks through the services; refused in production."""

from __future__ import annotations

import random

from click.testing import CliRunner
from flask.cli import ScriptInfo
from sqlalchemy import func, select

from avhopp.cases import seed
from avhopp.cases.models import DefectorCase
from avhopp.casework.models import JournalEntry, Person, Track
from avhopp.cli import main
from avhopp.identifiers import normalise_personnummer
from tests.casework.helpers import events


def run(app, *args):
    result = CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))
    assert "Traceback" not in result.output
    return result


def test_synthetic_personnummer_have_valid_checksums_and_birth_years():
    rng = random.Random(7)  # noqa: S311  synthetic test data
    for _ in range(500):
        number = seed.synthetic_personnummer(rng)
        assert 1970 <= int(normalise_personnummer(number)[:4]) <= 2005


def test_seed_creates_n_tracks_that_decrypt_and_are_marked(app, db):
    result = run(app, "dev", "seed", "--tracks", "3", "--seed", "1")
    assert result.exit_code == 0, result.output
    assert "created 3 synthetic tracks" in result.output
    assert db.scalar(select(func.count()).select_from(Track)) == 3
    assert db.scalar(select(func.count()).select_from(DefectorCase)) == 3
    for person in db.scalars(select(Person)):
        assert person.name.endswith(seed.MARK)
        normalise_personnummer(person.personnummer)
    assert all(e.note for e in db.scalars(select(JournalEntry)))
    db.rollback()
    assert len(events(db, "track.opened")) == 3
    assert events(db, "journal.added")


def assert_refused_in_production(app, db, command):
    # The command reads ENV from the app's configuration; a full production app needs key
    # files and HTTPS this test does not care about.
    app.config["ENV"] = "production"
    result = run(app, "dev", command, "--tracks", "1")
    assert result.exit_code != 0
    assert "refused in production" in result.output
    assert db.scalar(select(func.count()).select_from(Track)) == 0
    db.rollback()


def test_seed_is_refused_in_production(app, db):
    assert_refused_in_production(app, db, "seed")


def test_seed_if_empty_seeds_an_empty_database_once(app, db):
    first = run(app, "dev", "seed", "--tracks", "2", "--if-empty", "--seed", "3")
    assert first.exit_code == 0 and "created 2 synthetic tracks" in first.output
    second = run(app, "dev", "seed", "--tracks", "2", "--if-empty")
    assert second.exit_code == 0 and "not seeding" in second.output
    assert db.scalar(select(func.count()).select_from(Track)) == 2
    db.rollback()


def test_bulk_seed_encrypts_indexes_and_audits_once_per_batch(app, db):
    from avhopp.casework.models import Consent
    from avhopp.db import get_database
    from avhopp.encryption.services import field_crypto

    result = run(app, "dev", "seed", "--tracks", "3", "--seed", "2", "--bulk")
    assert result.exit_code == 0, result.output
    assert "created 3 synthetic tracks" in result.output
    assert db.scalar(select(func.count()).select_from(DefectorCase)) == 3
    person = db.scalars(select(Person)).first()
    assert person.name.endswith(seed.MARK)
    found = field_crypto(db).search(db, Person, "personnummer", person.personnummer)
    assert [p.id for p in found] == [person.id]
    raw = db.execute(select(Person.__table__.c.name_enc)).scalars().all()
    assert all(seed.MARK.encode() not in bytes(blob) for blob in raw)
    types = sorted(c.consent_type for c in db.scalars(select(Consent)))
    assert types.count("special_category") == 3  # background comes with its consent
    db.rollback()
    assert events(db, "dev.seeded") == [("success", {"tracks": 3, "bulk": True})]
    assert events(db, "track.opened") == []

    staff = seed.ensure_staff(db, policy=app.extensions["avhopp.account_policy"])
    db.commit()
    codes = seed.bulk_seed_tracks(get_database(app).factory, count=5, staff=staff, batch=2,
                                  rng_seed=3)
    assert len(set(codes)) == 5
    assert [d["tracks"] for _, d in events(db, "dev.seeded")] == [3, 2, 2, 1]
