"""Attachment names made safe to show and to put in a download header, and payload type sniffing.

The name a sender gives is never a path: `clean_filename` keeps only its last component, and the
blob store names files by hash. `sniff_type` looks at the bytes, because the declared type is the
sender's word: an HTML page or an SVG with script declared as image/png is text/html or
image/svg+xml, and the web view serves an attachment by that type. The bytes are read by libmagic
(python-magic over Debian's libmagic1: thousands of signatures, kept up to date by `file`'s
maintainers), not by a table of our own.
"""

from __future__ import annotations

import re
import unicodedata

import magic

MAX_FILENAME_BYTES = 255
MAX_EXTENSION_BYTES = 32  # a longer "extension" is part of the name, not a type

# Control characters (C0, DEL, C1), line/paragraph separators, and the bidi marks, embeddings,
# overrides and isolates that make "evil\u202Efdp.exe" display as "evilexe.pdf".
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]")
_SEPARATOR = re.compile(r"[/\\]")
_EDGE = re.compile(r"[\s.]*")  # matched from each end; "[\s.]+$" is quadratic on long runs
_EXTENSION = re.compile(r"\.[^.\s]+$")

# libmagic decides from a file's head; its text checks cost CPU for every byte they are given.
SNIFF_BYTES = 64 * 1024
_MIME_TYPE = re.compile(r"[a-z0-9.+-]+/[a-z0-9.+-]+")


def clean_filename(name: str, fallback: str = "attachment") -> str:
    """A name safe for display and a Content-Disposition header; never empty, "." or ".."."""
    return _clean(name) or _clean(fallback) or "attachment"


def _clean(name: str) -> str:
    """Visible characters of the last path component that has any; "" when none has."""
    name = _INVISIBLE.sub("", unicodedata.normalize("NFC", name))
    name = next((part for part in reversed(_SEPARATOR.split(name)) if _trim(part)), "")
    return _trim(_fit(_trim(name)))


def _edge(name: str) -> int:
    """How many dots and whitespace characters `name` starts with."""
    found = _EDGE.match(name)  # matches every string, if only the empty start
    return found.end() if found else 0


def _trim(name: str) -> str:
    """Without leading or trailing dots and whitespace."""
    start = _edge(name)
    end = len(name) - _edge(name[::-1])
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
    """The MIME type libmagic reads in the payload's first `SNIFF_BYTES`, lower-cased (types are
    case-insensitive, and libmagic answers some, such as application/vnd.hp-HPGL, in capitals)."""
    try:
        sniffed = magic.from_buffer(payload[:SNIFF_BYTES], mime=True).lower()
    except magic.MagicException:  # libmagic gave up on these bytes
        return "application/octet-stream"
    return sniffed if _MIME_TYPE.fullmatch(sniffed) else "application/octet-stream"
