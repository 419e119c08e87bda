"""Audit settings from the configuration, the signing and verifier keys, and who may review."""

from __future__ import annotations

import uuid
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from avhopp.audit.note import NoteError, Signer, Verifier
from avhopp.config import ConfigError
from avhopp.errors import Forbidden
from avhopp.permissions import role_has


class Actor(Protocol):
    @property
    def id(self) -> uuid.UUID: ...

    @property
    def role(self) -> str: ...


REVIEW_PERMISSION = "audit.review"
DEFAULT_ORIGIN = "avhopp audit log"


class SigningKeySource(Protocol):
    """What the log needs from the key ring (crypto.keyring.LocalKeyRing provides it)."""

    def audit_signing_key(self) -> Any: ...


def _parse_weekdays(spec: str) -> frozenset[int]:
    """ISO weekdays (1 = Monday) from a spec like "1-5" or "1,2,3,4,5,6"."""
    days: set[int] = set()
    for part in spec.replace(" ", "").split(","):
        first, _, last = part.partition("-")
        start, end = int(first), int(last or first)
        if not 1 <= start <= end <= 7:
            raise ValueError(part)
        days.update(range(start, end + 1))
    return frozenset(days)


@dataclass(frozen=True)
class AuditSettings:
    """The audit settings from the app config, checked once at start-up."""

    origin: str = DEFAULT_ORIGIN
    public_key: str = ""
    timezone: str = "Europe/Stockholm"
    workday_start_hour: int = 7
    workday_end_hour: int = 19
    workdays: frozenset[int] = frozenset({1, 2, 3, 4, 5})
    reads_per_hour: int = 200
    checkpoint_keep_days: int = 30
    redact_min_age_days: int = 365
    # Days the scheduler keeps entries whole before redacting them; 0: only by hand.
    retention_days: int = 0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AuditSettings:
        problems: list[str] = []
        origin = str(config.get("AUDIT_ORIGIN") or DEFAULT_ORIGIN)
        ints: dict[str, int] = {}
        for name, low, high in (
            ("AUDIT_WORKDAY_START_HOUR", 0, 24),
            ("AUDIT_WORKDAY_END_HOUR", 0, 24),
            ("AUDIT_READS_PER_HOUR", 1, 10**9),
            ("AUDIT_CHECKPOINT_KEEP_DAYS", 0, 10**6),
            ("AUDIT_REDACT_MIN_AGE_DAYS", 0, 10**6),
            ("AUDIT_RETENTION_DAYS", 0, 10**6),
        ):
            value = config.get(name, getattr(cls(), _FIELD_OF[name]))
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                problems.append(f"{name} must be an integer from {low} to {high}")
            else:
                ints[name] = value
        problems.extend(_cross_checks(ints))
        try:
            workdays = _parse_weekdays(str(config.get("AUDIT_WORKDAYS", "1-5")))
        except ValueError:
            problems.append('AUDIT_WORKDAYS must list ISO weekdays, for example "1-5"')
            workdays = frozenset()
        timezone = str(config.get("AUDIT_TIMEZONE") or "Europe/Stockholm")
        try:
            zoneinfo.ZoneInfo(timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problems.append(f"AUDIT_TIMEZONE {timezone!r} is not a known time zone")
        public_key = str(config.get("AUDIT_PUBLIC_KEY") or "").strip()
        key_name = key_name_for(origin)
        if "\n" in origin or not origin.strip():
            problems.append("AUDIT_ORIGIN must be one non-empty line")
        if public_key:
            try:
                pinned = Verifier.from_vkey(public_key)
            except NoteError as exc:
                problems.append(f"AUDIT_PUBLIC_KEY is not a valid verifier key: {exc}")
            else:
                if pinned.name != key_name:
                    problems.append(f"AUDIT_PUBLIC_KEY is named {pinned.name!r} but AUDIT_ORIGIN "
                                    f"gives the key name {key_name!r}")
        if problems:
            raise ConfigError("invalid audit configuration:\n  - " + "\n  - ".join(problems))
        return cls(
            origin=origin,
            public_key=public_key,
            timezone=timezone,
            workday_start_hour=ints["AUDIT_WORKDAY_START_HOUR"],
            workday_end_hour=ints["AUDIT_WORKDAY_END_HOUR"],
            workdays=workdays,
            reads_per_hour=ints["AUDIT_READS_PER_HOUR"],
            checkpoint_keep_days=ints["AUDIT_CHECKPOINT_KEEP_DAYS"],
            redact_min_age_days=ints["AUDIT_REDACT_MIN_AGE_DAYS"],
            retention_days=ints["AUDIT_RETENTION_DAYS"],
        )

    @property
    def key_name(self) -> str:
        return key_name_for(self.origin)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    def signer(self, keys: SigningKeySource) -> Signer:
        return Signer(self.key_name, keys.audit_signing_key())

    def verifier(self, keys: SigningKeySource) -> Verifier:
        """The pinned key (AUDIT_PUBLIC_KEY) or, when none is pinned, the key ring's own."""
        if self.public_key:
            return Verifier.from_vkey(self.public_key)
        return self.signer(keys).verifier()


_FIELD_OF = {
    "AUDIT_WORKDAY_START_HOUR": "workday_start_hour",
    "AUDIT_WORKDAY_END_HOUR": "workday_end_hour",
    "AUDIT_READS_PER_HOUR": "reads_per_hour",
    "AUDIT_CHECKPOINT_KEEP_DAYS": "checkpoint_keep_days",
    "AUDIT_REDACT_MIN_AGE_DAYS": "redact_min_age_days",
    "AUDIT_RETENTION_DAYS": "retention_days",
}


def _cross_checks(ints: Mapping[str, int]) -> list[str]:
    """Settings that are each valid but not together."""
    problems = []
    if ints.get("AUDIT_WORKDAY_START_HOUR", 0) >= ints.get("AUDIT_WORKDAY_END_HOUR", 24):
        problems.append("AUDIT_WORKDAY_START_HOUR must be before AUDIT_WORKDAY_END_HOUR")
    if 0 < ints.get("AUDIT_RETENTION_DAYS", 0) < ints.get("AUDIT_REDACT_MIN_AGE_DAYS", 0):
        # The scheduler would try, daily, what redact() refuses.
        problems.append("AUDIT_RETENTION_DAYS must be 0 (off) or at least "
                        "AUDIT_REDACT_MIN_AGE_DAYS")
    return problems


def key_name_for(origin: str) -> str:
    """Signed-note key names cannot hold spaces or '+': "avhopp audit log" -> "avhopp-audit-log"."""
    return "-".join(origin.replace("+", " ").split()) or "avhopp-audit-log"


def require_reviewer(actor: Actor | None) -> None:
    # actor None means the operator CLI or the scheduler, which act with the server's authority.
    if actor is not None and not role_has(actor.role, REVIEW_PERMISSION):
        raise Forbidden("only board reviewers may do this")
