"""A throw-away instance (keys, migrated database, load user) served by a real gunicorn."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import socket
import ssl
import subprocess  # nosec B404  we start our own programs with fixed argv
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyotp
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"|'
                     r'name="csrf_token" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def unverified_tls() -> ssl.SSLContext:
    """For our own loopback server's throw-away self-signed certificate only."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def self_signed(work: Path) -> tuple[Path, Path]:
    """A throw-away certificate and key for 127.0.0.1, written to `work`."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = work / "tls.crt", work / "tls.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


class Instance:
    """Environment, database and plan (users, tracks) of one throw-away installation."""

    def __init__(self, work: Path, engine: str, pg_admin_url: str) -> None:
        self.work = work
        self.engine = engine
        self.pg_admin_url = pg_admin_url
        self.dbname = f"avhopp_proof_{uuid.uuid4().hex[:8]}" if engine == "postgresql" else None
        self.env = dict(os.environ, AVHOPP_ENV="development", AVHOPP_INSTANCE_PATH=str(work),
                        AVHOPP_LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
        self.env.pop("AVHOPP_KEYS", None)
        if self.dbname:
            self.env["AVHOPP_DATABASE_URL"] = self.database_url
        self.plan: dict[str, Any] = {}

    @property
    def database_url(self) -> str:
        if self.dbname:
            return self.pg_admin_url.rsplit("/", 1)[0] + "/" + self.dbname
        return f"sqlite:///{self.work / 'avhopp.sqlite'}"

    def overrides(self) -> dict[str, Any]:
        return {"ENV": "development", "INSTANCE_PATH": str(self.work),
                "DATABASE_URL": self.database_url, "LOG_LEVEL": "WARNING"}

    def _admin(self, sql: str) -> None:
        engine = create_engine(self.pg_admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.execute(text(sql))
        finally:
            engine.dispose()

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # nosec B603
            [str(BIN / "avhopp"), *args], env=self.env, cwd=ROOT, capture_output=True,
            text=True, check=check)

    def create(self, *, tracks: int = 2, users: int = 1) -> None:
        if self.dbname:
            self._admin(f'CREATE DATABASE "{self.dbname}"')
        self.cli("init-dev")
        self.cli("db", "upgrade")
        plan = self.work / "plan.json"
        subprocess.run(  # nosec B603
            [sys.executable, "-m", "tools.load.prepare", str(tracks), str(users), str(tracks),
             str(plan)], env=self.env, cwd=ROOT, check=True, capture_output=True)
        self.plan = json.loads(plan.read_text(encoding="utf-8"))

    def drop(self) -> None:
        if self.dbname:
            self._admin(f'DROP DATABASE IF EXISTS "{self.dbname}" WITH (FORCE)')


@contextmanager
def gunicorn(instance: Instance, *, workers: int = 2, tls: tuple[Path, Path] | None = None,
             threads: int = 1) -> Iterator[tuple[str, subprocess.Popen]]:
    """Serve the instance; with `tls` (certificate, key) over HTTPS, as in production; with
    `threads` > 1 on gunicorn's gthread workers, which tolerate idle keep-alive connections."""
    port = free_port()
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    extra = ["--certfile", str(tls[0]), "--keyfile", str(tls[1])] if tls else []
    if threads > 1:
        extra += ["--worker-class", "gthread", "--threads", str(threads)]
    proc = subprocess.Popen(  # nosec B603
        [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "--log-level", "warning", "--graceful-timeout", "5", *extra, "wsgi:app"],
        env=instance.env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError("gunicorn exited before serving")
            try:
                with urllib.request.urlopen(url + "/login", timeout=2,  # noqa: S310  # nosec B310
                                            context=unverified_tls()):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield url, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children")
    try:
        return [int(pid) for pid in children.read_text().split()]
    except OSError:
        return []


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Browser:
    """A cookie-keeping HTTP client that reports redirects instead of following them."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _NoRedirect(),
            urllib.request.HTTPSHandler(context=unverified_tls()))

    def request(self, path: str, data: dict[str, str] | None = None,
                timeout: float = 10) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        # As a browser under our Referrer-Policy (same-origin) does; over HTTPS the CSRF check
        # refuses a POST without it.
        headers = {"Referer": self.base + path}
        try:
            request = urllib.request.Request(self.base + path, body, headers)  # noqa: S310
            with self.opener.open(request, timeout=timeout) as response:  # nosec
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    def csrf(self, path: str) -> str:
        status, html = self.request(path)
        match = CSRF_RE.search(html)
        if status != 200 or not match:
            raise RuntimeError(f"no form on {path} ({status})")
        return match.group(1) or match.group(2)

    def login(self, account: dict[str, Any]) -> None:
        status, _ = self.request("/login", {"csrf_token": self.csrf("/login"),
                                            "username": account["username"],
                                            "password": account["password"]})
        assert status == 302, status
        status, _ = self.request("/login/code", {"csrf_token": self.csrf("/login/code"),
                                                 "code": pyotp.TOTP(account["totp"]).now()})
        assert status == 302, status
