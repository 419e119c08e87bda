"""SECURITY.md D2 for a relative track: a canary typed into every text field of a relative
track (person, concern, situation, needs, agreements, journal, plan, consents, closure) is
nowhere in plaintext: not in the database file or its WAL, not in the audit table."""

from __future__ import annotations

from avhopp.casework import services as casework
from avhopp.relatives import services as relatives
from tests.cases.test_canary import audit_bytes
from tests.casework.helpers import NOW, TODAY, events
from tests.conftest import database_bytes, make_user

CANARY = "Kanariefågel-ANH-5R8W"
PHONE = "+46709876543"
EMAIL = "kanariefagel.anh@example.com"
PNR = "19600101-0237"


def c(field: str) -> str:
    return f"{CANARY}-{field}"


def test_a_canary_in_every_field_of_a_relative_track_is_nowhere_in_plaintext(app, db, clock):
    coordinator = make_user(app, role="coordinator")
    worker = make_user(app, role="support_worker")
    track = relatives.open_relative_track(
        db, actor=coordinator, owner_id=worker.id, relation="parent",
        referral_source="relatives_helpline", now=NOW,
        consents=[casework.ConsentInput(consent_type="processing", form="oral",
                                        valid_from=TODAY, purpose=c("processing"))],
        person=casework.PersonInput(name=c("name"), alias=c("alias"), address=c("address"),
                                    phone=PHONE, email=EMAIL, personnummer=PNR),
        safe_contact_method=c("safe_contact"), concern_knows_of_contact="no",
        concern=relatives.ConcernInput(birth_year=2004, environment="violent_islamism"))
    db.commit()
    tid = track.id
    relatives.update_relative_case(db, actor=worker, track_id=tid, expected_version=1, now=NOW,
                                   changes={"observed_text": c("observed"),
                                            "threats_text": c("threats"),
                                            "wellbeing_text": c("wellbeing"),
                                            "agreements": c("agreements"),
                                            "observed_signs": ["travel_plans"],
                                            "needs": ["safety_plan"], "wellbeing": 2,
                                            "concern_report_on": TODAY,
                                            "children_in_household": "yes",
                                            "threats_against_relative": "yes",
                                            "exit_role": "housing_help"})
    casework.add_journal_entry(db, actor=worker, track_id=tid, occurred_at=NOW,
                               contact_type="phone", contact_achieved=True, note=c("note"),
                               participants=c("participants"), now=NOW)
    casework.add_plan_goal(db, actor=worker, track_id=tid, now=NOW, goal=casework.GoalInput(
        life_domain="safety", goal=c("goal"), intervention=c("intervention")))
    casework.add_consent(db, actor=worker, track_id=tid, now=NOW, consent=casework.ConsentInput(
        consent_type="relative_contact", form="written", valid_from=TODAY,
        recipient=c("recipient"), purpose=c("purpose"), withheld=c("withheld")))
    casework.change_status(db, actor=worker, track_id=tid, to_status="active", now=NOW)
    relatives.close_relative_track(db, actor=worker, track_id=tid, closure_reason="other",
                                   closing_note=c("closing"), now=NOW)
    db.commit()
    content = relatives.read_relative_content(db, actor=worker, track_id=tid,
                                              purpose="casework", now=NOW)
    db.commit()
    assert content.needs["agreements"] == c("agreements")
    assert content.situation["wellbeing"] == 2
    assert content.concern["concern_environment"] == "violent_islamism"
    assert len(events(db, "track.content_read")) == 1

    logged = audit_bytes(app)
    stored = database_bytes(db)
    db.rollback()
    for secret in (CANARY, "kanariefagel.anh", "196001010237", "46709876543",
                   "violent_islamism", "travel_plans", "housing_help"):
        assert secret.encode() not in logged, secret
        assert secret.encode() not in stored, secret
        assert secret.encode("utf-16-le") not in stored, secret
