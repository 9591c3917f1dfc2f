"""The rule catalog: every rule detector, CloudTrail and Kubernetes."""

from __future__ import annotations

from harvester.detect.rules.base import Rule, RuleConfig, Subject, base_name
from harvester.detect.rules.cloudtrail import RULES as CLOUDTRAIL_RULES
from harvester.detect.rules.kubernetes import RULES as K8S_RULES

__all__ = [
    "ALL_RULES",
    "CLOUDTRAIL_RULES",
    "K8S_RULES",
    "Rule",
    "RuleConfig",
    "Subject",
    "base_name",
]

ALL_RULES: tuple[Rule, ...] = (*CLOUDTRAIL_RULES, *K8S_RULES)
