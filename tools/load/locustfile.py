"""Locust user for `make load`: a support worker's realistic mix of reads, searches and writes."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import random
import re
import threading
import time
from pathlib import Path

import pyotp
from locust import FastHttpUser, constant_throughput, task

with open(os.environ["LOAD_PLAN"], encoding="utf-8") as _fh:
    PLAN = json.load(_fh)
_next_user = itertools.count()
_logged_in = itertools.count(1)
# The figures are the steady state: statistics are reset once every user has logged in (the
# 30 logins at production argon2 cost take the workers several seconds), and the time of that
# reset is written to LOAD_MARK so the runner measures the server's CPU from then on too.
USERS = int(os.environ.get("LOAD_CLIENTS", "30"))
MARK = os.environ.get("LOAD_MARK")
# Offered load: each simulated user starts a task at this steady rate whatever the answers take
# (an open model). With think times instead, 20 users could never reach 150 requests/s unless
# every answer took under 8 ms, so the target would measure the generator, not the server.
TASKS_PER_SECOND = float(os.environ.get("LOAD_TASKS_PER_USER_SECOND", "4"))
_lock = threading.Lock()
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                  r'name="csrf_token" value="([^"]+)"')


def csrf(html: str) -> str:
    match = CSRF.search(html)
    if not match:
        raise RuntimeError("no CSRF token on the page")
    return match.group(1) or match.group(2)


class SupportWorker(FastHttpUser):
    # geventhttpclient, not requests: the generator shares the 2 cores with the server, and
    # the requests-based user cost about 4 ms of CPU per request against ~1 ms for this one.
    wait_time = constant_throughput(TASKS_PER_SECOND)

    def on_start(self) -> None:
        with _lock:
            self.account = PLAN["users"][next(_next_user) % len(PLAN["users"])]
        self.rng = random.Random(self.account["username"])  # noqa: S311  # nosec B311  load mix
        page = self.client.get("/login", name="login form")
        self.client.post("/login", name="login password", data={
            "csrf_token": csrf(page.text), "username": self.account["username"],
            "password": self.account["password"]})
        page = self.client.get("/login/code", name="login form")
        code = pyotp.TOTP(self.account["totp"]).now()
        done = self.client.post("/login/code", name="login code",
                                data={"csrf_token": csrf(page.text), "code": code})
        if "/login" in done.url:
            raise RuntimeError(f"login failed for {self.account['username']}")
        if next(_logged_in) == USERS:
            self.environment.stats.reset_all()
            if MARK:
                Path(MARK).write_text(str(time.time()), encoding="utf-8")

    def _track(self) -> str:
        return self.rng.choice(self.account["tracks"])

    @task(30)
    def my_tracks(self) -> None:
        self.client.get("/tracks/mine", name="/tracks/mine")

    @task(10)
    def my_tracks_filtered(self) -> None:
        self.client.get("/tracks/mine?status=active&sort=code&direction=asc",
                        name="/tracks/mine?filter")

    @task(35)
    def track_page(self) -> None:
        self.client.get(f"/tracks/{self._track()}", name="/tracks/<id>")

    @task(10)
    def journal_write(self) -> None:
        track = self._track()
        page = self.client.get(f"/tracks/{track}", name="/tracks/<id>")
        # The form takes local time; the server and this generator share a clock and zone.
        when = dt.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M")
        with self.client.post(f"/tracks/{track}/journal", name="/tracks/<id>/journal", data={
                "csrf_token": csrf(page.text), "occurred_at": when, "contact_type": "phone",
                "contact_achieved": "y", "duration_minutes": "15",
                "note": "Lasttest: samtal om veckans planering.", "sensitivity": "normal"},
                catch_response=True, allow_redirects=False) as response:
            # A saved entry redirects back to the track page; a re-rendered form is a failure.
            if response.status_code not in (302, 303):
                response.failure("journal entry not saved")
                return
        # The browser follows the redirect: one more track page, counted as one.
        self.client.get(f"/tracks/{track}", name="/tracks/<id>")

    @task(10)
    def search(self) -> None:
        page = self.client.get("/tracks/search", name="/tracks/search")
        number = self.rng.choice(PLAN["personnummer"])
        self.client.post("/tracks/search", name="/tracks/search POST",
                         data={"csrf_token": csrf(page.text), "personnummer": number})

    @task(5)
    def start_page(self) -> None:
        self.client.get("/", name="/")
