"""Statistics: only consenting tracks; no count below the threshold is shown or can be worked
out by subtracting shown numbers; charts and tables agree; CSV; who may see it."""

from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from avhopp.casework.models import Consent, Person, Track
from avhopp.followups.models import FollowUp
from avhopp.stats import services
from tests.conftest import audit_actions, login, make_user

K = 5
# Tables whose cells count contacts, follow-ups or track-months, not tracks.
NOT_OVER_TRACKS = {"contacts_per_month", "relatives_active_per_month",
                   "followups_on_time_per_month", "followups_late_per_month"}


def check_table(table: services.Table, threshold: int = K) -> None:
    """The guarantees a reader relies on, for one table."""
    shown = [c.value for c in table.cells if c.value is not None]
    assert all(v == 0 or v >= threshold for v in shown), table
    if table.total is None:
        return
    assert table.total == 0 or table.total >= threshold
    rest = table.total - sum(shown)
    # Total minus the shown cells: nothing, or a sum not below the threshold.
    assert rest == 0 or rest >= threshold, table
    hidden = [c for c in table.cells if c.value is None]
    assert len(hidden) != 1, table
    for key, (low, high) in services.feasible(table.cells, table.total, threshold).items():
        cell = next(c for c in table.cells if c.key == key)
        if cell.small:
            assert low < high, f"{key} is pinned to {low} in {table}"


@settings(max_examples=400, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=12))
def test_suppression_never_leaves_a_small_count_readable_or_derivable(values):
    counts = {f"c{i}": v for i, v in enumerate(values)}
    cells, total = services.suppress(counts, K)
    table = services.Table("t", cells, total)
    check_table(table)
    # Shown cells are the true counts.
    for cell in cells:
        assert cell.value is None or cell.value == counts[cell.key]


def test_a_single_small_cell_takes_its_smallest_neighbour_with_it():
    cells, total = services.suppress({"a": 40, "b": 7, "c": 2}, K)
    assert total == 49
    assert [c.shown(K) for c in cells] == ["40", "–", "<5"]
    # Two small cells that only add up to one possibility are protected too: 4 + 4 = 8.
    cells, total = services.suppress({"a": 40, "b": 4, "c": 4}, K)
    check_table(services.Table("t", cells, total))


def _track(db, owner_id, *, municipality, consent=True, risk="low", closed=None,
           opened=dt.datetime(2026, 6, 1, tzinfo=dt.UTC), revoked=False):
    person = Person()
    db.add(person)
    track = Track(id=uuid.uuid4(), kind="defector", code=uuid.uuid4().hex[:8].upper(),
                  status="closed" if closed else "active", owner_id=owner_id,
                  person_id=person.id, opened_at=opened, closed_at=closed,
                  referral_source="self", municipality=municipality, risk_level=risk)
    db.add(track)
    db.flush()
    if consent:
        db.add(Consent(track_id=track.id, person_id=person.id, consent_type="statistics",
                       form="written", recorded_by=owner_id, valid_from=dt.date(2026, 1, 1),
                       revoked_at=dt.datetime(2026, 7, 1, tzinfo=dt.UTC) if revoked else None))
    return track


def _population(app, db):
    owner = make_user(app, role="coordinator")
    for _ in range(7):
        _track(db, owner.id, municipality="0180")
    _track(db, owner.id, municipality="1280", risk="acute")  # the one who must not be seen
    for _ in range(6):  # no consent, or revoked: never counted
        _track(db, owner.id, municipality="1280", consent=False)
    _track(db, owner.id, municipality="1280", revoked=True)
    for _ in range(6):
        _track(db, owner.id, municipality="1480",
               closed=dt.datetime(2026, 9, 3, tzinfo=dt.UTC))
    db.commit()
    return owner


def test_only_consenting_tracks_count_and_every_table_is_protected(app, db, clock):
    _population(app, db)
    stats = services.compute(db, threshold=K, now=clock())
    assert stats.population == 14
    track_tables = [t for t in stats.tables if t.name not in NOT_OVER_TRACKS]
    for table in stats.tables:
        check_table(table)
    # Every table over the tracks has the same total: subtracting totals gives nothing.
    assert {t.total for t in track_tables if t.name != "closed_per_month"} == {14}
    municipality = {c.key: c for c in stats.table("municipality").cells}
    assert municipality["1280"].value is None and municipality["1280"].small
    # Its smallest neighbour is hidden with it: 14 - 7 - 6 would otherwise give 1.
    assert municipality["1480"].value is None and municipality["0180"].value == 7
    risk = {c.key: c.value for c in stats.table("risk_level").cells}
    assert risk["acute"] is None
    # The closed tracks: the same number in both tables.
    closed = {c.key: c.value for c in stats.table("open_closed").cells}["closed"]
    assert closed == stats.table("closed_per_month").total == 6


def test_a_population_below_the_threshold_shows_no_numbers(app, db, clock):
    owner = make_user(app, role="coordinator")
    for _ in range(3):
        _track(db, owner.id, municipality="0180")
    db.commit()
    stats = services.compute(db, threshold=K, now=clock())
    assert stats.population is None
    for table in stats.tables:
        assert all(c.value in (None, 0) for c in table.cells)


def test_statistics_page_and_csv_for_the_board_not_for_support_workers(app, db, clock):
    _population(app, db)
    board = make_user(app, role="board")
    client = app.test_client()
    login(client, board, clock)
    page = client.get("/stats/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "<svg" in body and "&lt;5" in body and "<script" not in body
    assert "Statistik" in body
    csv = client.get("/stats/export.csv")
    assert csv.status_code == 200 and csv.mimetype == "text/csv"
    lines = csv.get_data(as_text=True).splitlines()
    assert lines[0] == "table,category,count"
    for line in lines[1:]:
        value = line.rsplit(",", 1)[1]
        assert value in ("<5", "–") or int(value) == 0 or int(value) >= K
    actions = [a for a, _o, _d in audit_actions(db)]
    assert "stats.viewed" in actions and "stats.exported" in actions
    db.rollback()
    worker = make_user(app, role="support_worker")
    other = app.test_client()
    login(other, worker, clock)
    assert other.get("/stats/").status_code == 403


def test_statistics_page_of_an_empty_database(app, db, clock):
    board = make_user(app, role="board")
    client = app.test_client()
    login(client, board, clock)
    page = client.get("/stats/")
    assert page.status_code == 200
    assert client.get("/stats/export.csv").status_code == 200


def test_statistics_are_recomputed_after_the_cache_period(app, db, clock):
    board = make_user(app, role="board")
    client = app.test_client()
    login(client, board, clock)
    assert "(0 ärenden)" in client.get("/stats/").get_data(as_text=True)
    _population(app, db)
    assert "(0 ärenden)" in client.get("/stats/").get_data(as_text=True)
    clock.advance(seconds=601)
    assert "(14 ärenden)" in client.get("/stats/").get_data(as_text=True)


def _follow_up(db, track, owner_id, *, due, done=None, status=None):
    db.add(FollowUp(id=uuid.uuid4(), track_id=track.id, person_id=track.person_id,
                    series_id=uuid.uuid4(), kind="contact",
                    status=status or ("done" if done else "open"), assignee_id=owner_id,
                    anchor_at=due, due_at=due, reminder_lead_minutes=0,
                    escalation_delay_minutes=0, remind_at=due, escalate_at=due,
                    completed_at=done))


def test_follow_ups_done_on_time_and_late_per_month_over_consenting_tracks(app, db, clock):
    owner = make_user(app, role="coordinator")
    tracks = [_track(db, owner.id, municipality="0180") for _ in range(5)]
    hidden = _track(db, owner.id, municipality="0180", consent=False)
    october = dt.datetime(2026, 10, 5, 8, 0, tzinfo=dt.UTC)
    for i in range(6):  # done on their due day
        _follow_up(db, tracks[i % 5], owner.id, due=october + dt.timedelta(days=i),
                   done=october + dt.timedelta(days=i, hours=3))
    for i in range(2):  # done the day after
        _follow_up(db, tracks[i], owner.id, due=october, done=october + dt.timedelta(days=1))
    _follow_up(db, tracks[2], owner.id, due=october)  # still open, overdue
    # Done 22:30 UTC on its due day: on time in UTC, but 00:30 the next day in Stockholm.
    _follow_up(db, tracks[3], owner.id, due=dt.datetime(2026, 10, 10, 10, 0, tzinfo=dt.UTC),
               done=dt.datetime(2026, 10, 10, 22, 30, tzinfo=dt.UTC))
    _follow_up(db, tracks[4], owner.id, due=october, status="cancelled")
    # Due later this month, done early: not judged until its day has passed.
    _follow_up(db, tracks[4], owner.id, due=clock() + dt.timedelta(days=10), done=clock())
    for _ in range(5):  # no statistics consent: never counted
        _follow_up(db, hidden, owner.id, due=october, done=october)
    db.commit()

    stockholm = services.compute(db, threshold=K, now=clock(),
                                 zone=zoneinfo.ZoneInfo("Europe/Stockholm"))
    on_time = stockholm.table("followups_on_time_per_month")
    late = stockholm.table("followups_late_per_month")
    for table in (on_time, late):
        check_table(table)
    assert {c.key: c.value for c in on_time.cells}["2026-10"] == 6
    assert on_time.total == 6
    october_late = {c.key: c for c in late.cells}["2026-10"]
    # Four late: shown as "<5", and with no other month to hide behind, no total either.
    assert october_late.value is None and october_late.small and late.total is None

    utc = services.compute(db, threshold=K, now=clock(), zone=dt.UTC)
    assert utc.table("followups_on_time_per_month").total == 7
    assert utc.table("followups_late_per_month").total is None


def test_relatives_supported_per_month_count_open_relative_tracks_without_a_total(app, db, clock):
    owner = make_user(app, role="coordinator")
    for _ in range(5):
        _track(db, owner.id, municipality="0180")
    for i in range(6):
        track = _track(db, owner.id, municipality="0180",
                       closed=dt.datetime(2026, 9, 3, tzinfo=dt.UTC) if i < 2 else None)
        track.kind = "relative"
    _track(db, owner.id, municipality="0180", consent=False).kind = "relative"
    db.commit()
    stats = services.compute(db, threshold=K, now=clock())
    table = stats.table("relatives_active_per_month")
    check_table(table)
    cells = {c.key: c for c in table.cells}
    assert cells["2026-05"].value == 0
    assert cells["2026-10"].value is None and cells["2026-11"].value is None
    assert cells["2026-10"].small
    assert all(c.value in (None, 6) for k, c in cells.items() if "2026-06" <= k <= "2026-09")
    # One relative track counts in every month it was open: the sum is no count of people.
    assert table.total is None and not table.summed
    rows = services.csv_rows(stats, lambda _table, key: key)
    assert not any(r[0] == "relatives_active_per_month" and r[1] == "total" for r in rows)
    assert any(r[0] == "followups_late_per_month" and r[1] == "total" for r in rows)


def test_a_small_population_shows_no_follow_up_or_contact_counts_either(app, db, clock):
    owner = make_user(app, role="coordinator")
    track = _track(db, owner.id, municipality="0180")
    october = dt.datetime(2026, 10, 5, 8, 0, tzinfo=dt.UTC)
    for i in range(8):
        _follow_up(db, track, owner.id, due=october + dt.timedelta(days=i),
                   done=october + dt.timedelta(days=i))
    db.commit()
    stats = services.compute(db, threshold=K, now=clock())
    assert stats.population is None
    table = stats.table("followups_on_time_per_month")
    assert {c.key: c.value for c in table.cells}["2026-10"] is None and table.total is None


def test_the_page_shows_the_follow_up_and_relatives_tables_in_swedish(app, db, clock):
    _population(app, db)
    board = make_user(app, role="board")
    client = app.test_client()
    login(client, board, clock)
    body = client.get("/stats/").get_data(as_text=True)
    for title in ("Anhöriga som fått stöd per månad (öppna anhörigärenden)",
                  "Uppföljningar gjorda i tid, per månad de skulle göras",
                  "Uppföljningar gjorda för sent eller inte gjorda än, per månad de skulle göras"):
        assert title in body
    relatives = body.split('id="t-relatives_active_per_month"', 1)[1].split("</section>", 1)[0]
    assert "Totalt" not in relatives and "<svg" in relatives
