"""Assets: an asset (which execution persisted it, its name), its entries (a path, the blob
holding the file's bytes, its size and media type), and each restoration of it by an execution.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "assets",
        sa.Column("asset_id", sa.String(32), primary_key=True),
        sa.Column("execution_id", sa.String(64), sa.ForeignKey("executions.execution_id"), nullable=False),
        sa.Column("name", sa.Text, nullable=True),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_index("ix_assets_execution", "assets", ["execution_id"])  # a run view's assets
    op.create_table(
        "asset_entries",
        sa.Column("asset_id", sa.String(32), sa.ForeignKey("assets.asset_id"), primary_key=True),
        sa.Column("path", sa.String(1024), primary_key=True),
        sa.Column("blob_key", sa.String(64), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("media_type", sa.String(255), nullable=False),
    )
    op.create_table(
        "asset_restorations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("asset_id", sa.String(32), sa.ForeignKey("assets.asset_id"), nullable=False),
        sa.Column("execution_id", sa.String(64), nullable=False),
        sa.Column("restored_at", sa.Float, nullable=False),
    )
    op.create_index("ix_asset_restorations_asset", "asset_restorations", ["asset_id"])


def downgrade() -> None:
    op.drop_index("ix_asset_restorations_asset", "asset_restorations")
    op.drop_table("asset_restorations")
    op.drop_table("asset_entries")
    op.drop_index("ix_assets_execution", "assets")
    op.drop_table("assets")
