"""The register extract of a relative: their relative track, its own records, the link and
their follow-ups; nothing of the linked defector track or its person."""

from __future__ import annotations

import datetime as dt
import json

from avhopp.casework.models import Person, Track
from avhopp.followups import services as followups
from avhopp.followups.models import FollowUp
from avhopp.privacy import extract
from tests.casework.helpers import NOW
from tests.followups.conftest import actor_of
from tests.relatives.helpers import RelativesWorld, link


def _plan(db, world, track_id, *, due, reason):
    row = followups.schedule(db, actor=actor_of(db, world.both), track_id=track_id,
                             kind="contact", assignee_id=world.both.id, due_at=due,
                             recurrence="none", now=NOW)
    row.change_reason = reason
    db.commit()
    return row.id


def test_a_relatives_extract_has_their_track_link_and_follow_ups_and_nothing_of_the_defector(
        app, db, clock):
    world = RelativesWorld(app, db)
    link(db, world, world.r1)
    mine_due = NOW + dt.timedelta(days=2, hours=1)
    theirs_due = NOW + dt.timedelta(days=3, hours=5)
    mine = _plan(db, world, world.r1.id, due=mine_due, reason="RELATIVE-OWN-NOTE")
    _plan(db, world, world.d, due=theirs_due, reason="DEFECTOR-SECRET-NOTE")
    relative = db.get(Track, world.r1.id)
    person_id = relative.person_id
    defector = db.get(Track, world.d)
    defector_name = db.get(Person, defector.person_id).name
    defector_person = str(defector.person_id)
    db.rollback()

    data = extract.build_extract(db, person_id=person_id, now=clock()).as_json()
    db.rollback()
    text = json.dumps(data, ensure_ascii=False)
    records = data["records"]

    assert data["tracks"] == [world.r1.code]
    assert records["person"][0]["name"] == "Maria Mamma"
    assert records["track"][0]["kind"] == "relative"
    assert records["relative_case"][0]["relation"] == "parent"
    assert len(records["track_link"]) == 1
    assert [r["change_reason"] for r in records["follow_up"]] == ["RELATIVE-OWN-NOTE"]
    assert records["follow_up"][0]["due_at"] == mine_due.isoformat()
    assert {"consent"} <= set(records)
    assert db.get(FollowUp, mine) is not None
    db.rollback()
    # Nothing of the defector track: not its code, its person, nor its follow-up.
    for secret in (world.defector.code, defector_name, defector_person, "DEFECTOR-SECRET-NOTE",
                   theirs_due.isoformat(), str(world.d)):
        assert secret not in text, secret
    # Nor the other relatives of the same defector.
    for other in (world.r2, world.r3):
        assert other.code not in text
    assert "Sara Syster" not in text and "Fia Vän" not in text
