"""CSV import: dry run validates every row with errors by line and column; one bad row means
nothing is imported; a good file imports every row through the intake services."""

from __future__ import annotations

from sqlalchemy import func, select

from avhopp.casework.models import Consent, Track
from tests.conftest import audit_actions, make_user
from tests.privacy.conftest import run_cli

HEADER = ("namn;tilltalsnamn;personnummer;telefon;epost;inkom_via;kommun;ansvarig;status;"
          "oppnat;avslutat;avslutsorsak;miljo;samtycke_form;samtycke_statistik;samtycke_kansliga")


def _file(tmp_path, owner, rows):
    lines = [HEADER] + [r.replace("OWNER", owner) for r in rows]
    path = tmp_path / "import.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


GOOD = [
    "Anna Test;Anna;19900101-0017;070-174 06 50;anna@example.com;self;0180;OWNER;active;"
    "2025-03-01;;;white_power;skriftligt;ja;ja",
    "Bo Test;;;;;police;1280;OWNER;closed;2024-01-10;2025-06-30;goal_reached;;muntligt;nej;",
    "Cia Test;;;;;school;;OWNER;intake;2026-10-01;;;;skriftligt;;",
]


def _count(db):
    n = db.scalar(select(func.count()).select_from(Track))
    db.rollback()
    return n


def test_a_good_file_imports_every_row_and_a_dry_run_imports_none(app, db, tmp_path):
    coordinator = make_user(app, role="coordinator")
    owner = make_user(app, role="support_worker")
    path = _file(tmp_path, owner.username, GOOD)
    dry = run_cli(app, "import", "tracks", str(path), "--as", coordinator.username, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "all 3 rows are valid" in dry.output
    assert _count(db) == 0
    done = run_cli(app, "import", "tracks", str(path), "--as", coordinator.username)
    assert done.exit_code == 0, done.output
    assert _count(db) == 3
    closed = db.scalars(select(Track).where(Track.status == "closed")).one()
    assert closed.closure_reason == "goal_reached" and closed.retention_until is not None
    assert db.scalar(select(func.count()).select_from(Consent).where(
        Consent.consent_type == "statistics")) == 1
    assert db.scalar(select(func.count()).select_from(Consent).where(
        Consent.consent_type == "special_category")) == 1
    results = [d for a, _o, d in audit_actions(db) if a == "import.tracks"]
    assert [r["dry_run"] for r in results] == [True, False]
    db.rollback()


def test_one_bad_row_imports_nothing_and_every_error_names_line_and_column(app, db, tmp_path):
    coordinator = make_user(app, role="coordinator")
    owner = make_user(app, role="support_worker")
    bad = [*GOOD,
           "Dan Test;;19900101-0018;;not-an-email;martians;12;nobody;closed;2026-13-01;;;;"
           "skriftligt;kanske;",
           "Eva Test;;;;;self;;OWNER;intake;2026-10-01;;;white_power;skriftligt;;nej"]
    path = _file(tmp_path, owner.username, bad)
    for args in ((), ("--dry-run",)):
        result = run_cli(app, "import", "tracks", str(path), "--as", coordinator.username,
                         *args)
        assert result.exit_code != 0
        assert "nothing was imported" in result.output
        for column in ("personnummer", "epost", "inkom_via", "kommun", "ansvarig", "oppnat",
                       "avslutat", "avslutsorsak", "samtycke_statistik"):
            assert f"line 5, column {column}:" in result.output, (column, result.output)
        # Environment is special-category data: refused without that consent.
        assert "line 6, column samtycke_kansliga: required_for_background" in result.output
        assert "line 2" not in result.output
    assert _count(db) == 0
    assert not [d for a, _o, d in audit_actions(db) if a == "track.opened"]
    db.rollback()


def test_a_file_with_missing_columns_or_not_utf8_is_refused_clearly(app, db, tmp_path):
    coordinator = make_user(app, role="coordinator")
    path = tmp_path / "x.csv"
    path.write_text("namn;telefon\nA;1\n", encoding="utf-8")
    result = run_cli(app, "import", "tracks", str(path), "--as", coordinator.username)
    assert result.exit_code != 0 and "line 1, column inkom_via: missing_column" in result.output
    path.write_bytes(HEADER.encode() + b"\n\xff\xfe;;\n")
    result = run_cli(app, "import", "tracks", str(path), "--as", coordinator.username)
    assert result.exit_code != 0 and "not_utf8" in result.output
    assert _count(db) == 0
