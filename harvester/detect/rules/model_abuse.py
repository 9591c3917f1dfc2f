"""Model rules: generative AI services turned to someone else's use (LLM hijacking).

Stolen credentials are sold for model access: the buyer enables models the account never used
(the model access and agreement calls), turns off invocation logging so prompts are not kept,
then invokes. First invocations per principal are behavioural (``behaviour_more``).
"""

from __future__ import annotations

from harvester.detect.model import Hit, Severity
from harvester.detect.rules.base import Rule, RuleCatalog, RuleConfig, Subject, base_name
from harvester.detect.rules.params import dig, falsy, pick

__all__ = ["RULES"]

_CATALOG = RuleCatalog("cloudtrail")
RULES: list[Rule] = _CATALOG.rules
_spec = _CATALOG.spec
rule = _CATALOG.rule


MODEL_ACCESS = _spec(
    "aws.model-access-changed",
    title="Foundation model access requested or granted",
    severity=Severity.medium,
    tactics=["TA0040", "TA0003"],
    techniques=["T1496"],
    description=(
        "Bedrock model access was requested or an offer accepted (PutFoundationModelEntitlement,"
        " PutUseCaseForModelAccess, CreateFoundationModelAgreement): the first step of running "
        "models on the account's bill, done once by an administrator in normal use."
    ),
)

_ACCESS_CALLS = (
    "PutFoundationModelEntitlement",
    "PutUseCaseForModelAccess",
    "CreateFoundationModelAgreement",
)


@rule(MODEL_ACCESS, names=_ACCESS_CALLS)
def _model_access(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "bedrock":
        return None
    model = pick(s.params, "modelId") or ""
    detail = f"for model {model}" if model else ""
    return Hit(
        summary=s.called(detail),
        routine_key=f"{base_name(s.event.action.name)}:{model}",
    )


LOGGING_DISABLED = _spec(
    "aws.model-invocation-logging-disabled",
    title="Model invocation logging turned off",
    severity=Severity.high,
    tactics=["TA0005"],
    techniques=["T1562.008"],
    description=(
        "Bedrock model invocation logging was deleted, or rewritten to deliver nothing: prompts "
        "and answers stop being kept, which is what someone running models on a stolen account "
        "wants first."
    ),
)

_DELIVERY_FLAGS = (
    "textDataDeliveryEnabled",
    "imageDataDeliveryEnabled",
    "embeddingDataDeliveryEnabled",
    "videoDataDeliveryEnabled",
)


@rule(
    LOGGING_DISABLED,
    names=["DeleteModelInvocationLoggingConfiguration", "PutModelInvocationLoggingConfiguration"],
)
def _logging_disabled(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "bedrock":
        return None
    if base_name(s.event.action.name).startswith("Delete"):
        return Hit(summary=s.called("deleting the account's invocation logging"))
    config = pick(s.params, "loggingConfig")
    if config is None:
        return None
    destinations = [dig(config, "s3Config", "bucketName"), dig(config, "cloudWatchConfig")]
    flags = [pick(config, flag) for flag in _DELIVERY_FLAGS]
    if any(d for d in destinations) and not all(f is None or falsy(f) for f in flags):
        return None
    return Hit(
        summary=s.called("setting invocation logging to deliver nothing"),
        severity=Severity.medium,
    )
