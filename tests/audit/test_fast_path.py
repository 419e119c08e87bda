"""The verifier's fast row encoding equals the reference (models.entry_fields + encode_entry)
for every kind of row the app writes, on both engines, without falling back to the slow path."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from avhopp.audit import services, verify
from avhopp.audit.merkle import encode_entry
from avhopp.audit.services import AuditContext, reset_context, set_context
from avhopp.db import get_database
from tests.audit.conftest import settings


@given(st.one_of(st.none(), st.text(max_size=400)))
def test_string_field_encoding_matches_the_reference(value: str | None) -> None:
    try:
        expected = encode_entry([value])
    except UnicodeEncodeError:
        return  # lone surrogates never come out of a database
    assert verify._enc_str(value) == expected


def test_actor_encoding_matches_the_reference() -> None:
    actor = uuid.uuid4()
    assert verify._enc_actor(actor.hex) == encode_entry([str(actor)])
    assert verify._enc_actor(str(actor)) == encode_entry([str(actor)])
    assert verify._enc_actor(None) == encode_entry([None])


def test_varied_rows_verify_on_the_fast_path(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    staff = type("Staff", (), {"id": uuid.uuid4(), "role": "support_worker"})()
    token = set_context(AuditContext(client_addr="2001:db8::1", session_hash="ab" * 16,
                                     request_id="0123456789abcdef"))
    try:
        with get_database(app).scope() as session:
            services.record(session, action="user.created", actor=staff, object_type="user",
                            object_id="AV-ÅÄÖ-7KQ2M", purpose="review",
                            details={"role": "board"},
                            now=dt.datetime(2026, 3, 29, 0, 59, 59, 999999, tzinfo=dt.UTC))
            services.record(session, action="auth.logout",
                            now=dt.datetime(2026, 10, 25, 1, 0, tzinfo=dt.UTC))
            services.record(session, action="security.access_denied", outcome="denied",
                            details={"endpoint": "x" * 64, "permission": "audit.review"})
    finally:
        reset_context(token)

    def no_slow_path(*_args: Any) -> bytes:
        raise AssertionError("the fast path disagreed with the reference encoding")

    monkeypatch.setattr(verify, "_reference_leaf", no_slow_path)
    audit = settings(app)
    with get_database(app).scope() as session:
        report, _tree = verify.verify_log(
            session, verifier=audit.verifier(app.extensions["avhopp.keys"]), origin=audit.origin)
    assert report.ok, report.problems
    assert report.size == 3
