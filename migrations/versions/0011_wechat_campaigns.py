"""WeChat campaigns: a follower tag as a campaign's audience, and one row per mass-send call.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("broadcast_campaigns") as batch:
        batch.add_column(sa.Column("audience_tag", sa.Integer()))
        batch.add_column(sa.Column("audience_tag_name", sa.String(100)))
    op.create_table(
        "broadcast_wechat_jobs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "campaign_id",
            sa.String(40),
            sa.ForeignKey("broadcast_campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("client_msg_id", sa.String(64), nullable=False, unique=True),
        sa.Column("tag_id", sa.Integer()),
        sa.Column("openids", sa.Text(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("msg_id", sa.BigInteger()),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("filtered", sa.Integer(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("status_text", sa.String(64)),
        sa.Column("submitted_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("campaign_id", "seq", name="uq_broadcast_wechat_job_seq"),
    )
    op.create_index("ix_broadcast_wechat_jobs_campaign_id", "broadcast_wechat_jobs", ["campaign_id"])
    op.create_index("ix_broadcast_wechat_jobs_msg_id", "broadcast_wechat_jobs", ["msg_id"])


def downgrade() -> None:
    op.drop_index("ix_broadcast_wechat_jobs_msg_id", "broadcast_wechat_jobs")
    op.drop_index("ix_broadcast_wechat_jobs_campaign_id", "broadcast_wechat_jobs")
    op.drop_table("broadcast_wechat_jobs")
    with op.batch_alter_table("broadcast_campaigns") as batch:
        batch.drop_column("audience_tag_name")
        batch.drop_column("audience_tag")
