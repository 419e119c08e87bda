"""Property-based CSV import: whatever the file holds, the command answers with a clear result
(never a traceback) and imports either every row or none."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from avhopp.casework.models import Track
from tests.conftest import make_user
from tests.privacy.conftest import run_cli
from tests.privacy.test_import import HEADER

CELLS = st.one_of(
    st.sampled_from(["", "ja", "nej", "self", "police", "active", "closed", "intake",
                     "2025-03-01", "2026-13-01", "19900101-0017", "19900101-0018",
                     "070-174 06 50", "a@example.com", "not-an-email", "0180", "white_power",
                     "skriftligt", "muntligt", "goal_reached", "OWNER", "nobody"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30),
)
ROW = st.lists(CELLS, min_size=0, max_size=18).map(";".join)


def _count(db: Any) -> int:
    n = int(db.scalar(select(func.count()).select_from(Track)))
    db.rollback()
    return n


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(file=st.tuples(st.lists(ROW, min_size=1, max_size=4), st.booleans(),
                     st.binary(max_size=40)))
def test_any_csv_file_imports_all_rows_or_none_and_never_a_traceback(app, db, tmp_path, file):
    rows, header_ok, raw = file
    coordinator = make_user(app, role="coordinator")
    owner = make_user(app, role="support_worker")
    body = "\n".join(r.replace("OWNER", owner.username) for r in rows)
    data = ((HEADER + "\n") if header_ok else "").encode() + body.encode() + b"\n" + raw
    path = tmp_path / "fuzz.csv"
    path.write_bytes(data)
    before = _count(db)
    result = run_cli(app, "import", "tracks", str(path), "--as", coordinator.username)
    after = _count(db)
    assert result.exit_code in (0, 1), result.output
    if result.exit_code == 0:
        assert after - before >= 1 and "imported" in result.output
    else:
        assert after == before, "a refused file must import nothing"
        assert "nothing was imported" in result.output or "not an active" in result.output, \
            result.output
