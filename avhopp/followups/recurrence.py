"""Recurrence: the due time of occurrence n of a series, in the organisation's local time.

Occurrences are computed from the series' anchor (occurrence 1), not from the previous one,
in local wall time: a weekly 10:00 meeting stays at 10:00 across the DST changes, and a
monthly one anchored on the 31st falls on the last day of shorter months and returns to the
31st afterwards (chaining month by month would drift to the 28th for good).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from dateutil.relativedelta import relativedelta
from dateutil.rrule import rrulestr

from avhopp.errors import ValidationError

# Default cadence by risk level (DOMAIN.md): acute twice a week, high weekly, medium every
# other week, low monthly. Overridable with FOLLOWUP_CADENCE_<LEVEL> settings.
DEFAULT_CADENCE: Mapping[str, str] = {
    "acute": "twice_weekly", "high": "weekly", "medium": "biweekly", "low": "monthly",
}
MAX_RULE_LENGTH = 200
# A custom rule must leave at least this much between occurrences: a reminder per minute is
# a mistake, not a plan.
MIN_CUSTOM_GAP = dt.timedelta(hours=12)


def _local(value: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    return value.astimezone(zone).replace(tzinfo=None)


def _aware(local: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    # fold=0: an ambiguous autumn time means its first (summer-time) instance; a time in the
    # spring gap resolves to the same clock reading in winter-time offset, an hour later.
    return local.replace(tzinfo=zone).astimezone(dt.UTC)


def parse_custom_rule(rule: str | None) -> str:
    """Check an RRULE (e.g. FREQ=WEEKLY;INTERVAL=3;BYDAY=MO): parsable and not too dense."""
    text = (rule or "").strip().upper()
    if text.startswith("RRULE:"):
        text = text[len("RRULE:"):]
    if not text or len(text) > MAX_RULE_LENGTH or "\n" in text:
        raise ValidationError("a custom rule is required", code="recurrence_rule")
    if any(part.startswith(("DTSTART", "UNTIL=", "COUNT=")) for part in text.split(";")):
        # The series ends when the track does or when someone cancels it.
        raise ValidationError("the rule may not carry its own start or end",
                              code="recurrence_rule")
    start = dt.datetime(2026, 1, 5, 10, 0)  # noqa: DTZ001  local wall time, by design
    try:
        parsed = rrulestr(text, dtstart=start)
        first = parsed.after(start)
        second = parsed.after(first) if first is not None else None
    except (ValueError, TypeError, OverflowError) as exc:
        raise ValidationError("not a valid rule", code="recurrence_rule") from exc
    if first is None or second is None:
        raise ValidationError("the rule repeats nothing", code="recurrence_rule")
    if second - first < MIN_CUSTOM_GAP:
        raise ValidationError("occurrences too close", code="recurrence_rule")
    return text


def occurrence_due(  # noqa: PLR0911  one return per kind of rule reads best
    *, anchor: dt.datetime, recurrence: str, rule: str | None, occurrence: int,
    previous_due: dt.datetime, zone: dt.tzinfo,
) -> dt.datetime | None:
    """Due time (aware UTC) of `occurrence` (1-based) of a series, or None if it does not recur.

    `anchor` is occurrence 1's due time; `previous_due` is occurrence - 1's (it matters only for
    custom rules, which continue after the previous due time).
    """
    if occurrence == 1:
        return anchor
    step = occurrence - 1
    base = _local(anchor, zone)
    if recurrence == "weekly":
        return _aware(base + relativedelta(weeks=step), zone)
    if recurrence == "biweekly":
        return _aware(base + relativedelta(weeks=2 * step), zone)
    if recurrence == "monthly":
        return _aware(base + relativedelta(months=step), zone)
    if recurrence == "twice_weekly":
        # The anchor's weekday and three days later: Monday and Thursday, Tuesday and Friday…
        return _aware(base + relativedelta(weeks=step // 2, days=3 * (step % 2)), zone)
    if recurrence == "custom" and rule:
        following = rrulestr(rule, dtstart=base).after(_local(previous_due, zone))
        return _aware(following, zone) if following is not None else None
    return None
