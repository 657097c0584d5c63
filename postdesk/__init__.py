"""Postdesk: the command line, settings and the wiring of the services."""
