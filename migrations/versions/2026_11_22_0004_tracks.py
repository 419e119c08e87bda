"""Tracks: the track, its team and break-glass grants, journal, plan goals, consents, agency
contacts; the defector case with risk assessments and protective measures; a person's protected
personal data level.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 04:28:18.920302
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from avhopp.db import UTCDateTime
from avhopp.encryption.orm import EncryptedBlob

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('track',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('code', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('owner_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('opened_at', UTCDateTime(), nullable=False),
    sa.Column('closed_at', UTCDateTime(), nullable=True),
    sa.Column('closure_reason', sa.String(length=32), nullable=True),
    sa.Column('retention_until', sa.Date(), nullable=True),
    sa.Column('referral_source', sa.String(length=32), nullable=False),
    sa.Column('municipality', sa.String(length=8), nullable=True),
    sa.Column('access_level', sa.String(length=8), nullable=False),
    sa.Column('risk_level', sa.String(length=8), nullable=True),
    sa.Column('next_contact_at', UTCDateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['owner_id'], ['staff_user.id'], name=op.f('fk_track_owner_id_staff_user')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_track_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_track')),
    sa.UniqueConstraint('code', name=op.f('uq_track_code'))
    )
    with op.batch_alter_table('track', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_track_owner_id'), ['owner_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_track_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_track_risk_level'), ['risk_level'], unique=False)
        batch_op.create_index(batch_op.f('ix_track_status'), ['status'], unique=False)

    op.create_table('break_glass_grant',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('track_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('granted_at', UTCDateTime(), nullable=False),
    sa.Column('expires_at', UTCDateTime(), nullable=False),
    sa.Column('reason_enc', EncryptedBlob(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_break_glass_grant_person_id_person')),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_break_glass_grant_track_id_track'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_break_glass_grant_user_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_break_glass_grant'))
    )
    with op.batch_alter_table('break_glass_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_break_glass_grant_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_break_glass_grant_track_id'), ['track_id'], unique=False)
        batch_op.create_index('ix_break_glass_grant_user_track', ['user_id', 'track_id'], unique=False)

    op.create_table('consent',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('track_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('consent_type', sa.String(length=20), nullable=False),
    sa.Column('recipient_agency', sa.String(length=32), nullable=True),
    sa.Column('scope', sa.JSON(), nullable=False),
    sa.Column('form', sa.String(length=8), nullable=False),
    sa.Column('recorded_by', sa.Uuid(), nullable=False),
    sa.Column('recorded_at', UTCDateTime(), nullable=False),
    sa.Column('valid_from', sa.Date(), nullable=False),
    sa.Column('valid_to', sa.Date(), nullable=True),
    sa.Column('revoked_at', UTCDateTime(), nullable=True),
    sa.Column('recipient_enc', EncryptedBlob(), nullable=True),
    sa.Column('purpose_enc', EncryptedBlob(), nullable=True),
    sa.Column('withheld_enc', EncryptedBlob(), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_consent_person_id_person')),
    sa.ForeignKeyConstraint(['recorded_by'], ['staff_user.id'], name=op.f('fk_consent_recorded_by_staff_user')),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_consent_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent'))
    )
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_consent_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_consent_track_id'), ['track_id'], unique=False)

    op.create_table('defector_case',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('environment_enc', EncryptedBlob(), nullable=True),
    sa.Column('involvement_enc', EncryptedBlob(), nullable=True),
    sa.Column('years_in_environment_enc', EncryptedBlob(), nullable=True),
    sa.Column('arena_enc', EncryptedBlob(), nullable=True),
    sa.Column('reasons_for_leaving_enc', EncryptedBlob(), nullable=True),
    sa.Column('voluntariness_confirmed_on_enc', EncryptedBlob(), nullable=True),
    sa.Column('safe_contact_channel_enc', EncryptedBlob(), nullable=True),
    sa.Column('safe_contact_times_enc', EncryptedBlob(), nullable=True),
    sa.Column('safe_contact_code_word_enc', EncryptedBlob(), nullable=True),
    sa.Column('safe_contact_may_leave_messages_enc', EncryptedBlob(), nullable=True),
    sa.Column('environment_knows_of_contact_enc', EncryptedBlob(), nullable=True),
    sa.Column('safety_plan_enc', EncryptedBlob(), nullable=True),
    sa.Column('closing_assessment_enc', EncryptedBlob(), nullable=True),
    sa.Column('handed_over_to_enc', EncryptedBlob(), nullable=True),
    sa.ForeignKeyConstraint(['id'], ['track.id'], name=op.f('fk_defector_case_id_track'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_defector_case_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_defector_case'))
    )
    with op.batch_alter_table('defector_case', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_defector_case_person_id'), ['person_id'], unique=False)

    op.create_table('journal_entry',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('track_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('occurred_at', UTCDateTime(), nullable=False),
    sa.Column('duration_minutes', sa.Integer(), nullable=True),
    sa.Column('contact_type', sa.String(length=32), nullable=False),
    sa.Column('contact_achieved', sa.Boolean(), nullable=False),
    sa.Column('sensitivity', sa.String(length=8), nullable=False),
    sa.Column('named_user_ids', sa.JSON(), nullable=False),
    sa.Column('corrects_id', sa.Uuid(), nullable=True),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('next_contact_at', UTCDateTime(), nullable=True),
    sa.Column('participants_enc', EncryptedBlob(), nullable=True),
    sa.Column('note_enc', EncryptedBlob(), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['staff_user.id'], name=op.f('fk_journal_entry_author_id_staff_user')),
    sa.ForeignKeyConstraint(['corrects_id'], ['journal_entry.id'], name=op.f('fk_journal_entry_corrects_id_journal_entry')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_journal_entry_person_id_person')),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_journal_entry_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_journal_entry'))
    )
    with op.batch_alter_table('journal_entry', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_journal_entry_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_journal_entry_track_id'), ['track_id'], unique=False)

    op.create_table('plan_goal',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('track_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('life_domain', sa.String(length=32), nullable=False),
    sa.Column('start_on', sa.Date(), nullable=True),
    sa.Column('target_on', sa.Date(), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('agreed_on', sa.Date(), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('goal_enc', EncryptedBlob(), nullable=True),
    sa.Column('sub_goal_enc', EncryptedBlob(), nullable=True),
    sa.Column('intervention_enc', EncryptedBlob(), nullable=True),
    sa.Column('provider_enc', EncryptedBlob(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_user.id'], name=op.f('fk_plan_goal_created_by_staff_user')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_plan_goal_person_id_person')),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_plan_goal_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plan_goal'))
    )
    with op.batch_alter_table('plan_goal', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_plan_goal_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_plan_goal_track_id'), ['track_id'], unique=False)

    op.create_table('protective_measure',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('track_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('started_on', sa.Date(), nullable=True),
    sa.Column('ended_on', sa.Date(), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('note_enc', EncryptedBlob(), nullable=True),
    sa.ForeignKeyConstraint(['created_by'], ['staff_user.id'], name=op.f('fk_protective_measure_created_by_staff_user')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_protective_measure_person_id_person')),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_protective_measure_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_protective_measure'))
    )
    with op.batch_alter_table('protective_measure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_protective_measure_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_protective_measure_track_id'), ['track_id'], unique=False)

    op.create_table('risk_assessment',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('track_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('assessed_on', sa.Date(), nullable=False),
    sa.Column('assessor_id', sa.Uuid(), nullable=False),
    sa.Column('overall_level', sa.String(length=8), nullable=False),
    sa.Column('reassess_by', sa.Date(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('threat_from_environment_enc', EncryptedBlob(), nullable=True),
    sa.Column('threat_from_environment_comment_enc', EncryptedBlob(), nullable=True),
    sa.Column('violence_to_others_enc', EncryptedBlob(), nullable=True),
    sa.Column('violence_to_others_comment_enc', EncryptedBlob(), nullable=True),
    sa.Column('re_engagement_enc', EncryptedBlob(), nullable=True),
    sa.Column('re_engagement_comment_enc', EncryptedBlob(), nullable=True),
    sa.Column('self_harm_enc', EncryptedBlob(), nullable=True),
    sa.Column('self_harm_comment_enc', EncryptedBlob(), nullable=True),
    sa.Column('threat_to_relatives_enc', EncryptedBlob(), nullable=True),
    sa.Column('threat_to_relatives_comment_enc', EncryptedBlob(), nullable=True),
    sa.Column('protective_factors_enc', EncryptedBlob(), nullable=True),
    sa.ForeignKeyConstraint(['assessor_id'], ['staff_user.id'], name=op.f('fk_risk_assessment_assessor_id_staff_user')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_risk_assessment_person_id_person')),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_risk_assessment_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_risk_assessment'))
    )
    with op.batch_alter_table('risk_assessment', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_risk_assessment_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_risk_assessment_track_id'), ['track_id'], unique=False)

    op.create_table('team_member',
    sa.Column('track_id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('added_at', UTCDateTime(), nullable=False),
    sa.Column('added_by', sa.Uuid(), nullable=True),
    sa.ForeignKeyConstraint(['added_by'], ['staff_user.id'], name=op.f('fk_team_member_added_by_staff_user')),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_team_member_track_id_track'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_team_member_user_id_staff_user')),
    sa.PrimaryKeyConstraint('track_id', 'user_id', name=op.f('pk_team_member'))
    )
    with op.batch_alter_table('team_member', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_team_member_user_id'), ['user_id'], unique=False)

    op.create_table('agency_contact',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('track_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('agency', sa.String(length=32), nullable=False),
    sa.Column('categories', sa.JSON(), nullable=False),
    sa.Column('legal_basis', sa.String(length=20), nullable=False),
    sa.Column('consent_id', sa.Uuid(), nullable=True),
    sa.Column('occurred_at', UTCDateTime(), nullable=False),
    sa.Column('author_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('unit_enc', EncryptedBlob(), nullable=True),
    sa.Column('contact_role_enc', EncryptedBlob(), nullable=True),
    sa.Column('purpose_enc', EncryptedBlob(), nullable=True),
    sa.Column('outcome_enc', EncryptedBlob(), nullable=True),
    sa.ForeignKeyConstraint(['author_id'], ['staff_user.id'], name=op.f('fk_agency_contact_author_id_staff_user')),
    sa.ForeignKeyConstraint(['consent_id'], ['consent.id'], name=op.f('fk_agency_contact_consent_id_consent')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_agency_contact_person_id_person')),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_agency_contact_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agency_contact'))
    )
    with op.batch_alter_table('agency_contact', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_agency_contact_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_agency_contact_track_id'), ['track_id'], unique=False)

    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.add_column(sa.Column('protected_data_level_enc', EncryptedBlob(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('person', schema=None) as batch_op:
        batch_op.drop_column('protected_data_level_enc')

    with op.batch_alter_table('agency_contact', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_agency_contact_track_id'))
        batch_op.drop_index(batch_op.f('ix_agency_contact_person_id'))

    op.drop_table('agency_contact')
    with op.batch_alter_table('team_member', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_team_member_user_id'))

    op.drop_table('team_member')
    with op.batch_alter_table('risk_assessment', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_risk_assessment_track_id'))
        batch_op.drop_index(batch_op.f('ix_risk_assessment_person_id'))

    op.drop_table('risk_assessment')
    with op.batch_alter_table('protective_measure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_protective_measure_track_id'))
        batch_op.drop_index(batch_op.f('ix_protective_measure_person_id'))

    op.drop_table('protective_measure')
    with op.batch_alter_table('plan_goal', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_plan_goal_track_id'))
        batch_op.drop_index(batch_op.f('ix_plan_goal_person_id'))

    op.drop_table('plan_goal')
    with op.batch_alter_table('journal_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_journal_entry_track_id'))
        batch_op.drop_index(batch_op.f('ix_journal_entry_person_id'))

    op.drop_table('journal_entry')
    with op.batch_alter_table('defector_case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_defector_case_person_id'))

    op.drop_table('defector_case')
    with op.batch_alter_table('consent', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_consent_track_id'))
        batch_op.drop_index(batch_op.f('ix_consent_person_id'))

    op.drop_table('consent')
    with op.batch_alter_table('break_glass_grant', schema=None) as batch_op:
        batch_op.drop_index('ix_break_glass_grant_user_track')
        batch_op.drop_index(batch_op.f('ix_break_glass_grant_track_id'))
        batch_op.drop_index(batch_op.f('ix_break_glass_grant_person_id'))

    op.drop_table('break_glass_grant')
    with op.batch_alter_table('track', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_track_status'))
        batch_op.drop_index(batch_op.f('ix_track_risk_level'))
        batch_op.drop_index(batch_op.f('ix_track_person_id'))
        batch_op.drop_index(batch_op.f('ix_track_owner_id'))

    op.drop_table('track')
