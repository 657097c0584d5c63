"""The agents' web view: FastAPI routes rendering Jinja2 templates on the server, usable without
JavaScript, every asset served by Postdesk itself. The queries and actions are plain functions
below it (tickets.queues, tickets.search, tickets.access, postdesk.accounts), shared with the
command line. `create_app` builds it; `server` runs it under uvicorn."""
