"""The scheduler process: one job per duty, not stacked, due at start; each duty calls one
service; a failing duty does not stop the others; duties never run inside the web app."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from avhopp import scheduler
from avhopp.audit.models import AuditCheckpoint
from avhopp.db import get_database
from avhopp.followups.models import FollowUp
from tests.casework.helpers import events
from tests.conftest import START
from tests.followups.conftest import actor_of, make_world


def test_every_duty_is_one_interval_job_that_is_never_stacked(app):
    built = scheduler.build(app)
    jobs = {job.id: job for job in built.get_jobs()}
    assert set(jobs) == {"derive", "enqueue", "send", "digest", "audit_checkpoint", "retention",
                         "audit_retention", "statistics"}
    for name, job in jobs.items():
        assert job.coalesce is True and job.max_instances == 1
        assert job.trigger.interval == dt.timedelta(seconds=scheduler.INTERVALS[name])
        assert job.next_run_time is not None  # due at once: a restart catches up first


def test_the_duties_derive_risk_reassessments_and_sign_a_checkpoint(app, db, clock):
    from avhopp.cases import services as cases

    world = make_world(app, db, emails=False)
    cases.add_risk_assessment(
        db, actor=actor_of(db, world.worker), track_id=world.track.id,
        assessed_on=START.date(), now=START, reassess_by=START.date() + dt.timedelta(days=90),
        levels=dict.fromkeys(("threat_from_environment", "violence_to_others", "re_engagement",
                              "self_harm", "threat_to_relatives"), "medium"))
    db.commit()
    for _name, duty in scheduler.duties(app).items():
        duty()
    with get_database(app).scope() as session:
        kinds = list(session.scalars(select(FollowUp.kind)))
        checkpoints = session.scalar(select(func.count()).select_from(AuditCheckpoint))
    assert kinds == ["risk_reassessment"]
    assert checkpoints == 1
    assert [d["generated"] for _o, d in events(db, "followup.scheduled")] == [True]


def test_a_failing_duty_is_logged_and_does_not_raise(caplog):
    def broken() -> None:
        raise RuntimeError("boom")

    scheduler._guarded("broken", broken)()
    assert "scheduler duty broken failed" in caplog.text


def test_creating_the_app_starts_no_scheduler(app):
    import threading

    assert not any("APScheduler" in t.name for t in threading.enumerate())
