"""Erasure requests (four-eyes crypto-shredding and approved retention erasures).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from avhopp.db import UTCDateTime

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('erasure_request',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('track_id', sa.Uuid(), nullable=True),
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('ground', sa.String(length=24), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('requested_by', sa.Uuid(), nullable=False),
    sa.Column('requested_at', UTCDateTime(), nullable=False),
    sa.Column('approved_by', sa.Uuid(), nullable=True),
    sa.Column('approved_at', UTCDateTime(), nullable=True),
    sa.Column('execute_after', UTCDateTime(), nullable=True),
    sa.Column('executed_at', UTCDateTime(), nullable=True),
    sa.Column('keys_destroyed', sa.Integer(), nullable=True),
    sa.Column('cancelled_by', sa.Uuid(), nullable=True),
    sa.Column('cancelled_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['approved_by'], ['staff_user.id'], name=op.f('fk_erasure_request_approved_by_staff_user')),
    sa.ForeignKeyConstraint(['cancelled_by'], ['staff_user.id'], name=op.f('fk_erasure_request_cancelled_by_staff_user')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_erasure_request_person_id_person')),
    sa.ForeignKeyConstraint(['requested_by'], ['staff_user.id'], name=op.f('fk_erasure_request_requested_by_staff_user')),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_erasure_request_track_id_track')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_erasure_request'))
    )
    with op.batch_alter_table('erasure_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_erasure_request_person_id'), ['person_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_erasure_request_state'), ['state'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('erasure_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_erasure_request_state'))
        batch_op.drop_index(batch_op.f('ix_erasure_request_person_id'))
    op.drop_table('erasure_request')
