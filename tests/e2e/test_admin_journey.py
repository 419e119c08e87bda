"""An administrator's day in a real browser: log in with 2FA, create an account (the one-time
password shown works at the new person's first login), reset a colleague's two-step
verification (their next login asks them to set it up again), and rotate the key-encryption
key. Key rotation has no page: it is the `avhopp keys` commands, driven here through the CLI
runner against the same database and key file, after which a restarted app still reads the
track in the browser. Screenshots under test-artifacts/e2e/."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.cli import ScriptInfo
from playwright.sync_api import expect
from sqlalchemy import select

from avhopp.accounts.models import User
from avhopp.app import create_app
from avhopp.casework import services as casework
from avhopp.cli import main
from avhopp.crypto.keyring import generate_key_file, load_key_file, write_key_file
from avhopp.db import get_database, utcnow
from tests.casework.helpers import open_defector
from tests.conftest import audit_actions, make_user
from tests.e2e.conftest import LiveServer, Visit, serve
from tests.e2e.test_coordinator_journey import log_in, show_content

pytestmark = pytest.mark.e2e

PERSON = "Nyckel Rotationsson"


@pytest.fixture
def app_overrides(app_overrides: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """Keys from a key file, as in production (the `avhopp keys` commands refuse keys given in
    the environment)."""
    key_file = tmp_path / "keys.json"
    write_key_file(key_file, generate_key_file())
    return {**app_overrides, "KEYS": "", "KEY_FILE": str(key_file)}


def cli(app: Any, *args: str) -> str:
    result = CliRunner().invoke(main, list(args), obj=ScriptInfo(create_app=lambda: app))
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result.output


def first_login(visit: Visit, username: str, password: str) -> None:
    """Password step only: someone without two-step verification is sent to set it up."""
    page = visit.page
    visit.goto("/login")
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(password)
    page.get_by_role("button", name="Fortsätt").click()
    expect(page.locator("h1")).to_have_text("Aktivera tvåstegsverifiering")


def test_admin_creates_an_account_resets_2fa_and_rotates_the_key(
    live_server: LiveServer, visit_factory: Any, app_overrides: dict[str, Any]
) -> None:
    app = live_server.app
    admin = make_user(app, role="admin")
    colleague = make_user(app, role="support_worker")
    coordinator = make_user(app, role="coordinator")
    session = get_database(app).factory()
    try:
        track = open_defector(session, coordinator, now=utcnow(),
                              person=casework.PersonInput(name=PERSON))
        track_id, code = str(track.id), track.code
    finally:
        session.close()

    visit = visit_factory("admin")
    page = visit.page
    log_in(visit, admin)

    # A new account: the one-time password is shown once.
    page.get_by_role("link", name="Personalkonton").click()
    expect(page.locator("h1")).to_have_text("Personalkonton")
    expect(page.get_by_role("link", name=colleague.username)).to_be_visible()
    visit.shot("accounts")
    page.get_by_role("link", name="Nytt konto").click()
    expect(page.locator("h1")).to_have_text("Nytt konto")
    newcomer = f"ny.medarbetare.{uuid.uuid4().hex[:6]}"
    page.locator("input[name=username]").fill(newcomer)
    page.locator("select[name=role]").select_option("support_worker")
    visit.shot("new-account")
    page.get_by_role("button", name="Skapa konto").click()
    expect(page.locator("h1")).to_have_text(f"Engångslösenord för {newcomer}")
    one_time = page.locator("code.secret").inner_text().strip()
    assert len(one_time) >= 12
    visit.shot("one-time-password")

    # The newcomer's first login with it goes on to setting up two-step verification.
    newcomer_visit = visit_factory("newcomer")
    first_login(newcomer_visit, newcomer, one_time)
    newcomer_visit.shot("enrol")
    newcomer_visit.assert_no_errors()

    # Reset a colleague's two-step verification (a lost phone).
    page.get_by_role("link", name="Personalkonton").click()
    expect(page.get_by_role("link", name=newcomer)).to_be_visible()
    page.get_by_role("link", name=colleague.username).click()
    expect(page.locator("h1")).to_have_text(colleague.username)
    facts = page.locator("dl.facts")
    expect(facts).to_contain_text("Tvåstegsverifiering")
    expect(facts.locator("dt:has-text('Tvåstegsverifiering') + dd")).to_have_text("På")
    visit.shot("colleague")
    page.get_by_role("button", name="Återställ tvåstegsverifiering").click()
    expect(page.locator(".notice-success")).to_have_text("Kontot har uppdaterats.")
    expect(facts.locator("dt:has-text('Tvåstegsverifiering') + dd")).to_have_text(
        "Inte konfigurerad")
    expect(page.get_by_role("button", name="Återställ tvåstegsverifiering")).to_have_count(0)
    visit.shot("2fa-reset")
    colleague_visit = visit_factory("colleague")
    first_login(colleague_visit, colleague.username, colleague.password)
    colleague_visit.shot("enrol-again")
    visit.assert_no_errors()

    # Key rotation (command line only): add a KEK, restart, re-wrap every data key, retire the
    # old KEK, restart again.
    key_file = Path(app_overrides["KEY_FILE"])
    old_kek = load_key_file(key_file, require_private_mode=True)["active_kek"]
    added = cli(app, "keys", "add-kek")
    new_kek = load_key_file(key_file, require_private_mode=True)["active_kek"]
    assert new_kek != old_kek and new_kek in added
    restarted = create_app({**app_overrides, "CLOCK": utcnow})
    try:
        rotated = cli(restarted, "keys", "rotate-kek", "--batch-size", "1")
        assert re.search(rf"re-wrapped [1-9]\d* data keys under {new_kek}", rotated), rotated
        cli(restarted, "keys", "retire-kek", old_kek)
    finally:
        get_database(restarted).engine.dispose()
    assert old_kek not in load_key_file(key_file, require_private_mode=True)["keks"]

    with serve(create_app({**app_overrides, "CLOCK": utcnow})) as after:
        status = cli(after.app, "keys", "status")
        assert old_kek not in status and re.search(rf"{new_kek}\s+active", status), status
        reader = visit_factory("coordinator-after-rotation")
        reader.base_url = after.url
        log_in(reader, coordinator)
        reader.goto(f"/tracks/{track_id}")
        expect(reader.page.locator("h1 .code")).to_have_text(code)
        show_content(reader)
        expect(reader.page.locator("section[aria-labelledby=person-heading]")).to_contain_text(
            PERSON)
        reader.shot("track-after-rotation")
        reader.assert_no_errors()

    with get_database(app).scope() as session:
        created = session.scalars(select(User).where(User.username == newcomer)).one()
        assert (created.role, created.must_change_password, created.has_totp) == (
            "support_worker", True, False)
        actions = audit_actions(session)
    names = [a for a, _o, _d in actions]
    assert names.count("user.created") == 4  # three arranged here, one made in the browser
    assert names.count("user.totp_reset") == 1
    assert {"key.kek_added", "key.kek_rotated", "key.kek_retired"} <= set(names)
