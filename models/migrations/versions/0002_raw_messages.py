"""raw mail in the database: raw_messages; messages found by spool id

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 22:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "raw_messages",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_raw_messages_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_raw_messages")),
    )
    op.create_index(op.f("ix_messages_spool_id"), "messages", ["spool_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_messages_spool_id"), table_name="messages")
    op.drop_table("raw_messages")
