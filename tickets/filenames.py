"""Attachment names made safe to show and to put in a download header, and payload type sniffing.

The name a sender gives is never a path: `clean_filename` keeps only its last component, and the
blob store names files by hash. `sniff_type` looks at the bytes, because the declared type is the
sender's word.
"""

from __future__ import annotations

import re
import unicodedata

MAX_FILENAME_BYTES = 255
MAX_EXTENSION_BYTES = 32  # a longer "extension" is part of the name, not a type

# Control characters (C0, DEL, C1), line/paragraph separators, and the bidi marks, embeddings,
# overrides and isolates that make "evil\u202Efdp.exe" display as "evilexe.pdf".
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_SEPARATOR = re.compile(r"[/\\]")
_EDGE = re.compile(r"[\s.]*")  # matched from each end; "[\s.]+$" is quadratic on long runs
_EXTENSION = re.compile(r"\.[^.\s]+$")

_MAGIC = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"PK\x03\x04", "application/zip"),  # also docx, xlsx, odt, jar: all zip containers
    (b"PK\x05\x06", "application/zip"),  # an empty zip
    (b"\x1f\x8b", "application/gzip"),
    (b"\x78\x9f\x3e\x22", "application/ms-tnef"),  # 0x223E9F78, little-endian: winmail.dat
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "application/x-ole-storage"),  # doc, xls, msg
)
# A message: an optional mbox envelope line, then two header lines (or a header and a fold).
_RFC822 = re.compile(rb"(?:From [^\r\n]*\r?\n)?(?:[!-9;-~]+:[^\r\n]*\r?\n){2}|[!-9;-~]+:[^\r\n]*\r?\n[ \t]")
_RFC822_FIRST = frozenset(
    b"received return-path from to cc subject date message-id mime-version delivered-to reply-to"
    b" sender dkim-signature authentication-results arc-seal x-original-to".split()
)


def clean_filename(name: str, fallback: str = "attachment") -> str:
    """A name safe for display and a Content-Disposition header; never empty, "." or ".."."""
    return _clean(name) or _clean(fallback) or "attachment"


def _clean(name: str) -> str:
    """Visible characters of the last path component that has any; "" when none has."""
    name = _INVISIBLE.sub("", unicodedata.normalize("NFC", name))
    name = next((part for part in reversed(_SEPARATOR.split(name)) if _trim(part)), "")
    return _trim(_fit(_trim(name)))


def _trim(name: str) -> str:
    """Without leading or trailing dots and whitespace."""
    start = _EDGE.match(name).end()
    end = len(name) - _EDGE.match(name[::-1]).end()
    return name[start:end] if start < end else ""


def _fit(name: str) -> str:
    """At most 255 UTF-8 bytes, cutting the stem and keeping a short extension."""
    if len(name.encode("utf-8")) <= MAX_FILENAME_BYTES:
        return name
    found = _EXTENSION.search(name)
    extension = found[0] if found and len(found[0].encode("utf-8")) <= MAX_EXTENSION_BYTES else ""
    stem = name[: len(name) - len(extension)]
    budget = MAX_FILENAME_BYTES - len(extension.encode("utf-8"))
    return _trim(stem.encode("utf-8")[:budget].decode("utf-8", "ignore")) + extension


def sniff_type(payload: bytes) -> str:
    """The type the bytes show: a small magic table, then message, text or octet-stream."""
    for magic, content_type in _MAGIC:
        if payload.startswith(magic):
            return content_type
    if _looks_like_message(payload):
        return "message/rfc822"
    return "text/plain" if _is_utf8_text(payload) else "application/octet-stream"


def _looks_like_message(payload: bytes) -> bool:
    if not _RFC822.match(payload):
        return False
    first = payload.partition(b"\n")[2] if payload.startswith(b"From ") else payload
    return first.split(b":", 1)[0].lower() in _RFC822_FIRST


def _is_utf8_text(payload: bytes) -> bool:
    if b"\x00" in payload:
        return False
    try:
        payload.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
