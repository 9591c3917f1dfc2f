"""What the deploy tests share: paths, YAML loading, PromQL metric names, the fleet's constants."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from harvester.fleet import FleetTiming
from harvester.metrics_inventory import exported_sample_names
from harvester.settings import load_settings
from workers.app import queue_names

REPO = Path(__file__).resolve().parents[3]
DEPLOY = REPO / "deploy"

# Names in PromQL: a metric is a word starting with harvester_; recording rules would use
# colons (harvester:...), which this does not match.
_METRIC = re.compile(r"(?<![\w:])harvester_[a-z0-9_]+\b")


def metric_names(expr: str) -> set[str]:
    # Strings are label values or label_replace arguments, not metric names.
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    return set(_METRIC.findall(without_strings))


@cache
def exported() -> frozenset[str]:
    return exported_sample_names()


@cache
def fleet() -> tuple[dict[str, str], FleetTiming]:
    """The queue names and timing of a fleet run with the default settings."""
    settings = load_settings({})
    return queue_names(settings), FleetTiming.from_settings(settings)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def load_yaml_all(path: Path) -> list[Any]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


class CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, !If, ...) as their long forms."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


CfnLoader.add_multi_constructor("!", _tag)


def load_cfn(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=CfnLoader)  # noqa: S506  SafeLoader + short tags
