"""The initial schema: workspaces, targets, and the append-only run history.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    _workspaces_and_targets()
    _runs_and_steps()
    _executions_and_outcomes()
    _logs()


def _workspaces_and_targets() -> None:
    """Where things run and what can run there: workspaces (a lineage through ``base_id``) and the
    targets declared or registered in each."""
    op.create_table(
        "workspaces",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(512), nullable=False, unique=True),
        sa.Column("base_id", sa.Integer, sa.ForeignKey("workspaces.id"), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "targets",
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), primary_key=True),
        sa.Column("module", sa.String(512), primary_key=True),
        sa.Column("name", sa.String(512), primary_key=True),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("registered_at", sa.Float, nullable=False),
    )


def _runs_and_steps() -> None:
    """What was asked: runs, and their steps (one per call, unique by caller and call index)."""
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(32), primary_key=True),
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("parent_execution_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "steps",
        sa.Column("step_id", sa.String(48), primary_key=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("parent_execution_id", sa.String(64), nullable=True),
        sa.Column("call_index", sa.Integer, nullable=True),
        sa.Column("module", sa.String(512), nullable=False),
        sa.Column("target", sa.String(512), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("arguments", sa.Text, nullable=False),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
        sa.UniqueConstraint("parent_execution_id", "call_index", name="uq_steps_parent_call"),
    )
    op.create_index("ix_steps_run", "steps", ["run_id"])


def _executions_and_outcomes() -> None:
    """What happened: the attempts of each step, who was given them, and how each ended."""
    op.create_table(
        "executions",
        sa.Column("execution_id", sa.String(64), primary_key=True),
        sa.Column("step_id", sa.String(48), sa.ForeignKey("steps.step_id"), nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("workspace_id", sa.Integer, sa.ForeignKey("workspaces.id"), nullable=False),
        sa.Column("execute_after", sa.Float, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_executions_step", "executions", ["step_id"])
    op.create_table(
        "assignments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "execution_id", sa.String(64), sa.ForeignKey("executions.execution_id"), nullable=False
        ),
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("assigned_at", sa.Float, nullable=False),
    )
    op.create_index("ix_assignments_execution", "assignments", ["execution_id"])
    op.create_table(
        "results",
        sa.Column(
            "execution_id", sa.String(64), sa.ForeignKey("executions.execution_id"), primary_key=True
        ),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("value", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )


def _logs() -> None:
    op.create_table(
        "logs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("timestamp", sa.Float, nullable=False),
        sa.Column("level", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
    )
    op.create_index("ix_logs_execution", "logs", ["execution_id"])


def downgrade() -> None:
    for table in ("logs", "results", "assignments", "executions", "steps", "runs", "targets"):
        op.drop_table(table)
    op.drop_table("workspaces")
