"""One row per citizen turn (channel, a keyed hash of the sender, how it was answered, the item the
knowledge base answered, the length of the text) for the console's dashboard.  Append-only.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation_turns",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("sender_hash", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(12), nullable=False),
        sa.Column("item_code", sa.String(32)),
        sa.Column("text_length", sa.Integer(), nullable=False),
    )
    op.create_index("ix_conversation_turns_at", "conversation_turns", ["at"])


def downgrade() -> None:
    op.drop_index("ix_conversation_turns_at", table_name="conversation_turns")
    op.drop_table("conversation_turns")
