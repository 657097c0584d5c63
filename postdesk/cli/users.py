"""`postdesk users …`: agents and their roles, departments and second factors, from the command line."""

from __future__ import annotations

import json
import sys

import typer
from rich.markup import escape
from rich.table import Table

from postdesk.cli.common import Verbs, fail, out
from postdesk.cli.workspace import open_for_reading, open_for_writing

group = Verbs(help="Agents who sign in to the web view: roles, departments, 2FA.")


def _change(ctx: typer.Context, action, *args, create: bool = False):
    """Run one change (a function of `postdesk.accounts.users`, or its name) in a write transaction,
    departments brought in line with the settings first."""
    from postdesk.accounts import users
    from tickets.mailbox_rows import sync_mailboxes

    service = open_for_writing(ctx, create=create)
    if isinstance(action, str):
        action = getattr(users, action)
    try:
        with service.db.write() as session:
            sync_mailboxes(session, service.settings.mailboxes)
            return action(session, *args)
    except users.UserError as exc:
        fail(str(exc))
    finally:
        service.db.dispose()


@group.command("create")
def create(
    ctx: typer.Context,
    email: str,
    name: str = typer.Option("", help="Display name."),
    role: str = typer.Option("agent", help="owner, admin or agent."),
    department: list[str] | None = typer.Option(
        None, "--department", "-d", help="A department the agent works in (repeat for more)."
    ),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the one-time password from standard input instead of making one."
    ),
):
    """Add an agent. They sign in with a one-time password, then choose their own (and enrol 2FA where required)."""
    password = sys.stdin.readline().rstrip("\r\n") if password_stdin else None
    from postdesk.accounts import users

    created = _change(
        ctx,
        lambda s: users.create(s, email, name=name, role=role, departments=department or [], password=password),
        create=True,
    )
    out.print(f"created {email.strip().lower()} ({role})", highlight=False, markup=False)
    if created.password:
        out.print(f"one-time password: {created.password}", highlight=False, markup=False)
        out.print("It is shown once; the first sign-in asks for a new password.", highlight=False)


@group.command("list")
def listing(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")):
    """Every agent with role, state, departments and whether 2FA is enrolled."""
    from postdesk.accounts import users

    service = open_for_reading(ctx)
    with service.db.read() as session:
        rows = users.listing(session)
    if as_json:
        out.print_json(json.dumps(rows))
        return
    table = Table("email", "name", "role", "active", "2FA", "departments")
    for r in rows:
        table.add_row(
            escape(r["email"]),
            escape(r["name"]),
            r["role"],
            "yes" if r["active"] else "no",
            "yes" if r["two_factor"] else "no",
            escape(", ".join(r["departments"])),
        )
    out.print(table)


@group.command("deactivate")
def deactivate(ctx: typer.Context, email: str):
    """Stop an agent signing in; their sessions end at once."""
    _change(ctx, "deactivate", email)
    out.print(f"{email} is deactivated", highlight=False, markup=False)


@group.command("set-role")
def set_role(ctx: typer.Context, email: str, role: str = typer.Argument(..., help="owner, admin or agent")):
    """Change an agent's role (they sign in again)."""
    _change(ctx, "set_role", email, role)
    out.print(f"{email} is now {role}", highlight=False, markup=False)


@group.command("set-departments")
def set_departments(
    ctx: typer.Context,
    email: str,
    departments: list[str] | None = typer.Argument(None, help="Department names; none: no department."),
):
    """Set the departments whose tickets an agent sees."""
    _change(ctx, "set_departments", email, departments or [])
    out.print(f"{email}: {', '.join(departments or []) or 'no department'}", highlight=False, markup=False)


@group.command("reset-2fa")
def reset_2fa(ctx: typer.Context, email: str):
    """Forget an agent's second factor and recovery codes (a lost phone); they enrol again at sign-in."""
    _change(ctx, "reset_2fa", email)
    out.print(f"{email} enrols a second factor again at the next sign-in", highlight=False, markup=False)


@group.command("require-2fa")
def require_2fa(
    ctx: typer.Context,
    role: str = typer.Argument(..., help="owner, admin or agent"),
    required: bool = typer.Option(True, "--on/--off"),
):
    """Require (or stop requiring) a second factor for everyone of a role."""
    _change(ctx, "set_2fa_required", role, required)
    out.print(f"2FA {'required' if required else 'optional'} for {role}", highlight=False, markup=False)
