"""Consents per recipient and scope; agency contacts only on a valid consent or a legal basis."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from avhopp.casework import services as casework
from avhopp.casework.models import AgencyContact, Consent
from avhopp.errors import Forbidden, ValidationError
from tests.casework.helpers import NOW, TODAY, World, events, refused, sharing_consent


@pytest.fixture
def world(app, db):
    return World(app, db)


def add_sharing(db, world, **changes):
    consent = casework.add_consent(db, actor=world.worker, track_id=world.a,
                                   consent=sharing_consent(**changes), now=NOW)
    db.commit()
    return consent


def contact(db, world, **changes):
    values = {"agency": "social_services", "shared_categories": ["identity"],
              "legal_basis": "consent", "occurred_at": NOW, "unit": "Vuxenenheten",
              "purpose": "Planera boende", "now": NOW}
    values.update(changes)
    row = casework.add_agency_contact(db, actor=world.worker, track_id=world.a, **values)
    db.commit()
    return row


def test_the_intake_consent_is_stored_and_readable(world, db):
    content = casework.read_track_content(db, actor=world.worker, track_id=world.a,
                                          purpose="casework", sections=["consents"], now=NOW)
    db.commit()
    assert [(c.consent_type, c.is_valid) for c in content.consents] == [("processing", True)]


def test_adding_a_sharing_consent_is_audited_with_type_and_agency(world, db):
    consent = add_sharing(db, world)
    assert events(db, "consent.added") == [("success", {
        "consent_id": str(consent.id), "consent_type": "sharing",
        "recipient_agency": "social_services"})]


def test_a_sharing_consent_must_name_its_recipient(world, db):
    with pytest.raises(ValidationError) as err:
        add_sharing(db, world, recipient_agency=None)
    assert err.value.code == "recipient_required"
    db.rollback()


def test_revoking_keeps_the_row_and_ends_its_validity(world, db):
    consent = add_sharing(db, world)
    casework.revoke_consent(db, actor=world.worker, track_id=world.a, consent_id=consent.id,
                            now=NOW)
    db.commit()
    row = db.get(Consent, consent.id)
    assert row.revoked_at == NOW and not row.is_valid_on(TODAY)
    db.rollback()
    assert events(db, "consent.revoked") == [
        ("success", {"consent_id": str(consent.id), "consent_type": "sharing"})]


def test_a_contact_on_a_valid_consent_is_recorded(world, db):
    consent = add_sharing(db, world)
    row = contact(db, world, consent_id=consent.id)
    assert db.get(AgencyContact, row.id).purpose == "Planera boende"
    db.rollback()
    assert events(db, "agency.contact_added") == [("success", {
        "contact_id": str(row.id), "agency": "social_services", "legal_basis": "consent",
        "categories": 1})]


def test_a_contact_without_consent_is_refused_and_the_refusal_recorded(world, db):
    error = refused(db, Forbidden, casework.add_agency_contact, actor=world.worker,
                    track_id=world.a, agency="police", shared_categories=["identity"],
                    legal_basis="consent", occurred_at=NOW, now=NOW)
    assert error.code == "no_valid_consent"
    assert db.scalars(select(AgencyContact)).all() == []
    db.rollback()
    assert events(db, "agency.contact_added") == [
        ("denied", {"agency": "police", "legal_basis": "consent", "rule": "no_consent"})]


@pytest.mark.parametrize(("consent_changes", "contact_changes", "rule"), [
    ({}, {"agency": "police"}, "other_recipient"),
    ({}, {"shared_categories": ["health"]}, "outside_scope"),
    ({"valid_to": TODAY - dt.timedelta(days=1),
      "valid_from": TODAY - dt.timedelta(days=10)}, {}, "not_in_force"),
])
def test_a_consent_that_does_not_cover_the_disclosure_is_refused(
    world, db, consent_changes, contact_changes, rule
):
    consent = add_sharing(db, world, **consent_changes)
    values = {"agency": "social_services", "shared_categories": ["identity"],
              "legal_basis": "consent", "occurred_at": NOW, "consent_id": consent.id,
              "now": NOW, **contact_changes}
    refused(db, Forbidden, casework.add_agency_contact, actor=world.worker, track_id=world.a,
            **values)
    assert events(db, "agency.contact_added")[-1][1]["rule"] == rule


def test_a_revoked_consent_no_longer_allows_a_disclosure(world, db):
    consent = add_sharing(db, world)
    casework.revoke_consent(db, actor=world.worker, track_id=world.a, consent_id=consent.id,
                            now=NOW - dt.timedelta(hours=1))
    db.commit()
    refused(db, Forbidden, casework.add_agency_contact, actor=world.worker, track_id=world.a,
            agency="social_services", shared_categories=["identity"], legal_basis="consent",
            occurred_at=NOW, consent_id=consent.id, now=NOW)


def test_a_legal_basis_allows_a_contact_without_consent_and_is_flagged(world, db):
    row = contact(db, world, agency="police", legal_basis="vital_interest",
                  shared_categories=["risk_threat", "identity"])
    assert row.consent_id is None
    assert events(db, "agency.contact_added") == [("success", {
        "contact_id": str(row.id), "agency": "police", "legal_basis": "vital_interest",
        "categories": 2})]
