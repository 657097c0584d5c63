"""The spool keeps bytes exactly, survives a dead runner, and quarantines what keeps failing."""

from __future__ import annotations

import errno
import os
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from ingest import spool as spool_module
from ingest.spool import Spool, SpoolError
from models.mail.envelope import Envelope


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=20000), rcpts=st.lists(st.emails(), max_size=5))
def test_put_then_claim_round_trips_bytes_and_envelope_exactly(raw, rcpts):
    with tempfile.TemporaryDirectory() as folder:
        spool = Spool(Path(folder))
        entry_id = spool.put(raw, Envelope(mail_from="a@example.org\n", rcpt_tos=rcpts))
        [entry] = spool.claim(entry_id)
        assert entry.raw == raw and entry.envelope.rcpt_tos == rcpts
        assert entry.envelope.mail_from == "a@example.org\n"
        spool.done([entry])
        assert spool.depth() == {"new": 0, "cur": 0, "bad": 0}


def test_entries_a_dead_runner_held_come_back(tmp_path):
    spool = Spool(tmp_path)
    entry_id = spool.put(b"x", Envelope())
    spool.claim(entry_id)
    assert Spool(tmp_path).recover() == 1
    assert spool.pending() == [entry_id]


def test_a_half_written_entry_is_never_delivered_and_is_cleaned_up(tmp_path):
    spool = Spool(tmp_path)
    leftover = tmp_path / "tmp" / "123-abcdef01"
    leftover.write_bytes(Envelope().to_json()[:10])
    assert spool.pending() == []
    os.utime(leftover, (time.time() - 7200,) * 2)
    spool.recover()
    assert not leftover.exists() and spool.pending() == []


def test_an_entry_failing_too_often_goes_to_bad_and_can_be_retried(tmp_path):
    spool = Spool(tmp_path)
    entry_id = spool.put(b"x\r\n\r\n", Envelope())
    for attempt in range(3):
        where = spool.release(*spool.claim(entry_id), f"boom {attempt}", max_attempts=3)
    assert where == "bad" and spool.pending() == []
    [bad] = spool.bad()
    assert bad.envelope.errors == ["boom 0", "boom 1", "boom 2"] and bad.raw == b"x\r\n\r\n"
    spool.retry(entry_id)
    [entry] = spool.claim(entry_id)
    assert entry.envelope.attempts == 0 and entry.raw == b"x\r\n\r\n"


def test_a_release_without_error_puts_the_entry_back_unchanged(tmp_path):
    spool = Spool(tmp_path)
    entry_id = spool.put(b"x", Envelope())
    assert spool.release(*spool.claim(entry_id), None, max_attempts=1) == "new"
    assert spool.waiting()[0].envelope.attempts == 0


def test_ids_sort_by_arrival(tmp_path):
    spool = Spool(tmp_path)
    ids = [spool.put(b"%d" % n, Envelope()) for n in range(20)]
    assert spool.pending() == ids


def test_retry_takes_only_spool_ids_never_paths(tmp_path):
    with pytest.raises(SpoolError, match="not a spool id"):
        Spool(tmp_path).retry("../cur/18ec84e7b754e644-c3f1b715")


def broken_fsync(fd: int) -> None:
    raise OSError(errno.EIO, "Input/output error")


def test_a_put_whose_folder_fsync_fails_raises_and_leaves_nothing(monkeypatch, tmp_path):
    spool = Spool(tmp_path)
    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(SpoolError, match="Input/output error"):
        spool.put(b"x", Envelope())
    assert spool.pending() == [] and not any((tmp_path / "tmp").iterdir())


def test_a_group_commit_that_fails_leaves_nothing_and_fails_every_entry(monkeypatch, tmp_path):
    spool = Spool(tmp_path)
    group = [spool.stage(b"%d" % n, Envelope()) for n in range(3)]

    def full_disk(path, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(spool_module, "create_durably", full_disk)
    errors = spool.commit(group)
    assert len(errors) == 3 and all("No space left" in str(error) for error in errors)
    assert spool.pending() == [] and not any((tmp_path / "tmp").iterdir())


envelopes = st.builds(
    Envelope, mail_from=st.text(max_size=30), rcpt_tos=st.lists(st.emails(), max_size=3), peer=st.text(max_size=12)
)


@settings(max_examples=60, deadline=None)
@given(messages=st.lists(st.tuples(st.binary(max_size=3000), envelopes), min_size=1, max_size=8))
def test_a_group_commit_is_one_file_that_a_runner_claims_as_its_entries(messages):
    with tempfile.TemporaryDirectory() as folder:
        spool = Spool(Path(folder))
        group = [spool.stage(raw, envelope) for raw, envelope in messages]
        assert spool.commit(group) == [None] * len(group)
        assert len(os.listdir(Path(folder) / "new")) == 1 and spool.depth()["new"] == len(group)
        assert [(e.id, e.raw, e.envelope) for e in spool.waiting()] == [(s.id, s.raw, s.envelope) for s in group]
        entries = spool.claim_batch(limit=1)  # a group is claimed whole
        assert [(e.id, e.raw) for e in entries] == [(s.id, s.raw) for s in group]
        assert spool.depth() == {"new": 0, "cur": len(group), "bad": 0}
        spool.done(entries)
        assert spool.depth() == {"new": 0, "cur": 0, "bad": 0}


def test_a_split_group_lets_one_entry_fail_alone_and_a_crash_after_it_loses_nothing(tmp_path):
    spool = Spool(tmp_path)
    group = [spool.stage(b"%d" % n, Envelope()) for n in range(3)]
    spool.commit(group)
    first, poison, last = spool.claim_batch(limit=10)
    with pytest.raises(SpoolError, match="split it first"):
        spool.release(poison, "boom", max_attempts=1)
    spool.split([first, poison, last])
    assert spool.release(poison, "boom", max_attempts=1) == "bad"
    spool.done([first])
    assert [e.raw for e in spool.bad()] == [b"1"] and spool.depth() == {"new": 0, "cur": 1, "bad": 1}
    assert Spool(tmp_path).recover() == 1  # the runner died holding `last`: it comes back
    assert [e.raw for e in spool.waiting()] == [b"2"]


def test_a_group_that_cannot_be_split_for_lack_of_space_goes_back_whole_without_writing(monkeypatch, tmp_path):
    spool = Spool(tmp_path)
    spool.commit([spool.stage(b"%d" % n, Envelope()) for n in range(3)])
    entries = spool.claim_batch(limit=10)
    full, write_durably, calls = OSError(errno.ENOSPC, "No space left on device"), spool_module.write_durably, []

    def space_for_one(path, data):  # the first single is written and renamed into cur/; then the disk is full
        calls.append(path)
        if len(calls) == 1:
            return write_durably(path, data)
        path.write_bytes(data[:10])  # a write cut short
        raise full

    monkeypatch.setattr(spool_module, "write_durably", space_for_one)
    with pytest.raises(OSError) as raised:
        spool.split(entries)
    assert raised.value is full
    assert sorted(os.listdir(tmp_path / "cur")) == [entries[0].file]  # no single left beside the group
    assert not os.listdir(tmp_path / "tmp")
    spool.put_back(entries)
    assert [e.raw for e in spool.waiting()] == [b"0", b"1", b"2"] and spool.depth()["cur"] == 0


@pytest.mark.parametrize(
    "name, data",
    [
        ("1-00000001.entry", b"not json\nraw"),
        ("2-00000002.entry", b"[1, 2]\nraw"),
        ("3-00000003+2.group", b'{"id": "3-00000003", "size": 50}\ncut short'),
    ],
)
def test_an_unreadable_file_goes_to_bad_as_it_was_and_the_others_are_claimed(tmp_path, name, data):
    spool = Spool(tmp_path)
    (tmp_path / "new" / name).write_bytes(data)
    spool.put(b"fine", Envelope())
    assert [entry.raw for entry in spool.claim_batch(limit=10)] == [b"fine"]
    [bad] = spool.bad()
    assert (bad.id, bad.raw) == (f"{name}.unreadable", data) and "unreadable" in bad.envelope.errors[0]
    assert spool.depth() == {"new": 0, "cur": 1, "bad": 1}
