"""The board's review in a real browser: log in with 2FA, open the audit log, filter it, export
the filtered entries as CSV (the file holds exactly what the page shows), verify the log in the
app and sign the reviewed range off. Screenshots under test-artifacts/e2e/."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from avhopp.accounts.models import User
from avhopp.casework.models import Track
from avhopp.casework.policy import Need, authorize
from avhopp.db import get_database, utcnow
from avhopp.errors import DomainError
from avhopp.followups import ticks
from tests.casework.helpers import open_defector
from tests.conftest import audit_actions, make_user
from tests.e2e.conftest import LiveServer
from tests.e2e.test_coordinator_journey import log_in

pytestmark = pytest.mark.e2e


def _arrange(app: Any) -> str:
    """A track, one refused attempt to read it, and a signed checkpoint; returns the code."""
    coordinator = make_user(app, role="coordinator")
    outsider = make_user(app, role="support_worker")
    database = get_database(app)
    session = database.factory()
    try:
        code = open_defector(session, coordinator, now=utcnow()).code
        track_id = session.scalars(select(Track.id).where(Track.code == code)).one()
        actor = session.get(User, outsider.id)
        with pytest.raises(DomainError):
            authorize(session, actor=actor, need=Need.READ, track_id=track_id, now=utcnow())
        session.commit()  # the refusal is recorded
    finally:
        session.close()
    ticks.audit_tick(app)  # the scheduler's heartbeat signs a checkpoint
    return code


def _shown_rows(page: Any) -> list[list[str]]:
    rows = page.locator("table.audit-table tbody tr")
    return [[cell.strip() for cell in rows.nth(i).locator("td").all_inner_texts()]
            for i in range(rows.count())]


def test_board_member_filters_exports_verifies_and_signs_off(
    live_server: LiveServer, visit_factory: Any
) -> None:
    app = live_server.app
    code = _arrange(app)
    board = make_user(app, role="board")
    visit = visit_factory("board")
    page = visit.page
    log_in(visit, board)

    page.get_by_role("link", name="Granskningslogg").first.click()
    expect(page.locator("h1")).to_have_text("Granskningslogg")
    summary = page.locator("main p.hint").first
    expect(summary).to_contain_text(re.compile(r"Loggen innehåller \d+ poster\."))
    expect(summary).to_contain_text("Den senaste signerade kontrollpunkten omfattar")
    assert page.locator("table.audit-table tbody tr").count() > 1
    visit.shot("audit-log")

    # Filter: only refused attempts.
    page.locator("select[name=outcome]").select_option("denied")
    page.get_by_role("button", name="Visa", exact=True).click()
    expect(page).to_have_url(re.compile(r"outcome=denied"))
    shown = _shown_rows(page)
    assert len(shown) == 1, shown
    seq, _time, _who, role, action, obj, outcome, _details, flags = shown[0]
    assert (role, action, outcome) == ("Stödperson", "track.access_denied", "Nekad")
    assert "Nekat försök" in flags
    assert obj == f"track: {code}"  # the refused track, by its code
    visit.shot("filtered-denied")

    # Export the filtered list: the file holds the same entries, with Swedish headings.
    with page.expect_download() as info:
        page.get_by_role("button", name="Exportera som CSV").click()
    download = info.value
    assert re.fullmatch(r"audit-\d{8}-\d{4}\.csv", download.suggested_filename)
    raw = download.path().read_text(encoding="utf-8")
    assert raw.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(raw.lstrip("\ufeff"))))
    assert table[0][:6] == ["Post", "Tid (UTC)", "Lokal tid", "Medarbetare", "Roll", "Händelse"]
    assert [(r[0], r[5], r[8]) for r in table[1:]] == [(seq, "track.access_denied", "denied")]
    # The export leaves the page where it was (a download, not a navigation).
    expect(page.locator("h1")).to_have_text("Granskningslogg")

    # The export itself is in the log, as an export.
    page.locator("select[name=outcome]").select_option("")
    page.locator("select[name=flag]").select_option("export")
    page.get_by_role("button", name="Visa", exact=True).click()
    expect(page).to_have_url(re.compile(r"flag=export"))
    exported = _shown_rows(page)
    # The action cell shows the purpose under the action.
    assert [r[4].split() for r in exported] == [["audit.exported", "audit_review"]], exported
    assert board.username in exported[0][2]
    visit.shot("filtered-exports")

    # Verify the whole log in the app.
    page.get_by_role("link", name="Kontrollera", exact=True).click()
    expect(page.locator("h1")).to_have_text("Kontrollera loggen")
    visit.shot("verify")
    page.get_by_role("button", name="Kontrollera nu").click()
    expect(page.locator(".notice-success")).to_contain_text("Loggen är oförändrad.")
    expect(page.locator(".notice-success")).to_contain_text(
        re.compile(r"Alla \d+ poster, trädet och [1-9]\d* kontrollpunkter stämmer\."))
    visit.shot("verified")

    # Sign off everything in the log so far (the form proposes the unreviewed range).
    page.get_by_role("link", name="Godkännanden").click()
    expect(page.locator("h1")).to_have_text("Godkännande av granskade poster")
    first = page.locator("input[name=from_seq]").input_value()
    last = page.locator("input[name=to_seq]").input_value()
    assert first == "1" and int(last) > int(seq)
    visit.shot("signoff-form")
    page.get_by_role("button", name="Godkänn intervallet").click()
    expect(page.locator(".notice-success")).to_have_text("Det granskade intervallet har godkänts.")
    signed = page.locator("table tbody tr")
    expect(signed).to_have_count(1)
    expect(signed.first).to_contain_text(f"1–{last}")
    expect(signed.first).to_contain_text(board.username)
    visit.shot("signed-off")

    # Verification now checks the sign-off as well.
    page.get_by_role("link", name="Kontrollera", exact=True).click()
    page.get_by_role("button", name="Kontrollera nu").click()
    expect(page.locator(".notice-success")).to_contain_text("Loggen är oförändrad.")
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Kontrollerade godkännanden")
    assert page.locator("dl.facts dt:has-text('Kontrollerade godkännanden') + dd") \
        .inner_text().strip() == "1"
    visit.shot("verified-after-signoff")
    visit.assert_no_errors()

    with get_database(app).scope() as session:
        actions = audit_actions(session)
    assert [a for a, _o, _d in actions].count("audit.verified") == 2
    assert ("audit.signed_off", "success", {"from_seq": 1, "to_seq": int(last)}) in actions
    assert [d["count"] for a, _o, d in actions if a == "audit.exported"] == [1]
