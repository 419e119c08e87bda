"""Browser fixtures: the app served on a loopback port from a background thread, Debian's
chromium driven by Playwright, and a page that records console errors and takes screenshots.

No browser is ever downloaded: Playwright drives /usr/bin/chromium (`.ci/run` installs it with
apt). When the browser cannot start, the tests fail; they never skip."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright
from werkzeug.serving import WSGIRequestHandler, make_server

from avhopp.app import create_app
from avhopp.db import get_database, utcnow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    # Without these chromium tries to reach Google's services and is refused.
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"
TIMEOUT_MS = 15_000


class QuietHandler(WSGIRequestHandler):
    """No access log lines: they would bury a failing test's own output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@dataclass
class LiveServer:
    app: Any
    url: str


@contextmanager
def serve(app: Any) -> Iterator[LiveServer]:
    """Serve `app` on 127.0.0.1 and a free port from a background thread until the block ends;
    the app's engine is disposed after."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="e2e-live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        get_database(app).engine.dispose()


@pytest.fixture
def live_server(app_overrides: dict[str, Any]) -> Iterator[LiveServer]:
    """The app with the real clock (TOTP codes are computed at real time), served until the
    test ends."""
    with serve(create_app({**app_overrides, "CLOCK": utcnow})) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    manager = sync_playwright().start()
    try:
        try:
            launched = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS,
                                               timeout=30_000)
        except Exception as exc:
            pytest.fail(
                f"Chromium could not be started from {CHROMIUM}: {exc}\n"
                "The browser tests need Debian's chromium package (`apt-get install chromium`; "
                ".ci/run does this). They never download a browser and never skip.",
                pytrace=False)
        yield launched
        launched.close()
    finally:
        manager.stop()


@dataclass
class Visit:
    """One browser tab of a test: console errors and failed requests are collected, and every
    screenshot is saved under test-artifacts/e2e/<test>/."""

    page: Page
    base_url: str
    folder: Path
    errors: list[str] = field(default_factory=list)
    shots: int = 0

    def goto(self, path: str) -> Any:
        return self.page.goto(self.base_url + path)

    def shot(self, name: str) -> None:
        self.shots += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(self.folder / f"{self.shots:02d}-{name}.png"),
                             full_page=True)

    def assert_no_errors(self) -> None:
        assert not self.errors, "console errors or CSP violations:\n" + "\n".join(self.errors)


@pytest.fixture
def visit_factory(browser: Browser, live_server: LiveServer,
                  request: pytest.FixtureRequest) -> Iterator[Any]:
    """Open a fresh browser context (own cookies) per call: visit_factory('coordinator')."""
    contexts = []
    test_name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name).strip("_")

    def open_visit(who: str) -> Visit:
        context = browser.new_context(locale="sv-SE", timezone_id="Europe/Stockholm",
                                      viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        visit = Visit(page, live_server.url, ARTIFACTS / test_name / who)

        def on_console(message: ConsoleMessage) -> None:
            source = message.location.get("url", "")
            if message.type == "error":
                visit.errors.append(f"{message.text} (page {page.url}, source {source})")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: visit.errors.append(f"pageerror: {exc} ({page.url})"))
        return visit

    yield open_visit
    for context in contexts:
        context.close()
