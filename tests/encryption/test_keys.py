"""Blind-index search, erasure by crypto-shredding, and key rotation (KEK, person, index)."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import event, func, select

from avhopp.casework.models import Person
from avhopp.crypto.errors import DecryptionError, KeyDestroyed
from avhopp.crypto.keyring import (
    LocalKeyRing,
    add_kek,
    encode_env_value,
    generate_key_file,
    keyring_from_env_value,
    retire_kek,
)
from avhopp.db import get_database
from avhopp.encryption import services as enc
from avhopp.encryption.models import BlindIndexValue, BlindIndexVersion, DataKey
from avhopp.identifiers import InvalidIdentifier
from tests.conftest import audit_actions, database_bytes, make_user


def crypto_of(app):
    return app.extensions["avhopp.field_crypto"]


def add(db, **fields):
    person = Person(**fields)
    db.add(person)
    db.commit()
    return person.id


# --- search ---------------------------------------------------------------------------------


def test_phone_search_finds_the_person_whatever_the_format(app, db):
    person_id = add(db, name="Anna", phone="070-123 45 67")
    add(db, name="Bertil", phone="070-765 43 21")
    found = crypto_of(app).search(db, Person, "phone", "+46 70 123 45 67")
    assert [p.id for p in found] == [person_id]


def test_personnummer_search_accepts_ten_or_twelve_digits(app, db):
    person_id = add(db, name="Anna", personnummer="19811218-9876")
    for term in ("811218-9876", "198112189876", "8112189876"):
        assert [p.id for p in crypto_of(app).search(db, Person, "personnummer", term)] == [
            person_id
        ]


def test_email_search_is_case_and_normalisation_insensitive(app, db):
    person_id = add(db, name="Anna", email="Anna.Andersson@Example.SE")
    found = crypto_of(app).search(db, Person, "email", "  anna.andersson@example.se ")
    assert [p.id for p in found] == [person_id]


def test_search_for_an_unknown_value_finds_nobody(app, db):
    add(db, name="Anna", phone="070-123 45 67")
    assert crypto_of(app).search(db, Person, "phone", "070-999 99 99") == []


def test_search_with_malformed_input_raises_a_clear_error(app, db):
    with pytest.raises(InvalidIdentifier):
        crypto_of(app).search(db, Person, "personnummer", "811218-9877")  # bad checksum


def test_index_values_are_truncated_and_hold_no_plaintext(app, db):
    add(db, name="Anna", phone="070-123 45 67")
    version = db.get(BlindIndexVersion, ("person", "phone", 1))
    assert version.bits == 14  # 100,000 expected people, ≥ 4 sharing each value
    row = db.scalars(select(BlindIndexValue)).one()
    assert len(row.digest) == 2
    assert b"4670" not in row.digest


def test_changing_an_indexed_value_replaces_its_index_entry(app, db):
    person_id = add(db, name="Anna", phone="070-123 45 67")
    person = db.get(Person, person_id)
    person.phone = "070-765 43 21"
    db.commit()
    assert crypto_of(app).search(db, Person, "phone", "070-123 45 67") == []
    assert [p.id for p in crypto_of(app).search(db, Person, "phone", "0707654321")] == [person_id]
    assert db.scalar(select(func.count()).select_from(BlindIndexValue)) == 1


def _collide(db, person_id, *others):
    """Give others the blind-index digest of person_id's phone, as truncation does by chance."""
    digest = db.scalars(select(BlindIndexValue.digest)
                        .where(BlindIndexValue.row_id == person_id)).one()
    for other in others:
        db.scalars(select(BlindIndexValue).where(BlindIndexValue.row_id == other)).one() \
            .digest = digest
    db.commit()


def _data_key_queries(db):
    """A list that collects every SELECT of the data_key table run on db's engine."""
    queries: list[str] = []

    def before(_conn, _cursor, statement, *_args):
        if statement.lstrip().upper().startswith("SELECT") and "data_key" in statement:
            queries.append(statement)

    event.listen(db.get_bind(), "before_cursor_execute", before)
    return queries, lambda: event.remove(db.get_bind(), "before_cursor_execute", before)


def test_search_fetches_all_candidates_data_keys_in_one_query(app, db):
    person_id = add(db, name="Anna", phone="070-123 45 67")
    others = [add(db, name=n, phone=f"070-765 43 2{i}") for i, n in enumerate("BCD")]
    _collide(db, person_id, *others)
    db.close()
    crypto_of(app).cache.clear()  # a cold key cache: every candidate's key is needed
    queries, stop = _data_key_queries(db)
    try:
        found = crypto_of(app).search(db, Person, "phone", "070-123 45 67")
    finally:
        stop()
    assert [p.id for p in found] == [person_id]
    assert len(queries) == 1


def test_preloading_skips_a_data_key_that_belongs_to_another_person(app, db):
    anna = add(db, name="Anna")
    bertil = add(db, name="Bertil")
    # Bertil's row made to name Anna's data key: preloading must not vouch for that key.
    db.execute(Person.__table__.update().where(Person.__table__.c.id == bertil)
               .values(name_enc=db.get(Person, anna).name_enc))
    db.commit()
    db.close()
    crypto_of(app).cache.clear()
    row = db.get(Person, bertil)
    assert crypto_of(app).preload_keys(db, [row]) == 0
    with pytest.raises(DecryptionError):
        _ = row.name


# --- erasure --------------------------------------------------------------------------------


def test_erasure_makes_fields_unreadable_and_removes_indexes(app, db):
    person_id = add(db, name="Anna", phone="070-123 45 67")
    other = add(db, name="Bertil", phone="070-765 43 21")
    enc.erase_subject(db, actor=None, subject_id=person_id)
    db.commit()
    fresh = get_database(app).factory()
    erased = fresh.get(Person, person_id)
    with pytest.raises(KeyDestroyed):
        _ = erased.name
    assert fresh.get(Person, other).name == "Bertil"  # others keep their own keys
    assert crypto_of(app).search(fresh, Person, "phone", "070-123 45 67") == []
    key = fresh.scalars(select(DataKey).where(DataKey.subject_id == person_id)).one()
    assert key.wrapped is None and key.destroyed_at is not None
    assert ("key.subject_erased", "success", {"keys": 1}) in audit_actions(fresh)
    fresh.close()


def test_erasure_leaves_no_key_bytes_in_the_database(app, db):
    person_id = add(db, name="Anna")
    wrapped = db.scalars(select(DataKey.wrapped)).one()
    enc.erase_subject(db, actor=None, subject_id=person_id)
    db.commit()
    enc.compact_after_erasure(db.get_bind())
    data = database_bytes(db)
    assert wrapped not in data and wrapped.hex().encode() not in data


# --- KEK rotation ---------------------------------------------------------------------------


def _ring_with_new_kek(app) -> tuple[LocalKeyRing, dict]:
    data = json.loads(base64.b64decode(app.config["KEYS"]))
    rotated = add_kek(data)
    return LocalKeyRing(rotated), rotated


def test_kek_rotation_interrupted_and_resumed_leaves_every_value_readable(app, db):
    ids = [add(db, name=f"Person {i}", phone=f"070-123 45 {i:02d}") for i in range(7)]
    member = make_user(app, role="coordinator")
    ring, rotated = _ring_with_new_kek(app)
    factory = get_database(app).factory
    # First run "crashes" after one batch of 3.
    with factory() as session, session.begin():
        assert enc.rewrap_batch(session, keyring=ring, batch_size=3) == 3
    progress = []
    total = enc.rotate_kek(factory, keyring=ring, batch_size=3, progress=progress.append)
    assert total == 4 and sum(progress) == 4
    # Retire the old KEK: from now on only the new one exists.
    old_kek = next(k for k in rotated["keks"] if k != rotated["active_kek"])
    only_new = keyring_from_env_value(encode_env_value(retire_kek(rotated, old_kek)))
    crypto = enc.FieldCrypto(only_new)
    with factory() as session:
        crypto.attach(session)
        for i, person_id in enumerate(ids):
            assert session.get(Person, person_id).name == f"Person {i}"
        assert enc.keys_by_kek(session) == {only_new.active_kek_id: 7}
        from avhopp.accounts.models import User

        user = session.get(User, member.id)
        assert user.totp_kek_id == only_new.active_kek_id


def test_a_key_ring_without_the_kek_fails_closed(app, db):
    person_id = add(db, name="Anna")
    crypto = enc.FieldCrypto(LocalKeyRing(generate_key_file()))
    with get_database(app).factory() as session:
        crypto.attach(session)
        with pytest.raises(DecryptionError) as err:
            _ = session.get(Person, person_id).name
        assert "Anna" not in str(err.value)


# --- person key and index rotation ----------------------------------------------------------


def test_rotating_a_persons_key_re_encrypts_their_fields(app, db):
    person_id = add(db, name="Anna", phone="070-123 45 67", birth_year=1990)
    before = db.execute(select(Person.name_enc)).scalar_one()
    old_kid = db.scalars(select(DataKey.id)).one()
    new_kid = enc.rotate_subject_key(db, actor=None, subject_id=person_id)
    db.commit()
    crypto_of(app).cache.clear()
    fresh = get_database(app).factory()
    person = fresh.get(Person, person_id)
    assert (person.name, person.phone, person.birth_year) == ("Anna", "070-123 45 67", 1990)
    assert fresh.execute(select(Person.name_enc)).scalar_one() != before
    assert fresh.get(DataKey, old_kid).wrapped is None
    assert fresh.get(DataKey, new_kid).is_active
    assert [p.id for p in crypto_of(app).search(fresh, Person, "phone", "0701234567")] == [
        person_id
    ]
    fresh.close()


def test_index_rotation_adds_backfills_and_switches(app, db):
    ids = [add(db, name=f"P{i}", email=f"p{i}@example.se") for i in range(5)]
    version = enc.add_index_version(db, actor=None, model=Person, field_name="email",
                                    population=1_000_000)
    db.commit()
    after = None
    while True:
        after = enc.backfill_index(db, model=Person, field_name="email", version=version,
                                   after=after, batch_size=2)
        db.commit()
        if after is None:
            break
    # Still answered by version 1 until the switch.
    assert [p.id for p in crypto_of(app).search(db, Person, "email", "p3@example.se")] == [ids[3]]
    enc.switch_index(db, actor=None, model=Person, field_name="email", version=version)
    db.commit()
    assert [p.id for p in crypto_of(app).search(db, Person, "email", "P3@Example.se")] == [ids[3]]
    versions = {v.version: v.state for v in db.scalars(
        select(BlindIndexVersion).where(BlindIndexVersion.column_name == "email"))}
    assert versions == {1: "retired", 2: "active"}
    assert set(db.scalars(select(BlindIndexValue.version))) == {2}
    actions = [a for a, _o, _d in audit_actions(db)]
    assert "key.index_version_added" in actions and "key.index_switched" in actions


def test_many_people_with_indexed_fields_in_one_flush(app, db):
    db.add_all([Person(name=f"P{i}", phone=f"070-123 45 {i:02d}") for i in range(20)])
    db.commit()
    assert db.scalar(select(func.count()).select_from(BlindIndexVersion)) == 3  # seeded
    assert len(crypto_of(app).search(db, Person, "phone", "0701234507")) == 1
