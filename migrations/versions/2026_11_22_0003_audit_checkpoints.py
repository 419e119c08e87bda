"""Audit log: signed checkpoints, board sign-offs, retention redaction and review indexes.

The append-only triggers are replaced by ones that also allow the single retention redaction
update (payload columns emptied, redacted_at set, seq/time/action/outcome/leaf hash unchanged).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 04:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from avhopp.db import UTCDateTime

revision: str = '0003'
# Chained after 0003 (field encryption), which landed first with 0001 as its parent; the two
# revisions touch different tables, so the order between them does not matter.
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PAYLOAD = (
    "actor_id", "actor_role", "session_hash", "client_addr", "object_type", "object_id",
    "purpose", "details", "request_id", "nonce",
)
_KEPT = ("seq", "occurred_at", "action", "outcome", "leaf_hash")
_MESSAGE = "audit_event is append-only (only retention redaction may update it)"

# A row may be updated once, from unredacted to redacted, emptying the payload and keeping
# everything the tree and the review statistics need.
_REDACTION_SQLITE = " AND ".join(
    ["OLD.redacted_at IS NULL", "NEW.redacted_at IS NOT NULL"]
    + [f"NEW.{c} IS OLD.{c}" for c in _KEPT]
    + [f"NEW.{c} IS NULL" for c in _PAYLOAD]
)
_REDACTION_PG = " AND ".join(
    ["OLD.redacted_at IS NULL", "NEW.redacted_at IS NOT NULL"]
    + [f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _KEPT]
    + [f"NEW.{c} IS NULL" for c in _PAYLOAD]
)

_SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
       WHEN NOT ({_REDACTION_SQLITE})
       BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END""",
    f"""CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
       BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END""",
]
_PG_TRIGGERS = [
    f"""CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF TG_OP = 'UPDATE' THEN
           IF {_REDACTION_PG} THEN
             RETURN NEW;
           END IF;
         END IF;
         RAISE EXCEPTION '{_MESSAGE}';
       END $$""",
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event
       FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
       FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()""",
]

# The triggers of revision 0001, restored on downgrade.
_OLD_SQLITE_TRIGGERS = [
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END""",
    """CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event
       BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END""",
]
_OLD_PG_TRIGGERS = [
    """CREATE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$""",
    """CREATE TRIGGER audit_event_no_update BEFORE UPDATE OR DELETE ON audit_event
       FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
    """CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event
       FOR EACH STATEMENT EXECUTE FUNCTION audit_event_append_only()""",
]


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _drop_triggers() -> None:
    if _is_sqlite():
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_delete")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_update ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS audit_event_append_only()")


def _create_triggers(sqlite: list[str], pg: list[str]) -> None:
    for statement in sqlite if _is_sqlite() else pg:
        op.execute(statement)


def upgrade() -> None:
    # Dropped first: on SQLite the batch below rebuilds the table, and the rebuild's own
    # copy-and-rename must not trip them.
    _drop_triggers()
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.add_column(sa.Column('redacted_at', UTCDateTime(), nullable=True))
        batch_op.alter_column('details', existing_type=sa.Text(), nullable=True)
        batch_op.alter_column('nonce', existing_type=sa.LargeBinary(length=16), nullable=True)
        batch_op.create_index(batch_op.f('ix_audit_event_occurred_at'), ['occurred_at'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_audit_event_outcome'), ['outcome'], unique=False)
        batch_op.create_index('ix_audit_event_actor_time', ['actor_id', 'occurred_at'],
                              unique=False)

    op.create_table('audit_checkpoint',
    sa.Column('size', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('frontier', sa.LargeBinary(), nullable=False),
    sa.Column('signed_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('size', name=op.f('pk_audit_checkpoint'))
    )
    with op.batch_alter_table('audit_checkpoint', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_checkpoint_signed_at'), ['signed_at'],
                              unique=False)

    op.create_table('audit_signoff',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('from_seq', sa.BigInteger(), nullable=False),
    sa.Column('to_seq', sa.BigInteger(), nullable=False),
    sa.Column('tree_root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('signed_off_by', sa.Uuid(), nullable=False),
    sa.Column('signed_off_at', UTCDateTime(), nullable=False),
    sa.Column('event_seq', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_signoff'))
    )
    _create_triggers(_SQLITE_TRIGGERS, _PG_TRIGGERS)


def downgrade() -> None:
    _drop_triggers()
    op.drop_table('audit_signoff')
    with op.batch_alter_table('audit_checkpoint', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_checkpoint_signed_at'))
    op.drop_table('audit_checkpoint')
    with op.batch_alter_table('audit_event', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_event_actor_time')
        batch_op.drop_index(batch_op.f('ix_audit_event_outcome'))
        batch_op.drop_index(batch_op.f('ix_audit_event_occurred_at'))
        # Fails if entries were redacted: their payload cannot be brought back.
        batch_op.alter_column('nonce', existing_type=sa.LargeBinary(length=16), nullable=False)
        batch_op.alter_column('details', existing_type=sa.Text(), nullable=False)
        batch_op.drop_column('redacted_at')
    _create_triggers(_OLD_SQLITE_TRIGGERS, _OLD_PG_TRIGGERS)
