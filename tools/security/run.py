"""`make security`: sqlmap and wapiti against a local gunicorn instance, logged in; writes docs/."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess  # nosec B404  we start our own programs with fixed argv
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.bench.run import commit  # noqa: E402
from tests.proof.harness import Browser, Instance, gunicorn, self_signed  # noqa: E402

REPORT = ROOT / "docs" / "security-scan.md"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
WAPITI_MODULES = ("sql,blindsql,exec,file,xss,permanentxss,redirect,crlf,ssrf,csrf,csp,"
                  "http_headers,cookieflags,methods,htaccess,backup,xxe")
# Findings reviewed and accepted, each with its reason (shown in the report; anything else
# fails the scan). Keyed by wapiti's category and its "info" text.
ACCEPTED = {
    ("HTTP Secure Headers", "X-XSS-Protection is not set"): (
        "we send `X-XSS-Protection: 0` on purpose; Debian's wapiti 3.0.4 wants a value "
        "with `1`. The header is obsolete (no current browser has the filter) and where a "
        "legacy browser still honours `1` the filter can be abused to remove legitimate "
        "scripts and to leak page content, so OWASP's Secure Headers project advises `0`; "
        "the protection is our CSP (`script-src 'self'`, no inline script)."),
}
# wapiti's crawl and each attack module are bounded (WAPITI_* in the environment to widen):
# with 17 modules the defaults keep a scan under about half an hour on this machine.
WAPITI_SCAN_SECONDS = int(os.environ.get("WAPITI_SCAN_SECONDS", "300"))
WAPITI_ATTACK_SECONDS = int(os.environ.get("WAPITI_ATTACK_SECONDS", "60"))
# One sqlmap target may not run longer than this (seen: one run spinning for 40 minutes after
# gunicorn timed out a worker that held its idle connection).
TARGET_TIMEOUT = 900
SQLMAP_FOUND = re.compile(r"sqlmap identified the following injection point|"
                          r"parameter '[^']+' is vulnerable", re.IGNORECASE)


def cookie_header(browser: Browser) -> str:
    handler = next(h for h in browser.opener.handlers if hasattr(h, "cookiejar"))
    return "; ".join(f"{c.name}={c.value}" for c in handler.cookiejar)


def sqlmap(target: dict[str, Any], base: str, cookie: str, out: Path) -> dict[str, Any]:
    # --text-only: sqlmap compares the pages' text. Every page carries fresh CSRF tokens (signed
    # with a timestamp), so no two answers are byte-identical, and sqlmap's search for the
    # dynamic parts of a track page (difflib over the whole HTML) ran at 100 % CPU for over
    # fifteen minutes; the tokens sit in attributes, which the text leaves out.
    args = ["sqlmap", "--batch", "--flush-session", "--level", "2", "--risk", "1", "--text-only",
            "--output-dir", str(out), "--cookie", cookie, "--disable-coloring",
            "--answers", "follow=N", "--timeout", "10", "-u", base + target["path"],
            # A browser's same-origin Referer: over HTTPS the CSRF check refuses POSTs without.
            "--referer", base + (target.get("csrf") or target["path"])]
    if target.get("data"):
        args += ["--data", target["data"]]
    if target.get("csrf"):
        args += ["--csrf-token", "csrf_token", "--csrf-url", base + target["csrf"]]
    started = time.monotonic()
    try:
        done = subprocess.run(args, capture_output=True, text=True, check=False,  # nosec B603
                              timeout=TARGET_TIMEOUT)
    except subprocess.TimeoutExpired as expired:
        # A run that never ends proves nothing: reported as unfinished, and the scan fails.
        return {"tool": "sqlmap", "target": target["name"], "found": False,
                "unfinished": True, "seconds": time.monotonic() - started, "exit": None,
                "tail": [str(expired)[:200]]}
    text = done.stdout + done.stderr
    found = bool(SQLMAP_FOUND.search(text))
    return {"tool": "sqlmap", "target": target["name"], "found": found,
            "seconds": time.monotonic() - started, "exit": done.returncode,
            "tail": [line for line in text.splitlines() if "[CRITICAL]" in line
                     or "[WARNING]" in line][-3:]}


def wapiti(base: str, cookie: str, out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    report = out / "wapiti.json"
    # Debian's wapiti breaks on `-x` under Python 3.11; the wrapper fixes that one function.
    args = ["/usr/bin/python3", str(ROOT / "tools/security/wapiti_py311.py"), "-u", base + "/",
            "--scope", "folder", "-m", WAPITI_MODULES,
            "-H", f"Cookie: {cookie}", "-H", f"Referer: {base}/",
            "-x", base + "/logout", "-x", base + "/account/*",
            "--flush-session", "--max-scan-time", str(WAPITI_SCAN_SECONDS),
            "--max-attack-time", str(WAPITI_ATTACK_SECONDS),
            "-f", "json", "-o", str(report), "--store-session", str(out / "session")]
    started = time.monotonic()
    done = subprocess.run(args, capture_output=True, text=True, check=False)  # nosec B603
    data = json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}
    findings: dict[str, list[Any]] = {}
    accepted: list[tuple[str, str, str]] = []
    for category, items in data.get("vulnerabilities", {}).items():
        for item in items or []:
            reason = ACCEPTED.get((category, item.get("info", "")))
            if reason is None:
                findings.setdefault(category, []).append(item)
            else:
                accepted.append((category, f"{item.get('method')} {item.get('path')}: "
                                 f"{item.get('info')}", reason))
    anomalies = {k: v for k, v in data.get("anomalies", {}).items() if v}
    return {"tool": "wapiti", "target": "crawl of the logged-in app", "found": bool(findings),
            "anomalies": anomalies, "findings": findings, "accepted": accepted,
            "seconds": time.monotonic() - started, "exit": done.returncode,
            **crawl_counts(out / "session"),
            "tail": (done.stdout + done.stderr).strip().splitlines()[-3:]}


def crawl_counts(session_dir: Path) -> dict[str, int]:
    """Pages and forms wapiti crawled and how many it attacked (its own session database:
    its JSON report does not list them)."""
    counts = {"crawled": 0, "attacked": 0}
    for db in session_dir.glob("*.db"):
        with closing(sqlite3.connect(db)) as conn:
            counts["crawled"] += conn.execute(
                "SELECT count(*) FROM paths WHERE evil = 0 AND headers IS NOT NULL").fetchone()[0]
            counts["attacked"] += conn.execute(
                "SELECT count(DISTINCT path_id) FROM attack_log").fetchone()[0]
    return counts


def main() -> int:
    for tool in ("sqlmap", "wapiti"):
        if shutil.which(tool) is None:
            print(f"{tool} is not installed (make security installs it with apt)")
            return 1
    work = Path(tempfile.mkdtemp(prefix="avhopp-security-"))
    instance = Instance(work, "sqlite", PG_ADMIN)
    # As in production: HTTPS (a throw-away certificate), so `__Host-` cookies, Secure and HSTS.
    instance.env["AVHOPP_HTTPS"] = "true"
    results: list[dict[str, Any]] = []
    try:
        instance.create(tracks=3, users=1)
        account = instance.plan["users"][0]
        track = account["tracks"][0]
        # gthread workers: in production a reverse proxy terminates TLS and holds idle client
        # connections; here gunicorn does, and a sync worker blocked on a scanner's idle
        # keep-alive connection is killed at its timeout, which left sqlmap spinning (twice).
        with gunicorn(instance, workers=2, tls=self_signed(work), threads=4) as (base, _server):
            browser = Browser(base)
            browser.login(account)
            cookie = cookie_header(browser)
            targets = [
                {"name": "GET /tracks/mine (filter, sort, page)",
                 "path": "/tracks/mine?status=active&risk_level=high&sort=code&direction=asc"
                         "&page=1"},
                {"name": "GET /tracks/search?code=", "path": "/tracks/search?code=AB12CD"},
                {"name": "POST /tracks/search (personnummer, phone, e-mail)",
                 "path": "/tracks/search", "csrf": "/tracks/search",
                 "data": "csrf_token=x&personnummer=19800101-0000&phone=0701234567"
                         "&email=a%40example.se"},
                {"name": "POST /tracks/<id>/journal", "path": f"/tracks/{track}/journal",
                 "csrf": f"/tracks/{track}",
                 "data": "csrf_token=x&occurred_at=2026-11-20T10%3A00&contact_type=phone"
                         "&contact_achieved=y&duration_minutes=15&participants=x&note=x"
                         "&sensitivity=normal"},
                {"name": "POST /tracks/<id>/content (purpose)",
                 "path": f"/tracks/{track}/content", "csrf": f"/tracks/{track}",
                 "data": "csrf_token=x&purpose=casework"},
            ]
            for target in targets:
                print(f"sqlmap: {target['name']}", flush=True)
                results.append(sqlmap(target, base, cookie, work / "sqlmap"))
            print("wapiti: crawl and attack", flush=True)
            results.append(wapiti(base, cookie, work / "wapiti"))
        verify = instance.cli("audit", "verify", check=False)
    finally:
        instance.drop()
        shutil.rmtree(work, ignore_errors=True)
    write_report(results, verify.returncode == 0)
    for r in results:
        print(f"{r['tool']:7} {r['target']:55} {'FINDINGS' if r['found'] else 'clean'} "
              f"({r['seconds']:.0f} s)")
    bad = any(r["found"] or r.get("anomalies") or r.get("unfinished") for r in results) \
        or verify.returncode != 0
    return 1 if bad else 0


def write_report(results: list[dict[str, Any]], verified: bool) -> None:
    versions = []
    for tool in (["sqlmap", "--version"], ["wapiti", "--version"]):
        done = subprocess.run(tool, capture_output=True, text=True, check=False)  # nosec
        found = re.search(r"(\d+\.\d+[.\d]*)", done.stdout + done.stderr)
        versions.append(f"{tool[0]} {found.group(1) if found else '(version unknown)'}")
    lines = [
        "# Security scan", "",
        "Written by `make security` (`python -m tools.security.run`); do not edit by hand.", "",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; commit {commit()}; tools: "
        f"{', '.join(versions)} (Debian packages)",
        "- Target: gunicorn (2 gthread workers, 4 threads each) over HTTPS (a throw-away "
        "self-signed certificate; `HTTPS = true` as in production) on a scratch SQLite "
        "instance with synthetic tracks, "
        "logged in as a support worker on the tracks' team (password + TOTP); CSRF tokens "
        "fetched per request by sqlmap (`--csrf-token`); sqlmap compares the pages' text "
        "(`--text-only`: every answer carries fresh CSRF tokens).",
        f"- wapiti modules: `{WAPITI_MODULES}`; crawl at most {WAPITI_SCAN_SECONDS} s, each "
        f"attack module at most {WAPITI_ATTACK_SECONDS} s.",
        f"- Audit chain after the scan: {'verifies' if verified else 'DOES NOT VERIFY'}.", "",
        "| Tool | Target | Result | Time |", "|---|---|---|---|",
    ]
    for r in results:
        result = "**findings**" if r["found"] else "no findings"
        if r.get("unfinished"):
            result = f"**unfinished** (stopped after {TARGET_TIMEOUT} s)"
        if r.get("anomalies"):
            result += f"; anomalies: {', '.join(r['anomalies'])}"
        if r["tool"] == "wapiti":
            result += (f" ({r.get('crawled', 0)} pages and forms crawled, "
                       f"{r.get('attacked', 0)} attacked)")
            if r.get("accepted"):
                result += f"; {len(r['accepted'])} reviewed and accepted (below)"
        lines.append(f"| {r['tool']} | {r['target']} | {result} | {r['seconds']:.0f} s |")
    for r in results:
        if r.get("accepted"):
            lines += ["", f"## {r['tool']}: reviewed and accepted", ""]
            lines += [f"- {category}, {where}. Why: {reason}"
                      for category, where, reason in r["accepted"]]
    for r in results:
        if r.get("findings"):
            lines += ["", f"## {r['tool']} findings", "", "```",
                      json.dumps(r["findings"], indent=1, ensure_ascii=False)[:5000], "```"]
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
