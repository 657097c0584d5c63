"""erasure of a person: jobs that resume, ticket shells that nothing threads into

- erasure_jobs: one row per erasure (progress and counts, the keyed hash of the address, no
  personal data), so a job killed midway is found and finished;
- tickets.erased_at: set on the shell an anonymising erasure keeps of a ticket;
- an index on tickets.linked_ticket_id: deleting a ticket sets the links to it to NULL, which
  without it reads every ticket.

Revision ID: 0004_privacy
Revises: 0003_erasure
Create Date: 2026-12-08 09:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0004_privacy"
down_revision = "0003_erasure"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasure_jobs",
        sa.Column("id", sa.Integer(), sa.Identity(), nullable=False),
        sa.Column("receipt", sa.String(length=36), nullable=False),
        sa.Column("subject_hmac", sa.String(length=64), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_erasure_jobs")),
        sa.UniqueConstraint("receipt", name=op.f("uq_erasure_jobs_receipt")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_erasure_jobs_subject_hmac"), "erasure_jobs", ["subject_hmac"], unique=False)
    op.create_index(op.f("ix_erasure_jobs_contact_id"), "erasure_jobs", ["contact_id"], unique=False)
    op.add_column("tickets", sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_tickets_linked_ticket_id"), "tickets", ["linked_ticket_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_tickets_linked_ticket_id"), table_name="tickets")
    with (
        op.batch_alter_table("tickets", recreate="always", table_kwargs={"sqlite_autoincrement": True})
        if op.get_bind().dialect.name == "sqlite"
        else op.batch_alter_table("tickets") as batch_op
    ):
        batch_op.drop_column("erased_at")
    op.drop_index(op.f("ix_erasure_jobs_contact_id"), table_name="erasure_jobs")
    op.drop_index(op.f("ix_erasure_jobs_subject_hmac"), table_name="erasure_jobs")
    op.drop_table("erasure_jobs")
