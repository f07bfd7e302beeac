"""An execution records whether the orchestrator retried (``retry``: how many retries in its
workspace led to it; 0 for first attempts and re-runs), so views can tell a retry from a re-run.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: executions written before this revision don't say (views fall back to a guess).
    with op.batch_alter_table("executions") as batch:
        batch.add_column(sa.Column("retry", sa.Integer, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("executions") as batch:
        batch.drop_column("retry")
