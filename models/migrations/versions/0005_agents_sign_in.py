"""agents sign in to the web view: roles, departments, sessions, recovery codes, throttling, 2FA policy;
indexes for the queue pages

Revision ID: 0005_agents
Revises: 0004_privacy
Create Date: 2026-12-07 10:00:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0005_agents"
down_revision = "0004_privacy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("is_admin")
        batch.add_column(sa.Column("role", sa.String(length=16), nullable=False, server_default="agent"))
        batch.add_column(sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("must_change_password", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch.add_column(sa.Column("totp_pending", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("agents") as batch:  # the defaults were for rows already there
        batch.alter_column("role", server_default=None)
        batch.alter_column("active", server_default=None)
        batch.alter_column("must_change_password", server_default=None)
    op.create_table(
        "agent_departments",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_departments_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_agent_departments_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", "department_id", name=op.f("pk_agent_departments")),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_web_sessions_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_web_sessions")),
    )
    op.create_index(op.f("ix_web_sessions_agent_id"), "web_sessions", ["agent_id"], unique=False)
    op.create_table(
        "recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_recovery_codes_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_codes")),
    )
    op.create_index(op.f("ix_recovery_codes_agent_id"), "recovery_codes", ["agent_id"], unique=False)
    op.create_table(
        "sign_in_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sign_in_failures")),
    )
    op.create_index("ix_sign_in_failures_account_at", "sign_in_failures", ["account", "at"], unique=False)
    op.create_index("ix_sign_in_failures_address_at", "sign_in_failures", ["address", "at"], unique=False)
    op.create_table(
        "role_policies",
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("require_2fa", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("role", name=op.f("pk_role_policies")),
    )
    op.bulk_insert(
        sa.table("role_policies", sa.column("role", sa.String), sa.column("require_2fa", sa.Boolean)),
        [
            {"role": "owner", "require_2fa": True},
            {"role": "admin", "require_2fa": True},
            {"role": "agent", "require_2fa": False},
        ],
    )
    op.drop_index("ix_tickets_queue_status", table_name="tickets")
    op.create_index("ix_tickets_queue_status", "tickets", ["queue", "status", "id"], unique=False)
    op.create_index("ix_tickets_queue_status_updated", "tickets", ["queue", "status", "updated_at", "id"], unique=False)
    op.create_index("ix_tickets_department_queue", "tickets", ["department_id", "queue", "status", "id"], unique=False)
    op.create_index(
        "ix_tickets_department_queue_updated",
        "tickets",
        ["department_id", "queue", "status", "updated_at", "id"],
        unique=False,
    )
    op.create_index(
        "ix_tickets_assignee_queue_updated",
        "tickets",
        ["assignee_id", "queue", "status", "updated_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_tickets_assignee_queue_updated", table_name="tickets")
    op.drop_index("ix_tickets_department_queue_updated", table_name="tickets")
    op.drop_index("ix_tickets_department_queue", table_name="tickets")
    op.drop_index("ix_tickets_queue_status_updated", table_name="tickets")
    op.drop_index("ix_tickets_queue_status", table_name="tickets")
    op.create_index("ix_tickets_queue_status", "tickets", ["queue", "status"], unique=False)
    op.drop_table("role_policies")
    op.drop_index("ix_sign_in_failures_address_at", table_name="sign_in_failures")
    op.drop_index("ix_sign_in_failures_account_at", table_name="sign_in_failures")
    op.drop_table("sign_in_failures")
    op.drop_index(op.f("ix_recovery_codes_agent_id"), table_name="recovery_codes")
    op.drop_table("recovery_codes")
    op.drop_index(op.f("ix_web_sessions_agent_id"), table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_table("agent_departments")
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("totp_last_step")
        batch.drop_column("totp_pending")
        batch.drop_column("must_change_password")
        batch.drop_column("active")
        batch.drop_column("role")
        batch.add_column(sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false()))
