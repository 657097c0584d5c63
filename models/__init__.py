"""SQLAlchemy 2 models of Postdesk, one module per aggregate; import this package to register them all."""

from models.base import Base
from models.mailbox import Department, Mailbox, MailboxAlias
from models.agent import Agent, AgentDepartment, RecoveryCode, RolePolicy, SignInFailure, WebSession
from models.contact import Contact
from models.blob import Blob
from models.ticket import Ticket, TicketParticipant
from models.message import Attachment, ImapCopy, Message, RawMessage, Recipient, RemovedAttachment
from models.spam import SenderRule, SpamEvent, SpamLabel, SpamModelVersion, SpamVerdict
from models.ticket_work import TicketNote, TicketPresence
from models.audit import AuditEvent
from models.erasure import ErasureJob
from models.hold import LegalHold
from models.outbox import NotificationChoice, OutboxMail

__all__ = [
    "Agent",
    "AgentDepartment",
    "Attachment",
    "AuditEvent",
    "Base",
    "Blob",
    "Contact",
    "Department",
    "ErasureJob",
    "ImapCopy",
    "LegalHold",
    "Mailbox",
    "NotificationChoice",
    "OutboxMail",
    "MailboxAlias",
    "Message",
    "RawMessage",
    "Recipient",
    "SenderRule",
    "SpamEvent",
    "SpamLabel",
    "SpamModelVersion",
    "RecoveryCode",
    "RemovedAttachment",
    "RolePolicy",
    "SignInFailure",
    "SpamVerdict",
    "Ticket",
    "TicketNote",
    "TicketParticipant",
    "TicketPresence",
    "WebSession",
]
