"""A relative calls first, in a real browser: the coordinator opens a relative track and hands
it to a relative support worker; later the person of concern seeks support, a defector track
is opened for another worker and linked with the relative's consent. Each worker then sees only
their own track: the other track shows as nothing but its code."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import make_user
from tests.e2e.conftest import LiveServer, Visit
from tests.e2e.test_coordinator_journey import log_in, open_track

pytestmark = pytest.mark.e2e

RELATIVE_URL = re.compile(r"/relatives/([0-9a-f-]{36})$")


def hand_over(visit: Visit, owner: Any) -> None:
    page = visit.page
    team = page.locator("[aria-labelledby=team-heading]")
    # The defector page folds its team form into <details>; open it the way a user would.
    if team.evaluate("e => e.tagName === 'DETAILS' && !e.open"):
        team.locator("summary").click()
    team.locator("select[name=owner_id]").select_option(str(owner.id))
    team.get_by_role("button", name="Byt ansvarig").click()
    expect(page.locator(".notice-success")).to_have_text("Ansvarig har bytts.")
    expect(page.locator("dl.facts").first).to_contain_text(owner.username)


def expected_404(visit: Visit) -> None:
    """The refusal we asked for is the only console message (the browser logs every 404)."""
    assert visit.errors and all("404" in error for error in visit.errors), visit.errors
    visit.errors.clear()


def test_relative_first_then_defector_linked_with_consent(live_server: LiveServer,
                                                          visit_factory: Any) -> None:
    app = live_server.app
    coordinator = make_user(app, role="coordinator")
    relative_worker = make_user(app, role="support_worker")
    defector_worker = make_user(app, role="support_worker")
    relative_name = f"Maria Anhörig {uuid.uuid4().hex[:4]}"
    defector_name = f"Jonas Avhoppare {uuid.uuid4().hex[:4]}"

    # 1. The mother calls the helpline first: a relative track.
    visit = visit_factory("coordinator")
    page = visit.page
    log_in(visit, coordinator)
    page.get_by_role("link", name="Anhörigärenden").first.click()
    expect(page.locator("h1")).to_have_text("Mina anhörigärenden")
    page.get_by_role("link", name="Nytt anhörigärende").click()
    expect(page.locator("h1")).to_have_text("Nytt anhörigärende")
    page.locator("input[name=consent_given]").check()
    # The number field first: headless chromium ignored the submit click while it had focus.
    page.locator("input[name=concern_birth_year]").fill("2004")
    page.locator("input[name=name]").fill(relative_name)
    page.locator("input[name=phone]").fill("070-174 06 42")
    page.locator("select[name=concern_knows_of_contact]").select_option("no")
    page.locator("select[name=referral_source]").select_option("relatives_helpline")
    page.locator("select[name=relation]").select_option("parent")
    page.locator("select[name=concern_environment]").select_option("white_power")
    visit.shot("relative-intake")
    page.get_by_role("button", name="Öppna ärendet").click()
    expect(page).to_have_url(RELATIVE_URL)
    relative_code = page.locator("h1 .code").inner_text().strip()
    assert relative_code.startswith("AN-")
    relative_id = RELATIVE_URL.search(page.url).group(1)
    assert relative_name not in page.content()
    hand_over(visit, relative_worker)
    visit.shot("relative-track")

    # 2. Later the son seeks support himself: a defector track, typed in afresh.
    page.get_by_role("link", name="Öppna ett avhopparärende").click()
    expect(page.locator("h1")).to_have_text("Nytt avhopparärende")
    assert relative_name not in page.content()
    defector_id, defector_code = open_track(visit, defector_name)
    hand_over(visit, defector_worker)

    # 3. Linked with the mother's consent, on the relative track.
    visit.goto(f"/relatives/{relative_id}")
    link = page.locator("section[aria-labelledby=link-heading]")
    link.locator("input[name=defector_code]").fill(defector_code)
    link.get_by_role("button", name="Koppla ärendena").click()
    expect(page.locator(".notice-error, .error").first).to_contain_text("samtycke")
    link = page.locator("section[aria-labelledby=link-heading]")
    link.locator("input[name=defector_code]").fill(defector_code)
    link.locator("input[name=consent_given]").check()
    visit.shot("link-form")
    link.get_by_role("button", name="Koppla ärendena").click()
    expect(page.locator(".notice-success")).to_have_text(
        "Ärendet har kopplats till avhopparärendet.")
    expect(page.locator("#links")).to_contain_text(defector_code)
    visit.shot("linked")
    visit.assert_no_errors()

    # 4. The relative support worker: their own track, the link as a code, nothing else.
    mother_side = visit_factory("relative-worker")
    page = mother_side.page
    log_in(mother_side, relative_worker)
    page.get_by_role("link", name="Anhörigärenden").first.click()
    expect(page.locator("table")).to_contain_text(relative_code)
    page.get_by_role("link", name=relative_code).click()
    expect(page.locator("#links")).to_have_text(re.compile(re.escape(defector_code)))
    page.locator("select[name=purpose]").select_option("casework")
    page.get_by_role("button", name="Visa innehåll").click()
    expect(page.locator("#person-heading")).to_have_text("Den anhöriga")
    expect(page.locator("section[aria-labelledby=person-heading]")).to_contain_text(
        relative_name)
    journal = page.locator("section[aria-labelledby=new-entry-heading]")
    journal.locator("select[name=contact_type]").select_option("phone")
    journal.locator("input[name=contact_achieved]").check()
    journal.locator("textarea[name=note]").fill("Mamman är orolig men lättad att sonen fått stöd.")
    journal.get_by_role("button", name="Spara anteckningen").click()
    expect(page.locator(".notice-success")).to_have_text("Journalanteckningen har sparats.")
    assert defector_name not in page.content()
    mother_side.shot("relative-worker-track")
    page.get_by_role("link", name="Mina ärenden").first.click()
    assert defector_code not in page.content() and relative_code not in page.content()
    mother_side.assert_no_errors()
    response = mother_side.goto(f"/tracks/{defector_id}")
    assert response is not None and response.status == 404
    expected_404(mother_side)
    mother_side.shot("relative-worker-refused-defector")

    # 5. The defector's worker: their own track, the relative only as a code.
    son_side = visit_factory("defector-worker")
    page = son_side.page
    log_in(son_side, defector_worker)
    page.get_by_role("link", name="Mina ärenden").first.click()
    page.get_by_role("link", name=defector_code).click()
    expect(page.locator("#links")).to_have_text(relative_code)
    page.locator("select[name=purpose]").select_option("casework")
    page.get_by_role("button", name="Visa innehåll").click()
    expect(page.locator("section[aria-labelledby=person-heading]")).to_contain_text(
        defector_name)
    content = page.content()
    assert relative_name not in content and "Mamman är orolig" not in content
    son_side.shot("defector-worker-track")
    page.get_by_role("link", name="Anhörigärenden").first.click()
    expect(page.get_by_text("Inga ärenden matchar filtret.")).to_be_visible()
    son_side.assert_no_errors()
    response = son_side.goto(f"/relatives/{relative_id}")
    assert response is not None and response.status == 404
    expected_404(son_side)
    son_side.shot("defector-worker-refused-relative")
    for side in (mother_side, son_side):
        side.assert_no_errors()
