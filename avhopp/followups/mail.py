"""Mail adapters: SMTP over verified TLS (stdlib smtplib), a folder for development, and the
failures they report (temporary, permanent) in terms the outbox acts on."""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)

SECURITIES = ("starttls", "tls", "none")
TIMEOUT_SECONDS = 30


class MailError(Exception):
    """A send failed. `code` is short and safe to store and show (never the server's text,
    which can echo addresses)."""

    temporary = True

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class TemporaryMailError(MailError):
    """Try again later: 4xx replies, a server that cannot be reached, TLS that does not verify
    (an operator fixes the certificate or CA file; the reminder must not be lost meanwhile)."""


class PermanentMailError(MailError):
    """Do not try again: 5xx replies. The row is marked failed and shown to the coordinator."""

    temporary = False


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    security: str = "starttls"
    username: str = ""
    password: str = ""
    ca_file: str = ""
    mail_from: str = "avhopp@localhost"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> SmtpSettings:
        return cls(
            host=str(config.get("SMTP_HOST", "")), port=int(config.get("SMTP_PORT", 587)),
            security=str(config.get("SMTP_SECURITY", "starttls")),
            username=str(config.get("SMTP_USERNAME", "")),
            password=str(config.get("SMTP_PASSWORD", "")),
            ca_file=str(config.get("SMTP_CA_FILE", "")),
            mail_from=str(config.get("MAIL_FROM", "avhopp@localhost")),
        )


def _reply_error(code: int, where: str) -> MailError:
    if 400 <= code < 500:  # SMTP reply classes: 4xx transient, 5xx permanent
        return TemporaryMailError(f"{where}_{code}")
    return PermanentMailError(f"{where}_{code}")


class SmtpMailer:
    """Sends over SMTP. STARTTLS and implicit TLS verify the server's certificate and host name
    against the system CAs or SMTP_CA_FILE; STARTTLS not offered is a refusal, not a fallback
    to plain text. `none` (plain SMTP) is for a relay on localhost and refused in production
    by the configuration check."""

    def __init__(self, settings: SmtpSettings) -> None:
        if settings.security not in SECURITIES:
            raise ValueError(f"SMTP_SECURITY must be one of {', '.join(SECURITIES)}")
        self.settings = settings

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.settings.ca_file or None)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "tls":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=TIMEOUT_SECONDS,
                                    context=self._context())
        client = smtplib.SMTP(s.host, s.port, timeout=TIMEOUT_SECONDS)
        if s.security == "starttls":
            client.ehlo()
            if not client.has_extn("starttls"):
                client.close()
                raise TemporaryMailError("starttls_not_offered")
            client.starttls(context=self._context())
            client.ehlo()
        return client

    def send(self, message: EmailMessage) -> None:
        try:
            client = self._connect()
        except ssl.SSLCertVerificationError as exc:
            logger.error("SMTP server certificate does not verify: %s", exc.verify_message)
            raise TemporaryMailError("tls_verify_failed") from None
        except ssl.SSLError:
            logger.error("TLS with the SMTP server failed")
            raise TemporaryMailError("tls_failed") from None
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, "connect") from None
        except (OSError, smtplib.SMTPException):
            logger.warning("SMTP server %s:%s unreachable", self.settings.host,
                           self.settings.port)
            raise TemporaryMailError("unreachable") from None
        try:
            with client:
                if self.settings.username:
                    client.login(self.settings.username, self.settings.password)
                refused = client.send_message(message)
                if refused:
                    code = min(int(reply[0]) for reply in refused.values())
                    raise _reply_error(code, "recipient")
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [int(reply[0]) for reply in exc.recipients.values()]
            raise _reply_error(min(codes) if codes else 550, "recipient") from None
        except smtplib.SMTPAuthenticationError as exc:
            raise _reply_error(exc.smtp_code, "auth") from None
        except smtplib.SMTPResponseException as exc:
            raise _reply_error(exc.smtp_code, "reply") from None
        except (OSError, smtplib.SMTPException):
            raise TemporaryMailError("connection_lost") from None


class FolderMailer:
    """Development: each mail is written to a file in a folder instead of being sent."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, message: EmailMessage) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = str(message["Message-ID"] or uuid.uuid4()).strip("<>").split("@")[0]
        (self.folder / f"{name}.eml").write_bytes(bytes(message))


class MailConfigError(ValueError):
    """The scheduler cannot send mail with this configuration."""


def check_sending_config(config: Mapping[str, Any]) -> None:
    """What the scheduler needs in production: a real SMTP server and an https link target.
    (Plain SMTP is refused for every process by avhopp.config.validate.)"""
    if config.get("ENV") != "production":
        return
    problems = []
    if not config.get("SMTP_HOST"):
        problems.append("SMTP_HOST is required in production (reminders must go out)")
    if not str(config.get("BASE_URL", "")).startswith("https://"):
        problems.append("BASE_URL must be the https:// address of the service")
    if problems:
        raise MailConfigError("; ".join(problems))


def mailer_from_config(config: Mapping[str, Any]) -> Mailer:
    """SMTP when a host is configured, else the development folder (never in production:
    see check_sending_config)."""
    check_sending_config(config)
    settings = SmtpSettings.from_config(config)
    if settings.host:
        return SmtpMailer(settings)
    folder = str(config.get("MAIL_FOLDER") or "")
    return FolderMailer(Path(folder) if folder else Path(config["INSTANCE_PATH"]) / "mail")
