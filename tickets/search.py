"""The full-text index of messages: subject, body, sender and recipient names and addresses, attachment names.

SQLite: an FTS5 table `message_search` (rowid = message id, unicode61 words without diacritics).
PostgreSQL: `message_search(message_id, document tsvector)` with a GIN index, the `simple`
configuration (no stemming, as FTS5: mail comes in every language). Both are written in the
transaction that stores the message, and a message's row goes with the message (a trigger on
SQLite, a cascading foreign key on PostgreSQL) or by `remove`.

The index is a copy of personal data, so it must be erasable to the last byte. FTS5 deletes by
writing tombstones: the words of a deleted message stay in older index segments until they are
merged. `scrub` merges them all ('optimize'), so the erased words leave the file (SQLite's
`secure_delete` zeroes the freed pages; the erasure's WAL checkpoint then drops the old copies).
FTS5's own 'secure-delete' option (SQLite >= 3.42, e.g. the pysqlite3-binary wheel) was tried
first and rejected: it leaves the first word of an index page in place as that page's key,
which a byte scan of the file found. 'optimize' rewrites the whole index, so its cost grows with
the index (bench/results/web.md); erasure is rare and runs as a job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, UTC
from collections.abc import Iterable

from selectolax.lexbor import LexborHTMLParser
from sqlalchemy import bindparam, select, text
from sqlalchemy.orm import Session

from models import Attachment, Message, Recipient

_PEOPLE = ("to", "cc", "from")  # the recipients whose names and addresses are searchable, with the sender
BODY_CHARS = 100_000  # the first 100,000 characters of a body are searchable (PostgreSQL caps a tsvector at 1 MB)


def _pg_words(value: str) -> str:
    """PostgreSQL's parser keeps "greta@example.org" or "q3-ledger.pdf" whole, where FTS5 reads
    their words: made words first, both find a name by its parts and an address as a phrase."""
    return f"to_tsvector('simple', regexp_replace({value}, '[^[:alnum:]_]+', ' ', 'g'))"


_INSERT = {
    "sqlite": text(
        "INSERT INTO message_search (rowid, subject, body, people, attachments) "
        "VALUES (:message_id, :subject, :body, :people, :attachments)"
    ),
    "postgresql": text(
        "INSERT INTO message_search (message_id, document) VALUES (:message_id, "
        f"setweight({_pg_words(':subject')}, 'A') || setweight({_pg_words(':people')}, 'B') "
        f"|| setweight({_pg_words(':attachments')}, 'B') || {_pg_words(':body')})"
    ),
}
_REMOVE = {
    "sqlite": text("DELETE FROM message_search WHERE rowid IN :ids").bindparams(bindparam("ids", expanding=True)),
    "postgresql": text("DELETE FROM message_search WHERE message_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    ),
}
_COUNT = {
    "sqlite": text("SELECT count(*) FROM message_search WHERE rowid IN :ids").bindparams(
        bindparam("ids", expanding=True)
    ),
    "postgresql": text("SELECT count(*) FROM message_search WHERE message_id IN :ids").bindparams(
        bindparam("ids", expanding=True)
    ),
}
_MATCH = {  # (from, where for n phrases, the message id)
    "sqlite": ("message_search s JOIN messages m ON m.id = s.rowid", lambda n: "message_search MATCH :q0", "s.rowid"),
    # "+ 0" keeps PostgreSQL off the primary key's order: when it overestimates how many messages
    # hold a word, it walks every message newest first testing each, instead of using the GIN
    # index and sorting what it found (bench/results/web.md).
    "postgresql": (
        "message_search s JOIN messages m ON m.id = s.message_id",
        lambda n: "s.document @@ (" + " && ".join(f"phraseto_tsquery('simple', :q{i})" for i in range(n)) + ")",
        "(s.message_id + 0)",
    ),
}


def insert_statement(session: Session):
    """The statement that `document` rows go to (one object per dialect, so a batch can gather rows for it)."""
    return _INSERT[session.get_bind().dialect.name]


def document(
    message_id: int, *, subject: str, plain: str, html: str, people: Iterable[str], attachment_names: Iterable[str]
) -> dict:
    """One message's searchable words, as a row for `insert_statement`. The HTML is read only
    when there is no plain text (most HTML mail carries both)."""
    body = plain or (_html_text(html) if html else "")
    return {
        "message_id": message_id,
        "subject": subject,
        "body": body[:BODY_CHARS],
        "people": " ".join(p for p in people if p),
        "attachments": " ".join(n for n in attachment_names if n),
    }


class SearchIndex:
    """The index as one of the message store's hooks: a batch's messages are indexed in the
    transaction that writes them, and leave it in the one that erases them."""

    name = "search"

    def written(self, session: Session, messages: list) -> None:
        index(
            session,
            [
                document(
                    message_id,
                    subject=record.subject,
                    plain=record.text_body,
                    html=record.html_body,
                    people=[
                        record.from_name,
                        record.from_address,
                        *(part for a in record.recipients if a.kind in _PEOPLE for part in (a.name, a.address)),
                    ],
                    attachment_names=[part.filename for part in record.attachments],
                )
                for message_id, record in messages
            ],
        )

    def erasing(self, session: Session, message_ids: list[int]) -> None:
        remove(session, message_ids)

    def rewritten(self, session: Session, message_ids: list[int]) -> None:
        """Their stored text changed (a redaction): indexed again from the rows."""
        remove(session, message_ids)
        index(
            session,
            [
                _document_of(session, message)
                for message in session.scalars(select(Message).where(Message.id.in_(sorted(message_ids))))
            ],
        )

    def copies(self, session: Session, message_ids: list[int]) -> int:
        if not message_ids:
            return 0
        return session.execute(_COUNT[session.get_bind().dialect.name], {"ids": message_ids}).scalar_one()


def _document_of(session: Session, message: Message) -> dict:
    named = session.execute(
        select(Recipient.name, Recipient.address).where(Recipient.message_id == message.id, Recipient.kind.in_(_PEOPLE))
    ).all()
    names = session.scalars(select(Attachment.filename).where(Attachment.message_id == message.id)).all()
    return document(
        message.id,
        subject=message.subject,
        plain=message.text_body,
        html=message.html_body,
        people=[message.from_name, message.from_address, *(part for row in named for part in row)],
        attachment_names=names,
    )


def index(session: Session, rows: list[dict]) -> None:
    if rows:
        session.execute(insert_statement(session), rows)


def remove(session: Session, message_ids: Iterable[int]) -> None:
    """Take messages out of the index (their words stay on disk until `scrub`)."""
    ids = sorted(set(message_ids))
    dialect = session.get_bind().dialect.name
    for i in range(0, len(ids), 500):
        session.execute(_REMOVE[dialect], {"ids": ids[i : i + 500]})


def scrub(session: Session) -> None:
    """Rewrite the index without the words of removed messages (SQLite). On PostgreSQL a deleted
    row's tuple and GIN entries go at the next VACUUM of message_search, which the erasure runs."""
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("INSERT INTO message_search (message_search) VALUES ('optimize')"))


@dataclass(frozen=True)
class Hit:
    message_id: int
    ticket_id: int
    subject: str
    from_name: str
    from_address: str
    received_at: datetime
    ticket_subject: str
    ticket_status: str
    ticket_queue: str


def find(
    session: Session, query: str, *, departments: frozenset[int] | None, limit: int, before: int | None = None
) -> list[Hit]:
    """Messages holding every word of `query`, newest first, in tickets of `departments` (None: all).
    `before` is the last message id of the previous page (keyset pagination)."""
    dialect = session.get_bind().dialect.name
    match = _query_for(dialect, query)
    if match is None or departments == frozenset():
        return []
    source, condition, rowid = _MATCH[dialect]
    where = [condition(len(match))]
    params: dict[str, object] = {"limit": limit} | {f"q{i}": m for i, m in enumerate(match)}
    if departments is not None:
        where.append("t.department_id IN :departments")
        params["departments"] = sorted(departments)
    if before is not None:
        where.append(f"{rowid} < :before")
        params["before"] = before
    statement = text(
        f"SELECT m.id, m.ticket_id, m.subject, m.from_name, m.from_address, m.received_at, "
        f"t.subject, t.status, t.queue FROM {source} JOIN tickets t ON t.id = m.ticket_id "
        f"WHERE {' AND '.join(where)} ORDER BY {rowid} DESC LIMIT :limit"
    )
    if departments is not None:
        statement = statement.bindparams(bindparam("departments", expanding=True))
    return [_hit(*row) for row in session.execute(statement, params)]


def _hit(message_id, ticket_id, subject, from_name, from_address, received_at, *ticket) -> Hit:
    """A row of `find`'s statement (SQLite gives its times without their zone)."""
    return Hit(message_id, ticket_id, subject, from_name, from_address, _aware(received_at), *ticket)


def mentioning(session: Session, phrase: str) -> list[int]:
    """Every message whose indexed words hold `phrase` (an address, say), whatever its ticket."""
    dialect = session.get_bind().dialect.name
    match = _query_for(dialect, phrase)
    if match is None:
        return []
    source, condition, rowid = _MATCH[dialect]
    statement = text(f"SELECT {rowid} FROM {source} WHERE {condition(len(match))}")
    return list(session.scalars(statement, {f"q{i}": m for i, m in enumerate(match)}))


_WORDS = re.compile(r"\w+")


def _query_for(dialect: str, query: str) -> list[str] | None:
    """Every whitespace-separated chunk of the query must match as a phrase of its words
    ("alice@example.com" is alice, example, com in a row): one FTS5 query string on SQLite,
    one phrase per chunk for PostgreSQL's phraseto_tsquery."""
    chunks = [_WORDS.findall(c) for c in query.split()]
    chunks = [words for words in chunks if words]
    if not chunks:
        return None
    if dialect == "postgresql":
        return [" ".join(words) for words in chunks]
    return [" ".join('"' + " ".join(words) + '"' for words in chunks)]


def _html_text(html: str) -> str:
    tree = LexborHTMLParser(html.encode("utf-8", "replace"))
    tree.strip_tags(["script", "style"])
    return tree.root.text(separator=" ") if tree.root else ""


def _aware(value):
    """SQLite hands back text or naive datetimes through text(); we only ever store UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value
