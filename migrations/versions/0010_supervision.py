"""电子监察: the case register (every case of the approval backend's change feed) and 督办单 (notes from
the center to a department, signed for and answered in the console).

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "supervision_cases",
        sa.Column("ticket_no", sa.String(15), primary_key=True),
        sa.Column("item_code", sa.String(32), nullable=False),
        sa.Column("item_name", sa.String(200), nullable=False),
        sa.Column("window", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
        sa.Column("time_limit_days", sa.Integer()),
        sa.Column("promised_on", sa.Date()),
        sa.Column("details", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_supervision_cases_first_seen_at", "supervision_cases", ["first_seen_at"])
    op.create_table(
        "supervision_urges",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("department", sa.String(100), nullable=False),
        sa.Column("ticket_no", sa.String(15), nullable=False),
        sa.Column("note", sa.String(500), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("signed_by", sa.String(64)),
        sa.Column("signed_at", sa.DateTime(timezone=True)),
        sa.Column("answer", sa.String(500)),
        sa.Column("answered_by", sa.String(64)),
        sa.Column("answered_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_supervision_urges_department", "supervision_urges", ["department", "status"])


def downgrade() -> None:
    op.drop_index("ix_supervision_urges_department", table_name="supervision_urges")
    op.drop_table("supervision_urges")
    op.drop_index("ix_supervision_cases_first_seen_at", table_name="supervision_cases")
    op.drop_table("supervision_cases")
