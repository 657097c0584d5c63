"""The spam filter in the mail flow, over SMTP: queues, contacts, sender rules, agents teaching it."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from sqlalchemy import func, select

from classifier import ledger
from classifier.live import LiveModel
from classifier.versions import activate_version, model_from_ledger, retrain
from models import Contact, Message, SpamModelVersion, SpamVerdict, Ticket
from models.base import utcnow
from models.mail.parse import parse
from tickets.signing import MessageIdSigner
from tickets.spam_marks import mark_message

SPAM_WORDS = "cheap pills viagra casino winner lottery claim prize unsubscribe offer".split()
HAM_WORDS = "invoice printer order refund account password delivery broken screen thanks".split()


def raw(
    n: int,
    kind: str,
    sender: str | None = None,
    extra: str = "",
    body: str | None = None,
    to: str = "support@example.com",
    subject: str | None = None,
) -> bytes:
    words = SPAM_WORDS if kind == "spam" else HAM_WORDS
    sender = sender or (f"promo{n}@deals.example.biz" if kind == "spam" else f"customer{n}@example.org")
    text = body or " ".join(words[(n + i) % len(words)] for i in range(30))
    return (
        f"From: {sender}\r\nTo: {to}\r\nSubject: {subject or f'{kind} {n}'}\r\n"
        f"Message-ID: <{kind}-{n}-{zlib.crc32((extra + sender).encode())}@example.org>\r\n{extra}\r\n{text}\r\n"
    ).encode()


def teach(postdesk, n: int = 30) -> None:
    """Bootstrap the filter as `postdesk spam train` does: ledger rows, then a retrained version."""
    live = postdesk.app.live_model()
    with postdesk.app.db.write() as session:
        for i in range(n):
            for kind in ("ham", "spam"):
                msg = raw(1000 + i, kind)
                ledger.learn(
                    session, f"raw:{kind}{i}", kind, live.filter.features(parse(msg, received_at=utcnow())), "bootstrap"
                )
        retrain(session, postdesk.settings.spam_dir, live.filter)


def delivered(postdesk, message: bytes, sender="x@example.org") -> Message:
    assert postdesk.send(message, sender=sender)[0] == 250
    postdesk.drain()
    with postdesk.app.db.read() as session:
        return session.scalars(select(Message).order_by(Message.id.desc()).limit(1)).one()


def verdict_of(postdesk, message: Message) -> SpamVerdict:
    with postdesk.app.db.read() as session:
        return session.get(SpamVerdict, message.id)


def ticket_of(postdesk, message: Message) -> Ticket:
    with postdesk.app.db.read() as session:
        return session.get(Ticket, message.ticket_id)


def contacts(postdesk) -> list[str]:
    with postdesk.app.db.read() as session:
        return session.scalars(select(Contact.address)).all()


def test_an_untrained_filter_says_so_and_mail_goes_to_the_inbox(postdesk):
    message = delivered(postdesk, raw(1, "spam"))
    assert verdict_of(postdesk, message).verdict == "untrained"
    assert ticket_of(postdesk, message).queue == "inbox"


def test_spam_waits_in_the_spam_queue_without_becoming_a_contact(postdesk):
    teach(postdesk)
    message = delivered(postdesk, raw(1, "spam"))
    verdict = verdict_of(postdesk, message)
    assert verdict.verdict == "spam" and verdict.score > 0.9 and verdict.reason == "model"
    assert any(word in " ".join(verdict.evidence) for word in SPAM_WORDS), "the evidence shows words"
    assert ticket_of(postdesk, message).queue == "spam"
    assert "promo1@deals.example.biz" not in contacts(postdesk) and message.contact_id is None


def test_ham_goes_to_the_inbox_and_unsure_to_review(postdesk):
    teach(postdesk)
    ham = delivered(postdesk, raw(1, "ham"))
    assert verdict_of(postdesk, ham).verdict == "ham" and ticket_of(postdesk, ham).queue == "inbox"
    mixed = " ".join(SPAM_WORDS[:5] + HAM_WORDS[:5])
    unsure = delivered(postdesk, raw(2, "ham", sender="new@elsewhere.example", body=mixed))
    verdict = verdict_of(postdesk, unsure)
    assert verdict.verdict == "unsure" and ticket_of(postdesk, unsure).queue == "review"


def test_a_reply_on_our_signed_thread_stays_on_its_ticket_flagged(postdesk):
    teach(postdesk)
    first = delivered(postdesk, raw(1, "ham"))
    ours = MessageIdSigner(b"test-secret", "postdesk.localhost").make(first.ticket_id)
    spammy = delivered(postdesk, raw(2, "spam", extra=f"In-Reply-To: <{ours}>\r\n"))
    assert spammy.ticket_id == first.ticket_id and "spam" in spammy.flags
    assert ticket_of(postdesk, first).queue == "inbox"


def test_allow_and_block_lists_override_the_score(settings):
    from conftest import Harness

    harness = Harness(
        settings.model_copy(update={"spam_allow": ["deals.example.biz"], "spam_block": ["customer7@example.org"]})
    )
    try:
        teach(harness)
        allowed = delivered(harness, raw(1, "spam"))
        blocked = delivered(harness, raw(7, "ham"))
        assert (verdict_of(harness, allowed).verdict, verdict_of(harness, allowed).reason) == ("ham", "allow-list")
        assert (verdict_of(harness, blocked).verdict, verdict_of(harness, blocked).reason) == ("spam", "block-list")
    finally:
        harness.close()


def test_a_contact_an_agent_answered_is_never_put_in_spam_by_the_model_alone(postdesk):
    teach(postdesk)
    with postdesk.app.db.write() as session:
        session.add(Contact(address="promo3@deals.example.biz", name="", answered=True))
    message = delivered(postdesk, raw(3, "spam"))
    verdict = verdict_of(postdesk, message)
    assert (verdict.verdict, verdict.reason) == ("unsure", "answered-contact")
    assert ticket_of(postdesk, message).queue == "review"


def test_not_spam_learns_at_once_moves_the_ticket_and_creates_the_contact(postdesk):
    teach(postdesk)
    message = delivered(postdesk, raw(4, "spam"))
    spam_filter = postdesk.app.live_model().filter
    with postdesk.app.db.write() as session:
        assert (
            mark_message(
                session, message.id, "ham", store=postdesk.app.store, spam_filter=spam_filter, actor="agent@example.com"
            )
            == "learned"
        )
    with postdesk.app.db.write() as session:
        assert (
            mark_message(
                session,
                message.id,
                "spam",
                store=postdesk.app.store,
                spam_filter=spam_filter,
                actor="agent@example.com",
            )
            == "relabelled"
        )
        assert (
            mark_message(
                session, message.id, "ham", store=postdesk.app.store, spam_filter=spam_filter, actor="agent@example.com"
            )
            == "relabelled"
        )
    assert ticket_of(postdesk, message).queue == "inbox"
    assert "promo4@deals.example.biz" in contacts(postdesk)
    with postdesk.app.db.read() as session:
        assert ledger.label_of(session, f"message:{message.id}") == "ham"


def test_the_runner_scores_with_what_agents_taught_without_a_restart(postdesk):
    teach(postdesk)
    before = verdict_of(postdesk, delivered(postdesk, raw(5, "spam", extra="X-Batch: 1\r\n")))
    spam_filter = postdesk.app.live_model().filter
    for i in range(40):  # agents say: this kind of mail is wanted here
        with postdesk.app.db.write() as session:
            ledger.learn(
                session,
                f"raw:agent{i}",
                "ham",
                spam_filter.features(parse(raw(2000 + i, "spam"), received_at=utcnow())),
                "agent",
            )
    after = verdict_of(postdesk, delivered(postdesk, raw(5, "spam", extra="X-Batch: 2\r\n")))
    assert after.score < before.score and after.verdict != "spam"


def counts_equal(a, b) -> bool:
    return (
        np.array_equal(a.spam_counts, b.spam_counts)
        and np.array_equal(a.ham_counts, b.ham_counts)
        and (a.n_spam, a.n_ham) == (b.n_spam, b.n_ham)
    )


def test_learning_then_unlearning_leaves_the_live_model_as_if_never_learned(postdesk):
    teach(postdesk, n=5)
    live = postdesk.app.live_model()
    with postdesk.app.db.read() as session:
        live.refresh(session)
    before = live.filter.model.spam_counts.copy(), live.filter.model.ham_counts.copy()
    probe = live.filter.features(parse(raw(9, "ham"), received_at=utcnow()))
    score_before = live.filter.classify(probe).score
    with postdesk.app.db.write() as session:
        ledger.learn(session, "raw:b", "spam", probe, "agent")
    with postdesk.app.db.read() as session:
        live.refresh(session)
    assert live.filter.classify(probe).score != score_before
    with postdesk.app.db.write() as session:
        ledger.unlearn(session, "raw:b")
    with postdesk.app.db.read() as session:
        live.refresh(session)
        rebuilt, _ = model_from_ledger(session, live.filter.model.n_features)
    assert np.array_equal(live.filter.model.spam_counts, before[0])
    assert np.array_equal(live.filter.model.ham_counts, before[1])
    assert counts_equal(live.filter.model, rebuilt)
    assert live.filter.classify(probe).score == score_before


def test_activating_an_older_version_replays_the_labels_learned_since(postdesk):
    teach(postdesk, n=5)
    live = postdesk.app.live_model()
    with postdesk.app.db.read() as session:
        live.refresh(session)
        first_version = live.version_id
    with postdesk.app.db.write() as session:
        ledger.learn(
            session, "raw:late", "spam", live.filter.features(parse(raw(77, "spam"), received_at=utcnow())), "agent"
        )
        retrain(session, postdesk.settings.spam_dir, live.filter)
    with postdesk.app.db.write() as session:
        activate_version(session, first_version)
    with postdesk.app.db.read() as session:
        live.refresh(session)
        assert live.version_id == first_version
        rebuilt, _ = model_from_ledger(session, live.filter.model.n_features)
    assert counts_equal(live.filter.model, rebuilt), "the rollback kept the label learned after it"


def test_a_snapshot_an_older_postdesk_saved_is_rebuilt_from_every_label(postdesk):
    teach(postdesk, n=5)
    with postdesk.app.db.read() as session:
        version = session.scalars(select(SpamModelVersion).where(SpamModelVersion.active.is_(True))).one()
    meta_path = postdesk.settings.spam_dir / f"{version.path}.json"
    meta_path.write_text(meta_path.read_text().replace('"format": 2', '"format": 1'))
    live = LiveModel(postdesk.settings.spam_dir, ham_cutoff=0.2, spam_cutoff=0.99, max_tokens=5000)
    with postdesk.app.db.read() as session:
        live.refresh(session)  # no exception: the runner keeps going
        rebuilt, _ = model_from_ledger(session, live.filter.model.n_features)
    assert live.filter.trained and counts_equal(live.filter.model, rebuilt)


def test_learning_a_message_again_with_features_from_another_tokenizer_replaces_them(postdesk):
    teach(postdesk, n=5)
    live = postdesk.app.live_model()
    old = live.filter.features(parse(raw(5, "spam"), received_at=utcnow()))
    new = live.filter.features(parse(raw(6, "spam"), received_at=utcnow()))
    with postdesk.app.db.write() as session:
        assert ledger.learn(session, "raw:x", "spam", old, "bootstrap") == "learned"
        assert ledger.learn(session, "raw:x", "spam", old, "bootstrap") == "unchanged"
        assert ledger.learn(session, "raw:x", "spam", new, "bootstrap") == "refreshed"
    with postdesk.app.db.read() as session:
        live.refresh(session)
        rebuilt, _ = model_from_ledger(session, live.filter.model.n_features)
    assert counts_equal(live.filter.model, rebuilt)


@pytest.mark.parametrize(
    "body",
    [
        "",
        "\x00\x01\x02" * 1000,
        ("x" * 76 + "\r\n") * 260_000,
        "".join(f"w{i}" + ("\r\n" if i % 10 == 9 else " ") for i in range(100_000)),
    ],
)
def test_bad_input_gets_a_score(postdesk, body):
    teach(postdesk, n=5)
    message = delivered(postdesk, raw(1, "ham", body=body or " "))
    assert 0.0 <= verdict_of(postdesk, message).score <= 1.0
    with postdesk.app.db.read() as session:
        assert session.scalar(select(func.count()).select_from(Message)) == 1


def test_a_requester_an_agent_replied_to_becomes_an_answered_contact_the_model_alone_never_puts_in_spam(postdesk):
    from tickets.replies import Draft, Outgoing, send_reply

    teach(postdesk)
    first = delivered(postdesk, raw(5, "ham", sender="promo5@deals.example.biz"))
    assert verdict_of(postdesk, first).verdict == "ham"
    app = postdesk.app
    with app.db.write() as session:
        send_reply(
            session,
            app.store,
            Draft(ticket_of(postdesk, first).id, "Thanks, we will look."),
            Outgoing(app.signer(), frozenset({"support@example.com"}), "Sam"),
            utcnow(),
        )
    later = delivered(postdesk, raw(5, "spam"))
    assert (verdict_of(postdesk, later).verdict, verdict_of(postdesk, later).reason) == ("unsure", "answered-contact")
