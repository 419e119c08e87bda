"""Track lists (mine, all), filters, allow-listed sorting, paging, exact search."""

from __future__ import annotations

import pytest

from avhopp.cases import services as cases
from avhopp.casework import queries
from avhopp.casework import services as casework
from avhopp.casework.queries import TrackFilter
from avhopp.errors import ValidationError
from tests.casework.helpers import NOW, PNR, TODAY, World, events, open_defector

LEVELS = {d: "low" for d in ("threat_from_environment", "violence_to_others", "re_engagement",
                             "self_harm", "threat_to_relatives")}


@pytest.fixture
def world(app, db):
    return World(app, db)


def test_my_tracks_lists_only_the_callers_teams(world, db):
    page = queries.my_tracks(db, actor=world.worker, now=NOW)
    db.commit()
    assert [r.code for r in page.rows] == [world.track_a.code]
    assert events(db, "track.listed") == [("success", {"scope": "mine", "count": 1})]


def test_all_tracks_lists_every_track_for_a_coordinator_without_content(world, db):
    page = queries.all_tracks(db, actor=world.coordinator, sort="code", descending=False,
                              now=NOW)
    db.commit()
    assert [r.code for r in page.rows] == sorted([world.track_a.code, world.track_b.code])
    row = page.rows[0]
    assert set(vars(row)) == {"id", "code", "kind", "status", "owner_id", "owner_username",
                              "opened_at", "closed_at", "risk_level", "next_contact_at",
                              "access_level", "version"}


def test_lists_filter_by_status_owner_and_risk_level(world, db):
    cases.add_risk_assessment(db, actor=world.worker, track_id=world.a, assessed_on=TODAY,
                              levels={**LEVELS, "self_harm": "high"}, now=NOW)
    casework.change_status(db, actor=world.other, track_id=world.b, to_status="active",
                           now=NOW)
    db.commit()

    def codes(**flt):
        page = queries.all_tracks(db, actor=world.coordinator, flt=TrackFilter(**flt), now=NOW)
        db.commit()
        return [r.code for r in page.rows]

    assert codes(risk_level="high") == [world.track_a.code]
    assert codes(status="active") == [world.track_b.code]
    assert codes(owner_id=world.other.id) == [world.track_b.code]
    assert codes(risk_level="acute") == []


@pytest.mark.parametrize("sort", sorted(queries.SORTS))
def test_every_allow_listed_sort_works_both_ways(world, db, sort):
    for descending in (False, True):
        page = queries.all_tracks(db, actor=world.coordinator, sort=sort,
                                  descending=descending, now=NOW)
        assert page.total == 2
    db.rollback()


@pytest.mark.parametrize("sort", ["code; DROP TABLE track", "person.name", "name_enc", ""])
def test_a_sort_outside_the_allow_list_is_refused(world, db, sort):
    with pytest.raises(ValidationError) as err:
        queries.all_tracks(db, actor=world.coordinator, sort=sort, now=NOW)
    assert err.value.code == "sort"
    db.rollback()


def test_a_filter_value_outside_the_vocabulary_is_refused(world, db):
    with pytest.raises(ValidationError):
        queries.all_tracks(db, actor=world.coordinator,
                           flt=TrackFilter(status="' OR 1=1 --"), now=NOW)
    db.rollback()


def test_pages_follow_each_other(world, db):
    first = queries.all_tracks(db, actor=world.coordinator, sort="code", limit=1, now=NOW)
    second = queries.all_tracks(db, actor=world.coordinator, sort="code", limit=1, offset=1,
                                now=NOW)
    db.rollback()
    assert first.has_next and not second.has_next
    assert {first.rows[0].code, second.rows[0].code} == {world.track_a.code,
                                                        world.track_b.code}


def test_search_by_code_finds_only_tracks_the_caller_may_know_of(world, db):
    lower = world.track_b.code.lower().replace("-", "")
    assert queries.find_by_code(db, actor=world.coordinator, code=lower, now=NOW).id == world.b
    assert queries.find_by_code(db, actor=world.worker, code=world.track_b.code,
                                now=NOW) is None
    db.commit()
    # (the intake's duplicate checks come first)
    assert events(db, "track.searched")[-2:] == [
        ("success", {"fields": "code", "matches": 1}),
        ("success", {"fields": "code", "matches": 0})]


def test_search_by_personnummer_goes_through_the_blind_index(world, db):
    assert queries.find_by_identifier(db, actor=world.coordinator,
                                      personnummer="850312-4516", now=NOW) == [
        world.track_a.code]
    assert queries.find_by_identifier(db, actor=world.other, personnummer=PNR, now=NOW) == []
    db.commit()
    assert events(db, "track.searched")[-2:] == [
        ("success", {"fields": "personnummer", "matches": 1}),
        ("success", {"fields": "personnummer", "matches": 0})]


def test_search_with_a_bad_personnummer_says_why_without_echoing_it(world, db):
    with pytest.raises(ValidationError) as err:
        queries.find_by_identifier(db, actor=world.coordinator, personnummer="19850312-4510",
                                   now=NOW)
    assert err.value.code == "invalid_personnummer"
    assert "4510" not in str(err.value)
    db.rollback()


def test_search_by_phone_and_email(world, db):
    track = open_defector(db, world.coordinator, owner=world.worker,
                          person=casework.PersonInput(name="C", phone="070-174 06 10",
                                                      email="C@Example.com"))
    assert queries.find_by_identifier(db, actor=world.coordinator, phone="+46701740610",
                                      now=NOW) == [track.code]
    assert queries.find_by_identifier(db, actor=world.coordinator, email="c@example.COM",
                                      now=NOW) == [track.code]
    db.rollback()


@pytest.mark.parametrize("limit", [500, 1, 0])
def test_my_tracks_are_the_same_whether_read_as_ids_or_as_a_subquery(world, db, monkeypatch,
                                                                       limit):
    # Owner of A, member of B: by id list (few tracks) and by the subquery (over the limit).
    from avhopp.casework import policy

    casework.add_team_member(db, actor=world.coordinator, track_id=world.b,
                             user_id=world.worker.id, now=NOW)
    db.commit()
    monkeypatch.setattr(policy, "TEAM_IDS_LIMIT", limit)
    page = queries.my_tracks(db, actor=world.worker, sort="code", descending=False, now=NOW)
    assert [r.code for r in page.rows] == sorted([world.track_a.code, world.track_b.code])
    assert page.total == 2
    closed_only = queries.my_tracks(db, actor=world.other, flt=TrackFilter(status="closed"),
                                    now=NOW)
    assert closed_only.rows == [] and closed_only.total == 0
    db.rollback()
