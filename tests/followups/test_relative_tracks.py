"""Follow-ups on a relative track: planned from the relative page, listed there and on Min
dag, and the follow-up page leads back to the relative page (not the defector one)."""

from __future__ import annotations

from tests.conftest import csrf_token, login
from tests.followups.test_views import PLAN, follow_ups, text
from tests.relatives.helpers import RelativesWorld


def test_a_relative_worker_plans_a_follow_up_on_the_relative_track(app, db, clock):
    world = RelativesWorld(app, db)
    client = app.test_client()
    login(client, world.relative_worker, clock)
    page = text(client.get(f"/relatives/{world.r1.id}"))
    new = f"/followups/track/{world.r1.id}/new"
    assert "Uppföljningar" in page and new in page
    response = client.post(new, data={"csrf_token": csrf_token(client, new), **PLAN,
                                      "assignee_id": str(world.relative_worker.id)})
    assert response.status_code == 302, text(response)
    [(fid, status, _due, _occ, _v)] = follow_ups(db)
    assert status == "open"
    assert f"/followups/{fid}" in text(client.get(f"/relatives/{world.r1.id}"))
    assert world.r1.code in text(client.get("/followups/my-day"))
    assert f"/relatives/{world.r1.id}" in text(client.get(f"/followups/{fid}"))


def test_the_defector_worker_cannot_plan_on_a_relative_track(app, db, clock):
    world = RelativesWorld(app, db)
    client = app.test_client()
    login(client, world.defector_worker, clock)
    new = f"/followups/track/{world.r1.id}/new"
    assert client.get(new).status_code in (403, 404)
