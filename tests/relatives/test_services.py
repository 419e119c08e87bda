"""Relative-track services on both engines: intake, the relative's own fields, closure,
content, isolation from defector tracks, links with consent, erasure of one relative."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from avhopp.cases import services as cases
from avhopp.casework import queries
from avhopp.casework import services as casework
from avhopp.casework.models import Consent, JournalEntry, Person, Track
from avhopp.casework.queries import TrackFilter
from avhopp.encryption.services import erase_subject
from avhopp.errors import Conflict, Forbidden, NotFound, ValidationError
from avhopp.relatives import queries as relative_queries
from avhopp.relatives import services as relatives
from avhopp.relatives.models import RelativeCase, TrackLink
from tests.casework.helpers import NOW, TODAY, events, refused
from tests.relatives.helpers import RELATIVE_PHONE, RelativesWorld, link, open_relative


@pytest.fixture
def world(app, db):
    return RelativesWorld(app, db)


def test_intake_opens_a_relative_track_with_its_own_person_and_code(world, db):
    track = db.get(Track, world.r3.id)
    assert track.kind == "relative"
    assert track.code.startswith("AN-")
    assert track.owner_id == world.relative_worker.id
    case = db.get(RelativeCase, track.id)
    assert case.relation == "friend"
    assert case.concern_birth_year == 2005
    assert case.concern_environment == "white_power"
    # Each relative is a Person of their own (their own data key), not the defector.
    people = {db.get(Track, t.id).person_id for t in (world.defector, world.r1, world.r2,
                                                      world.r3)}
    assert len(people) == 4
    fields = [d["fields"] for _o, d in events(db, "relative.updated")]
    assert "concern_birth_year,concern_environment,relation" in fields


def test_intake_refuses_bad_vocabularies_and_impossible_values(world, db):
    for changes in ({"relation": "cousin"}, {"relation": None}):
        with pytest.raises(ValidationError):
            open_relative(db, world.coordinator, **changes)
        db.rollback()
    with pytest.raises(ValidationError):
        open_relative(db, world.coordinator,
                      concern=relatives.ConcernInput(birth_year=1700))
    db.rollback()
    with pytest.raises(ValidationError):
        open_relative(db, world.coordinator, concern_knows_of_contact="maybe")
    db.rollback()


def test_the_relatives_own_fields_are_versioned_and_validated(world, db):
    rid = world.r1.id
    worker = world.relative_worker
    relatives.update_relative_case(db, actor=worker, track_id=rid, expected_version=1, now=NOW,
                                   changes={"observed_signs": ["symbols", "isolation"],
                                            "wellbeing": 4, "needs": ["support_group"],
                                            "exit_role": "contact_bridge",
                                            "concern_report_on": TODAY,
                                            "agreements": "Ringer bara på kvällar."})
    db.commit()
    case = db.get(RelativeCase, rid)
    assert case.observed_signs == "isolation,symbols"
    assert case.version == 2
    error = refused(db, Conflict, relatives.update_relative_case, actor=worker, track_id=rid,
                    expected_version=1, changes={"wellbeing": 5}, now=NOW)
    assert error.code == "stale_version"
    for bad in ({"wellbeing": 11}, {"wellbeing": True}, {"observed_signs": "isolation"},
                {"needs": ["money"]}, {"exit_role": "boss"}, {"concern_report_on": NOW},
                {"person_id": "x"}, {"agreements": "a\x00b"}):
        with pytest.raises(ValidationError):
            relatives.update_relative_case(db, actor=worker, track_id=rid, expected_version=2,
                                           changes=bad, now=NOW)
        db.rollback()


def test_content_of_a_relative_track_is_read_with_a_purpose_and_recorded(world, db):
    content = relatives.read_relative_content(db, actor=world.relative_worker,
                                              track_id=world.r3.id, purpose="casework", now=NOW)
    db.commit()
    assert content.relation == "friend"
    assert content.concern["concern_environment"] == "white_power"
    assert content.links == []
    assert [d["sections"] for _o, d in events(db, "track.content_read")] == [
        "concern,situation,needs,closure,link"]


def test_closing_a_relative_track_records_reason_date_and_note(world, db):
    rid = world.r2.id
    relatives.close_relative_track(db, actor=world.relative_worker, track_id=rid,
                                   closure_reason="goal_reached", closing_note="Klar.", now=NOW)
    db.commit()
    track = db.get(Track, rid)
    assert track.status == "closed" and track.closed_at == NOW
    assert track.retention_until is not None
    assert db.get(RelativeCase, rid).closing_note == "Klar."
    with pytest.raises(ValidationError):
        relatives.close_relative_track(db, actor=world.relative_worker, track_id=world.r3.id,
                                       closure_reason="bored", now=NOW)


# --- isolation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", ["defector_worker", "outsider", "board", "admin"])
def test_others_cannot_read_or_change_a_relative_track(world, db, who):
    actor = getattr(world, who)
    for call, kwargs in (
        (relatives.read_relative_content, {"purpose": "casework"}),
        (relatives.update_relative_case, {"expected_version": 1, "changes": {"wellbeing": 3}}),
        (relatives.close_relative_track, {"closure_reason": "other"}),
        (casework.read_track_content, {"purpose": "casework"}),
        (casework.add_journal_entry, {"occurred_at": NOW, "contact_type": "phone",
                                      "contact_achieved": True, "note": "x"}),
    ):
        error = refused(db, (Forbidden, NotFound), call, actor=actor, track_id=world.r1.id,
                        now=NOW, **kwargs)
        assert isinstance(error, Forbidden | NotFound)
    denied = [d for o, d in events(db, "track.access_denied") if o == "denied"]
    assert len(denied) == 5


def test_a_relative_worker_cannot_read_the_defector_track(world, db):
    for call in (casework.read_track_content, cases.read_defector_content):
        refused(db, NotFound, call, actor=world.relative_worker, track_id=world.d,
                purpose="casework", now=NOW)
    assert len(events(db, "track.access_denied")) == 2


def test_relative_services_refuse_a_defector_track_even_for_a_user_on_its_team(world, db):
    # `both` is on the defector team: the relative services still answer "no such track".
    for call, kwargs in (
        (relatives.read_relative_content, {"purpose": "casework"}),
        (relatives.update_relative_case, {"expected_version": 1, "changes": {"wellbeing": 3}}),
    ):
        refused(db, NotFound, call, actor=world.both, track_id=world.d, now=NOW, **kwargs)
    rules = [d["rule"] for _o, d in events(db, "track.access_denied")]
    assert rules == ["wrong_kind", "wrong_kind"]


def test_journals_stay_on_their_own_track_for_a_user_on_both_teams(world, db):
    casework.add_journal_entry(db, actor=world.both, track_id=world.r1.id, occurred_at=NOW,
                               contact_type="phone", contact_achieved=True,
                               note="Anhörigsamtal om oro.", now=NOW)
    casework.add_journal_entry(db, actor=world.both, track_id=world.d, occurred_at=NOW,
                               contact_type="meeting", contact_achieved=True,
                               note="Avhopparmöte.", now=NOW)
    db.commit()
    on_defector = casework.read_track_content(db, actor=world.both, track_id=world.d,
                                              purpose="casework", now=NOW)
    on_relative = casework.read_track_content(db, actor=world.both, track_id=world.r1.id,
                                              purpose="casework", now=NOW)
    db.commit()
    assert [e.note for e in on_defector.journal] == ["Avhopparmöte."]
    assert [e.note for e in on_relative.journal] == ["Anhörigsamtal om oro."]


def test_lists_and_searches_are_filtered_by_kind(world, db):
    relative = TrackFilter(kind="relative")
    mine = queries.my_tracks(db, actor=world.both, flt=relative, now=NOW)
    assert [r.code for r in mine.rows] == [world.r1.code]
    everything = queries.all_tracks(db, actor=world.coordinator, flt=relative, now=NOW)
    assert {r.kind for r in everything.rows} == {"relative"}
    assert everything.total == 3
    found = queries.find_by_identifier(db, actor=world.coordinator, phone=RELATIVE_PHONE,
                                       now=NOW, kind="defector")
    assert found == []
    found = queries.find_by_identifier(db, actor=world.coordinator, phone=RELATIVE_PHONE,
                                       now=NOW, kind="relative")
    assert found == [world.r1.code]
    db.commit()


def test_the_duplicate_check_at_intake_looks_at_the_same_kind_only(world, db):
    # A defector with the relative's phone: no duplicate warning names the relative track.
    cases.open_defector_track(
        db, actor=world.coordinator, now=NOW, referral_source="self",
        consents=[casework.ConsentInput(consent_type="processing", form="oral",
                                        valid_from=TODAY)],
        person=casework.PersonInput(name="Ny Person", phone=RELATIVE_PHONE))
    db.commit()
    with pytest.raises(casework.PossibleDuplicate) as raised:
        open_relative(db, world.coordinator,
                      person=casework.PersonInput(name="Maria M", phone=RELATIVE_PHONE))
    assert raised.value.codes == [world.r1.code]
    db.rollback()


# --- links --------------------------------------------------------------------------------------


def test_a_link_needs_a_consent_and_shows_only_the_other_code(world, db):
    made = link(db, world, world.r1)
    consent = db.get(Consent, made.consent_id)
    assert consent.track_id == world.r1.id and consent.consent_type == "relative_contact"
    assert consent.is_valid_on(TODAY)
    views = relative_queries.linked_defector_codes(db, actor=world.relative_worker,
                                                   track_id=world.r1.id, now=NOW)
    assert [v.other_code for v in views] == [world.defector.code]
    assert set(vars(views[0])) == {"id", "other_code"}
    codes = relative_queries.linked_relative_codes(db, actor=world.defector_worker,
                                                   defector_track_id=world.d, now=NOW)
    assert codes == [world.r1.code]
    db.commit()
    linked = [d for o, d in events(db, "track.linked") if o == "success"]
    assert linked[0]["other_code"] == world.defector.code


def test_several_relatives_link_to_one_defector_and_one_stays_unlinked(world, db):
    link(db, world, world.r1)
    link(db, world, world.r2)
    codes = relative_queries.linked_relative_codes(db, actor=world.defector_worker,
                                                   defector_track_id=world.d, now=NOW)
    assert codes == sorted([world.r1.code, world.r2.code])
    assert relative_queries.linked_defector_codes(db, actor=world.relative_worker,
                                                  track_id=world.r3.id, now=NOW) == []
    db.commit()


def test_revoking_the_consent_hides_the_link_on_both_sides(world, db):
    made = link(db, world, world.r1)
    casework.revoke_consent(db, actor=world.relative_worker, track_id=world.r1.id,
                            consent_id=made.consent_id, now=NOW + dt.timedelta(minutes=1))
    db.commit()
    later = NOW + dt.timedelta(days=1)
    assert relative_queries.linked_defector_codes(db, actor=world.relative_worker,
                                                  track_id=world.r1.id, now=later) == []
    assert relative_queries.linked_relative_codes(db, actor=world.defector_worker,
                                                  defector_track_id=world.d, now=later) == []
    content = relatives.read_relative_content(db, actor=world.relative_worker,
                                              track_id=world.r1.id, purpose="casework",
                                              now=later)
    assert content.links == []
    db.commit()
    # A new consent makes a new link possible.
    relatives.link_to_defector(db, actor=world.coordinator, track_id=world.r1.id,
                               defector_code=world.defector.code, consent_form="written",
                               valid_from=later.date(), now=later)
    db.commit()


def test_a_link_without_consent_or_to_an_unknown_track_is_refused(world, db):
    with pytest.raises(ValidationError):
        relatives.link_to_defector(db, actor=world.coordinator, track_id=world.r1.id,
                                   defector_code=world.defector.code, consent_form="none",
                                   valid_from=TODAY, now=NOW)
    db.rollback()
    for code in ("AV-22222", world.r2.code, "nonsense"):
        error = refused(db, NotFound, relatives.link_to_defector, actor=world.coordinator,
                        track_id=world.r1.id, defector_code=code, consent_form="oral",
                        valid_from=TODAY, now=NOW)
        assert error.code == "link_not_found"
    assert [d["rule"] for o, d in events(db, "track.linked")] == ["unknown_code"] * 3
    assert db.scalars(select(TrackLink)).all() == []


def test_a_support_worker_links_only_tracks_of_both_teams(world, db):
    # The relative worker is not on the defector team: refused like an unknown track.
    refused(db, NotFound, relatives.link_to_defector, actor=world.relative_worker,
            track_id=world.r1.id, defector_code=world.defector.code, consent_form="oral",
            valid_from=TODAY, now=NOW)
    assert [d["rule"] for _o, d in events(db, "track.access_denied")] == ["not_on_team"]
    # The defector worker cannot reach the relative track.
    refused(db, NotFound, relatives.link_to_defector, actor=world.defector_worker,
            track_id=world.r1.id, defector_code=world.defector.code, consent_form="oral",
            valid_from=TODAY, now=NOW)
    # `both` may.
    link(db, world, world.r1, actor=world.both)
    with pytest.raises(ValidationError) as twice:
        link(db, world, world.r1, actor=world.both)
    assert twice.value.code == "already_linked"
    db.rollback()


def test_linking_reads_nothing_across(world, db):
    link(db, world, world.r1)
    reads = events(db, "track.content_read")
    assert reads == []
    relative = relatives.read_relative_content(db, actor=world.relative_worker,
                                               track_id=world.r1.id, purpose="casework",
                                               now=NOW)
    assert [v.other_code for v in relative.links] == [world.defector.code]
    db.commit()


def test_unlink_keeps_the_row_and_hides_it(world, db):
    made = link(db, world, world.r1)
    relatives.unlink(db, actor=world.coordinator, track_id=world.r1.id, link_id=made.id,
                     now=NOW)
    db.commit()
    assert db.get(TrackLink, made.id).removed_at is not None
    assert relative_queries.linked_relative_codes(db, actor=world.defector_worker,
                                                  defector_track_id=world.d, now=NOW) == []
    refused(db, NotFound, relatives.unlink, actor=world.coordinator, track_id=world.r2.id,
            link_id=made.id, now=NOW)


# --- erasure ------------------------------------------------------------------------------------


def test_erasing_one_relative_leaves_the_defector_and_the_other_relatives(world, db):
    link(db, world, world.r1)
    link(db, world, world.r2)
    casework.add_journal_entry(db, actor=world.defector_worker, track_id=world.d,
                               occurred_at=NOW, contact_type="meeting", contact_achieved=True,
                               note="Avhopparens journal.", now=NOW)
    casework.add_journal_entry(db, actor=world.relative_worker, track_id=world.r2.id,
                               occurred_at=NOW, contact_type="phone", contact_achieved=True,
                               note="Systerns journal.", now=NOW)
    db.commit()
    erased_person = db.get(Track, world.r1.id).person_id
    erase_subject(db, actor=None, subject_id=erased_person)
    relatives.remove_links_of_person(db, actor=None, person_id=erased_person, now=NOW)
    db.commit()
    db.expire_all()
    # The erased relative's values cannot be opened any more …
    with pytest.raises(Exception, match=r"(?i)destroyed|erased"):
        _ = db.get(Person, erased_person).name
    db.rollback()
    # … while the defector track and the other relative read as before.
    defector = casework.read_track_content(db, actor=world.defector_worker, track_id=world.d,
                                           purpose="casework", now=NOW)
    sister = casework.read_track_content(db, actor=world.relative_worker, track_id=world.r2.id,
                                         purpose="casework", now=NOW)
    assert defector.person.name == "Anna Andersson"
    assert [e.note for e in defector.journal] == ["Avhopparens journal."]
    assert sister.person.name == "Sara Syster"
    assert [e.note for e in sister.journal] == ["Systerns journal."]
    assert relative_queries.linked_relative_codes(db, actor=world.defector_worker,
                                                  defector_track_id=world.d,
                                                  now=NOW) == [world.r2.code]
    found = queries.find_by_identifier(db, actor=world.coordinator, phone=RELATIVE_PHONE,
                                       now=NOW)
    assert found == []
    db.commit()
    assert db.scalars(select(JournalEntry).where(JournalEntry.track_id == world.d)).all()
