"""Inventory commands: apply/export, accounts, clusters, storage, roles, sources."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.orm import Session

from harvester.cli.context import AppContext
from harvester.cli.output import OutputFormat, console, emit, print_json, when
from harvester.crypto import mask
from harvester.db.models import Account, RoleConfig, Source
from harvester.durations import format_duration, parse_duration
from harvester.inventory import plan as inventory_plan
from harvester.inventory import service
from harvester.inventory import validation as v
from harvester.inventory.spec import (
    AccountSpec,
    ClusterSpec,
    RoleSpec,
    StorageSpec,
    default_cloudtrail_prefix,
)
from harvester.inventory.yamlfile import dump_inventory, load_inventory

OutputOpt = Annotated[
    OutputFormat, typer.Option("--output", "-o", help="table for people, json for scripts.")
]

inventory_app = typer.Typer(
    help="Apply or export the whole inventory as a YAML file.", no_args_is_help=True
)
accounts_app = typer.Typer(help="AWS accounts and their CloudTrail storage.", no_args_is_help=True)
clusters_app = typer.Typer(
    help="EKS clusters whose audit logs arrive through Firehose.", no_args_is_help=True
)
storage_app = typer.Typer(help="Edit where a source's logs are read from.", no_args_is_help=True)
roles_app = typer.Typer(help="IAM role configs used to read the buckets.", no_args_is_help=True)
sources_app = typer.Typer(
    help="Sources: one per account CloudTrail and per EKS cluster.", no_args_is_help=True
)


def _ctx(ctx: typer.Context) -> AppContext:
    app_ctx = ctx.find_object(AppContext)
    assert app_ctx is not None, "the main callback builds the context"
    return app_ctx


# --- inventory apply / export ------------------------------------------------------------


@inventory_app.command("apply")
def inventory_apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Option("--file", "-f", help="The inventory YAML file.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show the plan, change nothing.")
    ] = False,
    prune: Annotated[
        bool, typer.Option("--prune", help="Remove accounts and roles that are not in the file.")
    ] = False,
) -> None:
    """Make the stored inventory match FILE: prints what it adds (+), changes (~) and removes (-).

    Idempotent: applying the same file again reports no change. Secrets may be written as
    ${ENV_VAR} references; a role without secret_access_key keeps its stored secret.
    """
    app = _ctx(ctx)
    with app.session() as session:
        desired = load_inventory(
            file, environ=os.environ, stored_external_ids=service.external_ids(session)
        )
        changes = inventory_plan.apply(
            session, desired, box=app.box, clock=app.clock, prune=prune, dry_run=dry_run
        )
        if dry_run:
            session.rollback()
    out = console()
    effective = [c for c in changes if c.action != "unmanaged"]
    for change in changes:
        out.print(change.describe(), markup=False)
    if not effective:
        out.print("no change: the inventory already matches the file")
    elif dry_run:
        out.print(f"dry run: {len(effective)} change(s) planned, nothing written")
    else:
        out.print(f"applied {len(effective)} change(s)")


@inventory_app.command("export")
def inventory_export(
    ctx: typer.Context,
    output_file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Write the stored inventory as YAML, in the shape apply reads.

    Secrets are omitted and external IDs masked; apply reads a mask as the stored value.
    """
    app = _ctx(ctx)
    with app.session() as session:
        text = dump_inventory(service.export_inventory(session))
    if output_file is None:
        typer.echo(text, nl=False)
    else:
        output_file.write_text(text)
        console().print(f"wrote {output_file}")


# --- accounts --------------------------------------------------------------------------------


def _account_record(account: Account, sources: list[Source]) -> dict[str, Any]:
    return {
        "account_id": account.account_id,
        "name": account.name,
        "partition": account.partition,
        "organization_id": account.organization_id,
        "enabled": account.enabled,
        "cadence": format_duration_s(account.cadence_seconds),
        "cloudtrail": next(
            (f"s3://{s.bucket}/{s.prefix}" for s in sources if s.kind == service.CLOUDTRAIL), None
        ),
        "clusters": ", ".join(s.cluster_name for s in sources if s.kind == service.EKS) or None,
    }


def format_duration_s(seconds: int | None) -> str:
    return format_duration(timedelta(seconds=seconds)) if seconds else "default"


@accounts_app.command("list")
def accounts_list(ctx: typer.Context, output: OutputOpt = OutputFormat.table) -> None:
    """List accounts with their CloudTrail location and clusters."""
    app = _ctx(ctx)
    with app.session() as session:
        sources = service.list_sources(session)
        records = [
            _account_record(a, [s for s in sources if s.account_pk == a.id])
            for a in service.list_accounts(session)
        ]
    columns = [
        "account_id",
        "name",
        "partition",
        "organization_id",
        "enabled",
        "cadence",
        "cloudtrail",
        "clusters",
    ]
    emit(output, records, columns, "Accounts")


@accounts_app.command("show")
def accounts_show(
    ctx: typer.Context, account_id: str, output: OutputOpt = OutputFormat.table
) -> None:
    """Show one account and its sources."""
    app = _ctx(ctx)
    with app.session() as session:
        account = service.get_account(session, account_id=account_id)
        sources = [s for s in service.list_sources(session) if s.account_pk == account.id]
        record = _account_record(account, sources)
        record["sources"] = [source_record(s, app.clock()) for s in sources]
    if output is OutputFormat.json:
        print_json(record)
        return
    out = console()
    for key, value in record.items():
        if key != "sources":
            out.print(f"{key:>16}: {'-' if value is None else value}", markup=False)
    emit(output, record["sources"], SOURCE_COLUMNS, "Sources")


def _storage_options(
    bucket: str | None, region: str | None, prefix: str | None, role: str | None
) -> dict[str, Any]:
    return {
        k: val
        for k, val in {"bucket": bucket, "region": region, "prefix": prefix, "role": role}.items()
        if val is not None
    }


@accounts_app.command("add")
def accounts_add(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Option(help="12-digit AWS account id.")],
    name: Annotated[str, typer.Option(help="A name people recognise.")],
    partition: Annotated[str, typer.Option(help="aws, aws-us-gov or aws-cn.")] = "aws",
    organization_id: Annotated[
        str | None, typer.Option(help="o-... for an organization trail.")
    ] = None,
    cadence: Annotated[
        str | None, typer.Option(help="Harvest every (e.g. 5m); default from settings.")
    ] = None,
    bucket: Annotated[
        str | None, typer.Option(help="CloudTrail bucket (the resource name).")
    ] = None,
    region: Annotated[str | None, typer.Option(help="The bucket's region.")] = None,
    prefix: Annotated[
        str | None, typer.Option(help="Default AWSLogs/<account> (or AWSLogs/<org>/<account>).")
    ] = None,
    role: Annotated[
        str | None, typer.Option(help="Role config name; none: base credentials.")
    ] = None,
) -> None:
    """Add an account, with its CloudTrail storage when --bucket and --region are given."""
    app = _ctx(ctx)
    storage = None
    if bucket or region:
        if not (bucket and region):
            raise v.InvalidValue(
                "bucket/region", bucket or region, "give both --bucket and --region"
            )
        storage = StorageSpec(
            bucket, region, prefix or default_cloudtrail_prefix(account_id, organization_id), role
        )
    spec = AccountSpec(
        account_id=account_id,
        name=name,
        partition=partition,
        organization_id=organization_id,
        cadence=parse_duration(cadence) if cadence else None,
        cloudtrail=storage,
    ).validate()
    with app.session() as session:
        if service.account_exists(session, account_id=account_id):
            raise v.InvalidValue(
                "account_id", account_id, "already in the inventory (use accounts edit)"
            )
        account = service.upsert_account(session, spec, clock=app.clock)
        if storage is not None:
            service.set_cloudtrail_storage(
                session, account=account, storage=storage, clock=app.clock
            )
    console().print(f"added account {account_id} ({name})", markup=False)


@accounts_app.command("edit")
def accounts_edit(
    ctx: typer.Context,
    account_id: str,
    name: Annotated[str | None, typer.Option()] = None,
    partition: Annotated[str | None, typer.Option()] = None,
    organization_id: Annotated[str | None, typer.Option(help="'' removes it.")] = None,
    cadence: Annotated[
        str | None, typer.Option(help="e.g. 5m; 'default' for the settings value.")
    ] = None,
) -> None:
    """Change an account's own fields (use 'storage edit' for where its logs are)."""
    app = _ctx(ctx)
    with app.session() as session:
        account = service.get_account(session, account_id=account_id)
        sources = [s for s in service.list_sources(session) if s.account_pk == account.id]
        current = service.account_spec(account, sources)
        updated = replace(
            current,
            name=name if name is not None else current.name,
            partition=partition if partition is not None else current.partition,
            organization_id=(organization_id or None)
            if organization_id is not None
            else current.organization_id,
            cadence=(None if cadence == "default" else parse_duration(cadence))
            if cadence
            else current.cadence,
        )
        service.upsert_account(session, updated, clock=app.clock)
    console().print(f"updated account {account_id}")


@accounts_app.command("disable")
def accounts_disable(ctx: typer.Context, account_id: str) -> None:
    """Stop harvesting an account (its sources stay, with their cursors)."""
    _set_enabled(ctx, account_id, enabled=False)


@accounts_app.command("enable")
def accounts_enable(ctx: typer.Context, account_id: str) -> None:
    """Resume harvesting a disabled account."""
    _set_enabled(ctx, account_id, enabled=True)


def _set_enabled(ctx: typer.Context, account_id: str, *, enabled: bool) -> None:
    app = _ctx(ctx)
    with app.session() as session:
        account = service.get_account(session, account_id=account_id)
        service.set_account_enabled(session, account=account, enabled=enabled, clock=app.clock)
    console().print(f"{'enabled' if enabled else 'disabled'} account {account_id}")


# --- clusters ---------------------------------------------------------------------------------


@clusters_app.command("list")
def clusters_list(ctx: typer.Context, output: OutputOpt = OutputFormat.table) -> None:
    """List EKS clusters."""
    app = _ctx(ctx)
    with app.session() as session:
        records = [
            source_record(s, app.clock()) for s in service.list_sources(session, kind=service.EKS)
        ]
    emit(
        output,
        records,
        ["id", "account_id", "cluster", "region", "bucket", "prefix", "role", "enabled"],
        "Clusters",
    )


@clusters_app.command("show")
def clusters_show(
    ctx: typer.Context,
    cluster: Annotated[str, typer.Argument(help="ACCOUNT/CLUSTER, e.g. 111111111111/payments.")],
    output: OutputOpt = OutputFormat.table,
) -> None:
    """Show one cluster."""
    app = _ctx(ctx)
    with app.session() as session:
        record = source_record(_cluster_source(session, cluster), app.clock())
    _show_record(record, output)


def _cluster_source(session: Session, ref: str) -> Source:
    if "/" not in ref:
        raise v.InvalidValue("cluster", ref, "name a cluster as ACCOUNT/CLUSTER")
    return service.find_source(session, ref)


@clusters_app.command("add")
def clusters_add(
    ctx: typer.Context,
    account_id: Annotated[str, typer.Option(help="The account the cluster runs in.")],
    name: Annotated[str, typer.Option(help="The EKS cluster name.")],
    region: Annotated[str, typer.Option(help="The cluster's (and the bucket's) region.")],
    bucket: Annotated[str, typer.Option(help="The bucket Firehose writes EKSLogs/ into.")],
    role: Annotated[
        str | None, typer.Option(help="Role config name; none: base credentials.")
    ] = None,
) -> None:
    """Add an EKS cluster; its prefix is EKSLogs/<account>/<cluster> and cannot be edited."""
    app = _ctx(ctx)
    with app.session() as session:
        account = service.get_account(session, account_id=account_id)
        if any(
            s.cluster_name == name
            for s in service.list_sources(session, kind=service.EKS)
            if s.account_pk == account.id
        ):
            raise v.InvalidValue(
                "name", name, f"account {account_id} already has this cluster (use clusters edit)"
            )
        service.set_cluster(
            session,
            account=account,
            cluster=ClusterSpec(name, region, bucket, role),
            clock=app.clock,
        )
    console().print(f"added cluster {account_id}/{name}")


@clusters_app.command("edit")
def clusters_edit(
    ctx: typer.Context,
    cluster: Annotated[str, typer.Argument(help="ACCOUNT/CLUSTER")],
    region: Annotated[str | None, typer.Option()] = None,
    bucket: Annotated[str | None, typer.Option()] = None,
    role: Annotated[
        str | None, typer.Option(help="Role config name; '' for base credentials.")
    ] = None,
    enabled: Annotated[bool | None, typer.Option("--enabled/--disabled")] = None,
) -> None:
    """Change a cluster's region, bucket, role or enabled state."""
    app = _ctx(ctx)
    with app.session() as session:
        source = _cluster_source(session, cluster)
        spec = ClusterSpec(
            name=source.cluster_name,
            region=region or source.region,
            bucket=bucket or source.bucket,
            role=(role or None)
            if role is not None
            else (source.role.name if source.role else None),
            enabled=source.enabled if enabled is None else enabled,
        )
        service.set_cluster(session, account=source.account, cluster=spec, clock=app.clock)
    console().print(f"updated cluster {cluster}")


# --- storage ---------------------------------------------------------------------------------


@storage_app.command("edit")
def storage_edit(
    ctx: typer.Context,
    source_ref: Annotated[
        str, typer.Argument(metavar="SOURCE", help="Source id, ACCOUNT or ACCOUNT/CLUSTER.")
    ],
    bucket: Annotated[str | None, typer.Option(help="Resource name: the bucket.")] = None,
    region: Annotated[str | None, typer.Option(help="The bucket's region.")] = None,
    prefix: Annotated[
        str | None, typer.Option(help="CloudTrail only; EKS prefixes are derived.")
    ] = None,
    role: Annotated[
        str | None, typer.Option(help="Use this existing role config ('' for none).")
    ] = None,
    new_role: Annotated[
        str | None, typer.Option(help="Create a role config with this name and use it.")
    ] = None,
    role_arn: Annotated[str | None, typer.Option(help="New role: the role to assume.")] = None,
    session_name: Annotated[
        str, typer.Option(help="New role: the session name.")
    ] = "audit-harvester",
    partition: Annotated[str | None, typer.Option(help="New role: default the account's.")] = None,
    authentication: Annotated[
        str, typer.Option(help="New role: instance-profile or access-keys.")
    ] = "instance-profile",
    via_role_arn: Annotated[
        str | None, typer.Option(help="New role: primary role assumed first.")
    ] = None,
    external_id: Annotated[str | None, typer.Option(help="New role: external ID.")] = None,
    access_key_id: Annotated[
        str | None, typer.Option(help="New role with access-keys: the key id.")
    ] = None,
) -> None:
    """Edit a source's storage configuration: resource name, region, prefix and IAM role config.

    For access keys, the secret is read from HARVESTER_SECRET_ACCESS_KEY or asked for
    without echo; it is never accepted on the command line.
    """
    app = _ctx(ctx)
    with app.session() as session:
        source = service.find_source(session, source_ref)
        account = source.account
        role_name = (
            (role or None) if role is not None else (source.role.name if source.role else None)
        )
        if new_role is not None:
            if role is not None:
                raise v.InvalidValue("--role", role, "give either --role or --new-role, not both")
            spec = _with_secret(
                RoleSpec(
                    name=new_role,
                    role_arn=role_arn,
                    session_name=session_name,
                    partition=partition or account.partition,
                    authentication=authentication,
                    via_role_arn=via_role_arn,
                    external_id=external_id,
                    access_key_id=access_key_id,
                )
            )
            if service.role_exists(session, name=new_role):
                raise v.InvalidValue(
                    "--new-role", new_role, "a role config with this name exists (use --role)"
                )
            service.upsert_role(session, spec, box=app.box, clock=app.clock)
            role_name = new_role
        if source.kind == service.EKS:
            if prefix is not None:
                raise v.InvalidValue(
                    "prefix",
                    prefix,
                    "an EKS cluster's prefix is derived (EKSLogs/<account>/<cluster>) "
                    "and cannot be edited",
                )
            service.set_cluster(
                session,
                account=account,
                cluster=ClusterSpec(
                    source.cluster_name,
                    region or source.region,
                    bucket or source.bucket,
                    role_name,
                    source.enabled,
                ),
                clock=app.clock,
            )
        else:
            storage = StorageSpec(
                bucket or source.bucket, region or source.region, prefix or source.prefix, role_name
            )
            service.set_cloudtrail_storage(
                session, account=account, storage=storage, clock=app.clock
            )
    console().print(f"updated the storage configuration of {source_ref}")


def _with_secret(spec: RoleSpec) -> RoleSpec:
    """Fill in the secret access key from the environment or a hidden prompt, then validate."""
    if spec.authentication == "access-keys":
        secret = os.environ.get("HARVESTER_SECRET_ACCESS_KEY") or typer.prompt(
            "Secret access key", hide_input=True
        )
        spec = replace(spec, secret_access_key=secret)
    return spec.validate()


# --- roles -----------------------------------------------------------------------------------


def _role_record(role: RoleConfig) -> dict[str, Any]:
    return {
        "name": role.name,
        "role_arn": role.role_arn or "(base credentials)",
        "session_name": role.session_name,
        "partition": role.partition,
        "authentication": role.authentication,
        "via_role_arn": role.via_role_arn,
        "external_id": mask(role.external_id) or None,
        "access_key_id": mask(role.access_key.access_key_id) if role.access_key else None,
        "secret_access_key": "****" if role.access_key else None,
    }


@roles_app.command("list")
def roles_list(ctx: typer.Context, output: OutputOpt = OutputFormat.table) -> None:
    """List role configs; access key ids and external IDs are shown masked, secrets never."""
    app = _ctx(ctx)
    with app.session() as session:
        records = [_role_record(r) for r in service.list_roles(session)]
    columns = [
        "name",
        "role_arn",
        "session_name",
        "partition",
        "authentication",
        "via_role_arn",
        "external_id",
        "access_key_id",
    ]
    emit(output, records, columns, "Roles")


@roles_app.command("add")
def roles_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="A name for the role config.")],
    role_arn: Annotated[
        str | None, typer.Option(help="The role to assume; omit to read with base credentials.")
    ] = None,
    session_name: Annotated[str, typer.Option()] = "audit-harvester",
    partition: Annotated[str, typer.Option(help="aws, aws-us-gov or aws-cn.")] = "aws",
    authentication: Annotated[
        str, typer.Option(help="instance-profile or access-keys.")
    ] = "instance-profile",
    via_role_arn: Annotated[
        str | None, typer.Option(help="Primary harvesting role, assumed first.")
    ] = None,
    external_id: Annotated[
        str | None, typer.Option(help="Overrides the installation-wide external ID.")
    ] = None,
    access_key_id: Annotated[str | None, typer.Option(help="With access-keys.")] = None,
) -> None:
    """Add a role config.

    With access-keys, the secret comes from HARVESTER_SECRET_ACCESS_KEY or a hidden prompt.
    """
    app = _ctx(ctx)
    spec = _with_secret(
        RoleSpec(
            name=name,
            role_arn=role_arn,
            session_name=session_name,
            partition=partition,
            authentication=authentication,
            via_role_arn=via_role_arn,
            external_id=external_id,
            access_key_id=access_key_id,
        )
    )
    with app.session() as session:
        if service.role_exists(session, name=name):
            raise v.InvalidValue("name", name, "a role config with this name exists")
        service.upsert_role(session, spec, box=app.box, clock=app.clock)
    console().print(f"added role config {name}")


# --- sources ---------------------------------------------------------------------------------

SOURCE_COLUMNS = [
    "id",
    "kind",
    "source",
    "bucket",
    "prefix",
    "role",
    "enabled",
    "health",
    "last_run",
    "last_success",
    "objects_last_run",
    "events_last_run",
    "lag",
    "next_run",
]


def _lag(source: Source, now: datetime) -> str:
    if source.newest_object_at is None:
        return "-"
    return format_duration(max(timedelta(0), now - source.newest_object_at))


def source_record(source: Source, now: datetime) -> dict[str, Any]:
    return {
        "id": source.id,
        "kind": source.kind,
        "source": service.source_label(source),
        "account_id": source.account.account_id,
        "cluster": source.cluster_name or None,
        "bucket": source.bucket,
        "region": source.region,
        "prefix": source.prefix,
        "role": source.role.name if source.role else "(base credentials)",
        "enabled": source.enabled,
        "health": source.health
        if not source.health_reason
        else f"{source.health}: {source.health_reason}",
        "last_run": when(source.last_run_at),
        "last_success": when(source.last_success_at),
        "next_run": when(source.next_run_at),
        "objects_last_run": source.last_run_objects,
        "events_last_run": source.last_run_events,
        "lag": _lag(source, now),
        "lag_seconds": (
            int((now - source.newest_object_at).total_seconds())
            if source.newest_object_at
            else None
        ),
    }


def _show_record(record: dict[str, Any], output: OutputFormat) -> None:
    if output is OutputFormat.json:
        print_json(record)
        return
    out = console()
    for key, value in record.items():
        out.print(f"{key:>16}: {'-' if value is None else value}", markup=False)


@sources_app.command("list")
def sources_list(ctx: typer.Context, output: OutputOpt = OutputFormat.table) -> None:
    """List sources with their storage, health and schedule."""
    app = _ctx(ctx)
    with app.session() as session:
        records = [source_record(s, app.clock()) for s in service.list_sources(session)]
    emit(output, records, SOURCE_COLUMNS, "Sources")


@sources_app.command("show")
def sources_show(
    ctx: typer.Context,
    source_ref: Annotated[
        str, typer.Argument(metavar="SOURCE", help="Source id, ACCOUNT or ACCOUNT/CLUSTER.")
    ],
    output: OutputOpt = OutputFormat.table,
) -> None:
    """Show one source: storage, role, health, schedule and its last run."""
    app = _ctx(ctx)
    with app.session() as session:
        record = source_record(service.find_source(session, source_ref), app.clock())
    _show_record(record, output)
