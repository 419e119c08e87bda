"""Writes commit with their audit entry or not at all (SECURITY.md R6), over HTTP and in the
services; and the new audit actions keep to their detail allow-lists."""

from __future__ import annotations

import re
from typing import Any

import pytest

from avhopp.accounts import services as account_services
from avhopp.audit import services
from avhopp.db import get_database
from tests.conftest import audit_actions, csrf_token, login, make_user, user_row

VERSION_RE = re.compile(r'name="version" type="hidden" value="(\d+)"')


def broken_record(*_args: Any, **_kwargs: Any) -> Any:
    raise services.AuditError("the audit log cannot be written (disk full)")


def test_a_failing_audit_write_rolls_back_a_role_change_over_http(
    app: Any, client: Any, db: Any, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = make_user(app, role="admin")
    member = make_user(app, role="support_worker")
    login(client, admin, clock)
    path = f"/admin/users/{member.id}"
    version = VERSION_RE.search(client.get(path).get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    token = csrf_token(client, path)
    before = len(audit_actions(db))
    db.rollback()

    monkeypatch.setattr(account_services, "record", broken_record)
    response = client.post(f"{path}/role", data={"csrf_token": token, "version": version,
                                                  "role": "coordinator"})

    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "Traceback" not in body
    assert "disk full" not in body
    assert re.search(r'class="code">[0-9a-f]{12}<', body)  # the incident id
    assert user_row(db, member.id).role == "support_worker"
    db.rollback()
    assert len(audit_actions(db)) == before
    db.rollback()


def test_a_failing_audit_write_rolls_back_a_service_change(app: Any, db: Any) -> None:
    member = make_user(app, role="support_worker")
    original = account_services.record
    try:
        account_services.record = broken_record  # type: ignore[assignment]
        with pytest.raises(services.AuditError), get_database(app).scope() as session:
            account_services.change_role(session, actor=None, user_id=member.id,
                                         role="coordinator")
    finally:
        account_services.record = original  # type: ignore[assignment]
    assert user_row(db, member.id).role == "support_worker"


@pytest.mark.parametrize(("action", "details"), [
    ("audit.viewed", {"page": "events", "name": "Anna"}),
    ("audit.exported", {"kind": "csv", "query": "x"}),
    ("audit.signed_off", {"from_seq": 1, "comment": "ok"}),
    ("audit.redacted", {"count": 1, "person": "x"}),
    ("audit.verified", {"result": "ok", "note": "x"}),
])
def test_audit_actions_refuse_details_outside_their_allow_list(
    app: Any, action: str, details: dict[str, Any]
) -> None:
    with pytest.raises(services.AuditError, match="not allowed"), \
            get_database(app).scope() as session:
        services.record(session, action=action, details=details)


def test_the_catalogue_holds_the_audit_log_actions() -> None:
    assert {"audit.checkpoint_signed", "audit.viewed", "audit.exported", "audit.verified",
            "audit.signed_off", "audit.redacted"} <= set(services.ACTIONS)
