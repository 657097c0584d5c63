"""Tickets: threading, contacts, attachments and the agent web view."""
