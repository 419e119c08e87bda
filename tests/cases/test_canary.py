"""SECURITY.md D2 for a track: a canary typed into every text field of a defector track is
nowhere in plaintext: not in the database file or its WAL, not in the audit table."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from avhopp.audit.models import AuditEvent
from avhopp.cases import services as cases
from avhopp.cases.models import RISK_DIMENSIONS
from avhopp.casework import services as casework
from avhopp.db import get_database
from tests.casework.helpers import NOW, TODAY, events
from tests.conftest import database_bytes, make_user

CANARY = "Kanariefågel-D2-7Q3X"


def c(field: str) -> str:
    return f"{CANARY}-{field}"


def audit_bytes(app) -> bytes:
    with get_database(app).scope() as session:
        parts = []
        for event in session.scalars(select(AuditEvent)):
            for column in AuditEvent.__table__.columns:
                value = getattr(event, column.key)
                parts.append(value if isinstance(value, bytes) else str(value).encode())
        return b"\x00".join(parts)


def test_a_canary_in_every_text_field_of_a_track_is_nowhere_in_plaintext(app, db, clock):
    coordinator = make_user(app, role="coordinator")
    worker = make_user(app, role="support_worker")
    outsider = make_user(app, role="support_worker")
    consent = casework.ConsentInput(
        consent_type="sharing", form="oral", valid_from=TODAY - dt.timedelta(days=1),
        recipient_agency="police", recipient=c("recipient"), scope=["identity"],
        purpose=c("consent_purpose"), withheld=c("withheld"))
    track = cases.open_defector_track(
        db, actor=coordinator, owner_id=worker.id, referral_source="police", now=NOW,
        consents=[casework.ConsentInput(consent_type="processing", form="written",
                                        valid_from=TODAY, purpose=c("processing")),
                  casework.ConsentInput(consent_type="special_category", form="written",
                                        valid_from=TODAY)],
        person=casework.PersonInput(
            name=c("name"), alias=c("alias"), address=c("address"),
            email="kanariefagel.d2@example.com", phone="+46701740677",
            personnummer="19850312-4516", birth_year=1985),
        background=cases.BackgroundInput(
            environment="autonomous_left", involvement="sympathiser", arena="online",
            reasons_for_leaving=c("reasons"), years_in_environment=3,
            voluntariness_confirmed_on=TODAY))
    db.commit()
    tid = track.id
    cases.update_case(db, actor=worker, track_id=tid, expected_version=1, now=NOW, changes={
        "safe_contact_channel": c("channel"), "safe_contact_times": c("times"),
        "safe_contact_code_word": c("code_word"), "safety_plan": c("safety_plan"),
        "safe_contact_may_leave_messages": "no", "environment_knows_of_contact": "unknown",
        "language": c("language")})
    shared = casework.add_consent(db, actor=worker, track_id=tid, consent=consent, now=NOW)
    entry = casework.add_journal_entry(
        db, actor=worker, track_id=tid, occurred_at=NOW, contact_type="meeting",
        contact_achieved=True, note=c("note"), participants=c("participants"), now=NOW)
    casework.correct_journal_entry(db, actor=worker, track_id=tid, entry_id=entry.id,
                                   note=c("correction"), now=NOW)
    goal = casework.add_plan_goal(db, actor=worker, track_id=tid, now=NOW, goal=casework.GoalInput(
        life_domain="safety", goal=c("goal"), sub_goal=c("sub_goal"),
        intervention=c("intervention"), provider=c("provider")))
    casework.update_plan_goal(db, actor=worker, track_id=tid, goal_id=goal.id,
                              expected_version=1, changes={"goal": c("goal2")}, now=NOW)
    casework.add_agency_contact(
        db, actor=worker, track_id=tid, agency="police", shared_categories=["identity"],
        legal_basis="consent", consent_id=shared.id, occurred_at=NOW, unit=c("unit"),
        contact_role=c("role"), purpose=c("contact_purpose"), outcome=c("outcome"), now=NOW)
    cases.add_risk_assessment(
        db, actor=worker, track_id=tid, assessed_on=TODAY, now=NOW,
        levels=dict.fromkeys(RISK_DIMENSIONS, "medium"),
        comments={d: c(d) for d in RISK_DIMENSIONS}, protective_factors=c("protective"))
    cases.add_protective_measure(db, actor=worker, track_id=tid, kind="digital_exit",
                                 note=c("measure"), now=NOW)
    casework.break_glass(db, actor=outsider, track_id=tid, reason=c("break_glass_reason"),
                         reauthenticated_at=NOW, now=NOW)
    casework.change_status(db, actor=worker, track_id=tid, to_status="active", now=NOW)
    cases.close_track(db, actor=worker, track_id=tid, closure_reason="handed_over",
                      closing_assessment=c("assessment"), handed_over_to=c("handed_over"),
                      now=NOW)
    db.commit()
    # Reading it all back works (the values are there, only encrypted).
    content = casework.read_track_content(db, actor=worker, track_id=tid, purpose="casework",
                                          now=NOW)
    defector = cases.read_defector_content(db, actor=worker, track_id=tid, purpose="casework",
                                           now=NOW)
    db.commit()
    assert content.person.name == c("name")
    assert defector.safe_contact["safe_contact_code_word"] == c("code_word")
    assert len(events(db, "track.content_read")) == 2

    logged = audit_bytes(app)
    stored = database_bytes(db)
    db.rollback()
    for secret in (CANARY, "kanariefagel.d2", "198503124516", "46701740677"):
        assert secret.encode() not in logged
        assert secret.encode() not in stored
        assert secret.encode("utf-16-le") not in stored
