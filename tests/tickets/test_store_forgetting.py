"""Erasing learned mail through the message store: the live model in every process and every saved
model version end count for count equal to ones that never learned it, and no row or file keeps its
features; an anonymising erasure keeps a ticket as an empty shell that nothing threads into."""

from __future__ import annotations

from sqlalchemy import func, select

from classifier import ledger
from classifier.features import Features
from classifier.model import CountModel
from classifier.versions import retrain, versions
from models import Contact, Message, SpamEvent, SpamLabel, Ticket, TicketParticipant
from models.mail.parse import parse
from tickets.signing import MessageIdSigner
from tickets.spam_marks import mark_message
from test_spam_flow import counts_equal, delivered, raw


def mark(postdesk, message: Message, label: str) -> None:
    with postdesk.app.db.write() as session:
        mark_message(
            session,
            message.id,
            label,
            store=postdesk.app.store,
            spam_filter=postdesk.app.live_model().filter,
            actor="agent",
        )


def learned_features(postdesk, message: Message) -> tuple[Features, str]:
    with postdesk.app.db.read() as session:
        row = session.execute(
            select(SpamLabel.features, SpamLabel.label).where(SpamLabel.key == f"message:{message.id}")
        ).one()
    return Features.from_bytes(row.features), row.label


def model_of(*learned: tuple[Features, str]) -> CountModel:
    model = CountModel()
    for features, label in learned:
        model.learn(features, label)
    return model


def save_version(postdesk) -> None:
    with postdesk.app.db.write() as session:
        retrain(session, postdesk.settings.spam_dir, postdesk.app.live_model().filter)


def refreshed(postdesk, live=None):
    live = live or postdesk.app.live_model()
    with postdesk.app.db.read() as session:
        live.refresh(session)
    return live


def test_erased_learned_mail_leaves_no_trace_in_the_live_model_or_any_saved_version(postdesk):
    kept_ham = delivered(postdesk, raw(1, "ham"))
    gone_spam = delivered(postdesk, raw(2, "spam"))
    mark(postdesk, kept_ham, "ham")
    mark(postdesk, gone_spam, "spam")
    save_version(postdesk)  # version 1 learned both
    kept_spam = delivered(postdesk, raw(3, "spam"))
    mark(postdesk, kept_spam, "spam")
    gone_ham = delivered(postdesk, raw(4, "ham"))
    mark(postdesk, gone_ham, "spam")
    mark(postdesk, gone_ham, "ham")  # relabelled: its events are -1 spam, +1 ham
    save_version(postdesk)  # version 2 learned all four
    late = delivered(postdesk, raw(5, "ham", sender="gone@example.org"))
    mark(postdesk, late, "ham")  # after the last version: only in the event log
    a, b = learned_features(postdesk, kept_ham), learned_features(postdesk, kept_spam)
    running = refreshed(postdesk)  # a process that learned them all before the erasure
    with postdesk.app.db.read() as session:
        old_files = {v.path for v in versions(session)}

    with postdesk.app.db.write() as session:
        erased = postdesk.app.store.erase(session, [gone_spam.id, gone_ham.id, late.id])

    assert (erased.spam_labels, erased.spam_versions) == (3, 2)
    assert counts_equal(refreshed(postdesk, running).filter.model, model_of(a, b))
    assert counts_equal(refreshed(postdesk).filter.model, model_of(a, b))
    with postdesk.app.db.read() as session:
        first, second = versions(session)
        keys = set(session.scalars(select(SpamEvent.key)))
    spam_dir = postdesk.settings.spam_dir
    assert counts_equal(CountModel.load(spam_dir / first.path), model_of(a))
    assert counts_equal(CountModel.load(spam_dir / second.path), model_of(a, b))
    assert keys <= {f"message:{kept_ham.id}", f"message:{kept_spam.id}", ":reload"}
    assert {p.name.split(".")[0] for p in spam_dir.iterdir()} == {first.path, second.path}
    assert not old_files & {first.path, second.path}


def test_mail_learned_from_a_file_is_forgotten_with_the_stored_copy_of_the_same_bytes(postdesk):
    message = delivered(postdesk, raw(1, "spam"))
    live = refreshed(postdesk)
    with postdesk.app.db.write() as session:
        sha256 = session.scalar(select(Message.raw_sha256).where(Message.id == message.id))
        features = live.filter.features(parse(raw(1, "spam"), received_at=message.received_at))
        ledger.learn(session, f"raw:{sha256}", "spam", features, "cli")
    with postdesk.app.db.write() as session:
        assert postdesk.app.store.erase(session, [message.id]).spam_labels == 1
    with postdesk.app.db.read() as session:
        assert session.scalar(select(func.count()).select_from(SpamEvent).where(SpamEvent.delta != 0)) == 0
    assert refreshed(postdesk).filter.model.n_spam == 0


def test_an_erasure_that_rolls_back_keeps_the_versions_it_had_rewritten(postdesk):
    message = delivered(postdesk, raw(1, "spam"))
    mark(postdesk, message, "spam")
    save_version(postdesk)
    with postdesk.app.db.read() as session:
        [before] = versions(session)
    try:
        with postdesk.app.db.write() as session:
            postdesk.app.store.erase(session, [message.id])
            raise RuntimeError("the erasure's batch fails")
    except RuntimeError:
        pass
    with postdesk.app.db.read() as session:
        [after] = versions(session)
    assert after.path == before.path
    assert sorted(p.name for p in postdesk.settings.spam_dir.iterdir()) == [f"{before.path}.json", f"{before.path}.npz"]
    assert refreshed(postdesk).filter.model.n_spam == 1


def test_anonymising_keeps_an_empty_ticket_shell_that_a_late_reply_never_revives(postdesk):
    opener = delivered(postdesk, raw(1, "ham", sender="Ann Example <ann@example.org>"), sender="ann@example.org")
    with postdesk.app.db.write() as session:
        session.execute(Ticket.__table__.update().values(status="resolved"))
        ticket = session.get(Ticket, opener.ticket_id)
        department, created = ticket.department_id, ticket.created_at

    with postdesk.app.db.write() as session:
        erased = postdesk.app.store.erase(session, [opener.id], shells=True)

    assert (erased.messages, erased.tickets, erased.shells, erased.contacts) == (1, 0, 1, 1)
    with postdesk.app.db.read() as session:
        shell = session.get(Ticket, opener.ticket_id)
        assert (shell.subject, shell.contact_id, shell.status, shell.department_id) == (
            "",
            None,
            "resolved",
            department,
        )
        assert shell.created_at == created and shell.erased_at is not None
        assert session.scalar(select(func.count()).select_from(TicketParticipant)) == 0
        assert session.scalar(select(func.count()).select_from(Contact)) == 0
    signed = MessageIdSigner(b"test-secret", postdesk.settings.smtp_hostname).make(opener.ticket_id)
    late = delivered(
        postdesk,
        raw(
            2,
            "ham",
            sender="ann@example.org",
            extra=f"In-Reply-To: <{signed}>\r\nSubject: Re: [#{opener.ticket_id}]\r\n",
        ),
        sender="ann@example.org",
    )
    assert late.ticket_id != opener.ticket_id and late.thread_rule == "new"
    with postdesk.app.db.read() as session:
        assert session.get(Ticket, late.ticket_id).linked_ticket_id is None
        assert session.get(Ticket, opener.ticket_id).status == "resolved"
