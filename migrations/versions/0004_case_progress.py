"""Case progress: bindings/subscriptions, notification ledger, change-feed cursor, lookup audit.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "progress_bindings",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("sender_id", sa.String(80), nullable=False),
        sa.Column("ticket_no", sa.String(15), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("address", sa.String(64), nullable=False),
        sa.Column("verified_by", sa.String(16), nullable=False),
        sa.Column("notify", sa.Boolean(), nullable=False),
        sa.Column("item_code", sa.String(32), nullable=False),
        sa.Column("item_name", sa.String(200), nullable=False),
        sa.Column("window_phone", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("sender_id", "ticket_no", name="uq_progress_binding"),
    )
    op.create_index("ix_progress_bindings_ticket_no", "progress_bindings", ["ticket_no"])
    op.create_table(
        "progress_notifications",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("ticket_no", sa.String(15), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_round", sa.Integer(), nullable=False),
        sa.Column("sender_id", sa.String(80), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("via", sa.String(8)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.String(200)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint(
            "ticket_no", "status", "status_round", "sender_id", name="uq_progress_notification"
        ),
    )
    op.create_index("ix_progress_notifications_due", "progress_notifications", ["state", "next_attempt_at"])
    op.create_table(
        "progress_feed_cursor",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("cursor", sa.String(64)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "progress_audit",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("sender_id", sa.String(80), nullable=False),
        sa.Column("ticket_no", sa.String(15)),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("result", sa.String(24), nullable=False),
        sa.Column("detail", sa.String(120)),
    )
    op.create_index("ix_progress_audit_created_at", "progress_audit", ["created_at"])
    op.create_index("ix_progress_audit_sender_id", "progress_audit", ["sender_id"])
    op.create_index("ix_progress_audit_ticket_no", "progress_audit", ["ticket_no"])


def downgrade() -> None:
    op.drop_table("progress_audit")
    op.drop_table("progress_feed_cursor")
    op.drop_table("progress_notifications")
    op.drop_table("progress_bindings")
