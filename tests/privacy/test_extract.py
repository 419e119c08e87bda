"""Register extract: every field of a richly filled track, its access log, nothing of other
people, no staff names; every table linked to a person is covered."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import select

from avhopp.accounts.models import User
from avhopp.cases.models import ProtectiveMeasure
from avhopp.casework import services as casework
from avhopp.casework.models import AgencyContact, BreakGlassGrant, Person, Track
from avhopp.encryption.orm import REGISTRY
from avhopp.errors import Forbidden
from avhopp.privacy import extract
from tests.conftest import audit_actions, make_user

WHEN = dt.datetime(2026, 10, 1, 10, 0, tzinfo=dt.UTC)


def _value_for(kind: str, marker: str):
    return {"text": marker, "int": 4711, "date": dt.date(2026, 1, 2),
            "json": {"m": marker}, "bytes": marker.encode()}[kind]


def fill_every_field(db, track: Track) -> dict[tuple[str, str], object]:
    """Add the rows seeding does not make, then give every encrypted field of every row of the
    person a distinct value; returns (table, field) -> value."""
    pid, tid, owner = track.person_id, track.id, track.owner_id
    db.add(ProtectiveMeasure(track_id=tid, person_id=pid, kind="new_phone_number",
                             status="applied", created_by=owner))
    db.add(AgencyContact(track_id=tid, person_id=pid, agency="police", categories=["identity"],
                         legal_basis="legal_obligation", occurred_at=WHEN, author_id=owner))
    db.add(BreakGlassGrant(track_id=tid, person_id=pid, user_id=owner, granted_at=WHEN,
                           expires_at=WHEN + dt.timedelta(hours=1)))
    db.flush()
    expected = {}
    for model, fields in REGISTRY.items():
        subject = getattr(model, "__encryption_subject__", "id")
        for row in db.scalars(select(model).where(getattr(model, subject) == pid)):
            for name, spec in fields.items():
                value = _value_for(spec.kind, f"MARK-{model.__tablename__}-{name}-{row.id}")
                if name == "personnummer":
                    value = "19900101-0017"
                elif name in {"phone"}:
                    value = "+46701740650"
                elif name == "email":
                    value = f"mark.{uuid.uuid4().hex[:6]}@example.com"
                setattr(row, name, value)
                expected[(model.__tablename__, name, str(row.id))] = value
    db.commit()
    return expected


def test_every_table_linked_to_a_person_or_track_is_in_the_extract_or_excluded_for_a_reason():
    walked = {link.table for link in extract.linked_models()}
    missing = extract.linked_table_names() - walked - set(extract.NOT_EXTRACTED)
    assert not missing, f"tables linked to a person that the extract does not cover: {missing}"
    # Every encrypted model is a person's data and is walked.
    assert {m.__tablename__ for m in REGISTRY} <= walked


@pytest.mark.usefixtures("seeded")
def test_extract_holds_every_field_and_the_access_log_and_nothing_of_other_people(
        app, db, clock):
    coordinator = make_user(app, role="coordinator")
    tracks = db.scalars(select(Track).order_by(Track.code)).all()
    track = tracks[0]
    expected = fill_every_field(db, track)
    owner = db.get(User, track.owner_id)
    casework.read_track_content(db, actor=owner, track_id=track.id, purpose="casework",
                                now=clock())
    db.commit()
    others = [db.get(Person, t.person_id) for t in tracks[1:]]
    other_values = [v for p in others for v in (p.name, p.personnummer, p.email, p.phone)]

    result = extract.register_extract(db, actor=coordinator, track_id=track.id,
                                      reauthenticated_at=clock(), fmt="json", now=clock())
    db.commit()
    data = result.as_json()
    text = json.dumps(data, ensure_ascii=False)
    for (table, name, _row), value in expected.items():
        assert table in data["records"], table
        values = [r.get(name) for r in data["records"][table]]
        assert extract._plain(value) in [extract._plain(v) for v in values], (table, name)
    assert len(expected) > 40
    # Plain facts of the track are there too.
    assert data["tracks"] == [track.code]
    assert data["records"]["track"][0]["status"] == track.status
    # The access log: when and why, by which role, never who.
    actions = [e["action"] for e in data["access_log"]]
    assert "track.opened" in actions and "track.content_read" in actions
    read = next(e for e in data["access_log"] if e["action"] == "track.content_read")
    assert read["purpose"] == "casework" and read["role"] == owner.role
    assert owner.username not in text and coordinator.username not in text
    assert str(owner.id) not in text
    # Nobody else.
    for value in other_values:
        assert value not in text
    for other in tracks[1:]:
        assert other.code not in text
    recorded = [d for a, o, d in audit_actions(db) if a == "privacy.extract"]
    assert recorded[-1]["format"] == "json" and recorded[-1]["rows"] >= len(expected) // 20


@pytest.mark.usefixtures("seeded")
def test_extract_needs_a_coordinator_and_a_step_up(app, db, clock):
    worker = make_user(app, role="support_worker")
    coordinator = make_user(app, role="coordinator")
    track = db.scalars(select(Track)).first()
    with pytest.raises(Forbidden):
        extract.register_extract(db, actor=worker, track_id=track.id,
                                 reauthenticated_at=clock(), now=clock())
    with pytest.raises(Forbidden):
        extract.register_extract(db, actor=coordinator, track_id=track.id,
                                 reauthenticated_at=clock() - dt.timedelta(minutes=30),
                                 now=clock())
    db.commit()
    rules = [d["rule"] for a, o, d in audit_actions(db) if a == "privacy.extract"]
    assert rules == ["role", "reauth_required"]
