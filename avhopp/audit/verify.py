"""Full verification of the audit log: sequence, every leaf, the tree, checkpoints, witnesses.

Read-only: it reports what it finds and never writes (the service that calls it records the
`audit.verified` event). The row loop is written for speed - a million entries in a few
seconds; see the note above the row loop on how it stays equal to the reference encoding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import StatementError
from sqlalchemy.orm import Session

from avhopp.audit.merkle import EMPTY_ROOT, HASH_SIZE, verify_consistency
from avhopp.audit.models import (
    AuditCheckpoint,
    AuditEvent,
    AuditHead,
    AuditSignOff,
    computed_leaf_hash,
)
from avhopp.audit.note import Checkpoint, NoteError, Verifier, open_note, parse_checkpoint
from avhopp.audit.tree import MerkleLevels

logger = logging.getLogger(__name__)

__all__ = ["Problem", "Report", "WitnessFile", "verify_log"]

# At most this many problems are kept in the report (all are counted).
MAX_PROBLEMS = 50
_BATCH = 20_000
_PROGRESS_EVERY = 100_000
_CACHE_LIMIT = 100_000


@dataclass(frozen=True)
class Problem:
    """One finding. `seq` is the first sequence number it concerns, when one can be named."""

    code: str
    message: str
    seq: int | None = None
    last_seq: int | None = None


@dataclass(frozen=True)
class WitnessFile:
    """A checkpoint kept outside the system (a board member's copy): a name and its bytes."""

    name: str
    content: bytes


@dataclass
class Report:
    """The outcome of one verification run."""

    size: int = 0
    root: bytes = EMPTY_ROOT
    head_size: int | None = None
    checkpoints: int = 0
    witnesses: int = 0
    redacted: int = 0
    signoffs: int = 0
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    _first_bad: int | None = None

    @property
    def ok(self) -> bool:
        return self.problem_count == 0

    @property
    def first_bad_seq(self) -> int | None:
        """The first sequence number that is wrong, missing or no longer vouched for."""
        return self._first_bad

    def add(self, problem: Problem) -> None:
        self.problem_count += 1
        if problem.seq is not None and (self._first_bad is None or problem.seq < self._first_bad):
            self._first_bad = problem.seq
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)
        elif problem.seq is not None and problem.seq == self._first_bad:
            # Keep the finding that names the first bad entry even when the list is full.
            self.problems[-1] = problem


# --- the row loop ---------------------------------------------------------------------------
#
# The fast path re-encodes each row from raw driver values (text timestamps and actor ids,
# caches for the columns that repeat) and is exactly models.entry_fields + merkle.encode_entry
# for every row the app writes. A row whose fast leaf differs from the stored one is recomputed
# through the ORM and the reference encoding before it is reported, so an unusual but
# equivalent storage form can never be reported as tampering, and a report always rests on the
# reference definition.

_NONE = b"\x00\x00\x00\x00\x00"
_STR_HEADERS = [b"\x02" + n.to_bytes(4, "big") for n in range(256)]
_INT_HEADERS = [b"\x03" + n.to_bytes(4, "big") for n in range(32)]
_TIME_HEADER = _STR_HEADERS[32]  # "YYYY-MM-DDTHH:MM:SS.ffffff+00:00"
_NONCE_HEADER = b"\x01" + (16).to_bytes(4, "big")
_PAYLOAD_COLUMNS = (2, 3, 4, 5, 7, 8, 10, 11, 12, 13)  # the row positions redaction empties


def _enc_str(value: str | None) -> bytes:
    if value is None:
        return _NONE
    raw = value.encode("utf-8")
    n = len(raw)
    return (_STR_HEADERS[n] if n < 256 else b"\x02" + n.to_bytes(4, "big")) + raw


def _enc_actor(raw: Any) -> bytes:
    # uuid.UUID() then str() is what the ORM and entry_fields do with the stored value.
    return _NONE if raw is None else _enc_str(str(uuid.UUID(str(raw))))


_ROWS_SQL_SQLITE = (
    "SELECT seq, occurred_at, actor_id, actor_role, session_hash, client_addr, action, "
    "object_type, object_id, outcome, purpose, details, request_id, nonce, leaf_hash, "
    "redacted_at IS NOT NULL FROM audit_event ORDER BY seq"
)
# The server renders time and actor id exactly as entry_fields renders them in Python.
_ROWS_SQL_POSTGRESQL = (
    "SELECT seq, to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US'), "
    "actor_id::text, actor_role, session_hash, client_addr, action, "
    "object_type, object_id, outcome, purpose, details, request_id, nonce, leaf_hash, "
    "redacted_at IS NOT NULL FROM audit_event ORDER BY seq"
)


def _raw_batches(session: Session) -> Iterator[Sequence[Sequence[Any]]]:
    """All entries in seq order as raw driver tuples, in batches.

    The DBAPI cursor of the session's own connection (same transaction, same snapshot) is used
    directly: SQLAlchemy's row objects and type processing would double the time per row.
    """
    connection = session.connection()
    dbapi = connection.connection.dbapi_connection
    if dbapi is None:  # a checked-out connection always has one
        raise RuntimeError("no database connection")
    if connection.dialect.name == "postgresql":
        # A named (server-side) cursor streams instead of loading every row into memory.
        sql = _ROWS_SQL_POSTGRESQL
        cursor = dbapi.cursor(name="avhopp_audit_verify")
    else:
        sql = _ROWS_SQL_SQLITE
        cursor = dbapi.cursor()
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(_BATCH):
            yield batch
    finally:
        cursor.close()


def _reference_leaf(session: Session, seq: int) -> bytes:
    """The leaf hash by the reference definition: the ORM row, entry_fields, encode_entry."""
    event = session.execute(
        select(AuditEvent).where(AuditEvent.seq == seq).execution_options(populate_existing=True)
    ).scalar_one()
    leaf = computed_leaf_hash(event)
    session.expunge(event)
    return leaf


@dataclass
class _Redactions:
    runs: list[list[int]] = field(default_factory=list)

    def add(self, seq: int) -> None:
        if self.runs and self.runs[-1][1] == seq - 1:
            self.runs[-1][1] = seq
        else:
            self.runs.append([seq, seq])


class _RowCheck:
    """State of one pass over the rows."""

    def __init__(self, session: Session, report: Report) -> None:
        self.session = session
        self.report = report
        self.bad: list[int] = []
        self.redactions = _Redactions()
        self.expected = 1
        self.sqlite = session.get_bind().dialect.name == "sqlite"

    def problem(self, code: str, message: str, seq: int, last: int | None = None) -> None:
        self.bad.append(seq)
        self.report.add(Problem(code, message, seq, last))

    def sequence(self, seq: Any) -> int:
        """Check the sequence number against the one expected; return the number to use."""
        expected = self.expected
        if isinstance(seq, int) and seq > expected:
            self.problem("gap", f"entries {expected}..{seq - 1} are missing", expected, seq - 1)
        elif seq != expected:
            self.problem("bad_seq", f"unexpected sequence number after {expected - 1}", expected)
            seq = expected
        self.expected = seq + 1
        return int(seq)

    def redacted(self, seq: int, row: Sequence[Any], stored: Any) -> bytes:
        self.report.redacted += 1
        self.redactions.add(seq)
        if any(row[i] is not None for i in _PAYLOAD_COLUMNS):
            self.problem("redacted_payload",
                         f"entry {seq} is marked redacted but still has payload", seq)
        if not isinstance(stored, bytes) or len(stored) != HASH_SIZE:
            self.problem("bad_leaf", f"entry {seq} has a malformed leaf hash", seq)
            return hashlib.sha256(b"").digest()
        return stored

    def slow(self, seq: int, stored: Any) -> bytes:
        """The fast leaf differed: decide with the reference definition."""
        try:
            leaf = _reference_leaf(self.session, seq)
        except (ValueError, TypeError, AttributeError, LookupError, StatementError):
            self.problem("unreadable", f"entry {seq} has a field that cannot be read", seq)
            ok = isinstance(stored, bytes) and len(stored) == HASH_SIZE
            return stored if ok else hashlib.sha256(b"").digest()
        if leaf != stored:
            self.problem("leaf_mismatch",
                         f"entry {seq} does not match its leaf hash: it was changed", seq)
        return leaf


def _check_rows(  # noqa: PLR0912  one flat loop: a helper call per row would cost seconds
    session: Session,
    report: Report,
    tree: MerkleLevels,
    progress: Callable[[int, int], None] | None,
    total: int,
) -> _RowCheck:
    """Stream every row: sequence, leaf, redaction rules; feed the recomputed leaves to tree."""
    state = _RowCheck(session, report)
    sqlite = state.sqlite
    sha256 = hashlib.sha256
    enc_str = _enc_str
    int_headers = _INT_HEADERS
    # Who/where repeats for every entry of one web session, what for every entry of one kind.
    who_cache: dict[tuple[Any, ...], bytes] = {}
    what_cache: dict[tuple[Any, ...], bytes] = {}
    result_cache: dict[tuple[Any, ...], bytes] = {}
    for batch in _raw_batches(session):
        leaves: list[bytes] = []
        for row in batch:
            (seq, occurred, actor, role, session_hash, addr, action, object_type, object_id,
             outcome, purpose, details, request_id, nonce, stored, is_redacted) = row
            if seq != state.expected:
                seq = state.sequence(seq)
            else:
                state.expected = seq + 1
            if is_redacted:
                leaves.append(state.redacted(seq, row, stored))
                continue
            try:
                who_key = (actor, role, session_hash, addr)
                who = who_cache.get(who_key)
                if who is None:
                    if len(who_cache) > _CACHE_LIMIT:
                        who_cache.clear()
                    who = who_cache[who_key] = b"".join((
                        _enc_actor(actor), enc_str(role), enc_str(session_hash), enc_str(addr)))
                what_key = (action, object_type)
                what = what_cache.get(what_key)
                if what is None:
                    if len(what_cache) > _CACHE_LIMIT:
                        what_cache.clear()
                    what = what_cache[what_key] = enc_str(action) + enc_str(object_type)
                result_key = (outcome, purpose, details)
                result = result_cache.get(result_key)
                if result is None:
                    if len(result_cache) > _CACHE_LIMIT:
                        result_cache.clear()
                    result = result_cache[result_key] = (
                        enc_str(outcome) + enc_str(purpose) + enc_str(details))
                seq_raw = str(seq).encode()
                when = (f"{occurred[:10]}T{occurred[11:]}+00:00" if sqlite
                        else occurred + "+00:00").encode()
                leaf = sha256(b"".join((
                    b"\x00", int_headers[len(seq_raw)], seq_raw, _TIME_HEADER, when, who, what,
                    enc_str(object_id), result, enc_str(request_id), _NONCE_HEADER, nonce,
                ))).digest()
            except (TypeError, ValueError, AttributeError, UnicodeError, IndexError):
                leaf = b""
            if leaf != stored:
                leaf = state.slow(seq, stored)
            leaves.append(leaf)
        tree.extend(leaves)
        if progress is not None:
            progress(tree.size, total)
    return state


def _redaction_cover(session: Session) -> int:
    """The highest sequence number any recorded (unredacted) redaction authorised."""
    through = 0
    rows = session.scalars(
        select(AuditEvent.details).where(
            AuditEvent.action == "audit.redacted", AuditEvent.redacted_at.is_(None)
        )
    )
    for details in rows:
        try:
            value = json.loads(details or "{}").get("through_seq", 0)
        except (ValueError, AttributeError):
            continue
        if isinstance(value, int):
            through = max(through, value)
    return through


# --- checkpoints ----------------------------------------------------------------------------


@dataclass
class _Bracket:
    """Checkpoint sizes that agree with the recomputed tree, and those that do not."""

    matched_witnessed: set[int] = field(default_factory=set)
    matched_any: set[int] = field(default_factory=set)
    mismatched: list[tuple[int, str, str]] = field(default_factory=list)


def _open(note: str | bytes, verifier: Verifier, origin: str) -> Checkpoint:
    checkpoint = parse_checkpoint(open_note(note, [verifier]))
    if checkpoint.origin != origin:
        raise NoteError(f"checkpoint is for log {checkpoint.origin!r}, not {origin!r}")
    return checkpoint


def _check_against_tree(
    *,
    checkpoint: Checkpoint, label: str, kind: str, tree: MerkleLevels, current_root: bytes,
    report: Report, bracket: _Bracket,
) -> None:
    size = checkpoint.size
    if size > tree.size:
        report.add(Problem(
            "truncated",
            f"{label} covers {size} entries but the log has {tree.size}: entries after "
            f"{tree.size} were removed",
            tree.size + 1, size,
        ))
        return
    # The check a board member makes offline, with the proof the system would hand out.
    proof = tree.consistency_proof(size)
    if verify_consistency(size, tree.size, checkpoint.root, current_root, proof):
        bracket.matched_any.add(size)
        if kind == "witness":
            bracket.matched_witnessed.add(size)
    else:
        bracket.mismatched.append((size, kind, label))


def _check_checkpoints(
    session: Session,
    *, verifier: Verifier, origin: str, witnesses: Sequence[WitnessFile],
    tree: MerkleLevels, current_root: bytes, report: Report, bad_rows: list[int],
) -> None:
    bracket = _Bracket()
    for stored in session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.size)):
        report.checkpoints += 1
        label = f"stored checkpoint {stored.size}"
        try:
            checkpoint = _open(stored.note, verifier, origin)
        except NoteError as exc:
            report.add(Problem("checkpoint_invalid", f"{label}: {exc}"))
            continue
        if checkpoint.size != stored.size or checkpoint.root != stored.root:
            report.add(Problem("checkpoint_invalid",
                               f"{label}: the table columns differ from the signed note"))
        _check_against_tree(checkpoint=checkpoint, label=label, kind="stored", tree=tree,
                            current_root=current_root, report=report, bracket=bracket)
    for witness in witnesses:
        report.witnesses += 1
        label = f"witnessed checkpoint {witness.name}"
        try:
            checkpoint = _open(witness.content, verifier, origin)
        except NoteError as exc:
            report.add(Problem("witness_invalid", f"{label}: {exc}"))
            continue
        _check_against_tree(checkpoint=checkpoint, label=label, kind="witness", tree=tree,
                            current_root=current_root, report=report, bracket=bracket)

    ordered_bad = sorted(bad_rows)
    for size, kind, label in sorted(bracket.mismatched):
        # Only witnessed checkpoints are beyond the reach of someone holding the signing key,
        # so only they bound a rewrite found by a witness.
        trusted = bracket.matched_witnessed if kind == "witness" else bracket.matched_any
        lower = max((s for s in trusted if s < size), default=0)
        explained = next((s for s in ordered_bad if lower < s <= size), None)
        if explained is not None:
            report.add(Problem(
                "checkpoint_mismatch",
                f"{label} does not match the log (explained by entry {explained})",
            ))
            continue
        who = ("by someone holding the signing key: the stored checkpoints were re-signed"
               if kind == "witness" else "and the leaf hashes were recomputed to hide it")
        report.add(Problem(
            "checkpoint_mismatch",
            f"{label} does not match the log: entries between {lower + 1} and {size} were "
            f"rewritten {who}",
            lower + 1, size,
        ))


def _check_signoffs(session: Session, tree: MerkleLevels, report: Report) -> None:
    for signoff in session.scalars(select(AuditSignOff).order_by(AuditSignOff.id)):
        report.signoffs += 1
        if signoff.to_seq > tree.size:
            report.add(Problem("signoff_mismatch",
                               f"sign-off {signoff.id} covers entries missing from the log",
                               tree.size + 1, signoff.to_seq))
        elif tree.root(signoff.to_seq) != signoff.tree_root:
            report.add(Problem(
                "signoff_mismatch",
                f"sign-off {signoff.id} of entries {signoff.from_seq}..{signoff.to_seq} does not "
                "match the log as it is now",
            ))


# --- entry point ----------------------------------------------------------------------------


def verify_log(
    session: Session,
    *,
    verifier: Verifier,
    origin: str,
    witnesses: Iterable[WitnessFile] = (),
    progress: Callable[[int, int], None] | None = None,
) -> tuple[Report, MerkleLevels]:
    """Check everything; return the report and the recomputed tree (for proofs)."""
    report = Report()
    head = session.get(AuditHead, 1)
    report.head_size = head.size if head is not None else None
    total = report.head_size or 0
    tree = MerkleLevels()
    rows = _check_rows(session, report, tree, progress, total)
    bad_rows, redactions = rows.bad, rows.redactions
    report.size = tree.size
    report.root = tree.root()

    if report.head_size is None:
        report.add(Problem("no_head", "the sequence head row is missing"))
    elif report.head_size > tree.size:
        report.add(Problem("truncated", f"the head says {report.head_size} entries but the log "
                           f"ends at {tree.size}", tree.size + 1, report.head_size))
        bad_rows.append(tree.size + 1)
    elif report.head_size < tree.size:
        report.add(Problem("head_behind", f"the head says {report.head_size} entries but the "
                           f"log has {tree.size}", report.head_size + 1, tree.size))

    covered = _redaction_cover(session) if redactions.runs else 0
    for start, end in redactions.runs:
        if end > covered:
            first = max(start, covered + 1)
            report.add(Problem("unrecorded_redaction",
                               f"entries {first}..{end} are redacted without a recorded "
                               "redaction covering them", first, end))
            bad_rows.append(first)

    _check_checkpoints(session, verifier=verifier, origin=origin, witnesses=list(witnesses),
                       tree=tree, current_root=report.root, report=report, bad_rows=bad_rows)
    _check_signoffs(session, tree, report)
    return report, tree
