"""A re-run can carry on to its parents: ``rerun_parents`` (once it succeeds, its parent step is
re-run in the same workspace, with ``rerun_parents`` too) and ``fixed_step`` (for a parent re-run
that way: the child step whose re-run succeeded, which its calls reuse).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: executions written before this revision carry on to nothing.
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("rerun_parents", sa.Boolean, nullable=True))
        batch.add_column(sa.Column("fixed_step", sa.String(48), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("fixed_step")
        batch.drop_column("rerun_parents")
