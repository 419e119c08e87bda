"""Account operations: passwords, TOTP, throttling, sessions and staff administration."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
import secrets
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import argon2
import pyotp
import segno
from sqlalchemy import delete, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from zxcvbn import zxcvbn

from avhopp.accounts.models import LoginThrottle, RecoveryCode, Role, User, WebSession
from avhopp.audit.services import record
from avhopp.crypto.keyring import KeyProvider
from avhopp.db import utcnow
from avhopp.errors import Conflict, Forbidden, NotFound, ValidationError

logger = logging.getLogger(__name__)

TOTP_STEP_SECONDS = 30
TOTP_ISSUER = "avhopp"
# Words that make a password guessable in this organisation's context (A2).
CONTEXT_WORDS = (
    "avhopp",
    "avhoppare",
    "extremism",
    "extremist",
    "exit",
    "anhorig",
    "anhörig",
    "samordnare",
    "stodperson",
    "stödperson",
    "styrelse",
    "losenord",
    "lösenord",
    "password",
)
# zxcvbn's cost grows with length; a prefix of this size is enough to judge guessability.
# It must not exceed zxcvbn's own max_length (72), which raises ValueError above it: a longer
# prefix turned every password over 72 characters into a server error.
ZXCVBN_MAX_INPUT = 72
MIN_ZXCVBN_SCORE = 3
USERNAME_MAX_LENGTH = 64


@dataclass(frozen=True)
class AccountPolicy:
    """Settings the account services need, taken from the app config by the web/CLI layer."""

    secret: bytes
    organisation_name: str = "Avhopp"
    password_min_length: int = 12
    password_max_length: int = 1024
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 65536
    argon2_parallelism: int = 4
    account_lock_threshold: int = 10
    address_limit: int = 50
    address_window: dt.timedelta = dt.timedelta(minutes=15)
    totp_max_attempts: int = 5
    recovery_code_count: int = 10

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> AccountPolicy:
        return cls(
            secret=str(config["SECRET_KEY"]).encode(),
            organisation_name=str(config.get("ORGANISATION_NAME", "Avhopp")),
            password_min_length=int(config["PASSWORD_MIN_LENGTH"]),
            password_max_length=int(config["PASSWORD_MAX_LENGTH"]),
            argon2_time_cost=int(config["ARGON2_TIME_COST"]),
            argon2_memory_cost=int(config["ARGON2_MEMORY_COST"]),
            argon2_parallelism=int(config["ARGON2_PARALLELISM"]),
            account_lock_threshold=int(config["LOGIN_ACCOUNT_LOCK_THRESHOLD"]),
            address_limit=int(config["LOGIN_ADDRESS_LIMIT"]),
            address_window=dt.timedelta(minutes=int(config["LOGIN_ADDRESS_WINDOW_MINUTES"])),
            totp_max_attempts=int(config["TOTP_MAX_ATTEMPTS"]),
            recovery_code_count=int(config.get("RECOVERY_CODE_COUNT", 10)),
        )

    @property
    def hasher(self) -> argon2.PasswordHasher:
        return _hasher(self.argon2_time_cost, self.argon2_memory_cost, self.argon2_parallelism)

    @property
    def dummy_hash(self) -> str:
        return _dummy_hash(self.argon2_time_cost, self.argon2_memory_cost, self.argon2_parallelism)


@functools.cache
def _hasher(time_cost: int, memory_cost: int, parallelism: int) -> argon2.PasswordHasher:
    return argon2.PasswordHasher(
        time_cost=time_cost,
        memory_cost=memory_cost,
        parallelism=parallelism,
        type=argon2.Type.ID,
    )


@functools.cache
def _dummy_hash(time_cost: int, memory_cost: int, parallelism: int) -> str:
    # Verified against when the account does not exist, so both paths cost the same (A5).
    return _hasher(time_cost, memory_cost, parallelism).hash(secrets.token_urlsafe(24))


# --- passwords ------------------------------------------------------------------------------


def normalise_username(raw: str) -> str:
    return unicodedata.normalize("NFC", raw.strip()).casefold()


def password_problems(password: str, *, policy: AccountPolicy, username: str = "") -> list[str]:
    """Reasons (codes) a new password is refused; empty when it is acceptable (A2).

    No composition rules, no truncation, no case folding: only length and guessability.
    """
    if len(password) < policy.password_min_length:
        return ["too_short"]
    if len(password) > policy.password_max_length:
        return ["too_long"]
    if "\x00" in password:
        return ["invalid_character"]
    context = [*CONTEXT_WORDS, policy.organisation_name.casefold()]
    if username:
        context.append(username)
    result = zxcvbn(password[:ZXCVBN_MAX_INPUT], user_inputs=context)
    if result["score"] < MIN_ZXCVBN_SCORE:
        return ["too_guessable"]
    lowered = password.casefold()
    # zxcvbn scores a long password made of a context word plus filler as strong; a password
    # whose guessable part is mostly our own name is not. What is left without the context
    # words must be strong on its own ("Avhopp2026Avhopp!" leaves "2026!", a phrase of only
    # context words leaves blanks; counting distinct leftover characters let both through).
    stripped = lowered
    for word in context:
        stripped = stripped.replace(word.casefold(), "")
    if stripped != lowered and (
        zxcvbn(stripped[:ZXCVBN_MAX_INPUT], user_inputs=context)["score"] < MIN_ZXCVBN_SCORE
    ):
        return ["too_guessable"]
    return []


def verify_password(stored_hash: str, password: str, *, policy: AccountPolicy) -> bool:
    try:
        return policy.hasher.verify(stored_hash, password)
    except argon2.exceptions.VerificationError:
        return False
    except argon2.exceptions.InvalidHashError:
        logger.error("stored password hash is not argon2")
        return False


def hash_password(password: str, *, policy: AccountPolicy) -> str:
    return policy.hasher.hash(password)


def generate_one_time_password() -> str:
    # 20 random characters from a 57-symbol alphabet: ~116 bits, and no look-alike symbols.
    alphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(20))


# --- throttling -----------------------------------------------------------------------------


def _throttle_key(kind: str, value: str, policy: AccountPolicy) -> str:
    return hmac.new(policy.secret, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def _throttle_row(session: Session, key: str) -> LoginThrottle | None:
    return session.get(LoginThrottle, key)


def _lock_throttle_row(session: Session, key: str, *, now: dt.datetime) -> LoginThrottle:
    """The counter row for `key`, created if missing and locked until commit.

    Concurrent attempts on one name or address (several workers or hosts) must be decided one
    after another: without the lock, two first failures both INSERT the row (a unique-key
    error, HTTP 500) and later failures overwrite each other's count, so more guesses than the
    threshold get through. On PostgreSQL the upsert plus SELECT ... FOR UPDATE serialises them;
    on SQLite the transaction's BEGIN IMMEDIATE already does (FOR UPDATE is not emitted there).
    """
    dialect_insert = (
        postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    )
    session.execute(
        dialect_insert(LoginThrottle)
        .values(key=key, failures=0, window_started_at=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return session.scalars(
        select(LoginThrottle)
        .where(LoginThrottle.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _address_blocked(
    session: Session, *, client_addr: str, policy: AccountPolicy, now: dt.datetime
) -> bool:
    row = _throttle_row(session, _throttle_key("address", client_addr, policy))
    if row is None or now - row.window_started_at > policy.address_window:
        return False
    return row.failures >= policy.address_limit


def _account_locked(session: Session, *, username: str, policy: AccountPolicy) -> bool:
    row = _throttle_row(session, _throttle_key("account", username, policy))
    return row is not None and row.locked_at is not None


def _count_failure(
    session: Session, *, username: str, client_addr: str, policy: AccountPolicy, now: dt.datetime
) -> bool:
    """Record one failed attempt; returns True if this failure locked the account."""
    locked_now = False
    for kind, value in (("account", username), ("address", client_addr)):
        key = _throttle_key(kind, value, policy)
        row = _throttle_row(session, key)
        if row is None:
            row = LoginThrottle(key=key, failures=0, window_started_at=now)
            session.add(row)
        elif kind == "address" and now - row.window_started_at > policy.address_window:
            row.failures = 0
            row.window_started_at = now
        row.failures += 1
        if (
            kind == "account"
            and row.locked_at is None
            and row.failures >= policy.account_lock_threshold
        ):
            row.locked_at = now
            locked_now = True
    session.flush()
    return locked_now


def _clear_account_failures(session: Session, *, username: str, policy: AccountPolicy) -> None:
    session.execute(
        delete(LoginThrottle).where(
            LoginThrottle.key == _throttle_key("account", username, policy)
        )
    )


def is_locked(session: Session, *, user: User, policy: AccountPolicy) -> bool:
    return _account_locked(session, username=user.username, policy=policy)


# --- login ----------------------------------------------------------------------------------


class LoginRefused(Exception):
    """The login step failed. `reason` is for the audit log only; users see one message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_password(
    session: Session,
    *,
    username: str,
    password: str,
    client_addr: str,
    policy: AccountPolicy,
    now: dt.datetime | None = None,
) -> User:
    """First login step. Returns the user or raises LoginRefused; audits either way.

    Every refusal costs one Argon2 verification and produces the same outcome for the caller,
    whether the account exists, is locked, inactive, or the password is wrong (A5).
    """
    now = now or utcnow()
    name = normalise_username(username)[:USERNAME_MAX_LENGTH]
    user = session.scalars(select(User).where(User.username == name)).one_or_none()
    stored = user.password_hash if user is not None else policy.dummy_hash
    password_ok = verify_password(stored, password, policy=policy)
    # Locked after the slow hash, so the lock is held briefly; the decision below reads the
    # counters as committed by every earlier attempt (account first, then address: one order).
    _lock_throttle_row(session, _throttle_key("account", name, policy), now=now)
    _lock_throttle_row(session, _throttle_key("address", client_addr, policy), now=now)

    reason = None
    if _address_blocked(session, client_addr=client_addr, policy=policy, now=now):
        reason = "address_throttled"
    elif _account_locked(session, username=name, policy=policy):
        reason = "locked"
    elif user is None or not password_ok:
        reason = "bad_credentials"
    elif not user.is_active:
        reason = "inactive"
    if reason is not None:
        if reason in {"bad_credentials", "inactive"} and _count_failure(
            session, username=name, client_addr=client_addr, policy=policy, now=now
        ):
            reason = "locked"
        # The attempted name is never logged: people type passwords into the name field.
        record(
            session,
            action="auth.login_password",
            actor=user if user is not None and reason != "bad_credentials" else None,
            outcome="denied",
            details={"reason": reason},
            now=now,
        )
        raise LoginRefused(reason)

    if user is None:  # unreachable (reason is set when user is None); keeps type checkers exact
        raise LoginRefused("bad_credentials")
    if policy.hasher.check_needs_rehash(user.password_hash):
        user.password_hash = policy.hasher.hash(password)
    record(session, action="auth.login_password", actor=user, object_type="user",
           object_id=str(user.id), now=now)
    session.flush()
    return user


def _hash_recovery_code(code: str) -> str:
    normalised = code.replace("-", "").replace(" ", "").lower()
    return hashlib.sha256(normalised.encode()).hexdigest()


def _totp_aad(user_id: uuid.UUID) -> bytes:
    return b"avhopp/totp/v1\x00" + user_id.bytes


def _totp_secret(user: User, keys: KeyProvider) -> str:
    if user.totp_secret_wrapped is None or user.totp_kek_id is None:
        raise Forbidden("two-factor authentication is not enrolled")
    return keys.unwrap(user.totp_kek_id, user.totp_secret_wrapped, _totp_aad(user.id)).decode()


def _match_totp(secret: str, code: str, *, after_step: int, now: dt.datetime) -> int | None:
    """The time step `code` belongs to (current +/- 1), if later than `after_step`."""
    code = code.strip().replace(" ", "")
    if not (len(code) == 6 and code.isascii() and code.isdigit()):
        return None
    totp = pyotp.TOTP(secret)
    current = int(now.timestamp()) // TOTP_STEP_SECONDS
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step if step > after_step else -1
    return None


def check_second_factor(
    session: Session,
    *,
    user: User,
    code: str,
    keys: KeyProvider,
    policy: AccountPolicy,
    client_addr: str,
    now: dt.datetime | None = None,
) -> str:
    """Second login step with a TOTP code or a recovery code. Returns the method used.

    Raises LoginRefused("bad_code" | "replayed_code"). A wrong code counts as a failed login
    for the account and the address, and only a completed login (both factors) resets the
    account's counter: someone who knows the password cannot guess codes without limit.
    """
    now = now or utcnow()

    def refuse(reason: str, **details: str) -> LoginRefused:
        _count_failure(session, username=user.username, client_addr=client_addr, policy=policy,
                       now=now)
        record(session, action="auth.login_second_factor", actor=user, outcome="denied",
               object_type="user", object_id=str(user.id),
               details={"reason": reason, **details}, now=now)
        return LoginRefused(reason)

    step = _match_totp(_totp_secret(user, keys), code, after_step=user.totp_last_step, now=now)
    method = "totp"
    if step is not None and step > 0:
        user.totp_last_step = step
    elif step == -1:
        raise refuse("replayed_code", method="totp")
    else:
        method = "recovery_code"
        wanted = _hash_recovery_code(code)
        match = next(
            (
                rc
                for rc in user.recovery_codes
                if rc.used_at is None and hmac.compare_digest(rc.code_hash, wanted)
            ),
            None,
        )
        if match is None:
            raise refuse("bad_code")
        match.used_at = now
    if _account_locked(session, username=user.username, policy=policy):
        # Locked meanwhile (e.g. by guesses in another session): the right code does not help.
        raise refuse("locked")
    # Failures count while consecutive: a completed login resets the account's counter.
    _clear_account_failures(session, username=user.username, policy=policy)
    record(session, action="auth.login_second_factor", actor=user, object_type="user",
           object_id=str(user.id), details={"method": method}, now=now)
    session.flush()
    return method


def record_second_factor_lockout(session: Session, *, user: User) -> None:
    record(session, action="auth.login_second_factor", actor=user, outcome="denied",
           object_type="user", object_id=str(user.id), details={"reason": "too_many_codes"})


def new_totp_secret() -> str:
    return pyotp.random_base32()  # 160 bits from `secrets`


def totp_provisioning(secret: str, *, username: str, issuer: str = TOTP_ISSUER) -> tuple[str, str]:
    """The otpauth URI and an SVG QR code of it as a data: URI (drawn here, no external service;
    an <img> data URI keeps the strict CSP free of inline styles)."""
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)
    return uri, str(segno.make(uri, error="m").svg_data_uri(scale=5))


def enrol_totp(
    session: Session,
    *,
    user: User,
    secret: str,
    code: str,
    keys: KeyProvider,
    policy: AccountPolicy,
    now: dt.datetime | None = None,
) -> list[str]:
    """Confirm enrolment with a first code; store the seed wrapped; return new recovery codes."""
    now = now or utcnow()
    step = _match_totp(secret, code, after_step=0, now=now)
    if step is None or step <= 0:
        raise ValidationError("the code did not match", code="bad_code")
    kek_id, blob = keys.wrap(secret.encode(), _totp_aad(user.id))
    user.totp_secret_wrapped = blob
    user.totp_kek_id = kek_id
    user.totp_enrolled_at = now
    user.totp_last_step = step
    codes = _replace_recovery_codes(user, policy=policy)
    record(session, action="auth.totp_enrolled", actor=user, object_type="user",
           object_id=str(user.id), now=now)
    _clear_account_failures(session, username=user.username, policy=policy)
    # Enrolment ends with a verified code: it is this login's second factor too.
    record(session, action="auth.login_second_factor", actor=user, object_type="user",
           object_id=str(user.id), details={"method": "totp"}, now=now)
    session.flush()
    return codes


def _replace_recovery_codes(user: User, *, policy: AccountPolicy) -> list[str]:
    user.recovery_codes.clear()
    codes = []
    for _ in range(policy.recovery_code_count):
        raw = secrets.token_hex(8)  # 64 bits each, single use
        code = f"{raw[:4]}-{raw[4:8]}-{raw[8:12]}-{raw[12:]}"
        codes.append(code)
        user.recovery_codes.append(RecoveryCode(code_hash=_hash_recovery_code(code)))
    return codes


def unused_recovery_codes(user: User) -> int:
    return sum(1 for rc in user.recovery_codes if rc.used_at is None)


# --- sessions -------------------------------------------------------------------------------


def end_sessions(session: Session, *, user_id: uuid.UUID, keep: str | None = None) -> int:
    """Delete the user's server-side sessions (except `keep`, a session row id)."""
    stmt = delete(WebSession).where(WebSession.user_id == user_id)
    if keep is not None:
        stmt = stmt.where(WebSession.id != keep)
    result = session.execute(stmt)
    return int(getattr(result, "rowcount", 0) or 0)


def logout_everywhere(session: Session, *, actor: User) -> int:
    count = end_sessions(session, user_id=actor.id)
    record(session, action="auth.logout_everywhere", actor=actor, object_type="user",
           object_id=str(actor.id), details={"sessions": count})
    return count


def record_logout(session: Session, *, actor: User) -> None:
    record(session, action="auth.logout", actor=actor, object_type="user", object_id=str(actor.id))


def reauthenticate(
    session: Session, *, actor: User, password: str, policy: AccountPolicy
) -> None:
    """Step-up check (S5). Raises LoginRefused on a wrong password; audited either way."""
    if not verify_password(actor.password_hash, password, policy=policy):
        record(session, action="auth.reauthenticated", actor=actor, outcome="denied",
               object_type="user", object_id=str(actor.id),
               details={"reason": "wrong_current_password"})
        raise LoginRefused("wrong_current_password")
    record(session, action="auth.reauthenticated", actor=actor, object_type="user",
           object_id=str(actor.id))


def change_password(
    session: Session,
    *,
    actor: User,
    current_password: str,
    new_password: str,
    policy: AccountPolicy,
    keep_session: str | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Change the actor's own password (A3); ends every other session (S1)."""
    now = now or utcnow()
    if not verify_password(actor.password_hash, current_password, policy=policy):
        record(session, action="auth.password_changed", actor=actor, outcome="denied",
               object_type="user", object_id=str(actor.id),
               details={"reason": "wrong_current_password"}, now=now)
        raise LoginRefused("wrong_current_password")
    problems = password_problems(new_password, policy=policy, username=actor.username)
    if problems:
        record(session, action="auth.password_changed", actor=actor, outcome="denied",
               object_type="user", object_id=str(actor.id),
               details={"reason": "weak_password"}, now=now)
        raise ValidationError(problems[0], code=problems[0])
    if verify_password(actor.password_hash, new_password, policy=policy):
        raise ValidationError("same_as_current", code="same_as_current")
    actor.password_hash = policy.hasher.hash(new_password)
    actor.must_change_password = False
    actor.password_changed_at = now
    end_sessions(session, user_id=actor.id, keep=keep_session)
    record(session, action="auth.password_changed", actor=actor, object_type="user",
           object_id=str(actor.id), now=now)
    session.flush()


# --- administration -------------------------------------------------------------------------


def _require_admin(actor: User | None) -> None:
    # actor None means the operator CLI, which runs with the server's own authority.
    if actor is not None and actor.role != Role.ADMIN:
        raise Forbidden("only administrators manage staff accounts")


def list_users(session: Session, *, actor: User | None) -> list[User]:
    _require_admin(actor)
    return list(session.scalars(select(User).order_by(User.username)))


def get_user(session: Session, *, actor: User | None, user_id: uuid.UUID) -> User:
    _require_admin(actor)
    user = session.get(User, user_id)
    if user is None:
        raise NotFound("no such user")
    return user


def _check_version(user: User, expected_version: int | None) -> None:
    if expected_version is not None and user.version != expected_version:
        raise Conflict("the account was changed by someone else; reload and try again",
                       code="stale_version")


def create_user(
    session: Session,
    *,
    actor: User | None,
    username: str,
    role: str,
    policy: AccountPolicy,
) -> tuple[User, str]:
    """Create a staff account with a one-time password (returned once, never stored)."""
    _require_admin(actor)
    name = normalise_username(username)
    if not name or len(name) > USERNAME_MAX_LENGTH or not all(
        ch.isalnum() or ch in "._-@" for ch in name
    ):
        raise ValidationError("invalid_username", code="invalid_username")
    if role not in {r.value for r in Role}:
        raise ValidationError("invalid_role", code="invalid_role")
    exists = session.scalar(select(func.count()).select_from(User).where(User.username == name))
    if exists:
        raise Conflict("username_taken", code="username_taken")
    one_time = generate_one_time_password()
    user = User(
        id=uuid.uuid4(),
        username=name,
        role=role,
        password_hash=hash_password(one_time, policy=policy),
        must_change_password=True,
    )
    session.add(user)
    session.flush()
    record(session, action="user.created", actor=actor, object_type="user",
           object_id=str(user.id), details={"role": role})
    return user, one_time


def set_active(
    session: Session,
    *,
    actor: User | None,
    user_id: uuid.UUID,
    active: bool,
    expected_version: int | None = None,
    now: dt.datetime | None = None,
) -> User:
    user = get_user(session, actor=actor, user_id=user_id)
    _check_version(user, expected_version)
    if actor is not None and user.id == actor.id and not active:
        raise ValidationError("cannot_deactivate_self", code="cannot_deactivate_self")
    if user.is_active == active:
        return user
    user.is_active = active
    if active:
        user.deactivated_at = None
        record(session, action="user.reactivated", actor=actor, object_type="user",
               object_id=str(user.id))
    else:
        user.deactivated_at = now or utcnow()
        count = end_sessions(session, user_id=user.id)
        record(session, action="user.deactivated", actor=actor, object_type="user",
               object_id=str(user.id), details={"sessions": count})
    session.flush()
    return user


def change_role(
    session: Session,
    *,
    actor: User | None,
    user_id: uuid.UUID,
    role: str,
    expected_version: int | None = None,
) -> User:
    user = get_user(session, actor=actor, user_id=user_id)
    _check_version(user, expected_version)
    if role not in {r.value for r in Role}:
        raise ValidationError("invalid_role", code="invalid_role")
    if actor is not None and user.id == actor.id:
        # An admin demoting themselves could leave nobody able to manage accounts.
        raise ValidationError("cannot_change_own_role", code="cannot_change_own_role")
    if user.role != role:
        old = user.role
        user.role = role
        record(session, action="user.role_changed", actor=actor, object_type="user",
               object_id=str(user.id), details={"old_role": old, "new_role": role})
        session.flush()
    return user


def reset_totp(
    session: Session,
    *,
    actor: User | None,
    user_id: uuid.UUID,
    expected_version: int | None = None,
) -> User:
    """Remove the user's 2FA; they enrol again at next login. Ends all their sessions."""
    user = get_user(session, actor=actor, user_id=user_id)
    _check_version(user, expected_version)
    user.totp_secret_wrapped = None
    user.totp_kek_id = None
    user.totp_enrolled_at = None
    user.recovery_codes.clear()
    count = end_sessions(session, user_id=user.id)
    record(session, action="user.totp_reset", actor=actor, object_type="user",
           object_id=str(user.id), details={"sessions": count})
    session.flush()
    return user


def unlock(
    session: Session, *, actor: User | None, user_id: uuid.UUID, policy: AccountPolicy
) -> User:
    user = get_user(session, actor=actor, user_id=user_id)
    _clear_account_failures(session, username=user.username, policy=policy)
    record(session, action="user.unlocked", actor=actor, object_type="user", object_id=str(user.id))
    session.flush()
    return user


def reset_password(
    session: Session, *, actor: User | None, user_id: uuid.UUID, policy: AccountPolicy,
    expected_version: int | None = None,
) -> tuple[User, str]:
    """A new one-time password for a user who forgot theirs; ends their sessions."""
    user = get_user(session, actor=actor, user_id=user_id)
    _check_version(user, expected_version)
    one_time = generate_one_time_password()
    user.password_hash = hash_password(one_time, policy=policy)
    user.must_change_password = True
    end_sessions(session, user_id=user.id)
    record(session, action="auth.password_changed", actor=actor, object_type="user",
           object_id=str(user.id), details={"reason": "must_change"})
    session.flush()
    return user, one_time


def count_admins(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(User).where(
                User.role == Role.ADMIN, User.is_active.is_(True)
            )
        )
        or 0
    )
