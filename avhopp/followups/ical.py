"""A staff member's follow-ups as an iCalendar feed (RFC 5545): track codes and due times only,
no names, no kinds that could hint at the content, no descriptions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from avhopp.followups.queries import FollowUpRow

DURATION = "PT30M"


def _stamp(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def render(rows: Iterable[FollowUpRow], *, now: dt.datetime, link: str) -> str:
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//avhopp//follow-ups//SV",
             "CALSCALE:GREGORIAN", "METHOD:PUBLISH", "X-WR-CALNAME:Uppföljningar"]
    for row in rows:
        # Codes are A-Z, 0-9 and '-', and the link is ours: nothing here needs escaping.
        lines += ["BEGIN:VEVENT", f"UID:{row.id}@avhopp.invalid", f"DTSTAMP:{_stamp(now)}",
                  f"DTSTART:{_stamp(row.due_at)}", f"DURATION:{DURATION}",
                  f"SUMMARY:Uppföljning {row.track_code}", f"URL:{link}", "END:VEVENT"]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"
