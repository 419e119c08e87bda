"""Field encryption: data keys, blind indexes, and the Person with encrypted identity fields.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 03:40:31.907481
"""

import datetime
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from avhopp.db import UTCDateTime
from avhopp.encryption.orm import EncryptedBlob

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('blind_index',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('table_name', sa.String(length=40), nullable=False),
    sa.Column('column_name', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('digest', sa.LargeBinary(length=32), nullable=False),
    sa.Column('row_id', sa.Uuid(), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_blind_index'))
    )
    with op.batch_alter_table('blind_index', schema=None) as batch_op:
        batch_op.create_index('ix_blind_index_lookup', ['table_name', 'column_name', 'version', 'digest'], unique=False)
        batch_op.create_index('ix_blind_index_row', ['table_name', 'column_name', 'row_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_blind_index_subject_id'), ['subject_id'], unique=False)

    op.create_table('blind_index_version',
    sa.Column('table_name', sa.String(length=40), nullable=False),
    sa.Column('column_name', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('bits', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=12), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('table_name', 'column_name', 'version', name=op.f('pk_blind_index_version'))
    )
    op.create_table('data_key',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('subject_id', sa.Uuid(), nullable=False),
    sa.Column('kek_id', sa.String(length=64), nullable=True),
    sa.Column('wrapped', sa.LargeBinary(), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('destroyed_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_data_key'))
    )
    with op.batch_alter_table('data_key', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_data_key_kek_id'), ['kek_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_data_key_subject_id'), ['subject_id'], unique=False)

    op.create_table('person',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('name_enc', EncryptedBlob(), nullable=True),
    sa.Column('alias_enc', EncryptedBlob(), nullable=True),
    sa.Column('personnummer_enc', EncryptedBlob(), nullable=True),
    sa.Column('birth_year_enc', EncryptedBlob(), nullable=True),
    sa.Column('phone_enc', EncryptedBlob(), nullable=True),
    sa.Column('email_enc', EncryptedBlob(), nullable=True),
    sa.Column('address_enc', EncryptedBlob(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_person'))
    )
    # Version 1 of every blind index, 14 bits: sized for 100,000 people with about six people
    # sharing each index value (docs/crypto-format.md). A later width is a new version.
    seed = sa.table(
        "blind_index_version",
        sa.column("table_name", sa.String), sa.column("column_name", sa.String),
        sa.column("version", sa.Integer), sa.column("bits", sa.Integer),
        sa.column("state", sa.String), sa.column("created_at", UTCDateTime()),
    )
    now = datetime.datetime.now(datetime.UTC)
    op.bulk_insert(seed, [
        {"table_name": "person", "column_name": name, "version": 1, "bits": 14,
         "state": "active", "created_at": now}
        for name in ("personnummer", "phone", "email")
    ])


def downgrade() -> None:
    op.drop_table('person')
    with op.batch_alter_table('data_key', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_data_key_subject_id'))
        batch_op.drop_index(batch_op.f('ix_data_key_kek_id'))

    op.drop_table('data_key')
    op.drop_table('blind_index_version')
    with op.batch_alter_table('blind_index', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_blind_index_subject_id'))
        batch_op.drop_index('ix_blind_index_row')
        batch_op.drop_index('ix_blind_index_lookup')

    op.drop_table('blind_index')
