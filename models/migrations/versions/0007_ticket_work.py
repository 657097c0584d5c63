"""work on tickets: internal notes, who is viewing a ticket, and the pointer a merged ticket leaves

Revision ID: 0007_work
Revises: 0006_search
Create Date: 2026-12-07 12:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0007_work"
down_revision = "0006_search"
branch_labels = None
depends_on = None


def _tickets():
    """Alter tickets (SQLite: a rebuild, which must keep its ids never reused)."""
    if op.get_bind().dialect.name == "sqlite":
        return op.batch_alter_table("tickets", recreate="always", table_kwargs={"sqlite_autoincrement": True})
    return op.batch_alter_table("tickets")


def upgrade() -> None:
    with _tickets() as batch:
        batch.add_column(sa.Column("merged_into_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_tickets_merged_into_id_tickets"), "tickets", ["merged_into_id"], ["id"], ondelete="CASCADE"
        )
        batch.create_index(batch.f("ix_tickets_merged_into_id"), ["merged_into_id"], unique=False)
    op.create_table(
        "ticket_notes",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["author_id"], ["agents.id"], name=op.f("fk_ticket_notes_author_id_agents"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_notes_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_notes")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_ticket_notes_ticket_id"), "ticket_notes", ["ticket_id"], unique=False)
    op.create_table(
        "ticket_presence",
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("activity", sa.String(length=16), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_ticket_presence_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ticket_presence_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("ticket_id", "agent_id", name=op.f("pk_ticket_presence")),
    )


def downgrade() -> None:
    op.drop_table("ticket_presence")
    op.drop_index(op.f("ix_ticket_notes_ticket_id"), table_name="ticket_notes")
    op.drop_table("ticket_notes")
    with _tickets() as batch:
        batch.drop_index(batch.f("ix_tickets_merged_into_id"))
        batch.drop_constraint(batch.f("fk_tickets_merged_into_id_tickets"), type_="foreignkey")
        batch.drop_column("merged_into_id")
