"""The defector case: edits under optimistic locking, risk history, protection, closure,
and reading the defector-specific sections."""

from __future__ import annotations

import datetime as dt

import pytest

from avhopp.cases import services as cases
from avhopp.cases.models import RISK_DIMENSIONS, DefectorCase
from avhopp.casework import services as casework
from avhopp.casework.models import Track
from avhopp.errors import Conflict, NotFound, ValidationError
from tests.casework.helpers import (
    NOW,
    TODAY,
    World,
    events,
    refused,
    special_category_consent,
)

LOW = dict.fromkeys(RISK_DIMENSIONS, "low")


@pytest.fixture
def world(app, db):
    return World(app, db)


def assess(db, world, day=TODAY, **changes):
    values = {"levels": LOW, "assessed_on": day, "now": NOW}
    values.update(changes)
    row = cases.add_risk_assessment(db, actor=world.worker, track_id=world.a, **values)
    db.commit()
    return row


def read(db, actor, track_id, sections):
    content = cases.read_defector_content(db, actor=actor, track_id=track_id,
                                          purpose="casework", sections=sections, now=NOW)
    db.commit()
    return content


def test_a_case_edit_at_the_current_version_is_saved_and_audited(world, db):
    casework.add_consent(db, actor=world.worker, track_id=world.a, now=NOW,
                         consent=special_category_consent())
    case = cases.update_case(db, actor=world.worker, track_id=world.a, expected_version=1,
                             changes={"safety_plan": "Byt telefon.", "arena": "online"},
                             now=NOW)
    db.commit()
    assert case.version == 2
    assert read(db, world.worker, world.a, ["protection"]).safety_plan == "Byt telefon."
    assert events(db, "case.updated") == [("success", {"fields": "arena,safety_plan"})]


def test_a_stale_case_edit_is_refused_and_overwrites_nothing(world, db):
    cases.update_case(db, actor=world.worker, track_id=world.a, expected_version=1,
                      changes={"safety_plan": "Första."}, now=NOW)
    db.commit()
    error = refused(db, Conflict, cases.update_case, actor=world.worker, track_id=world.a,
                    expected_version=1, changes={"safety_plan": "Andra."}, now=NOW)
    assert error.code == "stale_version"
    db.expire_all()
    assert db.get(DefectorCase, world.a).safety_plan == "Första."
    db.rollback()
    assert events(db, "case.updated")[-1] == ("denied", {"reason": "stale_version"})


def test_fields_outside_the_allow_list_cannot_be_edited(world, db):
    with pytest.raises(ValidationError) as err:
        cases.update_case(db, actor=world.worker, track_id=world.a, expected_version=1,
                          changes={"person_id": world.b}, now=NOW)
    assert err.value.code == "case_field"
    db.rollback()


def test_another_team_cannot_edit_the_case(world, db):
    refused(db, NotFound, cases.update_case, actor=world.other, track_id=world.a,
            expected_version=1, changes={"safety_plan": "x"}, now=NOW)
    assert events(db, "case.updated") == []


def test_a_risk_assessment_sets_the_tracks_level_from_the_highest_dimension(world, db):
    row = assess(db, world, levels={**LOW, "threat_from_environment": "acute"},
                 comments={"threat_from_environment": "Hot via sms."})
    assert row.overall_level == "acute"
    assert db.get(Track, world.a).risk_level == "acute"
    db.rollback()
    assert events(db, "risk.assessed") == [
        ("success", {"assessment_id": str(row.id), "overall_level": "acute"})]


def test_risk_history_is_kept_and_the_latest_by_date_is_current(world, db):
    assess(db, world, day=TODAY - dt.timedelta(days=30),
           levels={**LOW, "self_harm": "high"})
    assess(db, world, day=TODAY)
    assess(db, world, day=TODAY - dt.timedelta(days=60), levels={**LOW, "self_harm": "medium"})
    content = read(db, world.worker, world.a, ["risk"])
    assert [r.overall_level for r in content.risk] == ["low", "high", "medium"]
    assert content.current_risk_level == "low"
    assert content.risk[1].levels["self_harm"] == "high"


def test_every_dimension_must_be_assessed(world, db):
    with pytest.raises(ValidationError) as err:
        assess(db, world, levels={"self_harm": "low"})
    assert err.value.code == "risk_dimensions"
    db.rollback()


def test_an_unknown_level_is_refused(world, db):
    with pytest.raises(ValidationError):
        assess(db, world, levels={**LOW, "self_harm": "extreme"})
    db.rollback()


def test_protective_measures_are_added_and_edited_under_locking(world, db):
    measure = cases.add_protective_measure(db, actor=world.worker, track_id=world.a,
                                           kind="new_phone_number", note="Kontantkort.",
                                           now=NOW)
    db.commit()
    cases.update_protective_measure(db, actor=world.worker, track_id=world.a,
                                    measure_id=measure.id, expected_version=1,
                                    changes={"status": "done", "ended_on": TODAY}, now=NOW)
    db.commit()
    refused(db, Conflict, cases.update_protective_measure, actor=world.worker,
            track_id=world.a, measure_id=measure.id, expected_version=1,
            changes={"status": "stopped"}, now=NOW)
    [view] = read(db, world.worker, world.a, ["protection"]).measures
    assert (view.status, view.note, view.version) == ("done", "Kontantkort.", 2)
    assert [o for o, _ in events(db, "protection.measure_updated")] == ["success", "denied"]
    assert events(db, "protection.measure_added") == [
        ("success", {"measure_id": str(measure.id), "kind": "new_phone_number"})]


def test_closing_records_reason_assessment_and_receiver(world, db):
    casework.change_status(db, actor=world.worker, track_id=world.a, to_status="active",
                           now=NOW)
    cases.close_track(db, actor=world.worker, track_id=world.a, closure_reason="handed_over",
                      closing_assessment="Stabil.", handed_over_to="Kommunens stödteam",
                      now=NOW)
    db.commit()
    closure = read(db, world.worker, world.a, ["closure"]).closure
    assert (closure["closure_reason"], closure["closing_assessment"],
            closure["handed_over_to"], closure["closed_at"]) == (
        "handed_over", "Stabil.", "Kommunens stödteam", NOW)
    assert events(db, "track.status_changed")[-1][1]["closure_reason"] == "handed_over"
    assert events(db, "case.updated") == [
        ("success", {"fields": "closing_assessment,handed_over_to"})]


def test_handing_over_needs_the_receiver(world, db):
    with pytest.raises(ValidationError) as err:
        cases.close_track(db, actor=world.worker, track_id=world.a,
                          closure_reason="handed_over", now=NOW)
    assert err.value.code == "handed_over_to_required"
    db.rollback()
    assert db.get(Track, world.a).status == "intake"
    db.rollback()


def test_a_closure_reason_outside_the_list_is_refused(world, db):
    with pytest.raises(ValidationError):
        cases.close_track(db, actor=world.worker, track_id=world.a, closure_reason="bored",
                          now=NOW)
    db.rollback()


def test_reading_defector_sections_is_audited_before_returning(world, db):
    read(db, world.worker, world.a, ["background", "risk"])
    assert events(db, "track.content_read") == [
        ("success", {"sections": "background,risk", "via": "team"})]


def test_protected_personal_data_hides_contact_details_unless_asked(world, db):
    from tests.casework.helpers import open_defector

    track = open_defector(db, world.coordinator, owner=world.worker, allow_duplicate=True,
                          person=casework.PersonInput(
                              name="Skyddad", phone="0701740699", address="Hemlig väg 1",
                              protected_data_level="protected_registration"))
    hidden = casework.read_track_content(db, actor=world.worker, track_id=track.id,
                                         purpose="casework", sections=["person"], now=NOW)
    shown = casework.read_track_content(db, actor=world.worker, track_id=track.id,
                                        purpose="casework", sections=["person"],
                                        reveal_contact=True, now=NOW)
    db.commit()
    assert (hidden.person.contact_hidden, hidden.person.phone, hidden.person.address) == (
        True, None, None)
    assert (shown.person.phone, shown.person.address) == ("+46701740699", "Hemlig väg 1")
    assert events(db, "track.content_read")[-1][1]["reveal_contact"] is True
