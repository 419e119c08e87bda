"""Recurrence in local wall time: DST changes in Europe/Stockholm and month ends."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from avhopp.errors import ValidationError
from avhopp.followups.recurrence import occurrence_due, parse_custom_rule

STOCKHOLM = zoneinfo.ZoneInfo("Europe/Stockholm")


def local(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=STOCKHOLM).astimezone(dt.UTC)


def series(anchor: dt.datetime, recurrence: str, count: int, rule: str | None = None):
    dues = [anchor]
    for n in range(2, count + 1):
        dues.append(occurrence_due(anchor=anchor, recurrence=recurrence, rule=rule,
                                   occurrence=n, previous_due=dues[-1], zone=STOCKHOLM))
    return [d.astimezone(STOCKHOLM) for d in dues]


def test_weekly_keeps_the_local_hour_across_the_october_change():
    # 2026-10-25 03:00 CEST -> 02:00 CET
    dues = series(local(2026, 10, 19, 10, 0), "weekly", 3)
    assert [(d.date(), d.hour) for d in dues] == [
        (dt.date(2026, 10, 19), 10), (dt.date(2026, 10, 26), 10), (dt.date(2026, 11, 2), 10)]
    # ...which is a different UTC hour before and after the change.
    assert dues[0].astimezone(dt.UTC).hour == 8 and dues[1].astimezone(dt.UTC).hour == 9


def test_biweekly_keeps_the_local_hour_across_the_march_change():
    # 2026-03-29 02:00 CET -> 03:00 CEST
    dues = series(local(2026, 3, 23, 9, 30), "biweekly", 2)
    assert (dues[1].date(), dues[1].hour, dues[1].minute) == (dt.date(2026, 4, 6), 9, 30)
    assert dues[1].astimezone(dt.UTC).hour == 7


def test_a_time_in_the_spring_gap_lands_an_hour_later_not_never():
    dues = series(local(2026, 3, 22, 2, 30), "weekly", 2)
    assert dues[1].date() == dt.date(2026, 3, 29)
    assert dues[1].hour == 3


def test_monthly_from_the_31st_falls_on_month_ends_and_returns_to_the_31st():
    dues = series(local(2026, 1, 31, 9, 0), "monthly", 4)
    assert [d.date() for d in dues] == [dt.date(2026, 1, 31), dt.date(2026, 2, 28),
                                       dt.date(2026, 3, 31), dt.date(2026, 4, 30)]


def test_monthly_from_the_29th_of_january_in_a_leap_year():
    dues = series(local(2028, 1, 29, 9, 0), "monthly", 3)
    assert [d.date() for d in dues] == [dt.date(2028, 1, 29), dt.date(2028, 2, 29),
                                       dt.date(2028, 3, 29)]


def test_twice_weekly_alternates_three_and_four_days():
    dues = series(local(2026, 11, 2, 10, 0), "twice_weekly", 5)  # a Monday
    assert [d.strftime("%a %d") for d in dues] == [
        "Mon 02", "Thu 05", "Mon 09", "Thu 12", "Mon 16"]


def test_a_custom_rule_continues_after_the_previous_due_time_across_dst():
    dues = series(local(2026, 10, 20, 14, 0), "custom", 3, rule="FREQ=WEEKLY;BYDAY=TU")
    assert [(d.date(), d.hour) for d in dues] == [
        (dt.date(2026, 10, 20), 14), (dt.date(2026, 10, 27), 14), (dt.date(2026, 11, 3), 14)]


def test_no_recurrence_has_no_next_occurrence():
    anchor = local(2026, 11, 2, 10, 0)
    assert occurrence_due(anchor=anchor, recurrence="none", rule=None, occurrence=2,
                          previous_due=anchor, zone=STOCKHOLM) is None


@pytest.mark.parametrize("rule", [
    "", "NONSENSE", "FREQ=MINUTELY", "FREQ=HOURLY", "FREQ=DAILY;COUNT=3",
    "FREQ=WEEKLY;UNTIL=20270101", "DTSTART:20260101T000000", "FREQ=WEEKLY\nFREQ=DAILY",
    "FREQ=WEEKLY;BYDAY=XX", "x" * 500,
])
def test_custom_rules_that_are_unusable_are_refused(rule):
    with pytest.raises(ValidationError):
        parse_custom_rule(rule)


def test_a_custom_rule_is_normalised():
    assert parse_custom_rule("rrule:freq=weekly;interval=3") == "FREQ=WEEKLY;INTERVAL=3"
