"""retention: the Trash, legal holds, placeholders of attachments a rule removed

- tickets.trashed_at (indexed: the Trash rule finds what is due) and tickets.trashed_from (the
  queue a restore puts the ticket back in);
- legal_holds: a ticket or an address no rule and no erasure touches while the hold lasts;
- removed_attachments: what an agent sees where a rule removed an attachment (when, type, size).

Revision ID: 0008_retention
Revises: 0007_work
Create Date: 2026-12-07 05:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0008_retention"
down_revision = "0007_work"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("tickets", sa.Column("trashed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("tickets", sa.Column("trashed_from", sa.String(length=16), nullable=True))
    op.create_index(op.f("ix_tickets_trashed_at"), "tickets", ["trashed_at"], unique=False)
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=True),
        sa.Column("address", sa.String(length=320), nullable=True),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_legal_holds_ticket_id"), "legal_holds", ["ticket_id"], unique=False)
    op.create_index(op.f("ix_legal_holds_address"), "legal_holds", ["address"], unique=False)
    op.create_table(
        "removed_attachments",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("declared_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_removed_attachments_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_removed_attachments")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_removed_attachments_message_id"), "removed_attachments", ["message_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_removed_attachments_message_id"), table_name="removed_attachments")
    op.drop_table("removed_attachments")
    op.drop_index(op.f("ix_legal_holds_address"), table_name="legal_holds")
    op.drop_index(op.f("ix_legal_holds_ticket_id"), table_name="legal_holds")
    op.drop_table("legal_holds")
    op.drop_index(op.f("ix_tickets_trashed_at"), table_name="tickets")
    with (
        op.batch_alter_table("tickets", recreate="always", table_kwargs={"sqlite_autoincrement": True})
        if op.get_bind().dialect.name == "sqlite"
        else op.batch_alter_table("tickets") as batch_op
    ):
        batch_op.drop_column("trashed_from")
        batch_op.drop_column("trashed_at")
