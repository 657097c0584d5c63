"""Which addresses are ours: configured mailboxes, their aliases and plus-addressing."""

from __future__ import annotations

from models.settings import MailboxConfig


def split_address(address: str) -> tuple[str, str]:
    """Lower-cased (local part without +tag, domain); SMTP's angle brackets are tolerated."""
    local, _, domain = address.strip().strip("<>").lower().rpartition("@")
    return local.split("+", 1)[0], domain


class MailboxDirectory:
    """Resolves any spelling of one of our addresses to its mailbox's canonical address."""

    def __init__(self, mailboxes: list[MailboxConfig]):
        self.mailboxes = list(mailboxes)
        self._canonical: dict[tuple[str, str], str] = {}
        for box in mailboxes:
            for address in [box.address, *box.aliases]:
                self._canonical[split_address(address)] = box.address

    def resolve(self, address: str) -> str | None:
        local, domain = split_address(address)
        if not local or not domain:
            return None
        return self._canonical.get((local, domain))

    def department_of(self, canonical: str) -> str:
        return next(b.department for b in self.mailboxes if b.address == canonical)

    def is_ours(self, address: str) -> bool:
        return self.resolve(address) is not None
