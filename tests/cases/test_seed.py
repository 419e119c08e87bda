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


def test_seed_is_refused_in_production(app, db):
    # The command reads ENV from the app's configuration; a full production app needs key
    # files and HTTPS this test does not care about.
    app.config["ENV"] = "production"
    result = run(app, "dev", "seed", "--tracks", "1")
    assert result.exit_code != 0
    assert "refused in production" in result.output
    assert db.scalar(select(func.count()).select_from(Track)) == 0
    db.rollback()


def test_seed_if_empty_seeds_an_empty_database_once(app, db):
    first = run(app, "dev", "seed", "--tracks", "2", "--if-empty", "--seed", "3")
    assert first.exit_code == 0 and "created 2 synthetic tracks" in first.output
    second = run(app, "dev", "seed", "--tracks", "2", "--if-empty")
    assert second.exit_code == 0 and "not seeding" in second.output
    assert db.scalar(select(func.count()).select_from(Track)) == 2
    db.rollback()
