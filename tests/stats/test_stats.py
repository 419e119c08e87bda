"""Statistics: only consenting tracks; no count below the threshold is shown or can be worked
out by subtracting shown numbers; charts and tables agree; CSV; who may see it."""

from __future__ import annotations

import datetime as dt
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from avhopp.casework.models import Consent, Person, Track
from avhopp.stats import services
from tests.conftest import audit_actions, login, make_user

K = 5


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
    track_tables = [t for t in stats.tables if t.name != "contacts_per_month"]
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
