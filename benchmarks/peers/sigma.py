"""SigmaHQ's CloudTrail and Kubernetes audit rules, evaluated on raw records.

pySigma parses each rule (condition, modifiers, value types); no maintained backend evaluates
Sigma on nested JSON, so ``compile_condition`` turns pySigma's condition tree into a predicate
over one record, with the matching semantics Sigma backends give these fields:

- strings compare case-insensitively, ``*`` and ``?`` as wildcards (``contains``, ``startswith``,
  ``endswith`` are wildcards pySigma already placed); ``cased`` strings compare exactly;
- ``re`` searches the text; ``cidr`` tests the address; ``exists`` tests presence;
  a null value matches a missing or null field; ``fieldref`` compares with another field;
- a dotted field name walks nested objects (``requestParameters.x``); a list matches when one
  element does; an object or a list element that is an object is matched as its JSON text.

Rules are evaluated as written: some name fields raw audit records never carry and cannot fire.
Severity is the rule's ``level``.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaString,
    SpecialChars,
)

from benchmarks.peers.cases import REPO, Case, Kind
from benchmarks.peers.scoring import PeerAlert

RULES = REPO.parent / "shared" / "peers" / "sigma" / "rules"
FOLDERS = ("cloud/aws", "application/kubernetes")

Record = dict[str, Any]
Predicate = Callable[[Record], bool]

_LEVELS = {"informational": "info"}
_MISSING = object()


class UnsupportedRule(ValueError):
    """A rule uses a construct this evaluator does not implement."""


@dataclass(frozen=True, slots=True)
class SigmaPeerRule:
    id: str
    title: str
    severity: str  # info, low, medium, high, critical
    kind: Kind
    matches: Predicate
    path: Path


# --- field access -------------------------------------------------------------------------------


def field_values(record: Record, name: str) -> list[Any]:
    """The values a (dotted) field name reaches in a record; empty when it reaches nothing."""
    if name in record:
        return _flatten(record[name])
    found: list[Any] = []
    _walk(record, name.split("."), found)
    return found


def _walk(node: Any, parts: list[str], out: list[Any]) -> None:
    if not parts:
        out.extend(_flatten(node))
        return
    if isinstance(node, list):
        for item in node:
            _walk(item, parts, out)
        return
    if not isinstance(node, dict):
        return
    # A key may itself hold dots (e.g. Kubernetes annotations): try the longest key first.
    for cut in range(len(parts), 0, -1):
        key = ".".join(parts[:cut])
        if key in node:
            _walk(node[key], parts[cut:], out)
            return


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [v for item in value for v in _flatten_item(item)]
    return _flatten_item(value)


def _flatten_item(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, dict | list):
        return [orjson.dumps(value).decode()]
    return [value]


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- values -------------------------------------------------------------------------------------


def _wildcard_regex(value: SigmaString, *, cased: bool) -> re.Pattern[str]:
    pattern = ""
    for part in value.s:
        if part is SpecialChars.WILDCARD_MULTI:
            pattern += ".*"
        elif part is SpecialChars.WILDCARD_SINGLE:
            pattern += "."
        elif isinstance(part, str):
            pattern += re.escape(part)
        else:
            raise UnsupportedRule(f"placeholder {part!r} in a string value")
    return re.compile(pattern, re.DOTALL if cased else re.DOTALL | re.IGNORECASE)


def _value_test(value: Any) -> Callable[[Any], bool]:
    """A test of one field value against one Sigma value."""
    if isinstance(value, SigmaString):
        regex = _wildcard_regex(value, cased=isinstance(value, SigmaCasedString))
        return lambda v: regex.fullmatch(_text(v)) is not None
    if isinstance(value, SigmaRegularExpression):
        flags = re.DOTALL
        if any(f.name == "IGNORECASE" for f in value.flags):
            flags |= re.IGNORECASE
        compiled = re.compile(str(value.regexp), flags)
        return lambda v: compiled.search(_text(v)) is not None
    if isinstance(value, SigmaBool):
        return lambda v: _text(v).lower() == _text(value.boolean)
    if isinstance(value, SigmaNumber):
        return lambda v: _text(v) == _text(value.number)
    if isinstance(value, SigmaCIDRExpression):
        network = value.network

        def in_network(v: Any) -> bool:
            try:
                return ipaddress.ip_address(_text(v)) in network
            except ValueError:
                return False

        return in_network
    if isinstance(value, SigmaCompareExpression):
        compare = {
            CompareOperators.LT: operator.lt,
            CompareOperators.LTE: operator.le,
            CompareOperators.GT: operator.gt,
            CompareOperators.GTE: operator.ge,
        }[value.op]
        number = value.number.number

        def compared(v: Any) -> bool:
            try:
                return bool(compare(float(v), number))
            except (TypeError, ValueError):
                return False

        return compared
    raise UnsupportedRule(f"value type {type(value).__name__}")


def _field_predicate(node: ConditionFieldEqualsValueExpression) -> Predicate:
    name, value = node.field, node.value
    if isinstance(value, SigmaNull):
        return lambda r: not field_values(r, name)
    if isinstance(value, SigmaExists):
        wanted = value.exists
        return lambda r: bool(field_values(r, name)) is wanted
    if isinstance(value, SigmaFieldReference):
        other = value.field

        def same_as_field(r: Record) -> bool:
            mine = {_text(v).lower() for v in field_values(r, name)}
            return any(_text(v).lower() in mine for v in field_values(r, other))

        return same_as_field
    test = _value_test(value)
    return lambda r: any(test(v) for v in field_values(r, name))


def _keyword_predicate(node: ConditionValueExpression) -> Predicate:
    test = _value_test(node.value)
    return lambda r: any(test(v) for v in _all_scalars(r))


def _all_scalars(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for value in node.values():
            yield from _all_scalars(value)
    elif isinstance(node, list):
        for value in node:
            yield from _all_scalars(value)
    elif node is not None:
        yield node


def compile_condition(node: Any) -> Predicate:
    """A predicate over one record from a pySigma condition tree."""
    if isinstance(node, ConditionAND):
        parts = [compile_condition(a) for a in node.args]
        return lambda r: all(p(r) for p in parts)
    if isinstance(node, ConditionOR):
        parts = [compile_condition(a) for a in node.args]
        return lambda r: any(p(r) for p in parts)
    if isinstance(node, ConditionNOT):
        inner = compile_condition(node.args[0])
        return lambda r: not inner(r)
    if isinstance(node, ConditionFieldEqualsValueExpression):
        return _field_predicate(node)
    if isinstance(node, ConditionValueExpression):
        return _keyword_predicate(node)
    raise UnsupportedRule(f"condition node {type(node).__name__}")


# --- rules --------------------------------------------------------------------------------------


def _kind(rule: SigmaRule) -> Kind | None:
    product = rule.logsource.product
    if product == "aws" and rule.logsource.service == "cloudtrail":
        return "cloudtrail"
    if product == "kubernetes" and rule.logsource.service == "audit":
        return "k8s"
    return None


def parse_rule(text: str, path: Path = Path("<text>")) -> SigmaPeerRule:
    """One Sigma rule (YAML text) as a predicate; UnsupportedRule when it cannot be evaluated."""
    rule = SigmaRule.from_yaml(text)
    kind = _kind(rule)
    if kind is None:
        raise UnsupportedRule(f"{path}: log source {rule.logsource} is not CloudTrail or k8s audit")
    conditions = [compile_condition(c.parsed) for c in rule.detection.parsed_condition]
    level = rule.level.name.lower() if rule.level else "medium"
    return SigmaPeerRule(
        id=str(rule.id or path.stem),
        title=rule.title,
        severity=_LEVELS.get(level, level),
        kind=kind,
        matches=lambda r: any(c(r) for c in conditions),
        path=path,
    )


def load_rules(root: Path = RULES) -> tuple[list[SigmaPeerRule], list[str]]:
    """Every CloudTrail and Kubernetes audit rule under ``root``, and those that could not load."""
    if not root.is_dir():
        raise FileNotFoundError(
            f"Sigma rules not found at {root}; the peers snapshot lives in <repo>/../shared/peers"
        )
    rules: list[SigmaPeerRule] = []
    failed: list[str] = []
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*.yml")):
            try:
                rules.append(parse_rule(path.read_text(encoding="utf-8"), path))
            except (UnsupportedRule, ValueError) as exc:
                failed.append(f"{path.name}: {exc}")
    return rules, failed


def evaluate(rules: list[SigmaPeerRule], record: Record, kind: Kind) -> list[SigmaPeerRule]:
    """The rules for this record's log type that match it."""
    return [rule for rule in rules if rule.kind == kind and rule.matches(record)]


def alerts(cases: Sequence[Case], rules: list[SigmaPeerRule] | None = None) -> list[PeerAlert]:
    """One alert per rule and matching record, as a Sigma deployment raises them."""
    rules = rules if rules is not None else load_rules()[0]
    return [
        PeerAlert(rule.title, rule.severity, (index,))
        for index, case in enumerate(cases)
        for rule in evaluate(rules, case.record, case.kind)
    ]
