"""Follow-ups, the reminder outbox and reminder preferences.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 05:42:54.816915
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from avhopp.db import UTCDateTime
from avhopp.encryption.orm import EncryptedBlob

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('reminder_preference',
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('mode', sa.String(length=10), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=True),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.Column('calendar_token_hash', sa.String(length=64), nullable=True),
    sa.Column('calendar_created_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['staff_user.id'], name=op.f('fk_reminder_preference_user_id_staff_user'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_reminder_preference')),
    sa.UniqueConstraint('calendar_token_hash', name=op.f('uq_reminder_preference_calendar_token_hash'))
    )
    op.create_table('follow_up',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('track_id', sa.Uuid(), nullable=False),
    sa.Column('person_id', sa.Uuid(), nullable=False),
    sa.Column('series_id', sa.Uuid(), nullable=False),
    sa.Column('occurrence', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('assignee_id', sa.Uuid(), nullable=False),
    sa.Column('anchor_at', UTCDateTime(), nullable=False),
    sa.Column('due_at', UTCDateTime(), nullable=False),
    sa.Column('reminder_lead_minutes', sa.Integer(), nullable=False),
    sa.Column('escalation_delay_minutes', sa.Integer(), nullable=False),
    sa.Column('remind_at', UTCDateTime(), nullable=False),
    sa.Column('escalate_at', UTCDateTime(), nullable=False),
    sa.Column('recurrence', sa.String(length=16), nullable=False),
    sa.Column('recurrence_rule', sa.String(length=200), nullable=True),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('reminded_revision', sa.Integer(), nullable=False),
    sa.Column('escalated_revision', sa.Integer(), nullable=False),
    sa.Column('source_key', sa.String(length=120), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('completed_at', UTCDateTime(), nullable=True),
    sa.Column('completed_by', sa.Uuid(), nullable=True),
    sa.Column('outcome_entry_id', sa.Uuid(), nullable=True),
    sa.Column('cancelled_at', UTCDateTime(), nullable=True),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('change_reason_enc', EncryptedBlob(), nullable=True),
    sa.ForeignKeyConstraint(['assignee_id'], ['staff_user.id'], name=op.f('fk_follow_up_assignee_id_staff_user')),
    sa.ForeignKeyConstraint(['completed_by'], ['staff_user.id'], name=op.f('fk_follow_up_completed_by_staff_user')),
    sa.ForeignKeyConstraint(['created_by'], ['staff_user.id'], name=op.f('fk_follow_up_created_by_staff_user')),
    sa.ForeignKeyConstraint(['outcome_entry_id'], ['journal_entry.id'], name=op.f('fk_follow_up_outcome_entry_id_journal_entry')),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], name=op.f('fk_follow_up_person_id_person')),
    sa.ForeignKeyConstraint(['track_id'], ['track.id'], name=op.f('fk_follow_up_track_id_track'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_follow_up')),
    sa.UniqueConstraint('source_key', name=op.f('uq_follow_up_source_key'))
    )
    with op.batch_alter_table('follow_up', schema=None) as batch_op:
        batch_op.create_index('ix_follow_up_assignee_status_due_at', ['assignee_id', 'status', 'due_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_follow_up_series_id'), ['series_id'], unique=False)
        batch_op.create_index('ix_follow_up_status_due_at', ['status', 'due_at'], unique=False)
        batch_op.create_index('ix_follow_up_status_escalate_at', ['status', 'escalate_at'], unique=False)
        batch_op.create_index('ix_follow_up_status_remind_at', ['status', 'remind_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_follow_up_track_id'), ['track_id'], unique=False)

    op.create_table('outbox_message',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('dedupe_key', sa.String(length=160), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('recipient_id', sa.Uuid(), nullable=False),
    sa.Column('follow_up_id', sa.Uuid(), nullable=True),
    sa.Column('track_code', sa.String(length=12), nullable=True),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('next_attempt_at', UTCDateTime(), nullable=False),
    sa.Column('lease_owner', sa.String(length=40), nullable=True),
    sa.Column('lease_until', UTCDateTime(), nullable=True),
    sa.Column('sent_at', UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.String(length=80), nullable=True),
    sa.ForeignKeyConstraint(['follow_up_id'], ['follow_up.id'], name=op.f('fk_outbox_message_follow_up_id_follow_up'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['recipient_id'], ['staff_user.id'], name=op.f('fk_outbox_message_recipient_id_staff_user')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox_message')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_message_dedupe_key'))
    )
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outbox_message_follow_up_id'), ['follow_up_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outbox_message_recipient_id'), ['recipient_id'], unique=False)
        batch_op.create_index('ix_outbox_message_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('outbox_message', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_message_status_next_attempt_at')
        batch_op.drop_index(batch_op.f('ix_outbox_message_recipient_id'))
        batch_op.drop_index(batch_op.f('ix_outbox_message_follow_up_id'))

    op.drop_table('outbox_message')
    with op.batch_alter_table('follow_up', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_follow_up_track_id'))
        batch_op.drop_index('ix_follow_up_status_remind_at')
        batch_op.drop_index('ix_follow_up_status_escalate_at')
        batch_op.drop_index('ix_follow_up_status_due_at')
        batch_op.drop_index(batch_op.f('ix_follow_up_series_id'))
        batch_op.drop_index('ix_follow_up_assignee_status_due_at')

    op.drop_table('follow_up')
    op.drop_table('reminder_preference')
