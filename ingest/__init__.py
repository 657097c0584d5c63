"""Getting mail in: the SMTP edge, IMAP fetching, the spool, parsing and the runner that stores it."""
