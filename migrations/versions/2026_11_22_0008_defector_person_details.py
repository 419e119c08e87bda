"""Defector case: the person details of DOMAIN.md (gender, language and interpreter, children
in the household), encrypted under the person's key.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from avhopp.encryption.orm import EncryptedBlob

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("gender_enc", "language_enc", "interpreter_needed_enc", "children_in_household_enc")


def upgrade() -> None:
    with op.batch_alter_table('defector_case') as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, EncryptedBlob(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('defector_case') as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
