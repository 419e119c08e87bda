"""Follow-up settings from the configuration (a leaf of the package: services, queries and
the outbox all read it)."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from avhopp.casework.models import RISK_LEVELS
from avhopp.followups.recurrence import DEFAULT_CADENCE


@dataclass(frozen=True)
class FollowUpSettings:
    """What the follow-up services and ticks need from the configuration."""

    timezone: str = "Europe/Stockholm"
    reminder_lead_minutes: int = 24 * 60
    escalation_delay_minutes: int = 2 * 24 * 60
    cadence: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CADENCE))
    no_contact_days: int = 14
    after_care_months: tuple[int, ...] = (3, 6, 12)
    digest_hour: int = 7
    base_url: str = "http://127.0.0.1:5000"

    @property
    def zone(self) -> dt.tzinfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> FollowUpSettings:
        cadence = {level: str(config.get(f"FOLLOWUP_CADENCE_{level.upper()}",
                                         DEFAULT_CADENCE[level])) for level in RISK_LEVELS}
        months = str(config.get("FOLLOWUP_AFTER_CARE_MONTHS", "3,6,12"))
        return cls(
            timezone=str(config.get("AUDIT_TIMEZONE", cls.timezone)),
            reminder_lead_minutes=int(config.get("FOLLOWUP_REMINDER_LEAD_MINUTES",
                                                 cls.reminder_lead_minutes)),
            escalation_delay_minutes=int(config.get("FOLLOWUP_ESCALATION_DELAY_MINUTES",
                                                    cls.escalation_delay_minutes)),
            cadence=cadence,
            no_contact_days=int(config.get("FOLLOWUP_NO_CONTACT_DAYS", cls.no_contact_days)),
            after_care_months=tuple(int(m) for m in months.split(",") if m.strip()),
            digest_hour=int(config.get("FOLLOWUP_DIGEST_HOUR", cls.digest_hour)),
            base_url=str(config.get("BASE_URL", cls.base_url)).rstrip("/"),
        )
