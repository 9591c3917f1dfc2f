"""Stream EKS control-plane logs that Kinesis Firehose delivered to S3.

Two shapes are accepted, gzip (one member or many) or plain:

* CloudWatch Logs subscription payloads, concatenated with or without newlines: each a JSON
  object ``{"messageType", "owner", "logGroup", "logStream", "logEvents": [{"message"}]}``.
  ``CONTROL_MESSAGE`` payloads are skipped; so are streams other than
  ``kube-apiserver-audit-*`` (authenticator, scheduler…), which are counted by family.
  Each audit ``message`` is one ``audit.k8s.io`` Event (v1 or v1beta1) as a JSON string.
* Audit Events one after another (Firehose message extraction turned on).

The first value decides which shape the object has; a later value of the other shape is
an error. ``RawRef.index`` (and ``CorruptObjectError.record_index``) count audit Events in
the object; the error's ``byte_offset`` is where the payload or Event starts.
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
from msgspec import Struct, field

from harvester.events import (
    DECODE_ERRORS,
    K8S_DECODER,
    Event,
    InvalidRecordError,
    K8sAuditEvent,
    is_audit_event,
    k8s_event,
)
from harvester.parse.errors import CorruptObjectError, CorruptReason
from harvester.parse.framing import DEFAULT_MAX_VALUE_BYTES, Buffer, ValueStream
from harvester.parse.gzipstream import ContentReader, Readable
from harvester.parse.stats import ParseStats

__all__ = ["AUDIT_STREAM_PREFIX", "parse_eks", "stream_family"]

AUDIT_STREAM_PREFIX = "kube-apiserver-audit"
# Longest first, so "kube-apiserver-audit-…" never counts as "kube-apiserver".
_FAMILIES = (
    "kube-apiserver-audit",
    "kube-controller-manager",
    "cloud-controller-manager",
    "kube-apiserver",
    "kube-scheduler",
    "authenticator",
)


class _LogEvent(Struct, gc=False):
    message: str | None = None


class _Envelope(Struct, rename="camel", gc=False):
    message_type: str
    owner: str | None = None
    log_group: str | None = None
    log_stream: str | None = None
    log_events: list[_LogEvent] = []


class _Probe(Struct, rename="camel", gc=False):
    message_type: str | None = None
    kind: str | None = None
    audit_id: str | None = field(default=None, name="auditID")


_ENVELOPE_DECODER = msgspec.json.Decoder(_Envelope)
_PROBE_DECODER = msgspec.json.Decoder(_Probe)


def stream_family(log_stream: str) -> str:
    """A bounded name for a log stream (``authenticator-3f2a…`` → ``authenticator``)."""
    for family in _FAMILIES:
        if log_stream == family or log_stream.startswith(family + "-"):
            return family
    return "other"


def _cluster_from_group(log_group: str | None) -> str | None:
    # "/aws/eks/<cluster>/cluster"
    if log_group and log_group.startswith("/aws/eks/"):
        name = log_group[len("/aws/eks/") :].split("/", 1)[0]
        return name or None
    return None


def _probe(data: Buffer) -> tuple[_Probe, Buffer]:
    return _PROBE_DECODER.decode(data), data


class _Parser:
    def __init__(
        self,
        values: ValueStream,
        stats: ParseStats,
        *,
        bucket: str,
        key: str,
        cluster: str | None,
        account: str | None,
        region: str | None,
    ) -> None:
        self.values = values
        self.stats = stats
        self.bucket = bucket
        self.key = key
        self.cluster = cluster
        self.account = account
        self.region = region
        self.index = 0
        self.value_count = 0

    def events(self) -> Iterator[Event]:
        values = self.values
        envelopes: bool | None = None
        while True:
            char = values.peek()
            if char is None:
                break
            if char != ord("{"):
                valid_start = char in b'["-0123456789tfn'
                reason: CorruptReason = "bad_record" if valid_start else "bad_json"
                raise CorruptObjectError(
                    reason,
                    "expected a JSON object",
                    byte_offset=values.offset,
                    record_index=self.index,
                )
            if 1 <= self.value_count <= 8:
                values.learn_separator()
            what = f"value {self.value_count}"
            if envelopes is None:
                offset, (probe, data) = values.next_value(_probe, index=self.index, what=what)
                envelopes = probe.message_type is not None
                self.stats.raw_events = not envelopes
                if not envelopes and not (probe.audit_id or probe.kind == "Event"):
                    raise CorruptObjectError(
                        "unexpected_shape",
                        "neither a CloudWatch Logs payload nor an audit Event",
                        byte_offset=offset,
                        record_index=self.index,
                    )
                decoder = _ENVELOPE_DECODER if envelopes else K8S_DECODER
                value: _Envelope | K8sAuditEvent = self._decode_again(decoder, data, offset)
            elif envelopes:
                # An envelope keeps no reference to its bytes: decode them in place.
                offset, value = values.next_value(
                    _ENVELOPE_DECODER.decode, index=self.index, what=what, borrow=True
                )
            else:
                offset, value = values.next_value(K8S_DECODER.decode, index=self.index, what=what)
            self.value_count += 1
            if isinstance(value, _Envelope):
                yield from self._envelope(value, offset)
            else:
                yield self._event(value, offset, self.cluster, self.account)
        if self.value_count == 0:
            raise CorruptObjectError("empty", "the content is only whitespace", byte_offset=0)

    def _decode_again(
        self,
        decoder: msgspec.json.Decoder[_Envelope] | msgspec.json.Decoder[K8sAuditEvent],
        data: Buffer,
        offset: int,
    ) -> _Envelope | K8sAuditEvent:
        try:
            return decoder.decode(data)
        except DECODE_ERRORS as exc:
            raise CorruptObjectError(
                "bad_record", f"value 0: {exc}", byte_offset=offset, record_index=self.index
            ) from None

    def _envelope(self, envelope: _Envelope, offset: int) -> Iterator[Event]:
        stats = self.stats
        stats.envelopes += 1
        if envelope.message_type == "CONTROL_MESSAGE":
            stats.control_messages += 1
            return
        if envelope.message_type != "DATA_MESSAGE":
            raise CorruptObjectError(
                "bad_record",
                f"unknown messageType {envelope.message_type[:40]!r}",
                byte_offset=offset,
                record_index=self.index,
            )
        stream = envelope.log_stream or ""
        if not stream.startswith(AUDIT_STREAM_PREFIX):
            stats.non_audit_envelopes += 1
            stats.non_audit_log_events += len(envelope.log_events)
            family = stream_family(stream)
            stats.non_audit_streams[family] = stats.non_audit_streams.get(family, 0) + 1
            return
        cluster = self.cluster or _cluster_from_group(envelope.log_group)
        account = self.account or envelope.owner
        decode = K8S_DECODER.decode
        for log_event in envelope.log_events:
            message = log_event.message
            if message is None:
                raise self._bad("bad_record", "a log event has no message", offset)
            try:
                event = decode(message)
            except DECODE_ERRORS as exc:
                invalid = isinstance(exc, msgspec.ValidationError)
                raise self._bad(
                    "bad_record" if invalid else "bad_json", f"audit event message: {exc}", offset
                ) from None
            yield self._event(event, offset, cluster, account)

    def _bad(self, reason: CorruptReason, detail: str, offset: int) -> CorruptObjectError:
        return CorruptObjectError(reason, detail, byte_offset=offset, record_index=self.index)

    def _event(
        self, event: K8sAuditEvent, offset: int, cluster: str | None, account: str | None
    ) -> Event:
        if not is_audit_event(event):
            raise self._bad("bad_record", "not an audit Event (no auditID, verb or kind)", offset)
        index = self.index
        try:
            normalized = k8s_event(
                event, cluster, account, self.region, self.bucket, self.key, index
            )
        except InvalidRecordError as exc:
            raise self._bad("bad_record", str(exc), offset) from None
        self.index = self.stats.events = index + 1
        return normalized


def parse_eks(
    stream: Readable,
    *,
    bucket: str,
    key: str,
    cluster: str | None = None,
    account: str | None = None,
    region: str | None = None,
    stats: ParseStats | None = None,
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES,
    hash_content: bool = False,
) -> Iterator[Event]:
    """Normalized audit events of one Firehose object.

    ``cluster`` and ``account`` default to what each payload says (its log group and
    owner); pass them when the object's key already tells. Nothing needs the SHA-256 of
    an EKS object, so it is computed only with ``hash_content``.
    """
    stats = stats if stats is not None else ParseStats()
    reader = ContentReader(stream, hash_content=hash_content)
    values = ValueStream(reader, max_value_bytes=max_value_bytes)
    values.use_member_ends = True
    parser = _Parser(
        values, stats, bucket=bucket, key=key, cluster=cluster, account=account, region=region
    )
    try:
        yield from parser.events()
        stats.complete = True
    finally:
        stats.take_counts(reader)
