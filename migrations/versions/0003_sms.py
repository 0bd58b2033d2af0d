"""SMS: outbound ledger, delivery events, opt-out list.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sms_outbound",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(20), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("segments", sa.Integer(), nullable=False),
        sa.Column("encoding", sa.String(8), nullable=False),
        sa.Column("purpose", sa.String(24), nullable=False),
        sa.Column("campaign_id", sa.String(64)),
        sa.Column("dedup_key", sa.String(200), unique=True),
        sa.Column("reply_to", sa.String(64)),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("via", sa.String(8), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("provider_sid", sa.String(64)),
        sa.Column("provider_status", sa.String(24)),
        sa.Column("error_code", sa.Integer()),
        sa.Column("error_message", sa.String(255)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("transient_retries", sa.Integer(), nullable=False),
        sa.Column("throttle_retries", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_sms_outbound_recipient", "sms_outbound", ["recipient"])
    op.create_index("ix_sms_outbound_provider_sid", "sms_outbound", ["provider_sid"])
    op.create_index("ix_sms_outbound_due", "sms_outbound", ["status", "next_attempt_at"])
    op.create_index("ix_sms_outbound_campaign", "sms_outbound", ["campaign_id", "status"])
    op.create_table(
        "sms_delivery_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "ledger_id", sa.String(32), sa.ForeignKey("sms_outbound.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("provider_sid", sa.String(64)),
        sa.Column("provider_status", sa.String(24), nullable=False),
        sa.Column("error_code", sa.Integer()),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("ledger_id", "attempt", "provider_status", name="uq_sms_event"),
    )
    op.create_index("ix_sms_delivery_events_ledger_id", "sms_delivery_events", ["ledger_id"])
    op.create_table(
        "sms_opt_outs",
        sa.Column("phone", sa.String(20), primary_key=True),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("keyword", sa.String(32)),
        sa.Column("error_code", sa.Integer()),
        sa.Column("confirmation_ledger_id", sa.String(32)),
        sa.Column("changed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sms_opt_outs")
    op.drop_table("sms_delivery_events")
    op.drop_table("sms_outbound")
