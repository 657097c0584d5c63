"""Lenient text decoding for mail: header folds, RFC 2047 words, charsets that lie or are unknown.

Charset rule: the declared charset (us-ascii when none); when it is unknown ("unknown-charset:x")
or the bytes do not fit it ("charset-mismatch:x", "8bit-undeclared" when none was declared),
every valid UTF-8 sequence as UTF-8 and each stray byte between them as Windows-1252 (Latin-1
for the five bytes it leaves undefined): "caf\xc3\xa9 \xff" reads "café ÿ", not "cafÃ© ÿ", and
plain Windows-1252 text, which seldom holds a valid multi-byte sequence, reads as before.
Lone surrogates and NULs become U+FFFD so that every string stores.
"""

from __future__ import annotations

import binascii
import re

from mailparser.utils import decode_base64_payload

_FOLD = re.compile(r"\r?\n(?=[ \t])")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ENCODED_WORD = r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?="
_WORD = re.compile(_ENCODED_WORD)
_STRAY = re.compile("[\udc80-\udcff]+")  # the bytes UTF-8 decoding left over, as surrogateescape has them
_WINDOWS_1252 = {0xDC00 + b: bytes([b]).decode("cp1252", "ignore") or chr(b) for b in range(0x80, 0x100)}
_BETWEEN_WORDS = re.compile(rf"(?<=\?=)\s+(?={_ENCODED_WORD})")


def unfolded(value: str) -> str:
    """A raw compat32 header value as text: line folds removed, undeclared 8-bit bytes decoded."""
    value = _FOLD.sub("", str(value))
    if not _UNSTORABLE.search(value):
        return value
    return lenient(value.encode("utf-8", "surrogateescape"))


def encoded_words(value: str, defects: list[str]) -> str:
    """RFC 2047 encoded words decoded; the whitespace between two of them dropped."""
    if "=?" not in value:
        return value
    value = _BETWEEN_WORDS.sub("", value)
    return _WORD.sub(lambda word: _word(word, defects), value)


def _word(word: re.Match[str], defects: list[str]) -> str:
    if word[2] in "bB":
        data = decode_base64_payload(word[3])
    else:
        data = binascii.a2b_qp(word[3].encode("utf-8", "surrogateescape"), header=True)
    return decode(data, word[1].split("*")[0], defects)


def decode(data: bytes, charset: str | None, defects: list[str]) -> str:
    """Text in its declared charset, else leniently, noting why (module notes)."""
    try:
        return scrub(data.decode(charset or "ascii"))
    except LookupError:  # only a named charset can be unknown
        defects.append(f"unknown-charset:{scrub((charset or '')[:40])}")
    except ValueError:  # UnicodeDecodeError, and codecs that refuse outright ("undefined")
        defects.append(f"charset-mismatch:{scrub(charset[:40])}" if charset else "8bit-undeclared")
    return lenient(data)


def lenient(data: bytes) -> str:
    """Valid UTF-8 runs as UTF-8, the stray bytes between them as Windows-1252 (module notes)."""
    return scrub(_STRAY.sub(_stray_bytes, data.decode("utf-8", "surrogateescape")))


def _stray_bytes(run: re.Match[str]) -> str:
    return run[0].translate(_WINDOWS_1252)


def scrub(text: str) -> str:
    """Lone surrogates (some codecs make them) and NULs as U+FFFD: every string stores."""
    return _UNSTORABLE.sub("\ufffd", text)


def joined(chunks: list[str]) -> str:
    return "\n".join(chunks).replace("\r\n", "\n")


def clamp(text: str, limit: int) -> str:
    if len(text) * 4 <= limit:
        return text
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")
