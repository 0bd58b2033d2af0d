"""Broadcast campaigns remember the staff accounts of their author and approver, so the two-person rule
compares accounts, not spellings of a name.  Older rows keep their names and no account.

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcast_campaigns") as batch:
        batch.add_column(sa.Column("created_by_account", sa.Integer()))
        batch.add_column(sa.Column("approved_by_account", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("broadcast_campaigns") as batch:
        batch.drop_column("approved_by_account")
        batch.drop_column("created_by_account")
