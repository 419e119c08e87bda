"""After crypto-shredding, the erased person's pages answer with a clear "erased" page (410),
never a 500; the track's code and dates stay visible."""

from __future__ import annotations

from typing import Any

from avhopp.encryption.services import erase_subject
from tests.casework.helpers import open_defector
from tests.conftest import csrf_token, login, make_user


def _erase(db: Any, track: Any) -> None:
    erase_subject(db, actor=None, subject_id=track.person_id)
    db.commit()


def test_opening_an_erased_persons_track_content_says_erased_not_500(app, db, clock):
    coordinator = make_user(app, role="coordinator")
    track = open_defector(db, coordinator, owner=coordinator)
    track_id, code = track.id, track.code
    _erase(db, track)
    client = app.test_client()
    login(client, coordinator, clock)
    page = client.get(f"/tracks/{track_id}")
    assert page.status_code in (200, 410)
    assert code in page.get_data(as_text=True)
    token = csrf_token(client, "/tracks/mine")
    shown = client.post(f"/tracks/{track_id}/content",
                        data={"csrf_token": token, "purpose": "casework"})
    assert shown.status_code == 410, shown.status_code
    body = shown.get_data(as_text=True)
    assert "raderats" in body
    assert "Anna Andersson" not in body


def test_the_track_lists_still_load_after_an_erasure(app, db, clock):
    coordinator = make_user(app, role="coordinator")
    track = open_defector(db, coordinator, owner=coordinator)
    code = track.code
    _erase(db, track)
    client = app.test_client()
    login(client, coordinator, clock)
    for path in ("/tracks/mine", "/tracks/all", "/"):
        response = client.get(path)
        assert response.status_code == 200, path
    assert code in client.get("/tracks/all").get_data(as_text=True)
