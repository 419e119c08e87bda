"""A support worker's follow-up in a real browser: plan a weekly follow-up on the track page,
find it on Min dag, complete it with a journal entry, and see the next occurrence appear."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from avhopp.db import get_database
from tests.casework.helpers import open_defector
from tests.conftest import make_user
from tests.e2e.conftest import LiveServer
from tests.e2e.test_coordinator_journey import log_in

pytestmark = pytest.mark.e2e


def test_schedule_see_on_my_day_complete_and_next_occurrence(
        live_server: LiveServer, visit_factory: Any) -> None:
    app = live_server.app
    coordinator = make_user(app, role="coordinator")
    worker = make_user(app, role="support_worker")
    session = get_database(app).factory()
    try:
        track = open_defector(session, coordinator, owner=worker)
        track_id, code = track.id, track.code
    finally:
        session.close()

    visit = visit_factory("worker")
    page = visit.page
    log_in(visit, worker)
    visit.goto(f"/tracks/{track_id}")
    expect(page.locator("#followups-heading")).to_have_text("Uppföljningar")
    page.get_by_role("link", name="Planera en uppföljning").click()
    expect(page.locator("h1")).to_contain_text("Planera en uppföljning")
    page.locator("select[name=recurrence]").select_option("weekly")
    visit.shot("plan")
    page.get_by_role("button", name="Planera").click()

    expect(page.locator("h1")).to_have_text("Min dag")
    expect(page.locator(".notice-success")).to_have_text("Uppföljningen är planerad.")
    week = page.locator("section", has=page.locator("#week-heading"))
    expect(week.get_by_role("link", name=code, exact=True)).to_be_visible()
    visit.shot("my-day")

    week.get_by_role("link", name=re.compile("Hantera")).first.click()
    expect(page.locator("h1")).to_contain_text(code)
    page.locator("select[name=contact_type]").select_option("phone")
    page.locator("input[name=contact_achieved]").check()
    page.locator("textarea[name=note]").fill("Samtal om veckan som gått.")
    visit.shot("complete")
    page.get_by_role("button", name="Genomförd").click()

    expect(page.locator(".notice-success")).to_contain_text("Nästa tillfälle är planerat.")
    # The next occurrence, a week after the first: 14 days ahead, beyond the 7-day list, so
    # it shows on the track page.
    visit.goto(f"/tracks/{track_id}")
    rows = page.locator("section", has=page.locator("#followups-heading")).locator("tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Varje vecka")
    page.get_by_text("Tidigare uppföljningar").click()
    expect(page.get_by_text(re.compile(r"gjord"))).to_be_visible()
    visit.shot("next-occurrence")
    visit.assert_no_errors()
