"""Intake of a defector track: consent first, person, background; duplicates by blind index."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from sqlalchemy import select, text

from avhopp.cases import services as cases
from avhopp.cases.models import DefectorCase
from avhopp.casework import services as casework
from avhopp.casework.models import Consent, JournalEntry, Person, Track
from avhopp.errors import Forbidden, NotFound, ValidationError
from tests.casework.helpers import (
    NOW,
    TODAY,
    events,
    open_defector,
    processing_consent,
    refused,
)
from tests.conftest import make_user

BACKGROUND = cases.BackgroundInput(
    environment="white_power", involvement="active", years_in_environment=4,
    arena="online", reasons_for_leaving="Vill bli pappa på riktigt.",
    voluntariness_confirmed_on=TODAY)


@pytest.fixture
def staff(app):
    return make_user(app, role="coordinator"), make_user(app, role="support_worker")


def test_intake_creates_person_track_consent_and_background(app, db, staff):
    coordinator, worker = staff
    track = open_defector(db, coordinator, owner=worker, background=BACKGROUND,
                          municipality="0180", referral_source="social_services")
    assert re.fullmatch(r"AV-[2-9A-Z]{5}", track.code)
    assert (track.status, track.owner_id, track.kind) == ("intake", worker.id, "defector")
    person = db.get(Person, track.person_id)
    assert (person.name, person.personnummer) == ("Anna Andersson", "198503124516")
    assert db.get(DefectorCase, track.id).reasons_for_leaving == "Vill bli pappa på riktigt."
    assert sorted(c.consent_type for c in db.scalars(select(Consent))) == [
        "processing", "special_category"]
    db.rollback()
    assert events(db, "track.opened") == [
        ("success", {"kind": "defector", "consents": 2, "status": "intake"})]
    # Six field names exceed an audit detail's 64 characters: the count is recorded instead.
    assert events(db, "case.updated") == [("success", {"fields": "6 fields"})]


def test_intake_without_a_processing_consent_is_refused_and_creates_nothing(app, db, staff):
    coordinator, _worker = staff
    with pytest.raises(ValidationError) as err:
        open_defector(db, coordinator, consents=[processing_consent(consent_type="statistics")])
    assert err.value.code == "consent_required"
    db.rollback()
    assert db.scalars(select(Track)).all() == [] and db.scalars(select(Person)).all() == []
    db.rollback()


def test_a_support_worker_cannot_open_a_track(app, db, staff):
    _coordinator, worker = staff
    refused(db, Forbidden, cases.open_defector_track, actor=worker,
            consents=[processing_consent()], person=casework.PersonInput(name="X"),
            referral_source="self", now=NOW)
    assert events(db, "track.access_denied") == [
        ("denied", {"need": "intake", "rule": "role"})]


def test_a_board_member_cannot_open_a_track(app, db):
    board = make_user(app, role="board")
    refused(db, Forbidden, cases.open_defector_track, actor=board,
            consents=[processing_consent()], person=casework.PersonInput(name="X"),
            referral_source="self", now=NOW)


def test_a_duplicate_personnummer_shows_the_existing_code(app, db, staff):
    coordinator, worker = staff
    first = open_defector(db, coordinator, owner=worker)
    with pytest.raises(casework.PossibleDuplicate) as err:
        open_defector(db, coordinator, person=casework.PersonInput(
            name="Annat namn", personnummer="850312-4516"))
    assert err.value.codes == [first.code]
    db.rollback()
    assert len(db.scalars(select(Track)).all()) == 1
    db.rollback()


def test_a_duplicate_check_names_no_code_the_actor_may_not_know(app, db, staff):
    from avhopp.casework import queries

    coordinator, worker = staff
    open_defector(db, coordinator, owner=worker, person=casework.PersonInput(
        name="A", phone="0701740650"))
    outsider = make_user(app, role="support_worker")
    assert queries.find_by_identifier(db, actor=outsider, phone="070-174 06 50",
                                      now=NOW) == []
    db.rollback()


def test_allow_duplicate_opens_a_second_track_for_the_same_identifier(app, db, staff):
    coordinator, worker = staff
    open_defector(db, coordinator, owner=worker)
    second = open_defector(db, coordinator, owner=worker, allow_duplicate=True)
    assert second.code


@pytest.mark.parametrize(("person", "code"), [
    (casework.PersonInput(), "name_required"),
    (casework.PersonInput(name="A", personnummer="19850312-4510"), "invalid_personnummer"),
    (casework.PersonInput(name="A", phone="12"), "invalid_phone"),
    (casework.PersonInput(name="A", email="not-an-address"), "invalid_email"),
    (casework.PersonInput(name="A", birth_year=1800), "birth_year"),
    (casework.PersonInput(name="A\u0000B"), "name"),
    (casework.PersonInput(name="A", protected_data_level="secret"), "protected_data_level"),
])
def test_bad_person_input_is_refused_with_a_code(app, db, staff, person, code):
    coordinator, _worker = staff
    with pytest.raises(ValidationError) as err:
        open_defector(db, coordinator, person=person)
    assert err.value.code == code
    db.rollback()


@pytest.mark.parametrize(("background", "code"), [
    (cases.BackgroundInput(environment="gardening"), "environment"),
    (cases.BackgroundInput(years_in_environment=-1), "years_in_environment"),
    (cases.BackgroundInput(voluntariness_confirmed_on="2026-01-01"),
     "voluntariness_confirmed_on"),
])
def test_bad_background_is_refused_before_anything_is_created(app, db, staff, background, code):
    coordinator, _worker = staff
    with pytest.raises(ValidationError) as err:
        open_defector(db, coordinator, background=background)
    assert err.value.code == code
    db.rollback()
    assert db.scalars(select(Track)).all() == []
    db.rollback()


def test_an_owner_must_be_someone_who_works_tracks(app, db, staff):
    coordinator, _worker = staff
    admin = make_user(app, role="admin")
    with pytest.raises(ValidationError) as err:
        open_defector(db, coordinator, owner=admin)
    assert err.value.code == "not_a_worker"
    db.rollback()


def test_background_columns_hold_envelopes_only(app, db, staff):
    coordinator, worker = staff
    open_defector(db, coordinator, owner=worker, background=BACKGROUND)
    raw = db.execute(text("SELECT environment_enc, reasons_for_leaving_enc FROM defector_case"))
    for blob in raw.one():
        assert b"white_power" not in bytes(blob) and b"pappa" not in bytes(blob)
    db.rollback()


def test_erasing_the_person_makes_the_whole_track_unreadable(app, db, staff):
    from avhopp.crypto.errors import KeyDestroyed
    from avhopp.db import get_database
    from avhopp.encryption.services import erase_subject

    coordinator, worker = staff
    track = open_defector(db, coordinator, owner=worker, background=BACKGROUND)
    casework.add_journal_entry(db, actor=worker, track_id=track.id, occurred_at=NOW,
                               contact_type="phone", contact_achieved=True, note="Samtal.",
                               now=NOW)
    db.commit()
    erase_subject(db, actor=None, subject_id=track.person_id, now=NOW)
    db.commit()
    fresh = get_database(app).factory()
    try:
        case = fresh.get(DefectorCase, track.id)
        with pytest.raises(KeyDestroyed):
            _ = case.reasons_for_leaving
        entry = fresh.scalars(select(JournalEntry)).one()
        with pytest.raises(KeyDestroyed):
            _ = entry.note
    finally:
        fresh.close()


def test_an_unknown_track_id_is_not_found_for_a_case_edit(app, db, staff):
    _coordinator, worker = staff
    refused(db, NotFound, cases.update_case, actor=worker, track_id=uuid.uuid4(),
            expected_version=1, changes={}, now=NOW)


def test_dates_in_the_past_are_kept_as_given(app, db, staff):
    coordinator, worker = staff
    opened = NOW - dt.timedelta(days=3)
    track = open_defector(db, coordinator, owner=worker, now=opened)
    assert track.opened_at == opened
