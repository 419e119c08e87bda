"""The register extract and the statistics page in a real browser (screenshots under
test-artifacts/e2e/): printable Swedish extract, inline SVG charts without script."""

from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from avhopp.cases import seed
from avhopp.casework.models import Consent, Track
from avhopp.db import get_database
from tests.conftest import make_user
from tests.e2e.conftest import LiveServer
from tests.e2e.test_coordinator_journey import log_in

pytestmark = pytest.mark.e2e


def _seed_with_statistics_consents(app, count: int) -> tuple[str, str]:
    database = get_database(app)
    seed.seed_tracks(database.factory, count=count,
                     policy=app.extensions["avhopp.account_policy"], rng_seed=5)
    with database.scope() as session:
        tracks = session.scalars(select(Track).order_by(Track.code)).all()
        for track in tracks:
            session.add(Consent(track_id=track.id, person_id=track.person_id,
                                consent_type="statistics", form="written",
                                recorded_by=track.owner_id, valid_from=dt.date(2020, 1, 1)))
        return str(tracks[0].id), tracks[0].code


def test_extract_and_statistics_pages_render(live_server: LiveServer, visit_factory) -> None:
    app = live_server.app
    track_id, code = _seed_with_statistics_consents(app, 8)
    coordinator = make_user(app, role="coordinator")
    visit = visit_factory("coordinator")
    log_in(visit, coordinator)
    page = visit.page

    visit.goto(f"/privacy/tracks/{track_id}/extract")
    expect(page.locator("h1")).to_have_text("Registerutdrag")
    expect(page.get_by_role("heading", name="När dina uppgifter användes")).to_be_visible()
    expect(page.get_by_text("TESTDATA").first).to_be_visible()
    expect(page.get_by_text(code)).to_have_count(1)
    visit.shot("extract")
    page.emulate_media(media="print")
    visit.shot("extract-print")
    page.emulate_media(media="screen")

    visit.goto("/stats/")
    expect(page.locator("h1")).to_have_text("Statistik")
    assert page.locator("svg.chart").count() >= 8
    assert page.locator("script").count() == 0
    expect(page.get_by_role("heading", name="Öppnade ärenden per månad")).to_be_visible()
    visit.shot("statistics")
    visit.assert_no_errors()

    board = make_user(app, role="board")
    other = visit_factory("board")
    log_in(other, board)
    other.goto("/stats/")
    expect(other.page.locator("h1")).to_have_text("Statistik")
    other.shot("statistics-board")
    other.assert_no_errors()
    # The board sees no personal data: the extract is refused.
    response = other.goto(f"/privacy/tracks/{track_id}/extract")
    assert response is not None and response.status == 403
