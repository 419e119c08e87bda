"""Audit settings are checked when the app starts; keys, names and working hours."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from avhopp.audit.note import Signer
from avhopp.audit.policy import AuditSettings, key_name_for
from avhopp.audit.queries import is_after_hours
from avhopp.config import ConfigError

STOCKHOLM_SUMMER_MONDAY_0659 = dt.datetime(2026, 6, 1, 4, 59, tzinfo=dt.UTC)  # 06:59 CEST


def test_defaults_are_valid() -> None:
    settings = AuditSettings.from_config({})
    assert settings.origin == "avhopp audit log"
    assert settings.key_name == "avhopp-audit-log"
    assert settings.workdays == frozenset({1, 2, 3, 4, 5})


@pytest.mark.parametrize(("origin", "name"), [
    ("avhopp audit log", "avhopp-audit-log"),
    ("example.org/audit", "example.org/audit"),
    ("a+b  c", "a-b-c"),
])
def test_the_key_name_is_the_origin_without_spaces_or_plus(origin: str, name: str) -> None:
    assert key_name_for(origin) == name


@pytest.mark.parametrize(("changes", "message"), [
    ({"AUDIT_WORKDAY_START_HOUR": 20}, "before AUDIT_WORKDAY_END_HOUR"),
    ({"AUDIT_WORKDAY_END_HOUR": 25}, "AUDIT_WORKDAY_END_HOUR"),
    ({"AUDIT_READS_PER_HOUR": 0}, "AUDIT_READS_PER_HOUR"),
    ({"AUDIT_WORKDAYS": "8"}, "AUDIT_WORKDAYS"),
    ({"AUDIT_TIMEZONE": "Mars/Olympus"}, "AUDIT_TIMEZONE"),
    ({"AUDIT_PUBLIC_KEY": "not a key"}, "AUDIT_PUBLIC_KEY"),
    ({"AUDIT_PUBLIC_KEY": Signer.generate("someone-else").vkey}, "named 'someone-else'"),
])
def test_bad_settings_stop_the_app_with_a_clear_message(
    make_app: Any, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        make_app(**changes)


def test_a_pinned_key_is_used_for_verification() -> None:
    pinned = Signer.generate("avhopp-audit-log")
    settings = AuditSettings.from_config({"AUDIT_PUBLIC_KEY": pinned.vkey})
    assert settings.verifier(object()).vkey == pinned.vkey  # type: ignore[arg-type]


@pytest.mark.parametrize(("when", "after"), [
    (STOCKHOLM_SUMMER_MONDAY_0659, True),
    (STOCKHOLM_SUMMER_MONDAY_0659 + dt.timedelta(minutes=1), False),
    (dt.datetime(2026, 6, 1, 16, 59, tzinfo=dt.UTC), False),  # 18:59 CEST
    (dt.datetime(2026, 6, 1, 17, 0, tzinfo=dt.UTC), True),  # 19:00 CEST
    (dt.datetime(2026, 1, 12, 6, 0, tzinfo=dt.UTC), False),  # 07:00 CET, Monday
    (dt.datetime(2026, 1, 17, 12, 0, tzinfo=dt.UTC), True),  # Saturday noon
])
def test_working_hours_follow_local_time_and_weekdays(when: dt.datetime, after: bool) -> None:
    assert is_after_hours(when, AuditSettings()) is after


def test_reading_track_content_counts_towards_the_volume_flag():
    from avhopp.audit.queries import is_read

    assert is_read("track.content_read")
    assert not is_read("track.status_changed")
