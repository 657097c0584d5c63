"""`models.mail.text_decoding`: lenient decoding of bytes that lie about (or never declared) their charset."""

from __future__ import annotations

from datetime import datetime, UTC

from hypothesis import given, strategies as st

from models.mail.parse import parse
from models.mail.text_decoding import lenient

# Bytes no UTF-8 decoder takes where they stand: continuation bytes after a whole character, and
# bytes that never occur in UTF-8.
STRAY = st.sampled_from([*range(0x80, 0xC0), 0xC0, 0xC1, *range(0xF5, 0x100)])
# What a stray byte reads as: Windows-1252, and Latin-1 where Windows-1252 leaves a byte undefined.
WINDOWS_1252 = {b: bytes([b]).decode("cp1252", "ignore") or bytes([b]).decode("latin-1") for b in range(0x80, 0x100)}
STORABLE = st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")


def test_utf8_runs_stay_utf8_beside_stray_bytes():
    assert lenient(b"caf\xc3\xa9 \xff\xfe") == "café ÿþ"


def test_pure_windows_1252_reads_as_before():
    assert lenient(b"R\xe9sum\xe9 \x93Merci\x94 \x80") == "Résumé “Merci” €"


def test_an_8bit_subject_without_smtputf8_is_read_run_by_run():
    raw = b"From: a@example.org\r\nSubject: caf\xc3\xa9 \xff\xfe na\xefve\r\n\r\nhi\r\n"
    assert parse(raw, received_at=datetime.now(UTC)).subject == "café ÿþ naïve"


@given(st.lists(st.tuples(st.text(STORABLE, max_size=12), st.lists(STRAY, max_size=3)), max_size=8))
def test_valid_utf8_runs_decode_as_utf8_and_only_stray_bytes_leniently(chunks):
    data = b"".join(text.encode("utf-8") + bytes(strays) for text, strays in chunks)
    expected = "".join(text + "".join(WINDOWS_1252[b] for b in strays) for text, strays in chunks)
    assert lenient(data) == expected


@given(st.binary(max_size=200))
def test_any_bytes_decode_to_storable_text_that_keeps_every_valid_character(data):
    text = lenient(data)
    text.encode("utf-8")  # no lone surrogate
    assert "\x00" not in text
    kept = iter(text)
    assert all(char in kept for char in data.decode("utf-8", "ignore").replace("\x00", ""))  # in order
