"""Identity rules: new ways in that do not look like users or roles.

IAM Roles Anywhere trusts a certificate authority to mint role sessions for whoever holds a
certificate it signed; GetFederationToken turns a user's long-lived key into sessions that
outlive the key being deactivated and carry any name the caller likes.
"""

from __future__ import annotations

from harvester.detect.features import allows_everything
from harvester.detect.model import Hit, Severity
from harvester.detect.rules.base import Rule, RuleCatalog, RuleConfig, Subject, base_name
from harvester.detect.rules.params import dig, items, pick

__all__ = ["RULES"]

_CATALOG = RuleCatalog("cloudtrail")
RULES: list[Rule] = _CATALOG.rules
_spec = _CATALOG.spec
rule = _CATALOG.rule


ROLES_ANYWHERE = _spec(
    "aws.roles-anywhere-changed",
    title="IAM Roles Anywhere trust changed",
    severity=Severity.medium,
    tactics=["TA0003", "TA0004"],
    techniques=["T1098.003", "T1484.002"],
    description=(
        "A Roles Anywhere trust anchor (a certificate authority AWS will trust) or profile (the "
        "roles its certificates may assume) was created, changed or enabled. An anchor on a "
        "certificate bundle the caller brought is a way back in that survives every key being "
        "rotated."
    ),
)

_ANCHOR_CALLS = ("CreateTrustAnchor", "UpdateTrustAnchor", "EnableTrustAnchor")
_PROFILE_CALLS = ("CreateProfile", "UpdateProfile", "EnableProfile")
_OTHER_CALLS = ("ImportCrl", "DisableCrl", "DeleteCrl", "PutAttributeMapping")


@rule(ROLES_ANYWHERE, names=[*_ANCHOR_CALLS, *_PROFILE_CALLS, *_OTHER_CALLS])
def _roles_anywhere(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "rolesanywhere":
        return None
    name = base_name(s.event.action.name)
    p = s.params
    label = pick(p, "name", "trustAnchorId", "profileId", "crlId") or "?"
    if name in _ANCHOR_CALLS:
        source_type = str(dig(p, "source", "sourceType") or "").upper()
        if source_type == "CERTIFICATE_BUNDLE":
            return Hit(
                summary=s.called(f"trusting a certificate bundle it supplied ({label})"),
                severity=Severity.high,
                discriminator=str(label),
            )
        return Hit(summary=s.called(f"for trust anchor {label}"), discriminator=str(label))
    if name in _PROFILE_CALLS:
        roles = [str(r).rsplit("/", 1)[-1] for r in items(pick(p, "roleArns"))]
        detail = f"for profile {label}" + (f" giving roles {roles}" if roles else "")
        return Hit(summary=s.called(detail), discriminator=str(label))
    return Hit(summary=s.called(f"on {label}"), severity=Severity.low, routine_key=name)


FEDERATION_TOKEN = _spec(
    "aws.federation-token",
    title="Federation token minted",
    severity=Severity.medium,
    tactics=["TA0003", "TA0005"],
    techniques=["T1550.001", "T1098"],
    description=(
        "GetFederationToken made temporary credentials for a name the caller chose. From an IAM "
        "user's long-lived key it is a known way to keep access: the sessions survive the key "
        "being deactivated. Root or a session policy allowing everything makes it worse."
    ),
)


@rule(FEDERATION_TOKEN, names=["GetFederationToken"])
def _federation_token(s: Subject, cfg: RuleConfig) -> Hit | None:
    if s.event.action.service != "sts":
        return None
    p = s.params
    principal = s.event.principal
    federated = pick(p, "name") or "?"
    hours = None
    try:
        hours = int(pick(p, "durationSeconds") or 0) // 3600
    except (TypeError, ValueError):
        hours = None
    detail = f"for the name {federated}"
    if hours:
        detail += f", valid {hours} h"
    severity: Severity | None = None
    if principal.type == "root" or allows_everything(pick(p, "policy")):
        severity = Severity.high
        detail += " (root or a policy allowing everything)"
    elif principal.type != "iam_user" or not (principal.access_key_id or "").startswith("AKIA"):
        severity = Severity.low
    if items(pick(p, "policyArns")):
        detail += " with managed session policies"
    return Hit(summary=s.called(detail), severity=severity, routine_key="GetFederationToken")
