"""Fetch one evidence record on demand: the object from S3, parsed to the pointed-at index.

The console keeps only a pointer (bucket, key, index) to each evidence event; when someone
asks for the record, it is read again with the credentials of the source that harvests that
bucket and prefix, and shown as the normalized event (payloads such as request parameters
included as they were in the log).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import msgspec
from sqlalchemy.orm import Session

from harvester.aws.errors import AwsError
from harvester.aws.identity import IdentityConfigError, SourceInfo, source_info_from_row
from harvester.aws.s3 import open_object
from harvester.aws.session import AwsSessions
from harvester.crypto import SecretBox, SecretKeyError
from harvester.detect import repository as repo
from harvester.detect.model import Anomaly, Evidence
from harvester.inventory import service
from harvester.parse import CorruptObjectError, parse_object
from harvester.web.state import WebState

__all__ = ["FetchedRecord", "RecordError", "fetch_evidence", "fetch_record", "source_for"]

# Reading further than this many records to find one is not a click's worth of work.
MAX_RECORDS = 500_000


class RecordError(Exception):
    """The record cannot be fetched; ``str()`` says why and what to do."""


@dataclass(frozen=True)
class FetchedRecord:
    evidence: Evidence
    json: str


def source_for(
    session: Session, evidence: Evidence, *, box: SecretBox, external_id: str | None = None
) -> SourceInfo:
    """The source that harvests the evidence's bucket and key, as plain data with credentials."""
    for source in service.list_sources(session):
        if source.bucket == evidence.bucket and evidence.key.startswith(source.prefix):
            try:
                return source_info_from_row(source, secret_box=box, default_external_id=external_id)
            except (IdentityConfigError, SecretKeyError) as exc:
                raise RecordError(str(exc)) from None
    raise RecordError(
        f"no source reads s3://{evidence.bucket}/{evidence.key}: the record cannot be fetched "
        "with any stored credentials"
    )


def fetch_record(info: SourceInfo, evidence: Evidence, *, aws: AwsSessions) -> FetchedRecord:
    try:
        client = aws.s3(info.chain, info.region)
        stream = open_object(client, evidence.bucket, evidence.key)
        with io.BufferedReader(stream, buffer_size=1 << 16) as body:
            events = parse_object(
                body,
                kind=info.kind,
                bucket=evidence.bucket,
                key=evidence.key,
                cluster=info.cluster_name,
                account=info.account_id,
                region=info.region,
                hash_content=False,
            )
            for count, event in enumerate(events):
                if event.raw.index == evidence.index:
                    pretty = msgspec.json.format(msgspec.json.encode(event), indent=2)
                    return FetchedRecord(evidence=evidence, json=pretty.decode())
                if count >= MAX_RECORDS:
                    break
    except AwsError as exc:
        raise RecordError(exc.describe()) from None
    except CorruptObjectError as exc:
        raise RecordError(f"the object cannot be parsed: {exc}") from None
    raise RecordError(
        f"s3://{evidence.bucket}/{evidence.key} has no record #{evidence.index} any more "
        "(was the object replaced?)"
    )


def fetch_evidence(
    state: WebState, *, anomaly_id: str, index: int
) -> tuple[Anomaly, FetchedRecord | None, str | None]:
    """The anomaly and its ``index``-th evidence record, or why the record cannot be had.

    Raises ``NotFound`` for an unknown anomaly or evidence number; AWS is asked outside the
    database transaction, so a slow S3 does not hold a connection.
    """
    with state.session() as session:
        anomaly = repo.get_anomaly(session, anomaly_id=anomaly_id)
        if index >= len(anomaly.evidence):
            raise service.NotFound(f"anomaly {anomaly.id} has no evidence #{index}")
        evidence = anomaly.evidence[index]
        try:
            info = source_for(
                session, evidence, box=state.box, external_id=state.settings.external_id
            )
        except RecordError as exc:
            return anomaly, None, str(exc)
    try:
        return anomaly, fetch_record(info, evidence, aws=state.aws()), None
    except RecordError as exc:
        return anomaly, None, str(exc)
