"""Relative tracks: the relative case (1:1 with its track) and the consent-based link from a
relative track to a defector track.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 05:39:26.033816
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from avhopp.db import UTCDateTime
from avhopp.encryption.orm import EncryptedBlob

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('relative_case',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('relation', sa.String(length=16), nullable=False),
    sa.Column('safe_contact_method_enc', EncryptedBlob(), nullable=True),
    sa.Column('concern_knows_of_contact_enc', EncryptedBlob(), nullable=True),
    sa.Column('concern_birth_year_enc', EncryptedBlob(), nullable=True),
    sa.Column('concern_environment_enc', EncryptedBlob(), nullable=True),
    sa.Column('observed_signs_enc', EncryptedBlob(), nullable=True),
    sa.Column('observed_text_enc', EncryptedBlob(), nullable=True),
    sa.Column('children_in_household_enc', EncryptedBlob(), nullable=True),
    sa.Column('concern_report_on_enc', EncryptedBlob(), nullable=True),
    sa.Column('threats_against_relative_enc', EncryptedBlob(), nullable=True),
    sa.Column('threats_text_enc', EncryptedBlob(), nullable=True),
    sa.Column('wellbeing_enc', EncryptedBlob(), nullable=True),
    sa.Column('wellbeing_text_enc', EncryptedBlob(), nullable=True),
    sa.Column('needs_enc', EncryptedBlob(), nullable=True),
    sa.Column('exit_role_enc', EncryptedBlob(), nullable=True),
    sa.Column('agreements_enc', EncryptedBlob(), nullable=True),
    sa.Column('closing_note_enc', EncryptedBlob(), nullable=True),
    sa.ForeignKeyConstraint(['id'], ['track.id'], name=op.f('fk_relative_case_id_track'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_relative_case_person_id_person')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_relative_case'))
    )
    with op.batch_alter_table('relative_case', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_relative_case_person_id'), ['person_id'], unique=False)

    op.create_table('track_link',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('relative_track_id', sa.Uuid(), nullable=False),
    sa.Column('defector_track_id', sa.Uuid(), nullable=False),
    sa.Column('consent_id', sa.Uuid(), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('removed_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['consent_id'], ['consent.id'], name=op.f('fk_track_link_consent_id_consent')),
    sa.ForeignKeyConstraint(['created_by'], ['staff_user.id'], name=op.f('fk_track_link_created_by_staff_user')),
    sa.ForeignKeyConstraint(['defector_track_id'], ['track.id'], name=op.f('fk_track_link_defector_track_id_track'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['relative_track_id'], ['track.id'], name=op.f('fk_track_link_relative_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_track_link'))
    )
    with op.batch_alter_table('track_link', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_track_link_defector_track_id'), ['defector_track_id'], unique=False)
        batch_op.create_index('ix_track_link_pair', ['relative_track_id', 'defector_track_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_track_link_relative_track_id'), ['relative_track_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('track_link', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_track_link_relative_track_id'))
        batch_op.drop_index('ix_track_link_pair')
        batch_op.drop_index(batch_op.f('ix_track_link_defector_track_id'))

    op.drop_table('track_link')
    with op.batch_alter_table('relative_case', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_relative_case_person_id'))

    op.drop_table('relative_case')
