"""What the web view's spam actions share: the spam filter's settings (to make a message's features
as the runner does), the message store (whose `label` moves the ticket and teaches the ledger), the
retrain job, and the keyed hash that names a sender rule in the audit trail. Built once per app,
on first use."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from fastapi import Request

from classifier.filter import SpamFilter
from postdesk.web.retrain_job import Retrainer
from postdesk.web.site import Site, site_of
from retention.ledger import ErasureLedger
from tickets.store import MessageStore


@dataclass
class SpamDesk:
    spam_filter: SpamFilter
    store: MessageStore
    retrainer: Retrainer
    erasure_ledger: ErasureLedger  # its HMAC key: the audit trail names a rule's address by it

    @classmethod
    def build(cls, site: Site) -> SpamDesk:
        s = site.settings
        spam_filter = SpamFilter(
            ham_cutoff=s.spam_ham_cutoff, spam_cutoff=s.spam_spam_cutoff, max_tokens=s.spam_max_tokens
        )
        return cls(
            spam_filter,
            MessageStore(site.blobs, spam_dir=s.spam_dir),
            Retrainer(site.db, s.spam_dir, spam_filter, site.now),
            ErasureLedger(s.erasure_ledger_path),
        )


_BUILDING = threading.Lock()


def spam_desk(request: Request) -> SpamDesk:
    state = request.app.state
    with _BUILDING:
        if getattr(state, "spam_desk", None) is None:
            state.spam_desk = SpamDesk.build(site_of(request))
    return state.spam_desk


def actor(agent_id: int) -> str:
    """How the audit trail names an agent: by id, so it keeps no address (the page shows the name)."""
    return f"agent:{agent_id}"
