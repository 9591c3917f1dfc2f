"""What a rule detector is: a declaration, the events it looks at, and a pure check."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from harvester.detect.features import STRONG_ATTEMPTS, attempt_of, display_principal
from harvester.detect.model import DetectorSpec, Hit, Severity, SourceKind
from harvester.events import Event, payload

__all__ = [
    "Call",
    "Rule",
    "RuleCatalog",
    "RuleConfig",
    "Subject",
    "as_attempt",
    "attempt_severity",
    "base_name",
    "make_rule",
    "spec",
]


@dataclass(frozen=True, slots=True)
class RuleConfig:
    """Facts about the estate that rules need to tell inside from outside.

    ``known_accounts``: accounts of the organization (sharing with them is not exfiltration).
    ``trail_buckets``: buckets that receive CloudTrail logs (from the inventory).
    """

    known_accounts: frozenset[str] = frozenset()
    trail_buckets: frozenset[str] = frozenset()
    short_lifecycle_days: int = 7
    admin_ports: frozenset[int] = frozenset((22, 3389))


class Subject:
    """One event seen by rules, with its JSON payloads decoded at most once."""

    __slots__ = ("_additional", "_request", "_request_object", "_response", "event")

    def __init__(self, event: Event) -> None:
        self.event = event
        self._request: Any = _UNSET
        self._response: Any = _UNSET
        self._additional: Any = _UNSET
        self._request_object: Any = _UNSET

    @property
    def params(self) -> dict[str, Any]:
        if self._request is _UNSET:
            self._request = _as_dict(payload(self.event, "request_parameters"))
        result: dict[str, Any] = self._request
        return result

    @property
    def response(self) -> dict[str, Any]:
        if self._response is _UNSET:
            self._response = _as_dict(payload(self.event, "response_elements"))
        result: dict[str, Any] = self._response
        return result

    @property
    def additional(self) -> dict[str, Any]:
        if self._additional is _UNSET:
            self._additional = _as_dict(payload(self.event, "additional_event_data"))
        result: dict[str, Any] = self._additional
        return result

    @property
    def obj(self) -> dict[str, Any]:
        """The Kubernetes request object (what was submitted)."""
        if self._request_object is _UNSET:
            self._request_object = _as_dict(payload(self.event, "request_object"))
        result: dict[str, Any] = self._request_object
        return result

    # Words used in summaries.

    @property
    def who(self) -> str:
        return display_principal(self.event) or "an unknown principal"

    @property
    def where(self) -> str:
        ip = self.event.source_ip
        return f" from {ip}" if ip else ""

    def called(self, detail: str = "") -> str:
        a = self.event.action
        text = f"{self.who} called {a.service}:{base_name(a.name)}"
        if detail:
            text += f" {detail}"
        return text + self.where


_UNSET: Any = object()


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


_VERSION_SUFFIX = re.compile(r"[0-9]{8}(v[0-9]+)?$")


@functools.lru_cache(maxsize=4096)
def base_name(name: str) -> str:
    """``AddPermission20150331v2`` → ``AddPermission`` (Lambda versions its API names)."""
    return _VERSION_SUFFIX.sub("", name)


Check = Callable[[Subject, RuleConfig], Hit | None]


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule detector: ``check`` runs on events of ``spec.sources`` that pass the filters.

    ``names`` (CloudTrail event names, version suffix removed) or ``resources`` (Kubernetes
    resources) index the rule so the engine only calls it on candidate events; None means
    every event of its source. Failed requests are skipped unless ``failures`` is set.
    """

    spec: DetectorSpec
    check: Check
    names: frozenset[str] | None = None
    resources: frozenset[str] | None = None
    failures: bool = False
    successes: bool = True
    tags: tuple[str, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Call:
    """One API call a table rule reports; ``when`` returns a detail, or None to pass."""

    services: tuple[str, ...]
    name: str
    detail: str = ""
    severity: Severity | None = None
    when: Callable[[Subject], str | None] | None = None
    routine: bool = False


def attempt_severity(severity: Severity, *, strong: bool = True) -> Severity:
    """An attempt weighs less than the deed: two steps down, never below low (low: info).

    A weak attempt (the target did not exist, the request was rejected for its content) is
    low whatever the deed: it shows intent less than a refusal or a dry run does.
    """
    if severity.rank <= Severity.low.rank:
        return Severity.info
    if not strong:
        return Severity.low
    return max(severity.raised(-2), Severity.low, key=lambda s: s.rank)


def as_attempt(hit: Hit, detector: DetectorSpec, event: Event, kind: str) -> Hit:
    """The hit a failed call makes: the same finding, lower, said to be an attempt.

    The discriminator is kept, so an attempt and the success that follows it are one anomaly
    (at the success's severity); the routine key is not, so refusals never teach the engine
    that the deed itself is routine.
    """
    code = event.outcome.error_code or "an error"
    hit.summary = f"{hit.summary}; the call failed with {code} ({kind}): an attempt"
    hit.severity = attempt_severity(
        hit.severity or detector.severity, strong=kind in STRONG_ATTEMPTS
    )
    hit.score = None
    hit.title = f"Attempt: {hit.title or detector.title}"
    if hit.routine_key is not None:
        hit.routine_key = f"attempt:{hit.routine_key}"
    return hit


def _with_attempts(detector: DetectorSpec, check: Check) -> Check:
    """``check`` on successes, and on failures that were attempts (see ``attempt_of``)."""

    def run(s: Subject, cfg: RuleConfig) -> Hit | None:
        if s.event.outcome.success:
            return check(s, cfg)
        kind = attempt_of(s.event)
        if kind is None:
            return None
        hit = check(s, cfg)
        return None if hit is None else as_attempt(hit, detector, s.event, kind)

    return run


def make_rule(
    detector: DetectorSpec,
    check: Check,
    *,
    names: Iterable[str] | None = None,
    resources: Iterable[str] | None = None,
    failures: bool = False,
    successes: bool = True,
    attempts: bool = False,
) -> Rule:
    """A rule; with ``attempts``, failed calls that were attempts are checked too and reported
    lower (for rules that do not look at failures themselves)."""
    if attempts and not failures and successes:
        check, failures = _with_attempts(detector, check), True
    return Rule(
        detector,
        check,
        names=frozenset(names) if names is not None else None,
        resources=frozenset(resources) if resources is not None else None,
        failures=failures,
        successes=successes,
    )


def spec(
    id: str,
    *,
    title: str,
    severity: Severity,
    tactics: Iterable[str],
    techniques: Iterable[str],
    description: str,
    source: SourceKind,
    version: int = 1,
    dedup_window: timedelta = timedelta(hours=24),
    parameters: Mapping[str, object] | None = None,
) -> DetectorSpec:
    return DetectorSpec(
        id=id,
        version=version,
        title=title,
        description=description,
        severity=severity,
        tactics=tuple(tactics),
        techniques=tuple(techniques),
        sources=frozenset((source,)),
        kind="rule",
        parameters=dict(parameters or {}),
        dedup_window=dedup_window,
    )


class RuleCatalog:
    """One source's rules: ``spec`` declares a detector, ``rule`` registers its check.

    The CloudTrail and Kubernetes rule modules each make one, so declaring and registering
    works the same way for both. CloudTrail rules indexed by event name report attempts (a
    high-risk call that failed, see ``attempt_of``) unless they ask for failures themselves
    or opt out with ``attempts=False``.
    """

    def __init__(self, source: SourceKind) -> None:
        self.source: SourceKind = source
        self.rules: list[Rule] = []

    def spec(
        self,
        id: str,
        *,
        title: str,
        severity: Severity,
        tactics: Iterable[str],
        techniques: Iterable[str],
        description: str,
        **parameters: object,
    ) -> DetectorSpec:
        return spec(
            id,
            title=title,
            severity=severity,
            tactics=tactics,
            techniques=techniques,
            description=description,
            source=self.source,
            parameters=parameters,
        )

    def rule(
        self,
        detector: DetectorSpec,
        *,
        names: Iterable[str] | None = None,
        resources: Iterable[str] | None = None,
        failures: bool = False,
        successes: bool = True,
        attempts: bool = True,
    ) -> Callable[[Check], Check]:
        def register(check: Check) -> Check:
            self.add(
                detector,
                check,
                names=names,
                resources=resources,
                failures=failures,
                successes=successes,
                attempts=attempts,
            )
            return check

        return register

    def add(
        self,
        detector: DetectorSpec,
        check: Check,
        *,
        names: Iterable[str] | None = None,
        resources: Iterable[str] | None = None,
        failures: bool = False,
        successes: bool = True,
        attempts: bool = True,
    ) -> Rule:
        made = make_rule(
            detector,
            check,
            names=names,
            resources=resources,
            failures=failures,
            successes=successes,
            attempts=attempts and self.source == "cloudtrail" and names is not None,
        )
        self.rules.append(made)
        return made

    def table(self, detector: DetectorSpec, calls: Iterable[Call]) -> Rule:
        """Register a rule from a table of calls: "declare, then run" at its plainest."""
        index: dict[tuple[str, str], Call] = {}
        for call in calls:
            for service in call.services:
                index[(service, call.name)] = call

        def check(s: Subject, cfg: RuleConfig) -> Hit | None:
            action = s.event.action
            name = base_name(action.name)
            call = index.get((action.service, name))
            if call is None:
                return None
            detail = call.detail
            if call.when is not None:
                found = call.when(s)
                if found is None:
                    return None
                detail = found
            return Hit(
                summary=s.called(detail.strip()),
                severity=call.severity,
                routine_key=f"{action.service}:{name}" if call.routine else None,
            )

        return self.add(detector, check, names=[name for _, name in index])
