"""Property-based bad input over the board's audit forms (SECURITY.md B3, B4, B8): the filter
(query string) of the list and the print view, proofs, sign-offs and checkpoint sizes. Never a
500 or a traceback; a refused sign-off stores nothing."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from avhopp.audit import forms
from avhopp.audit.models import AuditSignOff
from tests.cases.test_forms_fuzz import FUZZ, VALUE, assert_sane, field_names
from tests.cases.test_views import logged_in
from tests.conftest import csrf_token


def signoffs(db: Any) -> int:
    db.rollback()
    count = db.scalar(select(func.count()).select_from(AuditSignOff)) or 0
    db.rollback()
    return count


def test_the_audit_forms_survive_arbitrary_input(app, db, clock):
    client, _member = logged_in(app, clock, "board")
    token = csrf_token(client, "/audit/signoffs")
    filters = [*field_names(app, forms.FilterForm), "before", "after"]
    posts = [("/audit/proof", field_names(app, forms.ProofForm)),
             ("/audit/signoffs", field_names(app, forms.SignOffForm)),
             ("/audit/export", filters)]

    @FUZZ
    @given(data=st.data())
    def send_anything(data: Any) -> None:
        kind = data.draw(st.sampled_from(["list", "print", "checkpoint", "post"]))
        if kind in ("list", "print"):
            values = {name: data.draw(VALUE, label=name) for name in filters}
            path = "/audit/" if kind == "list" else "/audit/print"
            response = client.get(f"{path}?{urlencode(values)}")
        elif kind == "checkpoint":
            size = data.draw(VALUE, label="size").replace("/", "")
            response = client.get(f"/audit/checkpoints/{size or 'x'}.txt")
        else:
            url, names = data.draw(st.sampled_from(posts))
            values = {name: data.draw(VALUE, label=name) for name in names}
            before = signoffs(db)
            response = client.post(url, data={"csrf_token": token, **values})
            if response.status_code != 302:
                assert signoffs(db) == before, url
        assert_sane(response)

    send_anything()
