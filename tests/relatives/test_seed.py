"""`avhopp dev seed-relatives`: synthetic relative tracks through the services, some linked to
the seeded defector tracks with a consent; refused in production."""

from __future__ import annotations

from sqlalchemy import func, select

from avhopp.cases.seed import MARK
from avhopp.casework.models import Person, Track
from avhopp.relatives.models import RelativeCase, TrackLink
from tests.cases.test_seed import assert_refused_in_production, run


def test_seed_relatives_creates_marked_relative_tracks_some_linked(app, db):
    assert run(app, "dev", "seed", "--tracks", "2", "--seed", "1").exit_code == 0
    result = run(app, "dev", "seed-relatives", "--tracks", "4", "--seed", "2")
    assert result.exit_code == 0, result.output
    assert "created 4 synthetic relative tracks" in result.output
    kinds = dict(db.execute(select(Track.kind, func.count()).group_by(Track.kind)).all())
    assert kinds == {"defector": 2, "relative": 4}
    assert db.scalar(select(func.count()).select_from(RelativeCase)) == 4
    assert db.scalar(select(func.count()).select_from(TrackLink)) >= 1
    for person in db.scalars(select(Person)):
        assert person.name.endswith(MARK)
    db.rollback()


def test_seed_relatives_is_refused_in_production(app, db):
    assert_refused_in_production(app, db, "seed-relatives")


def test_seed_relatives_if_empty_seeds_once(app, db):
    assert run(app, "dev", "seed", "--tracks", "1", "--seed", "1").exit_code == 0
    first = run(app, "dev", "seed-relatives", "--tracks", "2", "--if-empty")
    second = run(app, "dev", "seed-relatives", "--tracks", "2", "--if-empty")
    assert first.exit_code == 0 and second.exit_code == 0
    assert "not seeding" in second.output
    count = db.scalar(select(func.count()).select_from(Track).where(Track.kind == "relative"))
    assert count == 2
    db.rollback()
