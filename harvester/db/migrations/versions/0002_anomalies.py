"""anomalies, incidents and suppressions

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "anomalies",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("dedup_key", sa.String(length=64), nullable=False),
        sa.Column("detector", sa.String(length=100), nullable=False),
        sa.Column("detector_version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("severity_rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.String(length=12), nullable=True),
        sa.Column("region", sa.String(length=32), nullable=True),
        sa.Column("cluster", sa.String(length=100), nullable=True),
        sa.Column("principal", sa.String(length=2048), nullable=True),
        sa.Column("identity", sa.String(length=1024), nullable=True),
        sa.Column("source_ip", sa.String(length=64), nullable=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column("mitre_tactics", sa.JSON(), nullable=False),
        sa.Column("mitre_techniques", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_anomalies")),
        sa.UniqueConstraint("dedup_key", name=op.f("uq_anomalies_dedup_key")),
    )
    op.create_index("ix_anomalies_first_seen", "anomalies", ["first_seen"], unique=False)
    op.create_index(
        "ix_anomalies_identity_last_seen", "anomalies", ["identity", "last_seen"], unique=False
    )
    op.create_index("ix_anomalies_detector", "anomalies", ["detector"], unique=False)
    op.create_index("ix_anomalies_account_id", "anomalies", ["account_id"], unique=False)
    op.create_index(
        "ix_anomalies_status_severity", "anomalies", ["status", "severity_rank"], unique=False
    )

    op.create_table(
        "incidents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("identity", sa.String(length=1024), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("severity_rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("account_ids", sa.JSON(), nullable=False),
        sa.Column("clusters", sa.JSON(), nullable=False),
        sa.Column("tactics", sa.JSON(), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("acked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_incidents")),
    )
    op.create_index("ix_incidents_first_seen", "incidents", ["first_seen"], unique=False)
    op.create_index("ix_incidents_identity", "incidents", ["identity"], unique=False)

    op.create_table(
        "incident_anomalies",
        sa.Column("incident_id", sa.String(length=40), nullable=False),
        sa.Column("anomaly_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_incident_anomalies_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["anomaly_id"],
            ["anomalies.id"],
            name=op.f("fk_incident_anomalies_anomaly_id_anomalies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("incident_id", "anomaly_id", name=op.f("pk_incident_anomalies")),
    )

    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("detector", sa.String(length=100), nullable=False),
        sa.Column("principal", sa.String(length=2048), nullable=True),
        sa.Column("account_id", sa.String(length=12), nullable=True),
        sa.Column("until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
    )


def downgrade() -> None:

    op.drop_table("suppressions")
    op.drop_table("incident_anomalies")
    op.drop_index("ix_incidents_identity", table_name="incidents")
    op.drop_index("ix_incidents_first_seen", table_name="incidents")
    op.drop_table("incidents")
    op.drop_index("ix_anomalies_status_severity", table_name="anomalies")
    op.drop_index("ix_anomalies_account_id", table_name="anomalies")
    op.drop_index("ix_anomalies_detector", table_name="anomalies")
    op.drop_index("ix_anomalies_identity_last_seen", table_name="anomalies")
    op.drop_index("ix_anomalies_first_seen", table_name="anomalies")
    op.drop_table("anomalies")
