"""a schema built for erasure: every personal row found by an index, ids never reused, blob counts kept by the database

- indexes from a person to their rows: messages by from_address and envelope_from (lower-cased
  here), tickets by contact_id, participants by address, spam events by key;
- spam_labels.message_id without ON DELETE SET NULL: a learned message cannot be deleted before
  it is unlearned;
- imap_copies: account, folder, UIDVALIDITY and UID of each message fetched over IMAP;
- ids never reused: SQLite AUTOINCREMENT, PostgreSQL identity columns;
- deleting an attachment row takes one off its blob's count (trigger attachments_release_blob);
  counts recomputed from the attachments, as messages.raw_blob_id (before 0002) goes.

Revision ID: 0003_erasure
Revises: 0002
Create Date: 2026-12-07 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0003_erasure"
down_revision = "0002"
branch_labels = None
depends_on = None

SERIAL_TABLES = (
    "agents",
    "audit_events",
    "blobs",
    "contacts",
    "departments",
    "mailboxes",
    "tickets",
    "messages",
    "recipients",
    "attachments",
    "spam_labels",
    "spam_events",
    "spam_model_versions",
)

SQLITE_TRIGGER = """
CREATE TRIGGER attachments_release_blob AFTER DELETE ON attachments FOR EACH ROW
BEGIN UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob_id; END
"""
POSTGRESQL_TRIGGER = (
    """
CREATE FUNCTION attachments_release_blob() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN UPDATE blobs SET refcount = refcount - 1 WHERE id = OLD.blob_id; RETURN NULL; END $$
""",
    """
CREATE TRIGGER attachments_release_blob AFTER DELETE ON attachments
FOR EACH ROW EXECUTE FUNCTION attachments_release_blob()
""",
)


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _batch(table: str):
    """SQLite rebuilds the table with AUTOINCREMENT (models.db turns foreign keys off meanwhile)."""
    if _sqlite():
        return op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True})
    return op.batch_alter_table(table)


def upgrade() -> None:
    with _batch("messages") as batch_op:
        batch_op.drop_constraint("fk_messages_raw_blob_id_blobs", type_="foreignkey")
        batch_op.drop_column("raw_blob_id")
        batch_op.create_index(batch_op.f("ix_messages_from_address"), ["from_address"], unique=False)
        batch_op.create_index(batch_op.f("ix_messages_envelope_from"), ["envelope_from"], unique=False)
    op.execute("UPDATE messages SET envelope_from = lower(envelope_from)")
    with _batch("tickets") as batch_op:
        batch_op.create_index(batch_op.f("ix_tickets_contact_id"), ["contact_id"], unique=False)
    with _batch("spam_labels") as batch_op:
        batch_op.drop_constraint("fk_spam_labels_message_id_messages", type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_spam_labels_message_id_messages"), "messages", ["message_id"], ["id"]
        )
    with _batch("spam_events") as batch_op:
        batch_op.create_index(batch_op.f("ix_spam_events_key"), ["key"], unique=False)
    op.create_index(op.f("ix_ticket_participants_address"), "ticket_participants", ["address"], unique=False)
    op.create_table(
        "imap_copies",
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("folder", sa.String(length=1000), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_imap_copies_message_id_messages"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_imap_copies")),
    )
    if _sqlite():
        for table in SERIAL_TABLES:
            if table not in ("messages", "tickets", "spam_labels", "spam_events"):  # rebuilt above
                with _batch(table):
                    pass
        op.execute(SQLITE_TRIGGER)
    else:
        for table in SERIAL_TABLES:
            _identity(table)
        for statement in POSTGRESQL_TRIGGER:
            op.execute(statement)
    op.execute("UPDATE blobs SET refcount = (SELECT count(*) FROM attachments WHERE attachments.blob_id = blobs.id)")


def _identity(table: str) -> None:
    """PostgreSQL: the serial's sequence becomes an identity, going on from where the sequence was."""
    bind = op.get_bind()
    if (
        bind.execute(
            sa.text("SELECT is_identity FROM information_schema.columns WHERE table_name = :t AND column_name = 'id'"),
            {"t": table},
        ).scalar()
        == "YES"
    ):
        return  # downgraded before: 0003's downgrade keeps the identity
    last, called = bind.execute(sa.text(f"SELECT last_value, is_called FROM {table}_id_seq")).one()
    highest = bind.execute(sa.text(f"SELECT COALESCE(MAX(id), 0) FROM {table}")).scalar_one()
    start = max(last + 1 if called else last, highest + 1)
    op.execute(f"ALTER TABLE {table} ALTER COLUMN id DROP DEFAULT")
    op.execute(f"DROP SEQUENCE {table}_id_seq")
    op.execute(f"ALTER TABLE {table} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY (START WITH {start})")


def downgrade() -> None:
    """Back to 0002's tables and indexes; ids stay never reused (AUTOINCREMENT, identity)."""
    if _sqlite():
        op.execute("DROP TRIGGER attachments_release_blob")
    else:
        op.execute("DROP TRIGGER attachments_release_blob ON attachments")
        op.execute("DROP FUNCTION attachments_release_blob()")
    op.drop_table("imap_copies")
    op.drop_index(op.f("ix_ticket_participants_address"), table_name="ticket_participants")
    with op.batch_alter_table("spam_events") as batch_op:
        batch_op.drop_index(batch_op.f("ix_spam_events_key"))
    with op.batch_alter_table("spam_labels") as batch_op:
        batch_op.drop_constraint("fk_spam_labels_message_id_messages", type_="foreignkey")
        batch_op.create_foreign_key(
            batch_op.f("fk_spam_labels_message_id_messages"), "messages", ["message_id"], ["id"], ondelete="SET NULL"
        )
    with op.batch_alter_table("tickets") as batch_op:
        batch_op.drop_index(batch_op.f("ix_tickets_contact_id"))
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_index(batch_op.f("ix_messages_envelope_from"))
        batch_op.drop_index(batch_op.f("ix_messages_from_address"))
        batch_op.add_column(sa.Column("raw_blob_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(batch_op.f("fk_messages_raw_blob_id_blobs"), "blobs", ["raw_blob_id"], ["id"])
