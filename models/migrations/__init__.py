"""Alembic migrations of the Postdesk schema."""
