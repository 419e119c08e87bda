"""Follow-up fixtures: a track with canary identity, staff with reminder addresses, and a real
SMTP server (aiosmtpd) with STARTTLS and a throw-away certificate authority."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from avhopp.cases.services import BackgroundInput
from avhopp.casework import services as casework
from avhopp.db import get_database
from avhopp.followups import services as followups
from tests.casework.helpers import open_defector
from tests.conftest import make_user

# What the track says about the person: none of it may ever appear in an e-mail.
CANARY_NAME = "Kanarie Fågelsson"
CANARY_ALIAS = "Kanariealias"
CANARY_PNR = "19850312-4516"
CANARY_PHONE = "070-174 06 77"
CANARY_EMAIL = "kanarie.fagel@example.net"
CANARY_ADDRESS = "Kanarievägen 7"
CANARY_NOTE = "Kanarieanteckning om vit makt-miljön"
CANARIES = (CANARY_NAME, "Kanarie", "Fågelsson", CANARY_ALIAS, CANARY_PNR, "198503124516",
            "8503124516", "0701740677", "46701740677", "701740677", CANARY_EMAIL,
            "kanarie.fagel", CANARY_ADDRESS, CANARY_NOTE, "vit makt", "white_power",
            "Kanarieorsak")


# --- certificates ---------------------------------------------------------------------------


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(common: str) -> tuple[Any, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    other_ca_file: Path
    cert_file: Path
    key_file: Path


def make_certificates(folder: Path) -> Certificates:
    """A throw-away CA, an unrelated CA and a server certificate for localhost and 127.0.0.1."""
    ca_key, ca_cert = _ca("avhopp test CA")
    _other_key, other_cert = _ca("some other CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(
        ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    paths = Certificates(folder / "ca.pem", folder / "other-ca.pem", folder / "server.pem",
                         folder / "server.key")
    paths.ca_file.write_bytes(ca_cert.public_bytes(pem))
    paths.other_ca_file.write_bytes(other_cert.public_bytes(pem))
    paths.cert_file.write_bytes(cert.public_bytes(pem))
    paths.key_file.write_bytes(key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return paths


@pytest.fixture(scope="session")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("smtp-certs"))


# --- SMTP server ----------------------------------------------------------------------------


@dataclass
class Recorder:
    """aiosmtpd handler: keeps every accepted message; answers with `reply` when set."""

    messages: list[Message] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    reply: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.reply is not None:
            return self.reply
        with self.lock:
            self.raw.append(bytes(envelope.content))
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@dataclass
class SmtpServer:
    host: str
    port: int
    recorder: Recorder
    certificates: Certificates

    @property
    def messages(self) -> list[Message]:
        return self.recorder.messages

    def overrides(self, **changes: Any) -> dict[str, Any]:
        values = {"SMTP_HOST": "localhost", "SMTP_PORT": self.port,
                  "SMTP_SECURITY": "starttls", "SMTP_CA_FILE": str(self.certificates.ca_file),
                  "MAIL_FROM": "avhopp@example.org", "BASE_URL": "https://avhopp.example.org"}
        values.update(changes)
        return values


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Every mail any test in this package received, for the canary scan.
ALL_MAIL: list[bytes] = []


@pytest.fixture
def smtp_server(certificates: Certificates) -> Any:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates.cert_file, certificates.key_file)
    recorder = Recorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port, tls_context=context,
                            require_starttls=True, server_hostname="localhost")
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, recorder, certificates)
    finally:
        controller.stop()
        ALL_MAIL.extend(recorder.raw)
        assert_no_canary(recorder.raw)


def assert_no_canary(raws: list[bytes]) -> None:
    for raw in raws:
        text = message_from_bytes(raw).get_payload(decode=True) or b""
        whole = raw.decode("utf-8", "replace") + "\n" + bytes(text).decode("utf-8", "replace")
        for canary in CANARIES:
            assert canary.lower() not in whole.lower(), f"canary {canary!r} in an e-mail"


# --- a track with staff ---------------------------------------------------------------------


@dataclass
class FollowUpWorld:
    app: Any
    coordinator: Any
    worker: Any
    colleague: Any
    track: Any


def canary_person() -> casework.PersonInput:
    return casework.PersonInput(name=CANARY_NAME, alias=CANARY_ALIAS, personnummer=CANARY_PNR,
                                phone=CANARY_PHONE, email=CANARY_EMAIL, address=CANARY_ADDRESS)


def set_address(app: Any, member: Any, email: str, mode: str = "immediate") -> None:
    with get_database(app).scope() as session:
        followups.set_preference(session, actor=_actor(session, member), mode=mode, email=email)


def _actor(session: Any, member: Any) -> Any:
    from avhopp.accounts.models import User

    return session.get(User, member.id)


def actor_of(db: Any, member: Any) -> Any:
    return _actor(db, member)


def make_world(app: Any, db: Any, *, emails: bool = True) -> FollowUpWorld:
    coordinator = make_user(app, role="coordinator")
    worker = make_user(app, role="support_worker")
    colleague = make_user(app, role="support_worker")
    track = open_defector(db, coordinator, owner=worker, person=canary_person(),
                          background=BackgroundInput(environment="white_power"))
    if emails:
        set_address(app, worker, "worker@example.org")
        set_address(app, coordinator, "coordinator@example.org")
    return FollowUpWorld(app, coordinator, worker, colleague, track)
