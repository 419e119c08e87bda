"""Accessibility of every page each role can open (axe-core in chromium): no serious or critical
violations. Parameterless GET pages come from the URL map, so a new page is checked without
anyone remembering to add it; pages that need an object (a track) are visited with one."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from avhopp.casework.models import TeamMember, Track
from avhopp.db import get_database
from avhopp.permissions import PUBLIC, permission_of, role_has
from tests.conftest import make_user
from tests.e2e.conftest import LiveServer, Visit
from tests.e2e.test_coordinator_journey import log_in

pytestmark = pytest.mark.e2e

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe.min.js").read_text(encoding="utf-8")
ROLES = ("admin", "coordinator", "support_worker", "board")
# Pages that end the session or only answer a form post are not pages to look at.
SKIP_ENDPOINTS = {"static", "accounts.logout"}
BLOCKING = {"serious", "critical"}


def axe_violations(visit: Visit, name: str) -> list[str]:
    """Run axe on the current page; the script goes in through the DevTools protocol, so the
    app's CSP (no inline or foreign script) stays in force for everything the app serves."""
    page = visit.page
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE)
    result = page.evaluate(
        "async () => await axe.run(document, {resultTypes: ['violations']})")
    visit.shot(name)
    found = []
    for violation in result["violations"]:
        if violation["impact"] in BLOCKING:
            targets = [node["target"] for node in violation["nodes"]][:3]
            found.append(f"{page.url}: {violation['id']} ({violation['impact']}) "
                         f"{violation['help']} at {targets}")
    return found


def pages_for(app: Any, role: str) -> list[str]:
    paths = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.arguments or "GET" not in (rule.methods or ()):
            continue
        if rule.endpoint in SKIP_ENDPOINTS or "." in rule.rule.rsplit("/", 1)[-1]:
            continue  # files to download (.txt, .json, .csv) are not pages
        permission = permission_of(app.view_functions[rule.endpoint])
        if permission == PUBLIC or permission is None or not role_has(role, permission):
            continue
        paths.append(rule.rule)
    return paths


def seeded_track(app: Any, user_id: uuid.UUID) -> uuid.UUID:
    from avhopp.cases.seed import seed_tracks

    database = get_database(app)
    seed_tracks(database.factory, count=1, policy=app.extensions["avhopp.account_policy"],
                rng_seed=3)
    with database.scope() as session:
        track_id = session.scalars(select(Track.id).order_by(Track.opened_at.desc())).first()
        assert track_id is not None
        session.add(TeamMember(track_id=track_id, user_id=user_id))
    return track_id


@pytest.mark.parametrize("role", ROLES)
def test_every_page_a_role_can_open_has_no_serious_accessibility_violation(
        live_server: LiveServer, visit_factory: Any, role: str) -> None:
    member = make_user(live_server.app, role=role)
    visit = visit_factory(role)
    visit.goto("/login")
    problems = axe_violations(visit, "login")
    log_in(visit, member)
    paths = pages_for(live_server.app, role)
    assert "/" in paths, "the walk must at least find the start page"
    for path in paths:
        response = visit.goto(path)
        assert response is not None and response.status == 200, f"{path}: {response}"
        problems += axe_violations(visit, path.strip("/").replace("/", "-") or "start")
    if role_has(role, "tracks.work"):
        track_id = seeded_track(live_server.app, member.id)
        visit.goto(f"/tracks/{track_id}")
        problems += axe_violations(visit, "track")
        visit.page.locator("select[name=purpose]").select_option("casework")
        visit.page.get_by_role("button", name="Visa innehåll").click()
        visit.page.locator("#person-heading").wait_for()
        problems += axe_violations(visit, "track-content")
    assert not problems, "accessibility violations:\n" + "\n".join(problems)
    visit.assert_no_errors()


def test_axe_check_reports_a_page_with_a_serious_violation(
        live_server: LiveServer, visit_factory: Any) -> None:
    """The check itself works: an unlabeled input and an image without alt text are caught."""
    visit = visit_factory("broken")
    visit.page.set_content('<html lang="sv"><head><title>t</title></head><body><main>'
                           '<img src="data:,"><input type="text"></main></body></html>')
    problems = axe_violations(visit, "broken")
    assert any("image-alt" in p for p in problems), problems
    assert any("label" in p for p in problems), problems
