"""Factories for track tests: staff, an opened defector track, audit events of one kind."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from avhopp.cases import services as cases
from avhopp.casework import services as casework
from avhopp.casework.models import Track
from tests.conftest import START, StaffMember, audit_actions, make_user

NOW = START
TODAY = START.date()
PNR = "19850312-4516"  # valid checksum, synthetic


def processing_consent(**changes: Any) -> casework.ConsentInput:
    values: dict[str, Any] = {"consent_type": "processing", "form": "written",
                              "valid_from": TODAY - dt.timedelta(days=1)}
    values.update(changes)
    return casework.ConsentInput(**values)


def sharing_consent(**changes: Any) -> casework.ConsentInput:
    values: dict[str, Any] = {
        "consent_type": "sharing", "form": "written", "valid_from": TODAY - dt.timedelta(days=1),
        "recipient_agency": "social_services", "recipient": "Socialtjänsten vuxenenheten",
        "scope": ["identity", "planned_interventions"], "purpose": "Samordning"}
    values.update(changes)
    return casework.ConsentInput(**values)


def special_category_consent(**changes: Any) -> casework.ConsentInput:
    return processing_consent(consent_type="special_category", **changes)


def open_defector(
    db: Any, actor: StaffMember, *, owner: StaffMember | None = None,
    person: casework.PersonInput | None = None, now: dt.datetime = NOW, **changes: Any,
) -> Track:
    """Open a track through the intake service and commit; returns the track. With a
    background and no consents given, the special-category consent it needs comes too."""
    default = [processing_consent()]
    if changes.get("background") is not None:
        default.append(special_category_consent())
    track = cases.open_defector_track(
        db, actor=actor, consents=changes.pop("consents", default),
        person=person or casework.PersonInput(name="Anna Andersson", personnummer=PNR),
        referral_source=changes.pop("referral_source", "self"),
        owner_id=owner.id if owner is not None else None, now=now, **changes)
    db.commit()
    return track


class World:
    """Two teams: `coordinator` opens tracks; `worker` owns track A, `other` owns track B."""

    def __init__(self, app: Any, db: Any) -> None:
        self.app = app
        self.db = db
        self.coordinator = make_user(app, role="coordinator")
        self.worker = make_user(app, role="support_worker")
        self.other = make_user(app, role="support_worker")
        self.board = make_user(app, role="board")
        self.admin = make_user(app, role="admin")
        self.track_a = open_defector(db, self.coordinator, owner=self.worker)
        self.track_b = open_defector(
            db, self.coordinator, owner=self.other,
            person=casework.PersonInput(name="Bertil Berg"))
        self.a = self.track_a.id
        self.b = self.track_b.id


def events(db: Any, action: str) -> list[tuple[str, dict[str, Any]]]:
    """(outcome, details) of every audit event with this action, in order."""
    found = [(outcome, details) for name, outcome, details in audit_actions(db)
             if name == action]
    db.rollback()  # end the read transaction (on SQLite it holds the write lock)
    return found


def refused(db: Any, exc_type: type[Exception], call: Any, **kwargs: Any) -> Exception:
    """Call a service expecting a refusal; commit what the refusal recorded; return the error."""
    try:
        call(db, **kwargs)
    except exc_type as exc:
        db.commit()
        return exc
    raise AssertionError(f"{call.__name__} did not raise {exc_type.__name__}")


def new_id() -> uuid.UUID:
    return uuid.uuid4()
