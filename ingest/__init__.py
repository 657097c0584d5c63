"""Getting mail in: the SMTP edge, IMAP fetching, imports, the spool, and the runner that stores it."""
