"""The spool keeps bytes exactly, survives a dead runner, and quarantines what keeps failing."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings, strategies as st

from ingest.spool import Envelope, Spool


@settings(max_examples=60, deadline=None)
@given(raw=st.binary(max_size=20000), rcpts=st.lists(st.emails(), max_size=5))
def test_put_then_claim_round_trips_bytes_and_envelope_exactly(raw, rcpts):
    with tempfile.TemporaryDirectory() as folder:
        spool = Spool(Path(folder))
        entry_id = spool.put(raw, Envelope(mail_from="a@example.org", rcpt_tos=rcpts))
        entry = spool.claim(entry_id)
        assert entry.raw == raw and entry.envelope.rcpt_tos == rcpts
        spool.done(entry_id)
        assert spool.depth() == {"new": 0, "cur": 0, "bad": 0}


def test_entries_a_dead_runner_held_come_back(tmp_path):
    spool = Spool(tmp_path)
    entry_id = spool.put(b"x", Envelope())
    spool.claim(entry_id)
    assert Spool(tmp_path).recover() == 1
    assert spool.pending() == [entry_id]


def test_a_half_written_entry_is_dropped_not_delivered(tmp_path):
    spool = Spool(tmp_path)
    (tmp_path / "new" / "123-abc.json").write_bytes(Envelope().to_json())
    spool.recover()
    assert spool.pending() == [] and not (tmp_path / "new" / "123-abc.json").exists()


def test_an_entry_failing_too_often_goes_to_bad_and_can_be_retried(tmp_path):
    spool = Spool(tmp_path)
    entry_id = spool.put(b"x", Envelope())
    for attempt in range(3):
        where = spool.release(spool.claim(entry_id), f"boom {attempt}", max_attempts=3)
    assert where == "bad" and spool.pending() == []
    [bad] = spool.bad()
    assert bad.envelope.errors == ["boom 0", "boom 1", "boom 2"]
    spool.retry(entry_id)
    assert spool.pending() == [entry_id] and spool.claim(entry_id).envelope.attempts == 0


def test_ids_sort_by_arrival(tmp_path):
    spool = Spool(tmp_path)
    ids = [spool.put(b"%d" % n, Envelope()) for n in range(20)]
    assert spool.pending() == ids


def test_retry_takes_only_spool_ids_never_paths(tmp_path):
    import pytest
    from ingest.spool import SpoolError
    with pytest.raises(SpoolError, match="not a spool id"):
        Spool(tmp_path).retry("../cur/18ec84e7b754e644-c3f1b715")
