"""Attachments over SMTP: byte-identical, shared blobs counted, hostile names made harmless."""

from __future__ import annotations

import os
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from models import Attachment, Blob
from models.blobstore import BlobStore

PDF = b"%PDF-1.4\n" + os.urandom(3000) + b"\n%%EOF\n"


def with_files(files: list[tuple[str, bytes, str]], subject="Files") -> bytes:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "alice@example.org", "support@example.com", subject
    msg.set_content("See attached.")
    for name, data, ctype in files:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def attachments(postdesk) -> list[Attachment]:
    with postdesk.app.db.read() as session:
        return session.scalars(select(Attachment).order_by(Attachment.id)).all()


def blob_of(postdesk, attachment) -> Blob:
    with postdesk.app.db.read() as session:
        return session.get(Blob, attachment.blob_id)


def test_an_attachment_comes_back_byte_identical_with_its_types(postdesk):
    postdesk.send(with_files([("report.pdf", PDF, "application/pdf")]))
    postdesk.drain()
    [att] = attachments(postdesk)
    blob = blob_of(postdesk, att)
    assert postdesk.app.blobs.get(blob.sha256) == PDF
    assert (att.filename, att.declared_type, att.sniffed_type, att.size) == (
        "report.pdf",
        "application/pdf",
        "application/pdf",
        len(PDF),
    )


def test_two_messages_with_the_same_file_share_one_blob(postdesk):
    postdesk.send(with_files([("a.pdf", PDF, "application/pdf")], subject="one"))
    postdesk.send(with_files([("b.pdf", PDF, "application/pdf")], subject="two"))
    postdesk.drain()
    first, second = attachments(postdesk)
    assert first.blob_id == second.blob_id and blob_of(postdesk, first).refcount == 2


@pytest.mark.parametrize(
    "hostile",
    [
        "../../x",
        "/etc/passwd",
        "a\x00b.pdf",
        "é" * 150 + ".pdf",
        "invoice\u202efdp.exe",
        "..",
        "C:\\Windows\\x.dll",
    ],
)
def test_unsafe_filenames_are_stored_safely(postdesk, hostile):
    postdesk.send(with_files([(hostile, b"data", "application/octet-stream")]))
    postdesk.drain()
    [att] = attachments(postdesk)
    name = att.filename
    assert name and "/" not in name and "\\" not in name and "\x00" not in name
    assert "\u202e" not in name and name not in (".", "..") and len(name.encode()) <= 255
    blob_path = postdesk.app.blobs.path(blob_of(postdesk, att).sha256)
    assert blob_path.is_relative_to(postdesk.app.blobs.root) and blob_path.read_bytes() == b"data"


ACTIVE = [
    ("photo.png", b"<html><body><script>alert(document.cookie)</script></body></html>", "text/html"),
    ("logo.png", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "image/svg+xml"),
    (
        "chart.png",
        b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
        "image/svg+xml",
    ),
    ("scan.png", b"<!DOCTYPE html>\n<p>hello<script src=//evil.example/x.js></script>", "text/html"),
]


@pytest.mark.parametrize(("name", "data", "sniffed"), ACTIVE)
def test_script_declared_as_an_image_is_sniffed_as_what_it_is(postdesk, name, data, sniffed):
    postdesk.send(with_files([(name, data, "image/png")]))
    postdesk.drain()
    [att] = attachments(postdesk)
    assert (att.declared_type, att.sniffed_type) == ("image/png", sniffed)


def test_recover_removes_old_half_written_blob_files_but_not_a_batch_in_progress(tmp_path):
    store = BlobStore(tmp_path)
    digest = store.put(b"kept")
    folder = store.path(digest).parent
    old, fresh = folder / f".{'0' * 64}.1.aa.tmp", folder / f".{'1' * 64}.2.bb.tmp"
    old.write_bytes(b"a crash's leftover")
    fresh.write_bytes(b"another process is writing it")
    os.utime(old, (0, 0))
    assert store.recover() == 1
    assert not old.exists() and fresh.exists() and store.get(digest) == b"kept"
