"""Redacting an address in raw mail: whatever the text around it and however the part is encoded,
no readable copy of the address is left and the rest of the text survives."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from hypothesis import given, settings, strategies as st

from tickets.store.redact import PLACEHOLDER, redact_raw

ADDRESS = "ann.example@example.org"
_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), max_size=200).filter(
    lambda text: ADDRESS not in text.lower()
)


def _mail(before: str, after: str, cte: str) -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "bob@example.net", "support@example.com", "Hello"
    msg.set_content(f"{before} {ADDRESS.upper()} {after}", cte=cte)
    return msg.as_bytes().replace(b"\n", b"\r\n")


@settings(max_examples=150, deadline=None)
@given(before=_TEXT, after=_TEXT, cte=st.sampled_from(["base64", "quoted-printable", "8bit"]))
def test_no_readable_copy_of_the_address_is_left_and_the_rest_survives(before, after, cte):
    redacted = redact_raw(_mail(before, after, cte), ADDRESS)
    body = message_from_bytes(redacted, policy=policy.default).get_body(("plain",)).get_content()
    assert ADDRESS not in body.lower() and ADDRESS.encode() not in redacted.lower()
    assert body.replace("\r\n", "\n").rstrip("\n") == f"{before} {PLACEHOLDER} {after}".rstrip("\n")


def test_mail_that_does_not_name_the_address_keeps_its_bytes():
    msg = EmailMessage()
    msg["From"], msg["Subject"] = "bob@example.net", "Ärger mit ann.example@example.org.uk"  # another address
    msg.set_content("Grüße von someone@example.org", cte="base64")
    raw = msg.as_bytes()
    assert redact_raw(raw, ADDRESS) == raw
