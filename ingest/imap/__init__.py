"""Fetching from IMAP mailboxes: connecting, the per-folder sync state, syncing a folder into the
spool, and the poller thread per account that ties them together."""
