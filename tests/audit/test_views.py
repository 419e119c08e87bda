"""The board's review pages: access, audited views, filters, flags, paging, CSV, print, proofs,
verification and sign-off, all with escaped output and no inline script or style."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from avhopp.accounts.models import User
from avhopp.audit import services
from avhopp.audit.models import AuditEvent, AuditSignOff
from avhopp.audit.note import open_note, parse_checkpoint
from avhopp.audit.views import csv_cell
from avhopp.db import get_database
from tests.audit.conftest import add_events, sign, signer
from tests.conftest import audit_actions, csrf_token, login, make_user

MONDAY_NOON = dt.datetime(2026, 11, 2, 11, 0, tzinfo=dt.UTC)  # 12:00 in Stockholm
SATURDAY_NIGHT = dt.datetime(2026, 11, 7, 22, 0, tzinfo=dt.UTC)


@pytest.fixture
def board(app: Any, client: Any, clock: Any) -> Any:
    member = make_user(app, role="board")
    login(client, member, clock)
    return member


def page(client: Any, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, response.status_code
    return str(response.get_data(as_text=True))


def rows(body: str) -> list[int]:
    """Sequence numbers of the table rows, in page order."""
    return [int(n) for n in re.findall(r'<td class="num">(\d+)</td>', body)]


def events_of(db: Any, action: str) -> list[dict[str, Any]]:
    found = [details for name, _outcome, details in audit_actions(db) if name == action]
    db.rollback()
    return found


def record(app: Any, **kwargs: Any) -> int:
    with get_database(app).scope() as session:
        return int(services.record(session, **kwargs).seq)


def test_board_members_see_the_log_and_the_view_is_recorded(
    app: Any, client: Any, db: Any, board: Any
) -> None:
    body = page(client, "/audit/")
    assert "audit.viewed" in body  # the page's own view is already in the log
    assert events_of(db, "audit.viewed")[-1] == {"page": "events"}
    assert 'href="/audit/"' in page(client, "/")  # the menu link


@pytest.mark.parametrize("role", ["coordinator", "support_worker", "admin"])
def test_other_roles_get_403_and_the_attempt_is_recorded(
    app: Any, client: Any, db: Any, clock: Any, role: str
) -> None:
    login(client, make_user(app, role=role), clock)
    for url in ("/audit/", "/audit/checkpoints", "/audit/verify", "/audit/signoffs",
                "/audit/print", "/audit/checkpoints/latest.txt"):
        assert client.get(url).status_code == 403
    denied = events_of(db, "security.access_denied")
    assert {"endpoint": "audit.events", "permission": "audit.review"} in denied
    assert not events_of(db, "audit.viewed")
    assert 'href="/audit/"' not in page(client, "/")


def test_pages_are_keyset_paged_newest_first(app: Any, client: Any, board: Any) -> None:
    seqs = add_events(app, 120)[::-1]  # newest first
    first_body = page(client, "/audit/?action=user.listed")
    assert rows(first_body) == seqs[:50]
    assert f"before={seqs[49]}" in first_body
    second_body = page(client, f"/audit/?action=user.listed&before={seqs[49]}")
    assert rows(second_body) == seqs[50:100]
    assert f"before={seqs[99]}" in second_body
    assert f"after={seqs[50]}" in second_body
    back = rows(page(client, f"/audit/?action=user.listed&after={seqs[50]}"))
    assert back == seqs[:50]
    last = page(client, f"/audit/?action=user.listed&before={seqs[99]}")
    assert rows(last) == seqs[100:]
    assert "before=" not in last


def test_filters_select_what_the_board_asks_for(app: Any, client: Any, board: Any) -> None:
    other = make_user(app, role="coordinator")
    staff = type("Staff", (), {"id": other.id, "role": "coordinator"})()
    denied = record(app, action="security.access_denied", actor=staff, outcome="denied",
                    details={"endpoint": "audit.events"}, now=MONDAY_NOON)
    created = record(app, action="user.created", actor=staff, object_type="user",
                     object_id="AV-7KQ2M", details={"role": "board"}, now=MONDAY_NOON)
    night = record(app, action="user.listed", actor=staff, details={"count": 1},
                   now=SATURDAY_NIGHT)
    assert rows(page(client, "/audit/?outcome=denied")) == [denied]
    assert rows(page(client, "/audit/?object_code=AV-7KQ2M")) == [created]
    assert rows(page(client, f"/audit/?actor={other.id}")) == [night, created, denied]
    assert rows(page(client, "/audit/?flag=denied")) == [denied]
    assert night in rows(page(client, "/audit/?flag=after_hours"))
    assert created not in rows(page(client, "/audit/?flag=after_hours"))
    dated = rows(page(client, f"/audit/?actor={other.id}&date_from=2026-11-07"
                              "&date_to=2026-11-07"))
    assert dated == [night]


def test_rows_carry_flags(app: Any, client: Any, board: Any) -> None:
    record(app, action="user.listed", details={"count": 1}, now=SATURDAY_NIGHT)
    record(app, action="security.access_denied", outcome="denied",
           details={"endpoint": "x"}, now=MONDAY_NOON)
    body = page(client, "/audit/")
    assert 'class="flag flag-after_hours"' in body
    assert 'class="flag flag-denied"' in body


def test_unusual_volume_is_flagged(make_app: Any, clock: Any) -> None:
    app = make_app(AUDIT_READS_PER_HOUR=3)
    reader = type("Staff", (), {"id": uuid.uuid4(), "role": "support_worker"})()
    for minute in range(5):
        record(app, action="user.listed", actor=reader, details={"count": 1},
               now=MONDAY_NOON + dt.timedelta(minutes=minute))
    quiet = record(app, action="user.listed", actor=reader, details={"count": 1},
                   now=MONDAY_NOON + dt.timedelta(hours=2))
    client = app.test_client()
    login(client, make_user(app, role="board"), clock)
    body = page(client, "/audit/?flag=high_volume&date_from=2026-11-02&date_to=2026-11-02")
    assert rows(body) == [5, 4, 3, 2, 1]
    assert body.count('class="flag flag-high_volume"') == 5
    assert quiet not in rows(body)
    # Without a bounded period the volume filter asks for one.
    assert rows(page(client, "/audit/?flag=high_volume")) == []


def test_an_invalid_filter_shows_an_error_not_a_500(app: Any, client: Any, board: Any) -> None:
    for query in ("date_from=2026-13-45", "actor=not-a-user", "action=no.such",
                  "flag=nonsense", "before=abc", "object_code=" + "x" * 200):
        response = client.get(f"/audit/?{query}")
        assert response.status_code == 200, query


def test_a_username_with_markup_is_shown_escaped(app: Any, client: Any, board: Any) -> None:
    # Usernames are restricted by create_user, so the row goes in directly.
    hostile = "<script>alert(1)</script>"
    with get_database(app).scope() as session:
        user = User(id=uuid.uuid4(), username=hostile, role="coordinator", password_hash="x")
        session.add(user)
        session.flush()
        staff = type("Staff", (), {"id": user.id, "role": "coordinator"})()
        services.record(session, action="user.listed", actor=staff, object_type="user",
                        object_id='"><img src=x onerror=alert(2)>', details={"count": 1})
    for url in ("/audit/", "/audit/print"):
        body = page(client, url)
        assert hostile not in body
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "<img src=x" not in body


@pytest.mark.parametrize("url", ["/audit/", "/audit/print", "/audit/checkpoints",
                                 "/audit/verify", "/audit/signoffs"])
def test_pages_have_no_inline_script_or_style(
    app: Any, client: Any, board: Any, url: str
) -> None:
    add_events(app, 2)
    sign(app)
    body = page(client, url)
    assert "<script" not in body
    assert "style=" not in body
    assert "<style" not in body


# --- CSV export -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["=HYPERLINK(\"http://x\")", "+1", "-2", "@SUM(A1)",
                                   "\tx", "\rx"])
def test_csv_cells_that_a_spreadsheet_would_run_are_escaped(value: str) -> None:
    assert csv_cell(value) == "'" + value
    assert csv_cell("AV-7KQ2M") == "AV-7KQ2M"


def export(client: Any, query: str = "") -> Any:
    return client.post(f"/audit/export{query}", data={"csrf_token": csrf_token(client, "/audit/")})


def test_the_csv_export_escapes_formulas_and_is_recorded(
    app: Any, client: Any, db: Any, board: Any
) -> None:
    record(app, action="user.created", object_type="user", object_id='=HYPERLINK("http://x")',
           details={"role": "board"})
    response = export(client, "?object_code=%3DHYPERLINK%28%22http%3A%2F%2Fx%22%29")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    text_body = response.get_data(as_text=True)
    table = list(csv.reader(io.StringIO(text_body.lstrip("\ufeff"))))
    assert len(table) == 2
    assert "'=HYPERLINK(\"http://x\")" in table[1]
    assert not any(cell.startswith("=") for line in table for cell in line)
    assert events_of(db, "audit.exported")[-1] == {"kind": "csv", "count": 1}


def test_the_export_asks_for_the_password_again_after_a_while(
    app: Any, client: Any, db: Any, clock: Any, board: Any
) -> None:
    clock.advance(minutes=10)  # past the step-up window, within the idle timeout
    response = export(client, "?outcome=denied")
    assert response.status_code == 302
    assert response.location.startswith("/account/confirm?next=")
    assert "outcome%3Ddenied" in response.location or "outcome=denied" in response.location
    assert not events_of(db, "audit.exported")


def test_the_export_needs_a_csrf_token(app: Any, client: Any, board: Any) -> None:
    assert client.post("/audit/export").status_code == 400


# --- print, checkpoints, proofs --------------------------------------------------------------


def test_the_printable_view_lists_the_filtered_entries(app: Any, client: Any, board: Any) -> None:
    seqs = add_events(app, 3)
    body = page(client, "/audit/print?action=user.listed")
    assert rows(body) == seqs[::-1]
    assert 'class="signature-lines"' in body
    assert "user.listed" in body


def test_checkpoints_can_be_downloaded_and_verify_with_the_shown_key(
    app: Any, client: Any, db: Any, board: Any
) -> None:
    add_events(app, 4)
    checkpoint = sign(app)
    listing = page(client, "/audit/checkpoints")
    vkey = signer(app).vkey
    assert vkey in listing
    response = client.get("/audit/checkpoints/latest.txt")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    note = response.get_data(as_text=True)
    assert note == checkpoint.note
    from avhopp.audit.note import Verifier

    assert parse_checkpoint(open_note(note, [Verifier.from_vkey(vkey)])).size == checkpoint.size
    assert client.get(f"/audit/checkpoints/{checkpoint.size}.txt").status_code == 200
    assert client.get("/audit/checkpoints/999.txt").status_code == 404
    assert client.get("/audit/checkpoints/abc.txt").status_code == 404
    assert {"kind": "checkpoint", "size": checkpoint.size} in events_of(db, "audit.exported")


def test_a_proof_can_be_downloaded(app: Any, client: Any, board: Any) -> None:
    add_events(app, 4)
    old = sign(app)
    add_events(app, 4)
    new = sign(app)
    response = client.post("/audit/proof", data={
        "csrf_token": csrf_token(client, "/audit/checkpoints"), "old_size": old.size})
    assert response.status_code == 200
    assert f"proof-{old.size}-{new.size}.txt" in response.headers["Content-Disposition"]
    lines = response.get_data(as_text=True).splitlines()
    assert lines and all(len(line) == 44 for line in lines)


def test_an_impossible_proof_is_refused_politely(app: Any, client: Any, board: Any) -> None:
    add_events(app, 2)
    sign(app)
    response = client.post("/audit/proof", data={
        "csrf_token": csrf_token(client, "/audit/checkpoints"), "old_size": 999})
    assert response.status_code == 302
    assert response.location == "/audit/checkpoints"


# --- verify now and sign-off ----------------------------------------------------------------


def test_verify_now_shows_the_result_and_records_it(
    app: Any, client: Any, db: Any, board: Any
) -> None:
    add_events(app, 3)
    sign(app)
    response = client.post("/audit/verify",
                           data={"csrf_token": csrf_token(client, "/audit/verify")})
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "notice-success" in body
    assert events_of(db, "audit.verified")[-1]["result"] == "ok"


def test_verify_now_reports_the_first_bad_entry(app: Any, client: Any, board: Any) -> None:
    from tests.audit.conftest import tampering

    add_events(app, 5)
    from sqlalchemy import text

    with tampering(app) as conn:
        conn.execute(text("UPDATE audit_event SET action = 'user.created' WHERE seq = 3"))
    body = client.post("/audit/verify",
                       data={"csrf_token": csrf_token(client, "/audit/verify")}
                       ).get_data(as_text=True)
    assert "notice-error" in body
    assert re.search(r"\b3\b", body)


def test_a_board_member_signs_off_a_reviewed_range(
    app: Any, client: Any, db: Any, board: Any
) -> None:
    add_events(app, 5)
    form = page(client, "/audit/signoffs")
    assert 'name="from_seq"' in form
    response = client.post("/audit/signoffs", data={
        "csrf_token": csrf_token(client, "/audit/signoffs"), "from_seq": 1, "to_seq": 5})
    assert response.status_code == 302
    stored = db.scalars(select(AuditSignOff)).one()
    assert (stored.from_seq, stored.to_seq, stored.signed_off_by) == (1, 5, board.id)
    db.rollback()
    assert events_of(db, "audit.signed_off") == [{"from_seq": 1, "to_seq": 5}]
    assert "1–5" in page(client, "/audit/signoffs")


def test_a_sign_off_outside_the_log_is_refused(app: Any, client: Any, db: Any, board: Any) -> None:
    response = client.post("/audit/signoffs", data={
        "csrf_token": csrf_token(client, "/audit/signoffs"), "from_seq": 1, "to_seq": 10**9})
    assert response.status_code == 200
    assert not db.scalars(select(AuditSignOff)).all()
    db.rollback()


def test_a_failing_audit_write_shows_no_log_data(
    app: Any, client: Any, board: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_events(app, 3)

    def broken(*_args: Any, **_kwargs: Any) -> Any:
        raise services.AuditError("disk full")

    monkeypatch.setattr(services, "record", broken)
    response = client.get("/audit/")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "user.listed" not in body
    assert rows(body) == []


def test_the_events_table_never_shows_client_addresses(app: Any, client: Any, board: Any) -> None:
    token = services.set_context(services.AuditContext(client_addr="198.51.100.77",
                                                       session_hash="f" * 32))
    try:
        record(app, action="user.listed", details={"count": 1})
    finally:
        services.reset_context(token)
    body = page(client, "/audit/")
    assert "198.51.100.77" not in body
    assert "f" * 32 not in body
    assert AuditEvent  # the columns exist; the board simply never sees them
