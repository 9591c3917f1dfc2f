"""The rule catalog: every rule detector, CloudTrail and Kubernetes."""

from __future__ import annotations

from harvester.detect.rules.base import Rule, RuleConfig, Subject, base_name
from harvester.detect.rules.cloudtrail import RULES as _GENERAL_RULES
from harvester.detect.rules.compute_exec import RULES as _COMPUTE_RULES
from harvester.detect.rules.identity_federation import RULES as _FEDERATION_RULES
from harvester.detect.rules.kubernetes import RULES as K8S_RULES
from harvester.detect.rules.model_abuse import RULES as _MODEL_RULES

__all__ = [
    "ALL_RULES",
    "CLOUDTRAIL_RULES",
    "K8S_RULES",
    "Rule",
    "RuleConfig",
    "Subject",
    "base_name",
]

# One module per theme; CloudTrail rules of every theme are one list.
CLOUDTRAIL_RULES: tuple[Rule, ...] = (
    *_GENERAL_RULES,
    *_COMPUTE_RULES,
    *_FEDERATION_RULES,
    *_MODEL_RULES,
)
ALL_RULES: tuple[Rule, ...] = (*CLOUDTRAIL_RULES, *K8S_RULES)
