"""`make load`: gunicorn (4 workers) on SQLite and PostgreSQL under a locust mix; writes docs/."""

from __future__ import annotations

import csv
import datetime as dt
import os
import resource
import shutil
import signal
import socket
import subprocess  # nosec B404  the harness starts our own programs with fixed argv
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REPORT = ROOT / "docs" / "load-test.md"
TRACKS = int(os.environ.get("LOAD_TRACKS", "10000"))
USERS = int(os.environ.get("LOAD_USERS", "30"))
PER_USER = int(os.environ.get("LOAD_TRACKS_PER_USER", "40"))
CLIENTS = int(os.environ.get("LOAD_CLIENTS", "30"))
# Tasks each simulated user starts per second (an open model; see the locustfile). A task is
# 1.3 requests on average (a journal write is three, a search two), so 30 users at 4 offer
# about 156 requests/s, just above the target.
TASKS_PER_USER_SECOND = float(os.environ.get("LOAD_TASKS_PER_USER_SECOND", "4"))
REQUESTS_PER_TASK = 1.3
SECONDS = int(os.environ.get("LOAD_SECONDS", "60"))
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
TARGET_RPS, TARGET_P95 = 150.0, 100.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sh(args: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    return subprocess.run(args, env=env, cwd=ROOT, check=True, **kw)  # nosec B603


def pg(sql: str) -> None:
    subprocess.run(["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres",  # nosec
                    "-qc", sql], check=True, capture_output=True)


def wait_ready(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("gunicorn exited before it served a request")
        try:
            with urllib.request.urlopen(url + "/login", timeout=2):  # noqa: S310  # nosec B310
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit("gunicorn did not answer within a minute")


def run_engine(engine: str, work: Path) -> dict[str, object]:
    env = dict(os.environ, AVHOPP_ENV="development", AVHOPP_INSTANCE_PATH=str(work),
               AVHOPP_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    dbname = None
    if engine == "postgresql":
        dbname = f"avhopp_load_{uuid.uuid4().hex[:8]}"
        pg(f'CREATE DATABASE "{dbname}"')
        env["AVHOPP_DATABASE_URL"] = f"postgresql+psycopg://postgres@127.0.0.1:5432/{dbname}"
    try:
        sh([str(BIN / "avhopp"), "init-dev"], env, capture_output=True)
        sh([str(BIN / "avhopp"), "db", "upgrade"], env, capture_output=True)
        plan = work / "plan.json"
        started = time.monotonic()
        sh([str(BIN / "python"), "-m", "tools.load.prepare", str(TRACKS), str(USERS),
            str(PER_USER), str(plan)], env)
        print(f"[{engine}] prepared {TRACKS} tracks in {time.monotonic() - started:.0f} s",
              flush=True)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(  # nosec B603
            [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "4",
             "--log-level", "warning", "wsgi:app"], env=env, cwd=ROOT)
        try:
            wait_ready(url, server)
            prefix, mark = work / "locust", work / "steady"
            load_before = os.getloadavg()[0]
            children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
            locust = subprocess.Popen(  # nosec B603
                [str(BIN / "locust"), "-f", str(ROOT / "tools/load/locustfile.py"),
                 "--headless", "--host", url, "--users", str(CLIENTS), "--spawn-rate",
                 str(CLIENTS), "--run-time", f"{SECONDS}s", "--csv", str(prefix),
                 "--only-summary", "--loglevel", "WARNING", "--exit-code-on-error", "0"],
                env=dict(env, LOAD_PLAN=str(plan), LOAD_MARK=str(mark),
                         LOAD_CLIENTS=str(CLIENTS),
                         LOAD_TASKS_PER_USER_SECOND=str(TASKS_PER_USER_SECOND)), cwd=ROOT)
            # The server's CPU is counted from the moment every user has logged in, as the
            # request statistics are (the locustfile resets them then and writes `mark`).
            while not mark.exists() and locust.poll() is None:
                time.sleep(0.05)
            cpu_before = server_cpu(server.pid)
            if locust.wait() != 0:
                raise SystemExit(f"locust failed ({locust.returncode})")
            children = resource.getrusage(resource.RUSAGE_CHILDREN)
            generator_cpu = (children.ru_utime + children.ru_stime
                             - children_before.ru_utime - children_before.ru_stime)
            kill_check = server.poll()
            load_after, cpu_used = os.getloadavg()[0], server_cpu(server.pid) - cpu_before
            if not mark.exists():
                raise SystemExit("not every load user logged in")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)
        if kill_check is not None:
            raise SystemExit(f"gunicorn died during the run ({kill_check})")
        with open(f"{prefix}_stats.csv", newline="", encoding="utf-8") as fh:
            rows = {row["Name"]: row for row in csv.DictReader(fh)}
        total = rows["Aggregated"]
        verify = subprocess.run(  # nosec B603
            [str(BIN / "avhopp"), "audit", "verify"], env=env, cwd=ROOT,
            capture_output=True, text=True, check=False)
        return {
            "engine": engine, "rows": rows, "requests": int(total["Request Count"]),
            "failures": int(total["Failure Count"]), "rps": float(total["Requests/s"]),
            "p50": float(total["50%"]), "p95": float(total["95%"]), "p99": float(total["99%"]),
            "load": (load_before, load_after), "server_cpu": cpu_used,
            "generator_cpu": generator_cpu,
            "verify_ok": verify.returncode == 0,
            "verify": (verify.stdout + verify.stderr).strip().splitlines()[-1:],
        }
    finally:
        if dbname:
            pg(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


def server_cpu(master: int) -> float:
    """CPU seconds used so far by gunicorn's master and workers (from /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [master]
    try:
        pids += [int(pid) for pid in
                 Path(f"/proc/{master}/task/{master}/children").read_text().split()]
    except OSError:
        return 0.0
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime and stime
    return total / tick


def commit() -> str:
    """The commit measured (with "+changes" when the working tree differs from it)."""
    from tests.bench.run import commit as bench_commit

    return bench_commit()


def machine() -> str:
    from tests.bench.run import _machine

    return _machine()


def write_report(results: list[dict[str, object]]) -> None:
    lines = [
        "# Load test", "",
        "Written by `make load` (`python -m tools.load.run`); do not edit by hand.", "",
        f"- Date: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        f"- Machine: {machine()}; commit {commit()}",
        f"- Set-up: gunicorn, 4 sync workers, development configuration (production argon2 "
        f"parameters), {TRACKS} synthetic defector tracks, {USERS} support workers on "
        f"{PER_USER} tracks each; locust headless (FastHttpUser) on loopback, {CLIENTS} "
        f"simulated users each starting {TASKS_PER_USER_SECOND:g} tasks a second whatever the "
        f"answers take (an open model: about "
        f"{CLIENTS * TASKS_PER_USER_SECOND * REQUESTS_PER_TASK:.0f} requests/s offered) for "
        f"{SECONDS} s; statistics (and the server's CPU) counted from the moment the last "
        "user has logged in (password + TOTP), so the figures are the steady-state mix.",
        "- Mix (weights): my tracks 30, filtered list 10, track page 35, journal write 10 "
        "(page + POST), identifier search 10 (page + POST through the blind index), start page 5.",
        f"- Targets: ≥ {TARGET_RPS:.0f} requests/s mixed, p95 ≤ {TARGET_P95:.0f} ms, no errors, "
        "the audit chain verifying afterwards.", "",
        "| Engine | Requests | Failures | Requests/s | p50 ms | p95 ms | p99 ms | audit verify "
        "| met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        met = (r["rps"] >= TARGET_RPS and r["p95"] <= TARGET_P95 and r["failures"] == 0
               and r["verify_ok"])
        lines.append(f"| {r['engine']} | {r['requests']} | {r['failures']} | {r['rps']:.1f} | "
                     f"{r['p50']:.0f} | {r['p95']:.0f} | {r['p99']:.0f} | "
                     f"{'passes' if r['verify_ok'] else 'FAILS'} | {'yes' if met else 'no'} |")
    lines.append("")
    for r in results:
        load = r["load"]
        per_request = 1000 * float(r["server_cpu"]) / max(int(r["requests"]), 1)  # type: ignore
        lines.append(f"- {r['engine']}: load average {load[0]:.2f} before the run, "  # type: ignore
                     f"{load[1]:.2f} at its end; gunicorn used {r['server_cpu']:.0f} CPU-seconds "
                     f"in the steady state, {per_request:.1f} ms per request; the load "
                     f"generator (locust, logins included) used {r['generator_cpu']:.0f} "
                     "CPU-seconds on the same two cores.")
    for r in results:
        lines += ["", f"## {r['engine']} per request", "",
                  "| Request | Count | Failures | p50 ms | p95 ms | p99 ms |",
                  "|---|---|---|---|---|---|"]
        for name, row in sorted(r["rows"].items()):  # type: ignore[union-attr]
            if name == "Aggregated" or row["Request Count"] == "0":
                continue  # the logins, before the steady state
            lines.append(f"| {row['Type']} {name} | {row['Request Count']} | "
                         f"{row['Failure Count']} | {row['50%']} | {row['95%']} | {row['99%']} |")
    REPORT.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    engines = sys.argv[1:] or ["sqlite", "postgresql"]
    results = []
    for engine in engines:
        work = Path(tempfile.mkdtemp(prefix=f"avhopp-load-{engine}-"))
        try:
            results.append(run_engine(engine, work))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        r = results[-1]
        print(f"[{engine}] {r['requests']} requests, {r['failures']} failures, "
              f"{r['rps']:.1f}/s, p50 {r['p50']:.0f} ms, p95 {r['p95']:.0f} ms, "
              f"p99 {r['p99']:.0f} ms, audit verify {'ok' if r['verify_ok'] else r['verify']}",
              flush=True)
    write_report(results)
    bad = [r for r in results if r["failures"] or not r["verify_ok"]]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
