"""Cache and memo keys on steps; a cached execution's result points at the execution it reused;
cache entries, one per execution that computed a cacheable result.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("steps") as batch:
        batch.add_column(sa.Column("cache_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("memo_key", sa.String(64), nullable=True))
    # Partial: most steps have neither key, and an index they don't enter costs their insert nothing.
    has_cache, has_memo = sa.text("cache_key IS NOT NULL"), sa.text("memo_key IS NOT NULL")
    op.create_index(
        "ix_steps_cache_key", "steps", ["cache_key"], sqlite_where=has_cache, postgresql_where=has_cache
    )
    op.create_index(
        "ix_steps_memo", "steps", ["run_id", "memo_key"], sqlite_where=has_memo, postgresql_where=has_memo
    )
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("cached_from", sa.String(64), nullable=True))
    # One row per execution that computed a cacheable result: what a cache look-up reads.
    op.create_table(
        "cache_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("cache_key", sa.String(64), nullable=False),
        sa.Column("workspace_id", sa.Integer, nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_cache_entries_lookup", "cache_entries", ["cache_key", "workspace_id", "created_at"])
    op.create_index("ix_runs_parent", "runs", ["parent_execution_id"])  # the runs an execution spawned


def downgrade() -> None:
    op.drop_index("ix_runs_parent", "runs")
    op.drop_table("cache_entries")
    with op.batch_alter_table("results") as batch:
        batch.drop_column("cached_from")
    op.drop_index("ix_steps_memo", "steps")
    op.drop_index("ix_steps_cache_key", "steps")
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("memo_key")
        batch.drop_column("cache_key")
