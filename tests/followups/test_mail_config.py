"""Sending configuration: the scheduler refuses production without an SMTP host or an https
link target; development writes mails to a folder."""

from __future__ import annotations

import datetime as dt
from email import message_from_bytes

import pytest

from avhopp.followups import ticks
from avhopp.followups.mail import (
    FolderMailer,
    MailConfigError,
    SmtpMailer,
    check_sending_config,
    mailer_from_config,
)
from tests.conftest import START
from tests.followups.conftest import assert_no_canary, make_world
from tests.followups.test_services import schedule


@pytest.mark.parametrize(("changes", "message"), [
    ({"SMTP_HOST": ""}, "SMTP_HOST is required"),
    ({"BASE_URL": "http://avhopp.example.org"}, "BASE_URL must be"),
])
def test_the_scheduler_refuses_production_without_a_way_to_send(changes, message):
    config = {"ENV": "production", "SMTP_HOST": "smtp.example.org",
              "BASE_URL": "https://avhopp.example.org", **changes}
    with pytest.raises(MailConfigError, match=message):
        check_sending_config(config)


def test_production_with_a_host_gets_smtp_and_development_without_one_a_folder(tmp_path):
    production = {"ENV": "production", "SMTP_HOST": "smtp.example.org",
                  "BASE_URL": "https://avhopp.example.org"}
    assert isinstance(mailer_from_config(production), SmtpMailer)
    folder = mailer_from_config({"ENV": "development", "INSTANCE_PATH": str(tmp_path)})
    assert isinstance(folder, FolderMailer) and folder.folder == tmp_path / "mail"


def test_development_mode_writes_each_mail_to_the_folder_once(make_app, db, clock, tmp_path):
    app = make_app(MAIL_FOLDER=str(tmp_path / "mails"))
    world = make_world(app, db)
    schedule(db, world, due_at=START + dt.timedelta(hours=1))
    ticks.run_all(app)
    ticks.run_all(app)
    files = list((tmp_path / "mails").glob("*.eml"))
    assert len(files) == 1
    mail = message_from_bytes(files[0].read_bytes())
    assert mail["Auto-Submitted"] == "auto-generated"
    assert_no_canary([files[0].read_bytes()])
