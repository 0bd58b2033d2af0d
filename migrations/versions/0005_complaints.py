"""Complaints: the 工单, its append-only history, and the outbox of notices to the citizen.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(16), nullable=False, unique=True),
        sa.Column("idempotency_key", sa.String(128), unique=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("sender_id", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("category", sa.String(32), nullable=False),
        sa.Column("phone", sa.String(20)),
        sa.Column("confidential", sa.Boolean(), nullable=False),
        sa.Column("respondent", sa.String(200)),
        sa.Column("respondent_key", sa.String(200)),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("occurred", sa.String(64)),
        sa.Column("location", sa.String(200)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_note", sa.Text()),
        sa.Column("accept_due", sa.Date(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("decision_reason", sa.Text()),
        sa.Column("owner_department", sa.String(100)),
        sa.Column("due", sa.Date()),
        sa.Column("extension_days", sa.Integer(), nullable=False),
        sa.Column("reply_text", sa.Text()),
        sa.Column("replied_at", sa.DateTime(timezone=True)),
        sa.Column("rating", sa.Integer()),
        sa.Column("rated_at", sa.DateTime(timezone=True)),
        sa.Column("rating_comment", sa.Text()),
        sa.Column("bad_review", sa.Boolean(), nullable=False),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("callback_note", sa.Text()),
        sa.Column("overdue", sa.Boolean(), nullable=False),
        sa.Column("supervision_level", sa.Integer(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True)),
        sa.Column("merged_into_id", sa.Integer(), sa.ForeignKey("complaints.id")),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("close_result", sa.String(32)),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_complaints_sender_id", "complaints", ["sender_id"])
    op.create_index("ix_complaints_status_due", "complaints", ["status", "due"])
    op.create_index("ix_complaints_sender_received", "complaints", ["sender_id", "received_at"])
    op.create_table(
        "complaint_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("complaint_id", sa.Integer(), sa.ForeignKey("complaints.id"), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(80), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_status", sa.String(16)),
        sa.Column("to_status", sa.String(16)),
        sa.Column("department", sa.String(100)),
        sa.Column("note", sa.Text()),
        sa.Column("detail", sa.Text()),
        sa.Column("idempotency_key", sa.String(128), unique=True),
        sa.UniqueConstraint("complaint_id", "seq", name="uq_complaint_event_seq"),
    )
    op.create_index("ix_complaint_events_complaint_id", "complaint_events", ["complaint_id"])
    op.create_table(
        "complaint_notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("complaint_id", sa.Integer(), sa.ForeignKey("complaints.id"), nullable=False),
        sa.Column("key", sa.String(128), nullable=False, unique=True),
        sa.Column("purpose", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("via", sa.String(24)),
        sa.Column("error", sa.String(255)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_complaint_notices_complaint_id", "complaint_notices", ["complaint_id"])
    op.create_index("ix_complaint_notices_due", "complaint_notices", ["status", "next_attempt_at"])


def downgrade() -> None:
    op.drop_table("complaint_notices")
    op.drop_table("complaint_events")
    op.drop_table("complaints")
