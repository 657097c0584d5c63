"""Canaries: unique strings planted in a person's mail, and a scanner that finds them in any form.

Mail and storage carry a string in many shapes, so each canary is searched as: plain UTF-8 (any
case), Latin-1, base64 at all three alignments (line breaks ignored), quoted-printable (soft line
breaks ignored), an RFC 2047 Q encoded-word (the B form is base64), RFC 2231 / URL percent-encoding,
UTF-16 (both byte orders), a JSON \\u escape and HTML character references.

    planted = Canaries.new()                   # name, address, subject, body, html, attachment, filename
    findings = planted.scan_tree(tmp_path)     # every byte of every file under a folder
    findings += planted.scan_database(engine)  # every column of every row of every table

Later issues that add a copy of personal data (an index, an outbox, a backup) extend the erasure
and plant and scan their own canaries with this module.
"""

from __future__ import annotations

import base64
import email.quoprimime
import json
import quopri
import re
import secrets
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Engine

KINDS = ("name", "address", "subject", "body", "html", "attachment", "filename")


@dataclass(frozen=True)
class Finding:
    where: str  # a file, or table.column
    canary: str  # its kind
    form: str


def forms(value: str) -> dict[str, bytes]:
    """The shapes `value` may take in stored bytes, by name (`*-joined` ones are searched in bytes
    with line breaks, or soft line breaks, taken out)."""
    raw = value.encode()
    found = {
        "plain": raw,
        "utf-16-le": value.encode("utf-16-le"),
        "utf-16-be": value.encode("utf-16-be"),
        "percent": urllib.parse.quote(raw, safe="").encode(),
        "json": json.dumps(value)[1:-1].encode(),
        "html-entities": "".join(c if ord(c) < 128 else f"&#{ord(c)};" for c in value).encode(),
        "qp-joined": quopri.encodestring(raw).rstrip(b"=\n"),
        "rfc2047-q": email.quoprimime.header_encode(raw, "utf-8")[len("=?utf-8?q?") : -2].encode(),
    }
    try:
        found["latin-1"] = value.encode("latin-1")
    except UnicodeEncodeError:
        pass
    for shift in range(3):  # the canary starting at each offset of a 3-byte group
        encoded = base64.b64encode(b"\0" * shift + raw)
        start = -(-4 * shift // 3)  # the first character holding none of the padding's bits
        end = (4 * (shift + len(raw))) // 3  # the last one holding only the canary's bits
        found[f"base64-{shift}-joined"] = encoded[start:end]
    return found


class Canaries:
    def __init__(self, values: dict[str, str]):
        self.values = values
        self._needles = [
            (kind, form, needle, form.endswith("-joined"))
            for kind, value in values.items()
            for form, needle in forms(value).items()
        ]

    @classmethod
    def new(cls) -> Canaries:
        tag = secrets.token_hex(5)
        return cls(
            {
                "name": f"Zoë Kanarienvogel{tag}",
                "address": f"canary-{tag}@example.org",
                "subject": f"Gelbe Flügel {tag}x",
                "body": f"Mein Körper {tag}y sagt hallo",
                "html": f"Grüße aus HTML {tag}z",
                "attachment": f"Anhang Ölkanne {tag}w",
                "filename": f"Überweisung-{tag}v",
            }
        )

    def __getitem__(self, kind: str) -> str:
        return self.values[kind]

    def scan_bytes(self, data: bytes, where: str) -> list[Finding]:
        lowered = data.lower()
        joined = re.sub(rb"=\r?\n|\r|\n", b"", data)
        found = []
        for kind, form, needle, is_joined in self._needles:
            haystack = joined if is_joined else lowered if form == "plain" else data
            if (needle.lower() if form == "plain" else needle) in haystack:
                found.append(Finding(where, kind, form))
        return found

    def scan_tree(self, root: Path) -> list[Finding]:
        """Every file under `root`, every byte."""
        found = []
        for path in sorted(Path(root).rglob("*")):
            if path.is_file():
                found += self.scan_bytes(path.read_bytes(), str(path.relative_to(root)))
        return found

    def scan_database(self, engine: Engine) -> list[Finding]:
        """Every value of every column of every row of every table, as text and as bytes."""
        found = []
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                columns = [c["name"] for c in inspect(conn).get_columns(table)]
                for row in conn.execute(select(*(text(f'"{c}"') for c in columns)).select_from(text(f'"{table}"'))):
                    for column, value in zip(columns, row, strict=True):
                        if value is not None:
                            found += self.scan_bytes(_as_bytes(value), f"{table}.{column}")
        return found


def _as_bytes(value) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False).encode() + json.dumps(value).encode()
    return str(value).encode()
