"""Factories for relative-track tests: an opened relative track, and a world with a defector
track, two relatives of it and a third relative without any defector track."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from avhopp.casework import services as casework
from avhopp.casework.models import Track
from avhopp.relatives import services as relatives
from tests.casework.helpers import NOW, TODAY, open_defector, processing_consent
from tests.conftest import StaffMember, make_user

RELATIVE_PNR = "19600101-0237"  # synthetic, valid checksum
RELATIVE_PHONE = "+46701234567"
RELATIVE_EMAIL = "mamma.relative@example.com"


def open_relative(
    db: Any, actor: StaffMember, *, owner: StaffMember | None = None,
    person: casework.PersonInput | None = None, relation: str = "parent", **changes: Any,
) -> Track:
    track = relatives.open_relative_track(
        db, actor=actor, consents=changes.pop("consents", [processing_consent()]),
        person=person or casework.PersonInput(name="Maria Mamma"),
        relation=relation, referral_source=changes.pop("referral_source", "relatives_helpline"),
        owner_id=owner.id if owner is not None else None, now=changes.pop("now", NOW),
        **changes)
    db.commit()
    return track


@dataclass(frozen=True)
class Ref:
    """A track's id and code as plain values: reading them never touches the test session
    (on SQLite a lazy reload would open a transaction that blocks the app's writes)."""

    id: Any
    code: str


def ref(track: Track) -> Ref:
    return Ref(track.id, track.code)


class RelativesWorld:
    """`coordinator` opens everything. `defector_worker` owns the defector track D;
    `relative_worker` owns relative tracks R1 and R2 (two relatives of D) and R3 (a relative
    with no defector track). `both` is on the teams of D and R1."""

    def __init__(self, app: Any, db: Any) -> None:
        self.app = app
        self.db = db
        self.coordinator = make_user(app, role="coordinator")
        self.defector_worker = make_user(app, role="support_worker")
        self.relative_worker = make_user(app, role="support_worker")
        self.both = make_user(app, role="support_worker")
        self.outsider = make_user(app, role="support_worker")
        self.board = make_user(app, role="board")
        self.admin = make_user(app, role="admin")
        self.defector = open_defector(db, self.coordinator, owner=self.defector_worker)
        self.r1 = open_relative(db, self.coordinator, owner=self.relative_worker,
                                person=casework.PersonInput(name="Maria Mamma",
                                                            phone=RELATIVE_PHONE))
        self.r2 = open_relative(db, self.coordinator, owner=self.relative_worker,
                                relation="sibling",
                                person=casework.PersonInput(name="Sara Syster"))
        self.r3 = open_relative(db, self.coordinator, owner=self.relative_worker,
                                relation="friend",
                                person=casework.PersonInput(name="Fia Vän"),
                                concern=relatives.ConcernInput(birth_year=2005,
                                                               environment="white_power"))
        for track in (self.defector, self.r1):
            casework.add_team_member(db, actor=self.coordinator, track_id=track.id,
                                     user_id=self.both.id, now=NOW)
        db.commit()
        self.defector, self.r1, self.r2, self.r3 = (
            ref(t) for t in (self.defector, self.r1, self.r2, self.r3))
        db.rollback()
        self.d = self.defector.id


def link(db: Any, world: RelativesWorld, relative: Ref, *, actor: Any = None) -> Any:
    made = relatives.link_to_defector(
        db, actor=actor or world.coordinator, track_id=relative.id,
        defector_code=world.defector.code, consent_form="oral", valid_from=TODAY, now=NOW)
    db.commit()
    return made
