"""Knowledge base: kb_items, kb_aliases, kb_versions, kb_unanswered.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "kb_items",
        sa.Column("code", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("item_type", sa.String(50), nullable=False),
        sa.Column("department", sa.String(200), nullable=False),
        sa.Column("window", sa.String(200), nullable=False),
        sa.Column("conditions", sa.Text(), nullable=False),
        sa.Column("materials", sa.Text(), nullable=False),
        sa.Column("process", sa.Text(), nullable=False),
        sa.Column("legal_time_limit", sa.Text(), nullable=False),
        sa.Column("promised_time_limit", sa.Text(), nullable=False),
        sa.Column("fee", sa.Text(), nullable=False),
        sa.Column("legal_basis", sa.Text(), nullable=False),
        sa.Column("phone", sa.String(100), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("office_hours", sa.Text(), nullable=False),
        sa.Column("online", sa.Text(), nullable=False),
        sa.Column("faq", sa.Text(), nullable=False),
        sa.Column("materials_list", sa.JSON(), nullable=False),
        sa.Column("process_steps", sa.JSON(), nullable=False),
        sa.Column("faq_list", sa.JSON(), nullable=False),
        sa.Column("online_available", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "kb_aliases",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("alias", sa.String(200), nullable=False, unique=True),
        sa.Column("item_code", sa.String(32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_kb_aliases_item_code", "kb_aliases", ["item_code"])
    op.create_table(
        "kb_versions",
        sa.Column("version", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.String(500), nullable=False),
        sa.Column("added", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "kb_unanswered",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("normalized", sa.Text(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("best_code", sa.String(32), nullable=True),
        sa.Column("best_name", sa.String(200), nullable=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_kb_unanswered_created_at", "kb_unanswered", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_kb_unanswered_created_at", table_name="kb_unanswered")
    op.drop_table("kb_unanswered")
    op.drop_table("kb_versions")
    op.drop_index("ix_kb_aliases_item_code", table_name="kb_aliases")
    op.drop_table("kb_aliases")
    op.drop_table("kb_items")
