"""Agents' accounts: passwords, second factors, sessions and sign-in throttling.

Plain functions on a SQLAlchemy session with the time passed in, so the command line
(`postdesk users`), the web view and the tests (with a fake clock) share them.
"""
