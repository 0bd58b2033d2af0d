"""Broadcast notices: campaigns, recipients, saved groups.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "broadcast_campaigns",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("template", sa.Text(), nullable=False),
        sa.Column("signature", sa.String(16), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("rate", sa.Float()),
        sa.Column("window_start", sa.Integer(), nullable=False),
        sa.Column("window_end", sa.Integer(), nullable=False),
        sa.Column("scheduled_at", sa.DateTime(timezone=True)),
        sa.Column("column_map", sa.Text(), nullable=False),
        sa.Column("group_ids", sa.Text(), nullable=False),
        sa.Column("source_name", sa.String(255)),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("submitted_by", sa.String(64)),
        sa.Column("approved_by", sa.String(64)),
        sa.Column("state_reason", sa.String(255)),
        sa.Column("recipients_total", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_broadcast_campaigns_state", "broadcast_campaigns", ["state"])
    op.create_table(
        "broadcast_recipients",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "campaign_id",
            sa.String(40),
            sa.ForeignKey("broadcast_campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("raw", sa.String(64), nullable=False),
        sa.Column("address", sa.String(64)),
        sa.Column("variables", sa.Text(), nullable=False),
        sa.Column("excluded", sa.String(16)),
        sa.UniqueConstraint("campaign_id", "seq", name="uq_broadcast_recipient_seq"),
    )
    op.create_index("ix_broadcast_recipients_campaign_id", "broadcast_recipients", ["campaign_id"])
    op.create_table(
        "broadcast_groups",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "broadcast_group_members",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "group_id",
            sa.String(40),
            sa.ForeignKey("broadcast_groups.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("variables", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.UniqueConstraint("group_id", "address", name="uq_broadcast_group_member"),
    )
    op.create_index("ix_broadcast_group_members_group_id", "broadcast_group_members", ["group_id"])


def downgrade() -> None:
    op.drop_table("broadcast_group_members")
    op.drop_table("broadcast_groups")
    op.drop_table("broadcast_recipients")
    op.drop_table("broadcast_campaigns")
