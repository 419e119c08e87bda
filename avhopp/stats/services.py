"""Anonymised counts over consenting tracks, with small cells suppressed against differencing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from avhopp.audit.policy import Actor
from avhopp.audit.services import record, register_actions
from avhopp.cases.models import DefectorCase
from avhopp.casework.models import Consent, JournalEntry, Track
from avhopp.crypto.errors import CryptoError
from avhopp.db import utcnow
from avhopp.encryption.services import field_crypto
from avhopp.followups.models import FollowUp

UNKNOWN = "unknown"
EARLIER = "earlier"
MONTHS = 24

register_actions({
    "stats.viewed": frozenset({"population", "tables"}),
    "stats.exported": frozenset({"population", "tables", "rows"}),
})


@dataclass(frozen=True)
class Cell:
    key: str
    value: int | None  # None: suppressed
    # Suppressed because it is small ("<5"), or only to protect a small neighbour (a dash).
    small: bool = False

    def shown(self, threshold: int) -> str:
        if self.value is not None:
            return str(self.value)
        return f"<{threshold}" if self.small else "–"


@dataclass
class Table:
    """One breakdown of one population: its cells always add up to its total (an unknown or
    'earlier' category catches the rest), so totals of tables over the same population agree and
    subtracting them reveals nothing."""

    name: str
    cells: list[Cell]
    total: int | None
    ordered: bool = False  # months: keep order; categories: as given
    # False when one item counts in several cells (a track active in several months): the sum
    # means nothing, so no total is shown; the cells are suppressed all the same.
    summed: bool = True

    def max_value(self) -> int:
        return max([c.value or 0 for c in self.cells] + [1])


@dataclass
class Statistics:
    threshold: int
    population: int | None
    tables: list[Table] = field(default_factory=list)

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)


def feasible(cells: Sequence[Cell], total: int, threshold: int) -> dict[str, tuple[int, int]]:
    """What a reader can work out about each suppressed cell from the shown cells and the total:
    the least and greatest value it can have. Small cells lie in 1..threshold-1, the others
    (suppressed only to protect a neighbour) in threshold..total."""
    hidden = [c for c in cells if c.value is None]
    rest = total - sum(c.value or 0 for c in cells)
    bounds = {c.key: (1, threshold - 1) if c.small else (threshold, max(threshold, rest))
              for c in hidden}
    out = {}
    for cell in hidden:
        low, high = bounds[cell.key]
        others_low = sum(b[0] for k, b in bounds.items() if k != cell.key)
        others_high = sum(b[1] for k, b in bounds.items() if k != cell.key)
        out[cell.key] = (max(low, rest - others_high), min(high, rest - others_low))
    return out


def suppress(counts: Mapping[str, int], threshold: int, *, total: int | None = None
             ) -> tuple[list[Cell], int | None]:
    """Suppress cells 1..threshold-1 ("<5"), then more cells (a dash) until neither the total
    minus the shown cells nor the bounds of the suppressed cells pin any small count to one
    value. A total below the threshold, or a table that cannot be protected, shows no total."""
    grand = sum(counts.values()) if total is None else total
    keys = list(counts)
    small = {k for k in keys if 0 < counts[k] < threshold}
    if 0 < grand < threshold:
        return [Cell(k, None if counts[k] else 0, bool(counts[k])) for k in keys], None
    hidden = set(small)

    def cells() -> list[Cell]:
        return [Cell(k, None if k in hidden else counts[k], k in small) for k in keys]

    def exposed() -> bool:
        rest = sum(counts[k] for k in hidden)
        if len(hidden) == 1 or 0 < rest < threshold:
            return True
        ranges = feasible(cells(), grand, threshold)
        return any(ranges[k][0] == ranges[k][1] for k in hidden if k in small)

    while hidden and exposed():
        candidates = sorted((counts[k], k) for k in keys if k not in hidden and counts[k] > 0)
        if not candidates:
            # Nothing left to hide behind: withhold the total instead.
            return cells(), None
        hidden.add(candidates[0][1])
    return cells(), grand


def consenting_tracks(session: Session, *, on: dt.date) -> list[Any]:
    """Tracks whose person has a statistics consent in force on `on`: plain columns only, as
    rows (no ORM objects, nothing decrypted). The SQL spells out Consent.is_valid_on."""
    next_day = dt.datetime.combine(on + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
    consenting = select(Consent.person_id).where(
        Consent.consent_type == "statistics", Consent.valid_from <= on,
        or_(Consent.valid_to.is_(None), Consent.valid_to >= on),
        or_(Consent.revoked_at.is_(None), Consent.revoked_at >= next_day))
    return list(session.execute(
        select(Track.id, Track.kind, Track.opened_at, Track.closed_at, Track.referral_source,
               Track.risk_level, Track.municipality)
        .where(Track.person_id.in_(consenting)).order_by(Track.opened_at)))


def _months(now: dt.datetime) -> list[str]:
    year, month = now.year, now.month
    out = []
    for _ in range(MONTHS):
        out.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(out))


def _by_month(values: Iterable[dt.datetime | None], months: list[str]) -> dict[str, int]:
    counts: dict[str, int] = dict.fromkeys([EARLIER, *months], 0)
    first = months[0]
    for value in values:
        if value is None:
            continue
        key = f"{value.year:04d}-{value.month:02d}"
        counts[key if key >= first and key in counts else EARLIER] += 1
    return counts


def _categories(values: Iterable[str | None], order: Sequence[str]) -> dict[str, int]:
    """Every known category (zeros included), then any other code found, then `unknown`."""
    counted = Counter(v or UNKNOWN for v in values)
    keys = [*order, *sorted(k for k in counted if k not in order and k != UNKNOWN)]
    if counted.get(UNKNOWN):
        keys.append(UNKNOWN)
    return {k: counted.get(k, 0) for k in keys}


def _environments(session: Session, tracks: list[Any]) -> list[str | None]:
    """The environment of each defector track (encrypted: opened here, only to be counted)."""
    ids = [t.id for t in tracks if t.kind == "defector"]
    cases: list[DefectorCase] = []
    # Whole rows: preload_keys reads every encrypted column, and a deferred one would cost a
    # query per row.
    for start in range(0, len(ids), 500):
        cases.extend(session.scalars(select(DefectorCase).where(
            DefectorCase.id.in_(ids[start:start + 500]))))
    field_crypto(session).preload_keys(session, cases)
    found: dict[uuid.UUID, str | None] = {}
    for case in cases:
        try:
            found[case.id] = case.environment
        except CryptoError:
            # An erased person's case counts as unknown.
            found[case.id] = None
    return [found.get(t.id) for t in tracks]


def compute(session: Session, *, threshold: int = 5, now: dt.datetime | None = None,
            orders: Mapping[str, Sequence[str]] | None = None,
            zone: dt.tzinfo = dt.UTC) -> Statistics:
    """Every table over one population: the consenting tracks. `zone` is where a day ends
    (a follow-up done on its due day, local time, is on time)."""
    now = now or utcnow()
    orders = orders or {}
    tracks = consenting_tracks(session, on=now.date())
    population = len(tracks)
    stats = Statistics(threshold, None if 0 < population < threshold else population)
    months = _months(now)

    def add(name: str, counts: dict[str, int], *, ordered: bool = False,
            total: int | None = None, summed: bool = True) -> None:
        if stats.population is None:
            # Too few people: not even counts of their contacts or follow-ups are shown.
            stats.tables.append(Table(name, [Cell(k, None if v else 0, bool(v))
                                             for k, v in counts.items()], None, ordered, summed))
            return
        cells, shown_total = suppress(counts, threshold, total=total)
        stats.tables.append(Table(name, cells, shown_total if summed else None, ordered, summed))

    add("opened_per_month", _by_month((t.opened_at for t in tracks), months), ordered=True)
    closed = [t for t in tracks if t.closed_at is not None]
    # Open or closed by the closing date (not by status): this table's "closed" cell is the
    # total of the next one, so the two agree and subtracting them reveals nothing.
    add("open_closed", {"open": population - len(closed), "closed": len(closed)})
    add("closed_per_month", _by_month((t.closed_at for t in closed), months), ordered=True)
    if stats.table("open_closed").cells[1].value is None:
        # The number closed is withheld above, so this table must not give it away.
        stats.tables[-1] = Table("closed_per_month", [
            Cell(k, None) for k in _by_month((), months)], None, True)
    add("kind", _categories((t.kind for t in tracks), orders.get("kind", ())))
    add("referral_source", _categories((t.referral_source for t in tracks),
                                       orders.get("referral_source", ())))
    add("risk_level", _categories((t.risk_level for t in tracks), orders.get("risk_level", ())))
    add("municipality", _categories((t.municipality for t in tracks),
                                    orders.get("municipality", ())))
    environments = _environments(session, tracks)
    add("environment", _categories(
        (e if t.kind == "defector" else "not_applicable" for t, e in zip(tracks, environments,
                                                                         strict=True)),
        orders.get("environment", ())))
    add("relatives_active_per_month", _active_per_month(tracks, months, kind="relative"),
        ordered=True, summed=False)
    add("contacts_per_month", _contacts(session, tracks, months), ordered=True)
    on_time, late = _follow_ups(session, tracks, months, now=now, zone=zone)
    add("followups_on_time_per_month", on_time, ordered=True)
    add("followups_late_per_month", late, ordered=True)
    return stats


def _month(value: dt.datetime) -> str:
    return f"{value.year:04d}-{value.month:02d}"


def _active_per_month(tracks: list[Any], months: list[str], *, kind: str) -> dict[str, int]:
    """Tracks of `kind` open at some time in each month (one track counts in every month it
    was open; relatives supported per month)."""
    counts = dict.fromkeys(months, 0)
    for track in tracks:
        if track.kind != kind or track.opened_at is None:
            continue
        first = _month(track.opened_at)
        last = _month(track.closed_at) if track.closed_at is not None else months[-1]
        for month in months:
            if first <= month <= last:
                counts[month] += 1
    return counts


def _follow_ups(session: Session, tracks: list[Any], months: list[str], *, now: dt.datetime,
                zone: dt.tzinfo) -> tuple[dict[str, int], dict[str, int]]:
    """Follow-ups on the tracks whose due day (local) has passed, not cancelled, by the month
    they were due: done by the end of their due day, or late (done later, or still open).
    Follow-ups due today or later are not judged yet: one done early counts once its day has
    passed."""
    today = now.astimezone(zone).date()
    start_of_today = dt.datetime.combine(today, dt.time(), tzinfo=zone)
    ids = [t.id for t in tracks]
    on_time: list[dt.datetime] = []
    late: list[dt.datetime] = []
    for start in range(0, len(ids), 500):
        rows = session.execute(select(FollowUp.due_at, FollowUp.status, FollowUp.completed_at)
                               .where(FollowUp.track_id.in_(ids[start:start + 500]),
                                      FollowUp.status != "cancelled",
                                      FollowUp.due_at < start_of_today))
        for due_at, status, completed_at in rows:
            due = due_at.astimezone(zone)
            done = (status == "done" and completed_at is not None
                    and completed_at.astimezone(zone).date() <= due.date())
            (on_time if done else late).append(due)
    return _by_month(on_time, months), _by_month(late, months)


def _contacts(session: Session, tracks: list[Any], months: list[str]) -> dict[str, int]:
    """Journal contacts achieved per month (a different population: contacts, not tracks)."""
    ids = [t.id for t in tracks]
    times: list[dt.datetime] = []
    for start in range(0, len(ids), 500):
        times.extend(session.scalars(select(JournalEntry.occurred_at).where(
            JournalEntry.track_id.in_(ids[start:start + 500]),
            JournalEntry.contact_achieved.is_(True), JournalEntry.corrects_id.is_(None))))
    return _by_month(times, months)


def record_view(session: Session, *, actor: Actor, stats: Statistics, export: bool = False,
                rows: int = 0) -> None:
    population = stats.population if stats.population is not None else -1
    if export:
        record(session, action="stats.exported", actor=actor, purpose="statistics",
               details={"population": population, "tables": len(stats.tables), "rows": rows})
    else:
        record(session, action="stats.viewed", actor=actor, purpose="statistics",
               details={"population": population, "tables": len(stats.tables)})


def csv_rows(stats: Statistics, label: Callable[[str, str], Any]) -> list[list[str]]:
    out = [["table", "category", "count"]]
    for table in stats.tables:
        for cell in table.cells:
            out.append([table.name, str(label(table.name, cell.key)),
                        cell.shown(stats.threshold)])
        if not table.summed:
            continue
        out.append([table.name, "total", f"<{stats.threshold}" if table.total is None
                    else str(table.total)])
    return out
