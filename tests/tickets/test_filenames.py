"""`tickets.filenames`: hostile attachment names and payload sniffing."""

from __future__ import annotations

import gzip
import io
import re
import struct
import zipfile
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tickets.filenames import SNIFF_BYTES, clean_filename, sniff_type

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("../../x", "x"),
        ("/etc/passwd", "passwd"),
        ("C:\\Windows\\System32\\x.dll", "x.dll"),
        ("a\x00b.pdf", "ab.pdf"),
        ("evil\u202efdp.exe", "evilfdp.exe"),
        ("\u2067report\u2069.pdf\u200f", "report.pdf"),
        ("line\r\nbreak\t.txt", "linebreak.txt"),
        ("...hidden", "hidden"),
        ("trailing. . ", "trailing"),
        ("  spaced name.doc  ", "spaced name.doc"),
        ("Cafe\u0301.txt", "Café.txt"),  # NFC: e + combining acute → é
        ("report.pdf/", "report.pdf"),
    ],
)
def test_clean_filename(name, expected):
    assert clean_filename(name) == expected


@pytest.mark.parametrize("name", ["", ".", "..", "../..", "/", "\\", " . ", "\x00\x01", "\u202e"])
def test_nothing_left_gives_the_fallback(name):
    assert clean_filename(name) == "attachment"
    assert clean_filename(name, fallback="message.eml") == "message.eml"
    assert clean_filename(name, fallback="../..") == "attachment"


def test_a_300_byte_name_keeps_its_extension():
    cleaned = clean_filename("x" * 296 + ".pdf")
    assert len(cleaned.encode()) == 255 and cleaned.endswith(".pdf") and cleaned.startswith("xxx")


def test_multi_byte_names_are_cut_on_a_character_boundary():
    cleaned = clean_filename("é" * 200 + ".tar.gz")
    assert len(cleaned.encode()) <= 255 and cleaned.endswith("é.gz") and set(cleaned[:-3]) == {"é"}


def test_an_absurd_extension_is_not_kept_whole():
    cleaned = clean_filename("a." + "b" * 400)
    assert len(cleaned.encode()) == 255 and cleaned.startswith("a.bbb")


def test_long_runs_of_spaces_are_cut_down():  # and cheaply: bench/worst_cases.py
    assert clean_filename("a" + " " * 200_000 + "b") == "a"


UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f/\\\\{BIDI}]")


@settings(max_examples=500)
@given(
    st.text(
        alphabet=st.characters(blacklist_categories=["Cs"]) | st.sampled_from(list("/\\.\x00 " + BIDI)), max_size=400
    )
)
def test_clean_filename_is_always_safe(name):
    cleaned = clean_filename(name)
    assert cleaned and cleaned not in (".", "..") and not UNSAFE.search(cleaned)
    assert len(cleaned.encode("utf-8")) <= 255 and not cleaned.startswith(".")


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(b"\x00\x00"))
        + chunk(b"IEND", b"")
    )


def _zip(**files: str) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name.replace("__", "/"), text)
    return out.getvalue()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"%PDF-1.7\n%\xe2\xe3", "application/pdf"),
        (_png(), "image/png"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
        (b"GIF89a\x01\x00", "image/gif"),
        (b"GIF87a\x01\x00", "image/gif"),
        (_zip(notes__a="x"), "application/zip"),
        (gzip.compress(b"x", mtime=0), "application/gzip"),
        (b"\x78\x9f\x3e\x22\x01\x00", "application/vnd.ms-tnef"),
        (b"Received: from a by b\r\nFrom: x@y\r\n\r\nbody", "message/rfc822"),
        (b"<html><body><script>alert(1)</script></body></html>", "text/html"),
        (b"<script>alert(1)</script>", "text/html"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml"),
        (b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml"),
        (b'<?xml version="1.0"?>\n<order id="1"/>', "text/xml"),
        (b"Note: this is just text\nwith a colon\n", "text/plain"),
        ("Grüße, Ünïcode text\n".encode(), "text/plain"),
        (b"text with a \x00 NUL", "application/octet-stream"),
        (b"", "application/x-empty"),
    ],
)
def test_sniff_type(payload, expected):
    assert sniff_type(payload) == expected


def test_only_the_head_of_a_large_payload_is_read():
    assert sniff_type(b"%PDF-1.4\n" + bytes(20 * 1024 * 1024)) == "application/pdf"
    assert sniff_type(b"a" * SNIFF_BYTES + b"<html><script>") == "text/plain"


@settings(max_examples=300)
@given(st.binary(max_size=2000))
def test_any_bytes_get_a_type(payload):
    assert re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", sniff_type(payload))
