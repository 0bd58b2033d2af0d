"""WeChat campaigns to citizens bound to a case: the campaign's case audience, and one row per template
notice (its state, WeChat's msgid and the TEMPLATESENDJOBFINISH outcome).

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcast_campaigns") as batch:
        batch.add_column(sa.Column("audience_cases", sa.String(40)))
    op.create_table(
        "broadcast_wechat_notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "campaign_id",
            sa.String(40),
            sa.ForeignKey("broadcast_campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("openid", sa.String(64), nullable=False),
        sa.Column("ticket_no", sa.String(15), nullable=False),
        sa.Column("item_name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True)),
        sa.Column("msg_id", sa.BigInteger()),
        sa.Column("errcode", sa.Integer()),
        sa.Column("status_text", sa.String(64)),
        sa.Column("outcome", sa.String(16)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("campaign_id", "seq", name="uq_broadcast_wechat_notice_seq"),
    )
    op.create_index("ix_broadcast_wechat_notices_due", "broadcast_wechat_notices", ["campaign_id", "state"])
    op.create_index("ix_broadcast_wechat_notices_msg_id", "broadcast_wechat_notices", ["msg_id"])


def downgrade() -> None:
    op.drop_index("ix_broadcast_wechat_notices_msg_id", "broadcast_wechat_notices")
    op.drop_index("ix_broadcast_wechat_notices_due", "broadcast_wechat_notices")
    op.drop_table("broadcast_wechat_notices")
    with op.batch_alter_table("broadcast_campaigns") as batch:
        batch.drop_column("audience_cases")
