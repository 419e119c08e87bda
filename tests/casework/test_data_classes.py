"""SECURITY.md D1: every column of every mapped table has a data class, and personal or
sensitive columns are encrypted envelope columns."""

from __future__ import annotations

import importlib

from avhopp.db import Base
from avhopp.encryption.orm import REGISTRY, EncryptedBlob
from avhopp.migrate import MODEL_MODULES

CLASSES = {"public", "internal", "personal", "sensitive"}


def all_tables():
    for name in MODEL_MODULES:
        importlib.import_module(name)
    return Base.metadata.sorted_tables


def test_the_walk_covers_the_track_tables():
    names = {t.name for t in all_tables()}
    assert {"track", "journal_entry", "plan_goal", "consent", "agency_contact",
            "break_glass_grant", "team_member", "defector_case", "risk_assessment",
            "protective_measure", "person"} <= names


def test_every_column_has_a_data_class():
    untagged = [f"{t.name}.{c.name}" for t in all_tables() for c in t.columns
                if c.info.get("data_class") not in CLASSES]
    assert not untagged, f"columns without info['data_class']: {untagged}"


def test_personal_and_sensitive_columns_are_encrypted_envelopes():
    plain = [
        f"{t.name}.{c.name}" for t in all_tables() for c in t.columns
        if c.info.get("data_class") in ("personal", "sensitive") and not (
            c.info.get("encrypted") is True and c.name.endswith("_enc")
            and isinstance(c.type, EncryptedBlob))
    ]
    assert not plain, f"personal or sensitive columns stored in plain: {plain}"


def test_every_encrypted_field_of_a_child_row_names_its_subject():
    for model in REGISTRY:
        subject = getattr(model, "__encryption_subject__", "id")
        assert subject in model.__table__.columns, f"{model.__name__}: {subject}"


def test_the_check_notices_an_untagged_or_plain_sensitive_column():
    from sqlalchemy import Column, MetaData, String, Table

    table = Table("fake", MetaData(), Column("a", String), Column(
        "b", String, info={"data_class": "sensitive"}))
    assert [c.name for c in table.columns if c.info.get("data_class") not in CLASSES] == ["a"]
    assert [c.name for c in table.columns if c.info.get("data_class") == "sensitive"
            and not c.info.get("encrypted")] == ["b"]
