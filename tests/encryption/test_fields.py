"""Encrypted model fields: sealing at flush, lazy opening, binding to row, column and person."""

from __future__ import annotations

import gc
import uuid
import weakref

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text, update
from sqlalchemy.orm import sessionmaker

from avhopp.casework.models import Person
from avhopp.crypto.errors import DecryptionError, KeyDestroyed
from avhopp.db import get_database
from avhopp.encryption.models import DataKey
from avhopp.encryption.orm import (
    SESSION_KEYS,
    EncryptedComparisonError,
    EncryptionNotConfigured,
)
from avhopp.encryption.services import FieldCrypto, erase_subject
from tests.conftest import database_bytes

CANARY = "Kanariefågel-7Q3X-personuppgift"


def make_person(db, **fields):
    person = Person(**fields)
    db.add(person)
    db.commit()
    return person.id


def reload(app, person_id):
    session = get_database(app).factory()
    return session, session.get(Person, person_id)


def test_fields_round_trip_through_a_fresh_session(app, db):
    person_id = make_person(db, name="Anna Andersson", birth_year=1994, phone="+46701234567")
    session, person = reload(app, person_id)
    assert (person.name, person.birth_year, person.phone) == (
        "Anna Andersson", 1994, "+46701234567"
    )
    assert person.alias is None
    session.close()


def test_stored_columns_hold_envelopes_not_plaintext(app, db):
    person_id = make_person(db, name=CANARY, address=CANARY + " gatan 1")
    raw = db.execute(text("SELECT name_enc, address_enc FROM person")).one()
    for blob in raw:
        assert CANARY.encode() not in bytes(blob)
        assert bytes(blob)[:1] == b"\xd0"  # CBOR tag 16: COSE_Encrypt0
    assert person_id


def test_reading_one_field_decrypts_only_that_field(app, db, monkeypatch):
    person_id = make_person(db, name="Anna", alias="A", phone="+46701234567", email="a@b.se")
    calls = []

    class CountingAead:
        def __init__(self, aead):
            self.aead = aead

        def decrypt(self, *args):
            calls.append(1)
            return self.aead.decrypt(*args)

    original = FieldCrypto.cipher_by_id
    monkeypatch.setattr(FieldCrypto, "cipher_by_id",
                        lambda *a, **k: CountingAead(original(*a, **k)))
    app.extensions["avhopp.field_crypto"].cache.clear()
    session, person = reload(app, person_id)
    assert person.name == "Anna"
    assert person.name == "Anna"
    assert len(calls) == 1  # one AES-GCM decryption: the other fields stay sealed
    assert person.alias == "A"
    assert len(calls) == 2
    session.close()


def test_comparing_an_encrypted_attribute_in_sql_raises():
    with pytest.raises(EncryptedComparisonError):
        select(Person).where(Person.name == "Anna")
    with pytest.raises(EncryptedComparisonError):
        Person.phone.like("%070%")
    with pytest.raises(EncryptedComparisonError):
        Person.email.in_(["a@b.se"])


def test_comparing_the_envelope_column_in_sql_raises_but_null_checks_work():
    with pytest.raises(EncryptedComparisonError):
        select(Person).where(Person.name_enc == b"x")
    with pytest.raises(EncryptedComparisonError):
        select(Person).where(Person.name_enc.like(b"%"))
    assert "IS NULL" in str(select(Person).where(Person.name_enc.is_(None)))


def _copy_column(db, source_id, target_id, source_col, target_col):
    # Column names come from the tests themselves; this simulates an attacker's raw SQL.
    blob = db.execute(
        text(f"SELECT {source_col} FROM person WHERE id = :id"),  # noqa: S608
        {"id": _param(db, source_id)},
    ).scalar_one()
    db.execute(
        text(f"UPDATE person SET {target_col} = :blob WHERE id = :id"),  # noqa: S608
        {"blob": blob, "id": _param(db, target_id)},
    )
    db.commit()


def _param(db, value: uuid.UUID):
    # SQLAlchemy's Uuid stores 32 hex characters on SQLite and a native uuid on PostgreSQL.
    return value.hex if db.get_bind().dialect.name == "sqlite" else value


def test_ciphertext_moved_to_another_persons_row_fails_to_decrypt(app, db):
    first = make_person(db, name="Anna")
    second = make_person(db, name="Bertil")
    _copy_column(db, first, second, "name_enc", "name_enc")
    session, person = reload(app, second)
    with pytest.raises(DecryptionError) as err:
        _ = person.name
    assert "Anna" not in str(err.value) and "person.name" in str(err.value)
    session.close()


def test_ciphertext_moved_to_another_column_fails_to_decrypt(app, db):
    person_id = make_person(db, name="Anna", alias="Nisse")
    _copy_column(db, person_id, person_id, "name_enc", "alias_enc")
    session, person = reload(app, person_id)
    assert person.name == "Anna"
    with pytest.raises(DecryptionError):
        _ = person.alias
    session.close()


def test_ciphertext_moved_to_another_row_of_the_same_person_fails(app, db):
    """Rows are bound by id: a copy of a row's envelope under a new id does not open."""
    person_id = make_person(db, name="Anna")
    other = Person(id=uuid.uuid4())
    db.add(other)
    db.commit()
    # Point the other row at the same subject key by giving it the same data key: impossible
    # via the ORM, so move the envelope and check that the row id binding alone refuses it.
    _copy_column(db, person_id, other.id, "name_enc", "name_enc")
    session, moved = reload(app, other.id)
    with pytest.raises(DecryptionError):
        _ = moved.name
    session.close()


def test_a_session_without_field_crypto_cannot_write_encrypted_fields(app):
    plain = sessionmaker(bind=get_database(app).engine)()
    plain.add(Person(name="Anna"))
    with pytest.raises(EncryptionNotConfigured):
        plain.flush()
    plain.rollback()
    plain.close()


def test_wrong_value_type_is_refused_at_assignment():
    with pytest.raises(TypeError):
        Person(name=42)
    with pytest.raises(TypeError):
        Person(birth_year=True)


def test_each_person_gets_their_own_data_key(app, db):
    first = make_person(db, name="Anna")
    second = make_person(db, name="Bertil")
    keys = db.scalars(select(DataKey)).all()
    assert {k.subject_id for k in keys} == {first, second}
    assert len({k.id for k in keys}) == 2
    for key in keys:
        assert key.wrapped is not None and len(key.wrapped) == 60  # nonce + key + tag


def test_a_rolled_back_person_does_not_leave_a_stale_key_behind(app, db):
    person = Person(name="Anna")
    db.add(person)
    db.flush()
    db.rollback()
    person_id = make_person(db, name="Bertil")
    session, reloaded = reload(app, person_id)
    assert reloaded.name == "Bertil"
    session.close()


def test_a_data_key_wrapped_for_another_person_does_not_unwrap(app, db):
    first = make_person(db, name="Anna")
    second = make_person(db, name="Bertil")
    key_a = db.scalars(select(DataKey).where(DataKey.subject_id == first)).one()
    db.execute(update(DataKey).where(DataKey.subject_id == second)
               .values(wrapped=key_a.wrapped, kek_id=key_a.kek_id))
    db.commit()
    app.extensions["avhopp.field_crypto"].cache.clear()
    session, person = reload(app, second)
    with pytest.raises(Exception) as err:
        _ = person.name
    assert "Bertil" not in str(err.value)
    session.close()


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(max_size=300), year=st.integers(min_value=-(2**63), max_value=2**63))
def test_any_text_and_integer_round_trip(app, name, year):
    with get_database(app).factory() as session:
        person = Person(name=name, birth_year=year)
        session.add(person)
        session.commit()
        person_id = person.id
    session, reloaded = reload(app, person_id)
    assert reloaded.name == name and reloaded.birth_year == year
    session.close()


def test_canary_never_reaches_the_database(app, db):
    make_person(db, name=CANARY, alias=CANARY, address=CANARY, email="kanarie@example.se")
    data = database_bytes(db)
    assert CANARY.encode() not in data
    assert b"kanarie@example.se" not in data


def _rewrite_envelope(db, person_id, column, change):
    blob = bytes(db.execute(
        text(f"SELECT {column} FROM person WHERE id = :id"),  # noqa: S608
        {"id": _param(db, person_id)},
    ).scalar_one())
    db.execute(
        text(f"UPDATE person SET {column} = :blob WHERE id = :id"),  # noqa: S608
        {"blob": change(blob), "id": _param(db, person_id)},
    )
    db.commit()


@pytest.mark.parametrize("change", [
    pytest.param(lambda b: b[:4] + b"\xa2\x01\x01" + b[7:], id="other-algorithm"),
    pytest.param(lambda b: b[:-1] + bytes([b[-1] ^ 1]), id="tag"),
    pytest.param(lambda b: b[:50] + bytes([b[50] ^ 1]) + b[51:], id="iv"),
    pytest.param(lambda b: b + b"\x00", id="extended"),
    pytest.param(lambda b: b[:-1], id="truncated"),
])
def test_a_tampered_envelope_raises_the_typed_error_naming_table_column_and_row(
    app, db, change
):
    person_id = make_person(db, name="Anna", alias="Nisse")
    _rewrite_envelope(db, person_id, "name_enc", change)
    session, person = reload(app, person_id)
    assert person.alias == "Nisse"  # the row's key is loaded; the damaged field still fails
    with pytest.raises(DecryptionError) as err:
        _ = person.name
    assert (err.value.table, err.value.column, err.value.row_id) == (
        "person", "name", str(person_id))
    assert "Anna" not in str(err.value)
    session.close()


def test_an_envelope_naming_an_unknown_data_key_raises_the_typed_error(app, db):
    person_id = make_person(db, name="Anna")
    # Same length, so the envelope stays well-formed: only the key lookup can refuse it.
    def other_kid(blob):
        assert blob[10:13] == b"dk-" and len(blob[10:45].decode()) == 35
        return blob[:10] + b"dk-" + b"0" * 32 + blob[45:]

    _rewrite_envelope(db, person_id, "name_enc", other_kid)
    session, person = reload(app, person_id)
    with pytest.raises(DecryptionError) as err:
        _ = person.name
    assert (err.value.column, err.value.row_id) == ("name", str(person_id))
    session.close()


def test_the_session_key_map_ends_with_the_transaction(app, db):
    person_id = make_person(db, name="Anna")
    session, person = reload(app, person_id)
    assert person.name == "Anna"
    assert session.info.get(SESSION_KEYS)
    session.commit()
    assert SESSION_KEYS not in session.info
    session.expunge_all()  # a fresh object: its cached plaintext would need no key
    person = session.get(Person, person_id)
    assert person.name == "Anna"
    assert session.info.get(SESSION_KEYS)
    session.rollback()
    assert SESSION_KEYS not in session.info
    session.close()


def test_the_session_key_map_is_freed_without_the_garbage_collector(app, db):
    """No reference cycle keeps the data keys alive once the transaction ends."""
    person_id = make_person(db, name="Anna")
    session, person = reload(app, person_id)
    assert person.name == "Anna"
    keys = weakref.ref(session.info[SESSION_KEYS])
    gc.disable()
    try:
        session.rollback()
        assert keys() is None
    finally:
        gc.enable()
    session.close()


# A row remembers its session's key map (by weak reference) after its first field; these pin
# that a later field of the same row never reads through a map that should no longer serve it.
# Sessions are closed in `finally`: one left in a transaction would block the teardown.


@pytest.mark.parametrize("end", ["commit", "rollback"])
def test_a_row_opens_later_fields_with_the_next_transactions_key_map(app, db, end):
    person_id = make_person(db, name="Anna", alias="Nisse")
    session, person = reload(app, person_id)
    try:
        assert person.name == "Anna"
        first = session.info[SESSION_KEYS]
        getattr(session, end)()
        assert len(first) == 0  # closed at the end of the transaction, though we still hold it
        assert person.alias == "Nisse"
        second = session.info[SESSION_KEYS]
        assert second is not first and len(second) == 1 and len(first) == 0
    finally:
        session.close()


def test_erasure_stops_later_fields_of_a_row_read_before_it(app, db):
    person_id = make_person(db, name="Anna", alias="Nisse")
    session, person = reload(app, person_id)
    try:
        assert person.name == "Anna"
        erase_subject(session, actor=None, subject_id=person_id)
        with pytest.raises(KeyDestroyed):
            _ = person.alias
    finally:
        session.rollback()
        session.close()


def test_a_row_moved_to_another_session_uses_that_sessions_key_map(app, db):
    person_id = make_person(db, name="Anna", alias="Nisse")
    first, person = reload(app, person_id)
    second = get_database(app).factory()
    try:
        assert person.name == "Anna"  # the first session's map now holds the person's key
        first_keys = first.info[SESSION_KEYS]
        first.expunge(person)
        second.add(person)
        # Erasure in the second session evicts from the second session's map only; so the
        # row must open its fields through that map, never the first session's (still open).
        assert person.alias == "Nisse"
        assert len(second.info[SESSION_KEYS]) == 1 and len(first_keys) == 1
        assert person.__dict__["_avhopp_row"].keys_ref() is second.info[SESSION_KEYS]
    finally:
        second.close()
        first.close()


def test_a_detached_row_does_not_open_fields_through_a_remembered_map(app, db):
    person_id = make_person(db, name="Anna", alias="Nisse")
    session, person = reload(app, person_id)
    try:
        assert person.name == "Anna"
        session.expunge(person)
        assert session.info.get(SESSION_KEYS)  # alive, but no longer the row's session's
        with pytest.raises(EncryptionNotConfigured):
            _ = person.alias
    finally:
        session.close()
