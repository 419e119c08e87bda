"""The journal: append-only entries, corrections that link, sensitivity markings."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from avhopp.casework import services as casework
from avhopp.casework.models import JournalEntry
from avhopp.errors import NotFound, ValidationError
from tests.casework.helpers import NOW, World, events, refused


@pytest.fixture
def world(app, db):
    return World(app, db)


def add(db, actor, track_id, **changes):
    values = {"occurred_at": NOW - dt.timedelta(hours=1), "contact_type": "meeting",
              "contact_achieved": True, "note": "Möte om boende.", "now": NOW}
    values.update(changes)
    entry = casework.add_journal_entry(db, actor=actor, track_id=track_id, **values)
    db.commit()
    return entry


def journal(db, actor, track_id):
    content = casework.read_track_content(db, actor=actor, track_id=track_id,
                                          purpose="casework", sections=["journal"], now=NOW)
    db.commit()
    return content


def test_adding_an_entry_is_audited_with_ids_and_codes_only(world, db):
    entry = add(db, world.worker, world.a, participants="Klienten, mamma")
    assert events(db, "journal.added") == [("success", {
        "entry_id": str(entry.id), "sensitivity": "normal", "contact_type": "meeting"})]


def test_an_entry_reads_back_decrypted_for_the_team(world, db):
    add(db, world.worker, world.a, participants="Klienten", duration_minutes=45)
    [view] = journal(db, world.worker, world.a).journal
    assert (view.note, view.participants, view.duration_minutes) == (
        "Möte om boende.", "Klienten", 45)


def test_the_journal_service_has_no_update_or_delete():
    names = [name for name in dir(casework) if "journal" in name]
    assert not [n for n in names if any(v in n for v in ("update", "delete", "edit", "remove"))]


def test_a_correction_is_a_new_entry_that_points_at_the_original(world, db):
    original = add(db, world.worker, world.a, note="Fel datum i anteckningen.")
    correction = casework.correct_journal_entry(
        db, actor=world.worker, track_id=world.a, entry_id=original.id,
        note="Rättelse: mötet var i tisdags.", now=NOW)
    db.commit()
    rows = {e.id: e for e in db.scalars(select(JournalEntry))}
    assert rows[original.id].note == "Fel datum i anteckningen."
    assert rows[correction.id].corrects_id == original.id
    assert rows[correction.id].contact_type == "meeting"
    db.rollback()
    views = {v.id: v for v in journal(db, world.worker, world.a).journal}
    assert views[original.id].corrected_by == (correction.id,)
    assert events(db, "journal.added")[-1][1]["corrects_id"] == str(original.id)


def test_an_entry_of_another_track_cannot_be_corrected_through_this_one(world, db):
    foreign = add(db, world.other, world.b)
    refused(db, NotFound, casework.correct_journal_entry, actor=world.worker, track_id=world.a,
            entry_id=foreign.id, note="x", now=NOW)
    assert len(events(db, "journal.added")) == 1


def test_a_team_entry_is_hidden_from_a_break_glass_reader(world, db):
    add(db, world.worker, world.a, note="Bara för teamet.", sensitivity="team")
    add(db, world.worker, world.a, note="Vanlig anteckning.")
    casework.break_glass(db, actor=world.other, track_id=world.a,
                         reason="Klienten ringde jouren i kris.", reauthenticated_at=NOW,
                         now=NOW)
    db.commit()
    content = journal(db, world.other, world.a)
    assert [v.note for v in content.journal] == ["Vanlig anteckning."]
    assert content.hidden_entries == 1
    assert events(db, "track.content_read")[-1] == (
        "success", {"sections": "journal", "via": "break_glass", "hidden": 1})


def test_a_named_entry_is_shown_only_to_its_author_and_the_named_users(world, db):
    casework.add_team_member(db, actor=world.coordinator, track_id=world.a,
                             user_id=world.other.id, now=NOW)
    casework.add_team_member(db, actor=world.coordinator, track_id=world.a,
                             user_id=world.coordinator.id, now=NOW)
    db.commit()
    add(db, world.worker, world.a, note="Namngiven.", sensitivity="named",
        named_user_ids=[world.other.id])
    assert [v.note for v in journal(db, world.worker, world.a).journal] == ["Namngiven."]
    assert [v.note for v in journal(db, world.other, world.a).journal] == ["Namngiven."]
    assert journal(db, world.coordinator, world.a).journal == []


def test_named_users_must_be_on_the_team(world, db):
    with pytest.raises(ValidationError) as err:
        add(db, world.worker, world.a, sensitivity="named", named_user_ids=[world.other.id])
    assert err.value.code == "named_user_not_team"
    db.rollback()


@pytest.mark.parametrize(("changes", "code"), [
    ({"note": ""}, "note_required"),
    ({"note": "a\x00b"}, "note"),
    ({"note": "x" * 20_001}, "note_too_long"),
    ({"contact_type": "carrier_pigeon"}, "contact_type"),
    ({"sensitivity": "secret"}, "sensitivity"),
    ({"duration_minutes": -5}, "duration_minutes"),
    ({"occurred_at": NOW + dt.timedelta(days=2)}, "occurred_at"),
    ({"occurred_at": dt.datetime(2026, 1, 1)}, "occurred_at"),  # noqa: DTZ001  naive on purpose
])
def test_bad_input_is_refused_with_a_code_and_nothing_stored(world, db, changes, code):
    with pytest.raises(ValidationError) as err:
        add(db, world.worker, world.a, **changes)
    assert err.value.code == code
    db.rollback()
    assert db.scalars(select(JournalEntry)).all() == []
    db.rollback()


def test_the_next_planned_contact_shows_on_the_track(world, db):
    add(db, world.worker, world.a, next_contact_at=NOW + dt.timedelta(days=7))
    db.refresh(world.track_a)
    assert world.track_a.next_contact_at == NOW + dt.timedelta(days=7)
    db.rollback()
