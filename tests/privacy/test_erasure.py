"""Erasure: confirmation, step-up, four-eyes, receipt; nothing of the person left in the file,
the WAL or an old backup once the KEK epoch is retired."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import pytest
from sqlalchemy import select

from avhopp.casework.models import Person, Track
from avhopp.crypto.errors import KeyDestroyed
from avhopp.crypto.keyring import LocalKeyRing, add_kek, retire_kek
from avhopp.db import Database, get_database
from avhopp.encryption.models import BlindIndexValue, DataKey
from avhopp.encryption.services import FieldCrypto, compact_after_erasure, rotate_kek
from avhopp.errors import Conflict, Forbidden, ValidationError
from avhopp.privacy import backup as backup_service
from avhopp.privacy import erasure
from tests.conftest import audit_actions, database_bytes, make_user
from tests.privacy.test_backup import fresh_target  # noqa: F401  fixture


def _first_track(db) -> Track:
    return db.scalars(select(Track).order_by(Track.code)).first()


def _coordinators(app):
    return make_user(app, role="coordinator"), make_user(app, role="coordinator")


def _request(db, member, track, clock, **changes):
    args = {"actor": member, "track_id": track.id, "ground": "data_subject_request",
            "confirm_code": track.code, "reauthenticated_at": clock() - dt.timedelta(minutes=1),
            "now": clock()}
    args.update(changes)
    return erasure.request_erasure(db, **args)


def _traces(db, person_id):
    """Bytes that would betray the person: their plaintext and their wrapped data keys. (Blind
    index digests are two bytes, shared with others by design: their rows are checked.)"""
    person = db.get(Person, person_id)
    out = [person.name.encode(), person.personnummer.encode(), person.email.encode()]
    for key in db.scalars(select(DataKey).where(DataKey.subject_id == person_id)):
        out.append(bytes(key.wrapped))
    assert len(out) > 3
    assert _index_rows(db, person_id)
    return out


def _index_rows(db, person_id):
    return db.scalars(select(BlindIndexValue).where(
        (BlindIndexValue.subject_id == person_id) | (BlindIndexValue.row_id == person_id))).all()


def _present(blob: bytes, haystack: bytes) -> bool:
    # PostgreSQL's row text shows bytea as hex.
    return blob in haystack or blob.hex().encode() in haystack


@pytest.mark.usefixtures("seeded")
def test_erasure_needs_a_second_coordinator_and_leaves_no_key_or_index_in_file_or_wal(
        app, db, clock):
    first, second = _coordinators(app)
    track = _first_track(db)
    person_id = track.person_id
    traces = _traces(db, person_id)
    request = _request(db, first, track, clock)
    db.commit()
    # Nothing destroyed yet; the requester cannot approve their own request.
    with pytest.raises(Forbidden):
        erasure.approve_erasure(db, actor=first, request_id=request.id,
                                reauthenticated_at=clock(), now=clock())
    db.commit()
    assert db.get(Person, person_id).name
    erasure.approve_erasure(db, actor=second, request_id=request.id,
                            reauthenticated_at=clock(), now=clock())
    db.commit()
    compact_after_erasure(get_database(app).engine)

    db.expire_all()
    with pytest.raises(KeyDestroyed):
        _ = db.get(Person, person_id).name
    everything = database_bytes(db)
    assert not any(_present(t, everything) for t in traces)
    assert not _index_rows(db, person_id)
    # Other people are untouched.
    other = db.scalars(select(Person).where(Person.id != person_id)).first()
    assert other.name
    actions = audit_actions(db)
    names = [a for a, _o, _d in actions]
    assert names.count("erasure.approved") == 2  # one denied, one success
    receipt = next(d for a, o, d in actions if a == "erasure.executed")
    assert receipt["request_id"] == str(request.id)
    assert receipt["requested_by"] == str(first.id)
    assert receipt["approved_by"] == str(second.id)
    assert receipt["keys"] == 1 and receipt["rows"] >= 5
    assert ("erasure.approved", "denied", {"rule": "four_eyes"}) in actions


@pytest.mark.usefixtures("seeded")
def test_erasure_request_needs_confirmation_step_up_and_a_coordinator(app, db, clock):
    first, _second = _coordinators(app)
    worker = make_user(app, role="support_worker")
    track = _first_track(db)
    with pytest.raises(ValidationError):
        _request(db, first, track, clock, confirm_code="WRONG")
    with pytest.raises(Forbidden):
        _request(db, first, track, clock, reauthenticated_at=clock() - dt.timedelta(hours=1))
    with pytest.raises(Forbidden):
        _request(db, first, track, clock, reauthenticated_at=None)
    with pytest.raises(Forbidden):
        _request(db, worker, track, clock)
    db.commit()
    denied = [d["rule"] for a, o, d in audit_actions(db)
              if a == "erasure.requested" and o == "denied"]
    assert denied == ["confirm_mismatch", "reauth_required", "reauth_required", "role"]
    _request(db, first, track, clock)
    with pytest.raises(Conflict):
        _request(db, first, track, clock)


@pytest.mark.usefixtures("seeded")
def test_a_cancelled_request_destroys_nothing(app, db, clock):
    first, second = _coordinators(app)
    track = _first_track(db)
    request = _request(db, first, track, clock)
    erasure.cancel_erasure(db, actor=second, request_id=request.id, now=clock())
    with pytest.raises(Conflict):
        erasure.approve_erasure(db, actor=second, request_id=request.id,
                                reauthenticated_at=clock(), now=clock())
    db.commit()
    db.expire_all()
    assert db.get(Person, track.person_id).name


@pytest.mark.usefixtures("seeded")
def test_an_old_backup_does_not_bring_an_erased_person_back_once_the_kek_epoch_is_retired(
        app, db, clock, backup_key, fresh_target):  # noqa: F811
    key, private, _public = backup_key
    tmp_path = private.parent
    ring = app.extensions["avhopp.keys"]
    old = tmp_path / "before-erasure.avbk"
    backup_service.create_backup(app.config["DATABASE_URL"], output=old, recipient=key.public,
                                 keyring=ring)
    first, second = _coordinators(app)
    track = _first_track(db)
    person_id = track.person_id
    traces = _traces(db, person_id)
    request = _request(db, first, track, clock)
    erasure.approve_erasure(db, actor=second, request_id=request.id,
                            reauthenticated_at=clock(), now=clock())
    db.commit()

    # The next epoch: a new KEK, every live key re-wrapped, the old KEK retired.
    data = json.loads(base64.b64decode(app.config["KEYS"]))
    old_kek = data["active_kek"]
    data = add_kek(data)
    rotate_kek(get_database(app).factory, keyring=LocalKeyRing(data))
    data = retire_kek(data, old_kek)
    new_ring = LocalKeyRing(data)

    manifest, report = backup_service.restore(
        old, key=key, keyring=new_ring, settings=app.extensions["avhopp.audit"],
        target_url=fresh_target)
    assert manifest["kek_ids"] == [old_kek]
    assert person_id in report.unreadable_subjects
    restored = Database(fresh_target)
    restored.attach_field_crypto(FieldCrypto(new_ring))
    try:
        with restored.factory() as session:
            with pytest.raises(KeyDestroyed):
                _ = session.get(Person, person_id).name
            assert not _index_rows(session, person_id)
            session.rollback()
        compact_after_erasure(restored.engine)
        with restored.factory() as session:
            everything = database_bytes(session)
    finally:
        restored.engine.dispose()
    # The old wrapped key is in the restored database, but under a KEK that no longer exists.
    assert any(_present(t, everything) for t in traces[3:])
    assert not any(_present(t, everything) for t in traces[:3])

    # A backup of the new epoch restores everyone else and keeps the person erased.
    new = tmp_path / "after.avbk"
    backup_service.create_backup(app.config["DATABASE_URL"], output=new, recipient=key.public,
                                 keyring=new_ring)
    _m, drill = backup_service.drill(new, key=key, keyring=new_ring,
                                     settings=app.extensions["avhopp.audit"],
                                     like_url=app.config["DATABASE_URL"], directory=tmp_path)
    assert drill.ok, drill.problems()
    assert drill.erased_subjects == 1


@pytest.mark.usefixtures("seeded")
def test_run_due_erasures_runs_approved_requests_whose_date_has_come(app, db, clock):
    first, second = _coordinators(app)
    track = _first_track(db)
    later = clock() + dt.timedelta(days=30)
    request = _request(db, first, track, clock, execute_after=later)
    erasure.approve_erasure(db, actor=second, request_id=request.id,
                            reauthenticated_at=clock(), now=clock())
    db.commit()
    assert erasure.run_due_erasures(db, now=clock()) == []
    assert db.get(Person, track.person_id).name
    done = erasure.run_due_erasures(db, now=later)
    assert [r.id for r in done] == [request.id]
    db.commit()
    db.expire_all()
    with pytest.raises(KeyDestroyed):
        _ = db.get(Person, track.person_id).name
    assert uuid.UUID(str(request.id))
