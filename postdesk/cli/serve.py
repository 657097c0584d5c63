"""`postdesk serve`: the SMTP server, the runner and the IMAP pollers until Ctrl-C or SIGTERM."""

from __future__ import annotations

import typer
from rich.console import Console

from postdesk.cli.common import fail, settings_of
from postdesk.cli.workspace import writable_data_folder


def serve(ctx: typer.Context) -> None:
    """Run the SMTP server and the runner until Ctrl-C or SIGTERM."""
    from postdesk.app import configure_logging, serve as run_service
    from postdesk.cli.web import ready_lines

    settings = settings_of(ctx)
    configure_logging(settings)
    writable_data_folder(settings, create=True)

    def ready(port: int, service) -> None:
        address = settings.mailboxes[0].address
        # one line each, even piped: the commands stay copyable
        out = Console(soft_wrap=True, highlight=False, markup=False)
        out.print(f"Postdesk is running. Data folder: {settings.data_dir.resolve()}")
        waiting = "" if service.db.schema_is_current() else " (not ready yet: mail waits in the spool until it is)"
        out.print(f"Database: {service.db.engine.url.render_as_string(hide_password=True)}{waiting}")
        out.print(f"SMTP: {settings.smtp_host}:{port}, mailboxes: {', '.join(m.address for m in settings.mailboxes)}")
        out.print(
            f"Send a test mail:  swaks --server {settings.smtp_host}:{port} --from me@example.com "
            f"--to {address} --header 'Subject: hello'"
        )
        out.print(
            f"   or: python3 -c \"import smtplib; smtplib.SMTP('{settings.smtp_host}', {port}).sendmail("
            f"'me@example.com', ['{address}'], b'From: me@example.com\\r\\nTo: {address}\\r\\n"
            f"Subject: hello\\r\\n\\r\\nIt works.\\r\\n')\""
        )
        out.print("Then: postdesk tickets list")
        for line in ready_lines(service, service.web_url):
            out.print(line)

    try:
        run_service(settings, on_ready=ready)
    except OSError as exc:
        fail(f"cannot start: {exc}")
