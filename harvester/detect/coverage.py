"""The coverage matrix: which detectors answer which ATT&CK technique and GuardDuty finding.

The rows are facts about the outside world (MITRE ATT&CK's Cloud and Containers matrices, the
GuardDuty finding types whose data source is CloudTrail management events or EKS audit logs);
which detectors cover a technique is read from the catalog (``DetectorSpec.techniques``), so
the matrix cannot drift from the code. ``docs/detections.md`` is rendered from here by
``python -m harvester.detect.coverage`` and a test checks it is current.

A row is either observable (then the catalog must cover it, or the row says what is missing)
or not observable from management events and audit logs, with the reason.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harvester.detect.engine import DEFAULT_CATALOG
from harvester.detect.model import DetectorSpec

DOC = Path(__file__).resolve().parents[2] / "docs" / "detections.md"

# Not observable: said once, used by many rows.
_HOST = "happens inside an instance or container; CloudTrail and the audit log do not see it"
_DATA = (
    "needs data events (S3 object reads, Lambda invokes) or VPC flow logs, not management events"
)
_INTEL = "needs an IP reputation or threat-intelligence feed, which this project does not ship"
_NETWORK = "network traffic; needs VPC flow logs or DNS logs"
_IDP = (
    "happens at the identity provider (Okta, Entra ID); only its "
    "AssumeRoleWithSAML/OIDC result reaches CloudTrail"
)


@dataclass(frozen=True, slots=True)
class Technique:
    id: str
    name: str
    tactic: str
    matrices: str  # "Cloud", "Containers" or "Cloud, Containers"
    unobservable: str = ""  # why these logs cannot see it; empty when they can
    gap: str = ""  # observable but not covered yet: what is missing


# MITRE ATT&CK Enterprise v16, platforms IaaS, Identity Provider, SaaS (where AWS logs it) and
# Containers. Sub-techniques are listed where the parent is too broad to answer.
TECHNIQUES: tuple[Technique, ...] = (
    # Initial access
    Technique(
        "T1078.001", "Valid Accounts: Default Accounts", "Initial Access", "Cloud, Containers"
    ),
    Technique("T1078.004", "Valid Accounts: Cloud Accounts", "Initial Access", "Cloud, Containers"),
    Technique("T1133", "External Remote Services", "Initial Access", "Containers"),
    Technique("T1190", "Exploit Public-Facing Application", "Initial Access", "Cloud, Containers"),
    Technique("T1199", "Trusted Relationship", "Initial Access", "Cloud"),
    Technique("T1566", "Phishing", "Initial Access", "Cloud", unobservable="email; " + _IDP),
    # Execution
    Technique(
        "T1651",
        "Cloud Administration Command",
        "Execution",
        "Cloud",
    ),
    Technique("T1648", "Serverless Execution", "Execution", "Cloud"),
    Technique("T1059.009", "Command and Scripting Interpreter: Cloud API", "Execution", "Cloud"),
    Technique("T1609", "Container Administration Command", "Execution", "Containers"),
    Technique("T1610", "Deploy Container", "Execution", "Containers"),
    Technique(
        "T1053.007",
        "Scheduled Task/Job: Container Orchestration Job",
        "Execution",
        "Containers",
        gap="no detector for CronJobs or Jobs created by people yet",
    ),
    Technique(
        "T1204.003",
        "User Execution: Malicious Image",
        "Execution",
        "Cloud, Containers",
        gap="needs an image reputation list (a known-bad AMI or image digest feed)",
    ),
    # Persistence
    Technique(
        "T1098.001", "Account Manipulation: Additional Cloud Credentials", "Persistence", "Cloud"
    ),
    Technique("T1098.003", "Account Manipulation: Additional Cloud Roles", "Persistence", "Cloud"),
    Technique(
        "T1098.004",
        "Account Manipulation: SSH Authorized Keys",
        "Persistence",
        "Cloud",
        gap=(
            "EC2 Instance Connect pushes are covered as command "
            "execution; keys written on the host are not visible"
        ),
    ),
    Technique(
        "T1098.006",
        "Account Manipulation: Additional Container Cluster Roles",
        "Persistence",
        "Containers",
    ),
    Technique("T1136.003", "Create Account: Cloud Account", "Persistence", "Cloud"),
    Technique("T1525", "Implant Internal Image", "Persistence", "Cloud, Containers"),
    Technique("T1546", "Event Triggered Execution", "Persistence", "Cloud"),
    Technique(
        "T1543.005",
        "Create or Modify System Process: Container Service",
        "Persistence",
        "Containers",
    ),
    Technique("T1556", "Modify Authentication Process", "Persistence", "Cloud"),
    # Privilege escalation
    Technique(
        "T1484.002",
        "Domain or Tenant Policy Modification: Trust Modification",
        "Privilege Escalation",
        "Cloud",
    ),
    Technique(
        "T1548.005",
        "Abuse Elevation Control Mechanism: Temporary Elevated Cloud Access",
        "Privilege Escalation",
        "Cloud",
        gap="no detector for temporary elevation (federation tokens, role chaining) yet",
    ),
    Technique("T1611", "Escape to Host", "Privilege Escalation", "Containers"),
    Technique(
        "T1068",
        "Exploitation for Privilege Escalation",
        "Privilege Escalation",
        "Containers",
        unobservable=_HOST,
    ),
    # Defense evasion
    Technique(
        "T1562.001",
        "Impair Defenses: Disable or Modify Tools",
        "Defense Evasion",
        "Cloud, Containers",
    ),
    Technique(
        "T1562.007", "Impair Defenses: Disable or Modify Cloud Firewall", "Defense Evasion", "Cloud"
    ),
    Technique(
        "T1562.008", "Impair Defenses: Disable or Modify Cloud Logs", "Defense Evasion", "Cloud"
    ),
    Technique("T1535", "Unused/Unsupported Cloud Regions", "Defense Evasion", "Cloud"),
    Technique(
        "T1550.001",
        "Use Alternate Authentication Material: Application Access Token",
        "Defense Evasion",
        "Cloud, Containers",
    ),
    Technique(
        "T1578.001",
        "Modify Cloud Compute Infrastructure: Create Snapshot",
        "Defense Evasion",
        "Cloud",
        gap="snapshots shared out are covered (T1537); snapshot creation alone has no detector yet",
    ),
    Technique(
        "T1578.002",
        "Modify Cloud Compute Infrastructure: Create Cloud Instance",
        "Defense Evasion",
        "Cloud",
        gap="no detector for unusual instance launches yet",
    ),
    Technique(
        "T1578.003",
        "Modify Cloud Compute Infrastructure: Delete Cloud Instance",
        "Defense Evasion",
        "Cloud",
        gap="no detector for instance termination yet (destructive bursts are T1485)",
    ),
    Technique(
        "T1578.004",
        "Modify Cloud Compute Infrastructure: Revert Cloud Instance",
        "Defense Evasion",
        "Cloud",
        gap="no detector for restoring instances or databases from snapshots yet",
    ),
    Technique(
        "T1578.005",
        "Modify Cloud Compute Infrastructure: Modify Cloud Compute Configurations",
        "Defense Evasion",
        "Cloud",
    ),
    Technique("T1666", "Modify Cloud Resource Hierarchy", "Defense Evasion", "Cloud"),
    Technique("T1070", "Indicator Removal", "Defense Evasion", "Cloud, Containers"),
    Technique(
        "T1036.005",
        "Masquerading: Match Legitimate Name or Location",
        "Defense Evasion",
        "Containers",
    ),
    Technique("T1612", "Build Image on Host", "Defense Evasion", "Containers", unobservable=_HOST),
    # Credential access
    Technique("T1110", "Brute Force", "Credential Access", "Cloud, Containers"),
    Technique("T1528", "Steal Application Access Token", "Credential Access", "Cloud, Containers"),
    Technique(
        "T1552.001",
        "Unsecured Credentials: Credentials In Files",
        "Credential Access",
        "Cloud, Containers",
    ),
    Technique(
        "T1552.005",
        "Unsecured Credentials: Cloud Instance Metadata API",
        "Credential Access",
        "Cloud",
    ),
    Technique(
        "T1552.007", "Unsecured Credentials: Container API", "Credential Access", "Containers"
    ),
    Technique(
        "T1555.006",
        "Credentials from Password Stores: Cloud Secrets Management Stores",
        "Credential Access",
        "Cloud",
    ),
    Technique(
        "T1606.002",
        "Forge Web Credentials: SAML Tokens",
        "Credential Access",
        "Cloud",
        unobservable=_IDP,
    ),
    Technique(
        "T1621", "Multi-Factor Authentication Request Generation", "Credential Access", "Cloud"
    ),
    Technique(
        "T1649",
        "Steal or Forge Authentication Certificates",
        "Credential Access",
        "Cloud, Containers",
    ),
    Technique("T1040", "Network Sniffing", "Credential Access", "Cloud"),
    # Discovery
    Technique("T1580", "Cloud Infrastructure Discovery", "Discovery", "Cloud"),
    Technique("T1526", "Cloud Service Discovery", "Discovery", "Cloud"),
    Technique(
        "T1538",
        "Cloud Service Dashboard",
        "Discovery",
        "Cloud",
        unobservable=(
            "console page views are not API calls; the console's own reads "
            "are indistinguishable from a person's work"
        ),
    ),
    Technique(
        "T1087.004",
        "Account Discovery: Cloud Account",
        "Discovery",
        "Cloud",
        gap=(
            "covered only as part of a denied-call burst or a new tool; "
            "successful IAM listing alone is routine"
        ),
    ),
    Technique(
        "T1069.003",
        "Permission Groups Discovery: Cloud Groups",
        "Discovery",
        "Cloud",
        gap=(
            "covered only as part of a denied-call burst; successful group listing alone is routine"
        ),
    ),
    Technique("T1613", "Container and Resource Discovery", "Discovery", "Containers"),
    Technique("T1619", "Cloud Storage Object Discovery", "Discovery", "Cloud", unobservable=_DATA),
    Technique(
        "T1046",
        "Network Service Discovery",
        "Discovery",
        "Cloud, Containers",
        unobservable=_NETWORK,
    ),
    Technique(
        "T1201",
        "Password Policy Discovery",
        "Discovery",
        "Cloud",
        gap="GetAccountPasswordPolicy is read by every compliance scanner; no detector",
    ),
    Technique(
        "T1654",
        "Log Enumeration",
        "Discovery",
        "Cloud",
        gap="LookupEvents and trail listing are routine for tooling; no detector",
    ),
    # Lateral movement
    Technique("T1021.007", "Remote Services: Cloud Services", "Lateral Movement", "Cloud"),
    Technique(
        "T1021.008",
        "Remote Services: Direct Cloud VM Connections",
        "Lateral Movement",
        "Cloud",
        gap="EC2 Instance Connect and the serial console: no detector yet",
    ),
    # Collection
    Technique("T1530", "Data from Cloud Storage", "Collection", "Cloud"),
    Technique("T1005", "Data from Local System", "Collection", "Containers"),
    Technique(
        "T1074.002", "Data Staged: Remote Data Staging", "Collection", "Cloud", unobservable=_DATA
    ),
    Technique("T1119", "Automated Collection", "Collection", "Cloud", unobservable=_DATA),
    # Exfiltration
    Technique("T1537", "Transfer Data to Cloud Account", "Exfiltration", "Cloud"),
    Technique(
        "T1567", "Exfiltration Over Web Service", "Exfiltration", "Cloud", unobservable=_NETWORK
    ),
    # Impact
    Technique("T1485", "Data Destruction", "Impact", "Cloud"),
    Technique("T1486", "Data Encrypted for Impact", "Impact", "Cloud"),
    Technique("T1490", "Inhibit System Recovery", "Impact", "Cloud"),
    Technique("T1489", "Service Stop", "Impact", "Cloud"),
    Technique("T1529", "System Shutdown/Reboot", "Impact", "Cloud"),
    Technique(
        "T1496",
        "Resource Hijacking",
        "Impact",
        "Cloud, Containers",
    ),
    Technique(
        "T1531",
        "Account Access Removal",
        "Impact",
        "Cloud",
        gap="no detector for removing other users' passwords, keys or MFA devices yet",
    ),
    Technique(
        "T1491.002", "Defacement: External Defacement", "Impact", "Cloud", unobservable=_DATA
    ),
    Technique("T1498", "Network Denial of Service", "Impact", "Cloud", unobservable=_NETWORK),
    Technique(
        "T1657",
        "Financial Theft",
        "Impact",
        "Cloud",
        gap="billing and payment changes are reported only when the root user makes them",
    ),
)


@dataclass(frozen=True, slots=True)
class FindingType:
    name: str
    source: str  # "CloudTrail" or "EKS audit"
    detectors: tuple[str, ...] = ()
    why_not: str = ""


# GuardDuty finding types whose data source is CloudTrail management events or EKS audit logs
# (https://docs.aws.amazon.com/guardduty/latest/ug/guardduty_finding-types-active.html).
_AB = "behav.new-sensitive-action", "behav.new-network", "behav.new-user-agent"
FINDING_TYPES: tuple[FindingType, ...] = (
    FindingType(
        "CredentialAccess:IAMUser/AnomalousBehavior",
        "CloudTrail",
        ("behav.new-sensitive-action", "behav.secret-read-burst"),
    ),
    FindingType(
        "DefenseEvasion:IAMUser/AnomalousBehavior",
        "CloudTrail",
        ("aws.cloudtrail-logging-impaired", "aws.guardduty-disabled", *_AB),
    ),
    FindingType(
        "Discovery:IAMUser/AnomalousBehavior", "CloudTrail", ("behav.access-denied-burst", *_AB)
    ),
    FindingType(
        "Exfiltration:IAMUser/AnomalousBehavior",
        "CloudTrail",
        ("aws.snapshot-shared", "aws.resource-policy-opened", *_AB),
    ),
    FindingType(
        "Impact:IAMUser/AnomalousBehavior", "CloudTrail", ("aws.database-disruption", *_AB)
    ),
    FindingType(
        "InitialAccess:IAMUser/AnomalousBehavior",
        "CloudTrail",
        ("behav.new-network", "behav.access-key-new-network"),
    ),
    FindingType(
        "Persistence:IAMUser/AnomalousBehavior",
        "CloudTrail",
        ("aws.iam-access-key-for-other-user", "aws.iam-user-created-by-hand", *_AB),
    ),
    FindingType(
        "PrivilegeEscalation:IAMUser/AnomalousBehavior",
        "CloudTrail",
        ("aws.iam-admin-granted", "aws.iam-trust-opened", *_AB),
    ),
    FindingType("PenTest:IAMUser/KaliLinux", "CloudTrail", ("aws.offensive-tool-user-agent",)),
    FindingType("PenTest:IAMUser/ParrotLinux", "CloudTrail", ("aws.offensive-tool-user-agent",)),
    FindingType("PenTest:IAMUser/PentooLinux", "CloudTrail", ("aws.offensive-tool-user-agent",)),
    FindingType("Policy:IAMUser/RootCredentialUsage", "CloudTrail", ("aws.root-activity",)),
    FindingType(
        "Policy:IAMUser/ShortTermRootCredentialUsage", "CloudTrail", ("aws.root-activity",)
    ),
    FindingType(
        "Stealth:IAMUser/CloudTrailLoggingDisabled",
        "CloudTrail",
        ("aws.cloudtrail-logging-impaired",),
    ),
    FindingType(
        "Stealth:IAMUser/PasswordPolicyChange",
        "CloudTrail",
        why_not="no detector for password policy changes yet",
    ),
    FindingType(
        "UnauthorizedAccess:IAMUser/ConsoleLoginSuccess.B",
        "CloudTrail",
        ("behav.new-network", "aws.console-login-without-mfa"),
    ),
    FindingType(
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.InsideAWS",
        "CloudTrail",
        ("behav.instance-credentials-elsewhere",),
    ),
    FindingType(
        "UnauthorizedAccess:IAMUser/InstanceCredentialExfiltration.OutsideAWS",
        "CloudTrail",
        ("behav.instance-credentials-elsewhere", "aws.instance-credentials-on-workstation"),
    ),
    FindingType("UnauthorizedAccess:IAMUser/MaliciousIPCaller", "CloudTrail", why_not=_INTEL),
    FindingType(
        "UnauthorizedAccess:IAMUser/MaliciousIPCaller.Custom", "CloudTrail", why_not=_INTEL
    ),
    FindingType("UnauthorizedAccess:IAMUser/TorIPCaller", "CloudTrail", why_not=_INTEL),
    FindingType("Recon:IAMUser/MaliciousIPCaller", "CloudTrail", why_not=_INTEL),
    FindingType("Recon:IAMUser/MaliciousIPCaller.Custom", "CloudTrail", why_not=_INTEL),
    FindingType("Recon:IAMUser/TorIPCaller", "CloudTrail", why_not=_INTEL),
    FindingType(
        "Policy:S3/AccountBlockPublicAccessDisabled",
        "CloudTrail",
        ("aws.s3-public-access-block-removed",),
    ),
    FindingType(
        "Policy:S3/BucketBlockPublicAccessDisabled",
        "CloudTrail",
        ("aws.s3-public-access-block-removed",),
    ),
    FindingType(
        "Policy:S3/BucketAnonymousAccessGranted",
        "CloudTrail",
        ("aws.resource-policy-opened", "aws.resource-made-public"),
    ),
    FindingType(
        "Policy:S3/BucketPublicAccessGranted",
        "CloudTrail",
        ("aws.resource-policy-opened", "aws.resource-made-public"),
    ),
    FindingType(
        "Stealth:S3/ServerAccessLoggingDisabled", "CloudTrail", ("aws.s3-protection-weakened",)
    ),
    FindingType("Execution:Kubernetes/ExecInKubeSystemPod", "EKS audit", ("k8s.pod-exec",)),
    FindingType(
        "Persistence:Kubernetes/ContainerWithSensitiveMount",
        "EKS audit",
        ("k8s.host-namespace-or-path",),
    ),
    FindingType(
        "PrivilegeEscalation:Kubernetes/PrivilegedContainer",
        "EKS audit",
        ("k8s.privileged-container",),
    ),
    FindingType(
        "Policy:Kubernetes/AdminAccessToDefaultServiceAccount",
        "EKS audit",
        ("k8s.cluster-admin-binding",),
    ),
    FindingType(
        "Policy:Kubernetes/AnonymousAccessGranted",
        "EKS audit",
        ("k8s.cluster-admin-binding", "k8s.anonymous-request"),
    ),
    FindingType("Policy:Kubernetes/ExposedDashboard", "EKS audit", ("k8s.nodeport-service",)),
    FindingType(
        "Policy:Kubernetes/KubeflowDashboardExposed", "EKS audit", ("k8s.nodeport-service",)
    ),
    FindingType(
        "CredentialAccess:Kubernetes/SuccessfulAnonymousAccess",
        "EKS audit",
        ("k8s.anonymous-request",),
    ),
    FindingType(
        "DefenseEvasion:Kubernetes/SuccessfulAnonymousAccess",
        "EKS audit",
        ("k8s.anonymous-request",),
    ),
    FindingType(
        "Discovery:Kubernetes/SuccessfulAnonymousAccess", "EKS audit", ("k8s.anonymous-request",)
    ),
    FindingType(
        "Impact:Kubernetes/SuccessfulAnonymousAccess", "EKS audit", ("k8s.anonymous-request",)
    ),
    FindingType(
        "Persistence:Kubernetes/SuccessfulAnonymousAccess", "EKS audit", ("k8s.anonymous-request",)
    ),
    FindingType(
        "CredentialAccess:Kubernetes/AnomalousBehavior.SecretsAccessed",
        "EKS audit",
        ("behav.new-k8s-action", "k8s.secret-read-by-person"),
    ),
    FindingType(
        "Execution:Kubernetes/AnomalousBehavior.ExecInPod",
        "EKS audit",
        ("behav.new-k8s-action", "k8s.pod-exec"),
    ),
    FindingType(
        "Execution:Kubernetes/AnomalousBehavior.WorkloadDeployed",
        "EKS audit",
        ("behav.new-k8s-action", "k8s.workload-in-system-namespace"),
    ),
    FindingType(
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleBindingCreated",
        "EKS audit",
        ("behav.new-k8s-action", "k8s.cluster-admin-binding"),
    ),
    FindingType(
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.RoleCreated",
        "EKS audit",
        ("k8s.risky-role-created",),
    ),
    FindingType(
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!PrivilegedContainer",
        "EKS audit",
        ("k8s.privileged-container",),
    ),
    FindingType(
        ""
        "PrivilegeEscalation:Kubernetes/AnomalousBehavior.WorkloadDeployed!ContainerWithSensitiveMount",
        "EKS audit",
        ("k8s.host-namespace-or-path",),
    ),
    FindingType(
        "Discovery:Kubernetes/AnomalousBehavior.PermissionChecked",
        "EKS audit",
        why_not="no detector for bursts of SelfSubjectAccessReview / SelfSubjectRulesReview yet",
    ),
    *(
        FindingType(f"{tactic}:Kubernetes/{kind}", "EKS audit", why_not=_INTEL)
        for tactic in ("CredentialAccess", "DefenseEvasion", "Discovery", "Impact", "Persistence")
        for kind in ("MaliciousIPCaller", "MaliciousIPCaller.Custom", "TorIPCaller")
    ),
)


def covering(technique: str, specs: Iterable[DetectorSpec]) -> list[str]:
    """Detector ids that declare the technique or one of its sub-techniques."""
    return sorted(
        spec.id
        for spec in specs
        if any(t == technique or t.startswith(technique + ".") for t in spec.techniques)
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(specs: Sequence[DetectorSpec]) -> str:
    """docs/detections.md, from the catalog and the tables above."""
    known = {s.id for s in specs}
    lines = [
        "# Detections: what the catalog covers",
        "",
        "Generated by `python -m harvester.detect.coverage > docs/detections.md` from the",
        "detector catalog; a test fails when it is not current. A technique is covered by the",
        "detectors that declare it (or one of its sub-techniques).",
        "",
        "## How severity follows habits",
        "",
        "Rule hits that people make as part of their work (exec into a pod, change a function,",
        "read a parameter) are graded by the actor's history with that detector over the last 14",
        "days: a first time keeps the rule's severity; done on a day or two before, low; done on 3",
        'or more of the last 14 days, info ("Habitual: it did this on 9 of the last 14 days"); a',
        "habit done from a network or user agent the actor never used for it, the rule's severity",
        "again. First uses reported by one behavioural detector for one actor, and routine hits,",
        "fold into one anomaly a day whose count and last-seen rise.",
        "",
        "## Failed calls are attempts",
        "",
        "A CloudTrail call a rule watches that failed is reported by the same rule, titled",
        '"Attempt: …" with its error code: refused (AccessDenied, UnauthorizedOperation), a dry',
        "run that would have succeeded, or stopped by a quota (VcpuLimitExceeded) two severity",
        "steps below the deed (a refused StopLogging is medium); aimed at something that does not",
        "exist or rejected for its content, low. Throttling and AWS's own faults are not attempts.",
        "An attempt and the deed that follows it are one anomaly, at the deed's severity. Many",
        "high-risk calls refused on different resources are one `behav.high-risk-denied-burst`.",
        "",
        "## MITRE ATT&CK (Cloud and Containers matrices)",
        "",
        "| tactic | technique | matrices | detectors, or why not |",
        "|---|---|---|---|",
    ]
    covered = observable = 0
    for t in TECHNIQUES:
        found = covering(t.id, specs)
        if t.unobservable:
            answer = f"not observable: {t.unobservable}"
        else:
            observable += 1
            if found:
                covered += 1
                answer = ", ".join(f"`{d}`" for d in found)
                if t.gap:
                    answer += f" (partly: {t.gap})"
            else:
                answer = f"**not covered**: {t.gap or 'no detector yet'}"
        lines.append(f"| {t.tactic} | {t.id} {_cell(t.name)} | {t.matrices} | {_cell(answer)} |")
    lines += [
        "",
        f"{covered} of {observable} observable techniques covered; "
        f"{len(TECHNIQUES) - observable} not observable from these logs.",
        "",
        "## GuardDuty finding types (CloudTrail management events, EKS audit logs)",
        "",
        "| finding type | data source | detectors, or why not |",
        "|---|---|---|",
    ]
    for f in FINDING_TYPES:
        present = [d for d in f.detectors if d in known]
        answer = ", ".join(f"`{d}`" for d in present) if present else f"not covered: {f.why_not}"
        lines.append(f"| {f.name} | {f.source} | {_cell(answer)} |")
    lines += [
        "",
        "## Detectors",
        "",
        "| id | title | severity | sources | ATT&CK |",
        "|---|---|---|---|---|",
    ]
    for spec in sorted(specs, key=lambda s: s.id):
        lines.append(
            f"| `{spec.id}` | {_cell(spec.title)} | {spec.severity.value} | "
            f"{', '.join(sorted(spec.sources))} | {', '.join(spec.techniques)} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    sys.stdout.write(render(DEFAULT_CATALOG.specs()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
