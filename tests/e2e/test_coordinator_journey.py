"""A coordinator's day in a real browser: log in with password and TOTP, open a track, read it
with a purpose, write in the journal, assess risk, activate and close the track. And a support
worker outside the team is refused the same track."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pyotp
import pytest
from playwright.sync_api import expect

from tests.conftest import make_user
from tests.e2e.conftest import LiveServer, Visit

pytestmark = pytest.mark.e2e

TRACK_URL = re.compile(r"/tracks/([0-9a-f-]{36})$")


def log_in(visit: Visit, member: Any) -> None:
    page = visit.page
    visit.goto("/login")
    expect(page.locator("h1")).to_have_text("Logga in")
    assert page.locator("html").get_attribute("lang") == "sv"
    visit.shot("login")
    page.locator("input[name=username]").fill(member.username)
    page.locator("input[name=password]").fill(member.password)
    page.get_by_role("button", name="Fortsätt").click()
    expect(page.locator("h1")).to_have_text("Tvåstegsverifiering")
    visit.shot("code")
    # The code at real time: the live server runs on the system clock.
    page.locator("input[name=code]").fill(pyotp.TOTP(member.totp_secret).now())
    page.get_by_role("button", name="Logga in").click()
    expect(page.get_by_role("button", name=re.compile(r"Logga ut"))).to_be_visible()
    visit.shot("start")


def open_track(visit: Visit, name: str) -> tuple[str, str]:
    """Intake through 'Nytt ärende'; returns the track's id and code."""
    page = visit.page
    page.get_by_role("link", name="Mina ärenden").first.click()
    expect(page.locator("h1")).to_have_text("Mina ärenden")
    page.get_by_role("link", name="Nytt ärende").click()
    expect(page.locator("h1")).to_have_text("Nytt avhopparärende")
    expect(page.get_by_text("1. Samtycke")).to_be_visible()
    visit.shot("intake")
    page.locator("input[name=consent_given]").check()
    page.locator("input[name=special_consent_given]").check()
    page.locator("select[name=consent_form]").select_option("written")
    page.locator("input[name=name]").fill(name)
    page.locator("input[name=phone]").fill("070-123 45 67")
    page.locator("select[name=referral_source]").select_option("social_services")
    page.locator("select[name=environment]").select_option("white_power")
    page.locator("select[name=involvement]").select_option("sympathiser")
    page.get_by_role("button", name="Öppna ärendet").click()
    expect(page).to_have_url(TRACK_URL)
    flash = page.locator(".notice-success")
    expect(flash).to_contain_text(re.compile(r"Ärendet \S+ har öppnats\."))
    code = page.locator("h1 .code").inner_text().strip()
    assert code and code in flash.inner_text()
    match = TRACK_URL.search(page.url)
    assert match
    expect(page.locator("dl.facts")).to_contain_text("Intag")
    # Nothing personal is on the page until content is asked for with a purpose.
    assert name not in page.content()
    visit.shot("track-opened")
    return match.group(1), code


def unfold(page: Any, heading_id: str) -> Any:
    """A folded add-form on the track page, opened as a user opens it: by its heading."""
    form = page.locator(f"details[aria-labelledby={heading_id}]")
    if form.get_attribute("open") is None:
        form.locator("summary").click()
    return form


def show_content(visit: Visit, purpose: str = "casework") -> None:
    page = visit.page
    page.locator("select[name=purpose]").select_option(purpose)
    page.get_by_role("button", name="Visa innehåll").click()
    expect(page.locator("#person-heading")).to_have_text("Person")


def test_coordinator_journey(live_server: LiveServer, visit_factory: Any) -> None:
    coordinator = make_user(live_server.app, role="coordinator")
    visit = visit_factory("coordinator")
    page = visit.page
    name = f"Testperson {uuid.uuid4().hex[:6]}"

    log_in(visit, coordinator)
    track_id, code = open_track(visit, name)

    # Content shown on request, with a purpose.
    show_content(visit)
    person = page.locator("section[aria-labelledby=person-heading]")
    expect(person).to_contain_text(name)
    expect(page.locator("section[aria-labelledby=background-heading]")).to_contain_text(
        "Vit makt-miljön")
    expect(page.get_by_text("Inga journalanteckningar.")).to_be_visible()
    expect(page.get_by_text("Ingen riskbedömning ännu.")).to_be_visible()
    visit.shot("content")

    # Journal entry (the time defaults to now, local time).
    journal = unfold(page, "new-entry-heading")
    expect(journal.locator("h2")).to_have_text("Ny journalanteckning")
    journal.locator("select[name=contact_type]").select_option("meeting")
    journal.locator("input[name=contact_achieved]").check()
    journal.locator("input[name=duration_minutes]").fill("45")
    journal.locator("textarea[name=note]").fill("Första mötet på kontoret. Planerar nästa steg.")
    journal.get_by_role("button", name="Spara anteckningen").click()
    expect(page.locator(".notice-success")).to_have_text("Journalanteckningen har sparats.")
    visit.shot("journal-saved")

    # Risk assessment.
    risk = unfold(page, "new-risk-heading")
    expect(risk.locator("h2")).to_have_text("Ny riskbedömning")
    risk.locator("select[name=threat_from_environment]").select_option("high")
    risk.locator("select[name=re_engagement]").select_option("medium")
    risk.locator("textarea[name=protective_factors]").fill("Stöd från familjen.")
    risk.get_by_role("button", name="Spara bedömningen").click()
    expect(page.locator(".notice-success")).to_have_text("Riskbedömningen har sparats.")
    expect(page.locator("dl.facts").first).to_contain_text("Hög")
    visit.shot("risk-saved")

    # The journal and the assessment are there when the content is read again.
    show_content(visit, "follow_up")
    entries = page.locator("section[aria-labelledby=journal-heading] article")
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text("Första mötet på kontoret.")
    expect(entries.first).to_contain_text("Möte")
    expect(entries.first).to_contain_text("kontakt uppnådd")
    expect(page.locator("section[aria-labelledby=risk-heading] tbody tr")).to_have_count(1)
    visit.shot("content-again")

    # Status: intake → active, then closed with a reason.
    status = unfold(page, "status-heading")
    status.locator("select[name=to_status]").select_option("active")
    status.get_by_role("button", name="Ändra status").click()
    expect(page.locator(".notice-success")).to_have_text("Statusen har ändrats.")
    expect(page.locator("dl.facts").first).to_contain_text("Aktivt")

    # Closing without a reason is refused with a Swedish message (the form stays open).
    status = unfold(page, "status-heading")
    status.locator("select[name=to_status]").select_option("closed")
    status.get_by_role("button", name="Ändra status").click()
    expect(status).to_contain_text("Välj en avslutningsorsak för att avsluta ärendet.")
    visit.shot("close-refused")

    status.locator("select[name=to_status]").select_option("closed")
    status.locator("select[name=closure_reason]").select_option("goal_reached")
    status.locator("textarea[name=closing_assessment]").fill("Etablerad i arbete och boende.")
    status.get_by_role("button", name="Ändra status").click()
    expect(page.locator(".notice-success")).to_have_text("Statusen har ändrats.")
    expect(page.locator("dl.facts").first).to_contain_text("Avslutat")
    show_content(visit)
    closure = page.locator("section[aria-labelledby=closure-heading]")
    expect(closure).to_contain_text("Målet uppnått")
    expect(closure).to_contain_text("Etablerad i arbete och boende.")
    visit.shot("closed")

    # The track is on the coordinator's list, and found by its code.
    page.get_by_role("link", name="Sök").first.click()
    expect(page.locator("h1")).to_have_text("Sök ärenden")
    page.locator("input[name=code]").fill(code)
    page.get_by_role("button", name="Hitta").click()
    expect(page).to_have_url(re.compile(rf"/tracks/{track_id}$"))
    visit.shot("found-by-code")

    visit.assert_no_errors()


def test_support_worker_outside_team_is_refused(
    live_server: LiveServer, visit_factory: Any
) -> None:
    coordinator = make_user(live_server.app, role="coordinator")
    outsider = make_user(live_server.app, role="support_worker")
    owner = visit_factory("coordinator")
    log_in(owner, coordinator)
    track_id, code = open_track(owner, f"Testperson {uuid.uuid4().hex[:6]}")
    owner.assert_no_errors()

    visit = visit_factory("support-worker")
    page = visit.page
    log_in(visit, outsider)
    response = visit.goto(f"/tracks/{track_id}")
    # Someone off the team who cannot list every track is not told the track exists.
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Sidan hittades inte")
    expect(page.get_by_role("link", name="Tillbaka till startsidan")).to_be_visible()
    assert code not in page.content()
    visit.shot("refused")

    # Nor does a search by code reveal it.
    visit.goto("/tracks/search")
    page.locator("input[name=code]").fill(code)
    page.get_by_role("button", name="Hitta").click()
    expect(page.get_by_text("Det finns inget ärende med den koden som du får se.")).to_be_visible()
    visit.shot("search-refused")

    # The refused document load is the only console error the browser reports.
    unexpected = [e for e in visit.errors if "status of 404" not in e]
    assert not unexpected, unexpected
