"""full-text index of messages (tickets.search): FTS5 on SQLite, tsvector + GIN on PostgreSQL

Revision ID: 0006_search
Revises: 0005_agents
Create Date: 2026-12-07 11:00:00
"""

from alembic import op


revision = "0006_search"
down_revision = "0005_agents"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE message_search USING fts5("
            "subject, body, people, attachments, tokenize = 'unicode61 remove_diacritics 2')"
        )
        # The index row goes with its message, however the message goes (a ticket's cascade too).
        op.execute(
            "CREATE TRIGGER message_search_forget AFTER DELETE ON messages "
            "BEGIN DELETE FROM message_search WHERE rowid = old.id; END"
        )
        op.execute(
            "INSERT INTO message_search (rowid, subject, body, people, attachments) "
            "SELECT id, subject, substr(text_body, 1, 100000), from_name || ' ' || from_address, '' FROM messages"
        )
    else:
        op.execute(
            "CREATE TABLE message_search (message_id INTEGER PRIMARY KEY "
            "REFERENCES messages (id) ON DELETE CASCADE, document tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX ix_message_search_document ON message_search USING gin (document)")
        op.execute(
            "INSERT INTO message_search (message_id, document) SELECT id, "
            f"setweight({_words('subject')}, 'A') || setweight({_words(SENDER)}, 'B') "
            f"|| {_words('left(text_body, 100000)')} FROM messages"
        )


SENDER = "from_name || ' ' || from_address"


def _words(column: str) -> str:
    """As tickets.search indexes on PostgreSQL: the words, not the parser's addresses and file names."""
    return f"to_tsvector('simple', regexp_replace({column}, '[^[:alnum:]_]+', ' ', 'g'))"


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        op.execute("DROP TRIGGER message_search_forget")
    op.execute("DROP TABLE message_search")
