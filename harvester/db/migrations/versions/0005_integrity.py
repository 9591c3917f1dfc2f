"""digest verifications (CloudTrail log file integrity validation)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "digest_verifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("digest_key", sa.String(length=1024), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=False),
        sa.Column("region", sa.String(length=32), nullable=False),
        sa.Column("trail", sa.String(length=128), nullable=False),
        sa.Column("backfill", sa.Boolean(), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("digest_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("digest_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("signature", sa.String(length=16), nullable=False),
        sa.Column("chain", sa.String(length=16), nullable=False),
        sa.Column("log_files", sa.Integer(), nullable=False),
        sa.Column("log_files_verified", sa.Integer(), nullable=False),
        sa.Column("log_files_missing", sa.Integer(), nullable=False),
        sa.Column("log_files_altered", sa.Integer(), nullable=False),
        sa.Column("log_files_pending", sa.Integer(), nullable=False),
        sa.Column("digest_sha256", sa.String(length=64), nullable=True),
        sa.Column("digest_signature", sa.Text(), nullable=True),
        sa.Column("previous_digest_key", sa.String(length=1024), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("verified_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["sources.id"],
            name=op.f("fk_digest_verifications_source_id_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_verifications")),
        sa.UniqueConstraint(
            "source_id", "digest_key", name=op.f("uq_digest_verifications_source_id")
        ),
    )
    op.create_index(
        "ix_digest_verifications_source_region_time",
        "digest_verifications",
        ["source_id", "region", "delivered_at"],
        unique=False,
    )
    op.create_index(
        "ix_digest_verifications_source_status",
        "digest_verifications",
        ["source_id", "status"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_digest_verifications_source_status", table_name="digest_verifications")
    op.drop_index("ix_digest_verifications_source_region_time", table_name="digest_verifications")
    op.drop_table("digest_verifications")
