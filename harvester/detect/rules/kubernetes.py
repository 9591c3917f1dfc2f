"""Kubernetes audit rule detectors (EKS and any other cluster's audit log).

Pods stamped out by kube-system controllers from a workload are judged where the workload
was submitted, and anything an operator re-applies is learned as routine (``routine_key``),
so the rules speak about what people and new workloads do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from harvester.detect.features import (
    PUBLIC_INFO_PATHS,
    as_list,
    is_control_plane_user,
    is_public_ip,
)
from harvester.detect.model import Hit, Severity
from harvester.detect.rules.base import Rule, RuleCatalog, RuleConfig, Subject
from harvester.events import Event

__all__ = ["RULES"]


_SYSTEM_NAMESPACES = frozenset(("kube-system", "kube-public", "kube-node-lease"))
_WRITE_VERBS = frozenset(("create", "update", "patch", "delete", "deletecollection"))
_SUBMIT_VERBS = frozenset(("create", "update", "patch"))


_CATALOG = RuleCatalog("eks")
RULES: list[Rule] = _CATALOG.rules
_spec = _CATALOG.spec
rule = _CATALOG.rule


def _user(event: Event) -> str:
    return event.principal.k8s_username or event.principal.name or ""


def _is_sa(event: Event) -> bool:
    return _user(event).startswith("system:serviceaccount:")


def _control_plane(event: Event) -> bool:
    return is_control_plane_user(_user(event))


_KUBE_SYSTEM_CONTROLLER = re.compile(r"^system:serviceaccount:kube-system:[a-z-]*controller$")


def _controller(event: Event) -> bool:
    """Kubernetes' own controllers (they act on behalf of whoever submitted a workload)."""
    user = _user(event)
    return is_control_plane_user(user) or _KUBE_SYSTEM_CONTROLLER.match(user) is not None


def _system(event: Event) -> bool:
    """The control plane and the cluster's own components running in kube-system."""
    return _control_plane(event) or _user(event).startswith("system:serviceaccount:kube-system:")


def _target(event: Event) -> str:
    a = event.action
    resource = a.resource or "?"
    if a.subresource:
        resource = f"{resource}/{a.subresource}"
    where = f"{a.namespace}/" if a.namespace else ""
    name = a.object_name or ""
    return f"{resource} {where}{name}".rstrip("/ ")


def _did(s: Subject, detail: str = "") -> str:
    e = s.event
    text = f"{s.who} {e.action.verb} {_target(e)}"
    if detail:
        text += f" {detail}"
    return text + s.where


_HASH_SUFFIX = re.compile(r"-[a-z0-9]{5,10}$")


def _strip_hash(name: str) -> str:
    return _HASH_SUFFIX.sub("", name.rstrip("-"))


def _workload_key(s: Subject) -> str | None:
    """The workload a pod belongs to (hash suffixes removed), for learning routine pods."""
    obj = s.obj
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    ns = s.event.action.namespace or meta.get("namespace") or ""
    for owner in as_list(meta.get("ownerReferences")):
        if isinstance(owner, dict) and owner.get("name"):
            return f"{ns}/{owner.get('kind')}/{_strip_hash(str(owner['name']))}"
    resource = s.event.action.resource
    name = s.event.action.object_name or meta.get("name") or meta.get("generateName")
    if resource != "pods" and name:
        return f"{ns}/{resource}/{name}"
    if meta.get("generateName") and _controller(s.event):
        return f"{ns}/pods/{_strip_hash(str(meta['generateName']))}"
    return None


# --- pods and workloads -----------------------------------------------------------------------

_POD_TEMPLATE: dict[str, tuple[str, ...]] = {
    "pods": ("spec",),
    "deployments": ("spec", "template", "spec"),
    "daemonsets": ("spec", "template", "spec"),
    "statefulsets": ("spec", "template", "spec"),
    "replicasets": ("spec", "template", "spec"),
    "replicationcontrollers": ("spec", "template", "spec"),
    "jobs": ("spec", "template", "spec"),
    "cronjobs": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def _pod_spec(s: Subject) -> dict[str, Any] | None:
    path = _POD_TEMPLATE.get(s.event.action.resource or "")
    if path is None:
        return None
    data: Any = s.obj
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data if isinstance(data, dict) else None


def _containers(pod: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("containers", "initContainers", "ephemeralContainers"):
        for container in as_list(pod.get(key)):
            if isinstance(container, dict):
                yield container


def _derived_system_pod(s: Subject) -> bool:
    """A kube-system pod made by a controller: its workload was judged when submitted."""
    e = s.event
    return (
        e.action.resource == "pods"
        and e.action.namespace in _SYSTEM_NAMESPACES
        and (_controller(e) or _user(e).startswith("system:serviceaccount:kube-system:"))
    )


_DANGEROUS_CAPS = frozenset(
    (
        "SYS_ADMIN",
        "NET_ADMIN",
        "SYS_PTRACE",
        "SYS_MODULE",
        "DAC_READ_SEARCH",
        "BPF",
        "ALL",
        "SYS_RAWIO",
        "SYS_BOOT",
        "NET_RAW",
    )
)

PRIVILEGED = _spec(
    "k8s.privileged-container",
    title="Privileged container or dangerous capabilities",
    severity=Severity.high,
    tactics=["TA0004", "TA0002"],
    techniques=["T1610", "T1611"],
    description=(
        "A pod or workload runs a privileged container, adds kernel capabilities such as "
        "SYS_ADMIN, or runs as root by explicit request: the usual first step of escaping to the "
        "node."
    ),
)


@rule(PRIVILEGED, resources=_POD_TEMPLATE)
def _privileged(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb not in _SUBMIT_VERBS or _derived_system_pod(s):
        return None
    pod = _pod_spec(s)
    if pod is None:
        return None
    found: list[str] = []
    severity = Severity.high
    root = False
    pod_context = pod.get("securityContext") if isinstance(pod.get("securityContext"), dict) else {}
    assert isinstance(pod_context, dict)
    for container in _containers(pod):
        context = container.get("securityContext")
        if not isinstance(context, dict):
            context = {}
        name = container.get("name", "?")
        if context.get("privileged") is True:
            found.append(f"container {name} is privileged")
        caps = {str(c).upper() for c in as_list(_get(context, "capabilities", "add"))}
        risky = sorted(caps & _DANGEROUS_CAPS)
        if risky:
            found.append(f"container {name} adds {', '.join(risky)}")
        if context.get("runAsUser") == 0 or context.get("runAsNonRoot") is False:
            root = True
    if pod_context.get("runAsUser") == 0 or pod_context.get("runAsNonRoot") is False:
        root = True
    if not found:
        if not root:
            return None
        found.append("it asks to run as root")
        severity = Severity.medium
    return Hit(
        summary=_did(s, "where " + "; ".join(found)),
        severity=severity,
        routine_key=_workload_key(s),
    )


def _get(data: dict[str, Any], *path: str) -> Any:
    value: Any = data
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


_SENSITIVE_PATHS = (
    "/",
    "/etc",
    "/root",
    "/home",
    "/proc",
    "/sys",
    "/dev",
    "/boot",
    "/var/run/docker.sock",
    "/run/containerd",
    "/var/run/containerd",
    "/var/run/crio",
    "/var/lib/kubelet",
    "/var/lib/docker",
    "/etc/kubernetes",
)


def _sensitive(path: str) -> bool:
    clean = path.rstrip("/") or "/"
    return any(clean == p or (p != "/" and clean.startswith(p + "/")) for p in _SENSITIVE_PATHS)


HOST_ACCESS = _spec(
    "k8s.host-namespace-or-path",
    title="Pod shares the node's namespaces or mounts its filesystem",
    severity=Severity.medium,
    tactics=["TA0004"],
    techniques=["T1611"],
    description=(
        "hostPID, hostIPC, hostNetwork or a hostPath volume give a pod the node's processes, "
        "network or files; a hostPath of /, /etc, the kubelet or the container runtime socket is "
        "the node itself."
    ),
)


@rule(HOST_ACCESS, resources=_POD_TEMPLATE)
def _host_access(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb not in _SUBMIT_VERBS or _derived_system_pod(s):
        return None
    pod = _pod_spec(s)
    if pod is None:
        return None
    found = [flag for flag in ("hostPID", "hostIPC", "hostNetwork") if pod.get(flag) is True]
    severity = Severity.medium
    for volume in as_list(pod.get("volumes")):
        path = _get(volume, "hostPath", "path") if isinstance(volume, dict) else None
        if path:
            found.append(f"hostPath {path}")
            if _sensitive(str(path)):
                severity = Severity.high
    if "hostPID" in found:
        severity = Severity.high
    if not found:
        return None
    return Hit(
        summary=_did(s, "with " + ", ".join(found)),
        severity=severity,
        routine_key=_workload_key(s),
    )


SYSTEM_NS_WORKLOAD = _spec(
    "k8s.workload-in-system-namespace",
    title="Workload created in a system namespace",
    severity=Severity.medium,
    tactics=["TA0005", "TA0003"],
    techniques=["T1610", "T1036.005", "T1543.005"],
    description=(
        "A pod or workload appeared in kube-system or kube-public, where it blends in with the "
        "cluster's own components and usually runs with their rights."
    ),
)


@rule(SYSTEM_NS_WORKLOAD, resources=_POD_TEMPLATE)
def _system_ns_workload(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb != "create" or e.action.subresource:
        return None
    ns = e.action.namespace
    if ns not in _SYSTEM_NAMESPACES:
        return None
    key = _workload_key(s)
    if _system(e):
        # The control plane lives in kube-system: what its controllers stamp out there was
        # judged when the workload was submitted. kube-public holds no components of its own.
        if ns == "kube-system" or not _controller(e):
            return None
        return Hit(summary=_did(s), severity=Severity.low, routine_key=key)
    return Hit(summary=_did(s), routine_key=key if _is_sa(e) else None)


EXEC = _spec(
    "k8s.pod-exec",
    title="Command run in a container (exec/attach)",
    severity=Severity.medium,
    tactics=["TA0002"],
    techniques=["T1609"],
    description=(
        "Someone opened a shell or ran a command in a running container; in kube-system that is "
        "the cluster's own components. A tar command is kubectl cp taking files out."
    ),
)


@rule(EXEC, resources=["pods"])
def _exec(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.subresource not in ("exec", "attach") or _control_plane(e):
        return None
    if e.principal.type == "unknown":
        return None
    ns = e.action.namespace or ""
    if ns in _SYSTEM_NAMESPACES and _system(e):
        return None
    commands = parse_qs(urlsplit(e.action.request_uri or "").query).get("command", [])
    detail = f"running {' '.join(commands)}" if commands else ""
    # kubectl cp from a pod runs "tar cf - <paths>": an archive written to standard output.
    copying_out = (
        len(commands) >= 3
        and commands[0] == "tar"
        and "c" in commands[1].lstrip("-")
        and commands[2] == "-"
    )
    if ns in _SYSTEM_NAMESPACES:
        return Hit(summary=_did(s, detail), severity=Severity.high, discriminator=ns)
    pod = _strip_hash(_strip_hash(e.action.object_name or ""))
    if copying_out:
        return Hit(
            summary=_did(s, f"copying files out ({detail})"),
            title="Files copied out of a container (kubectl cp)",
            tactics=("TA0010", "TA0002"),
            discriminator="cp",
        )
    return Hit(summary=_did(s, detail), routine_key=f"{ns}/{pod}")


# --- RBAC -------------------------------------------------------------------------------------

_POWERFUL_ROLES = frozenset(
    (
        "cluster-admin",
        "admin",
        "system:masters",
        "system:kube-controller-manager",
        "system:kube-scheduler",
        "system:node",
        "system:controller:clusterrole-aggregation-controller",
    )
)

ADMIN_BINDING = _spec(
    "k8s.cluster-admin-binding",
    title="Binding to cluster-admin or another all-powerful role",
    severity=Severity.high,
    tactics=["TA0004", "TA0003"],
    techniques=["T1098.006", "T1078.001"],
    description=(
        "A (Cluster)RoleBinding gives someone cluster-admin, a control-plane role, or membership "
        "of system:masters."
    ),
)


@rule(ADMIN_BINDING, resources=["clusterrolebindings", "rolebindings"])
def _admin_binding(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb not in _SUBMIT_VERBS or _system(e):
        return None
    role = str(_get(s.obj, "roleRef", "name") or "")
    subjects = [x for x in as_list(s.obj.get("subjects")) if isinstance(x, dict)]
    names = ", ".join(f"{x.get('kind')} {x.get('name')}" for x in subjects) or "?"
    masters = any(x.get("kind") == "Group" and x.get("name") == "system:masters" for x in subjects)
    if role not in _POWERFUL_ROLES and not masters:
        return None
    severity = Severity.high if role == "cluster-admin" or masters else Severity.medium
    if e.action.resource == "rolebindings":
        severity = Severity.medium
    return Hit(
        summary=_did(s, f"binding {names} to {role or 'system:masters'}"),
        severity=severity,
        routine_key=e.action.object_name if _is_sa(e) else None,
    )


RISKY_ROLE = _spec(
    "k8s.risky-role-created",
    title="Role granting wildcard or dangerous permissions created",
    severity=Severity.high,
    tactics=["TA0004", "TA0003"],
    techniques=["T1098.006"],
    description=(
        "A new (Cluster)Role grants every verb or resource (*), nodes/proxy, pods/exec, or the "
        "escalate/bind/impersonate verbs; plain write rights are reported at low severity."
    ),
)


@rule(RISKY_ROLE, resources=["clusterroles", "roles"])
def _risky_role(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb != "create" or _system(e):
        return None
    worst = Severity.info
    found: list[str] = []
    for grant in as_list(s.obj.get("rules")):
        if not isinstance(grant, dict):
            continue
        verbs = {str(v) for v in as_list(grant.get("verbs"))}
        resources = {str(r) for r in as_list(grant.get("resources"))}
        if "*" in verbs or "*" in resources:
            found.append(f"verbs {sorted(verbs)} on {sorted(resources)}")
            worst = Severity.high
        if "nodes/proxy" in resources:
            found.append("nodes/proxy")
            worst = Severity.high
        if verbs & {"escalate", "bind", "impersonate"}:
            found.append(f"the {sorted(verbs & {'escalate', 'bind', 'impersonate'})} verbs")
            worst = Severity.high
        # kubectl exec over websockets needs only "get" on pods/exec.
        if "pods/exec" in resources and verbs & {"create", "get", "*"}:
            found.append("pods/exec")
            worst = max(worst, Severity.medium, key=lambda x: x.rank)
        if verbs & _WRITE_VERBS and worst.rank < Severity.low.rank:
            found.append(f"write verbs on {sorted(resources)}")
            worst = Severity.low
    if not found:
        return None
    return Hit(
        summary=_did(s, "granting " + "; ".join(dict.fromkeys(found))),
        severity=worst,
        routine_key=e.action.object_name if _is_sa(e) else None,
    )


SYSTEM_ROLE = _spec(
    "k8s.system-role-modified",
    title="Built-in system role changed or deleted",
    severity=Severity.high,
    tactics=["TA0004", "TA0005"],
    techniques=["T1098.006"],
    description=(
        "A system: ClusterRole or binding that Kubernetes relies on was modified or deleted by "
        "someone other than the control plane."
    ),
)


@rule(SYSTEM_ROLE, resources=["clusterroles", "clusterrolebindings"])
def _system_role(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    name = e.action.object_name or ""
    if e.action.verb not in ("update", "patch", "delete") or not name.startswith("system:"):
        return None
    if _control_plane(e) or _user(e).startswith("system:serviceaccount:kube-system:"):
        return None
    return Hit(summary=_did(s), routine_key=name if _is_sa(e) else None)


AWS_AUTH = _spec(
    "k8s.aws-auth-changed",
    title="aws-auth ConfigMap changed",
    severity=Severity.high,
    tactics=["TA0003", "TA0004"],
    techniques=["T1098.006"],
    description=(
        "kube-system/aws-auth maps IAM roles and users to Kubernetes groups: a change can make any"
        " IAM principal cluster admin."
    ),
)


@rule(AWS_AUTH, resources=["configmaps"])
def _aws_auth(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.namespace != "kube-system" or e.action.object_name != "aws-auth":
        return None
    if e.action.verb not in _WRITE_VERBS:
        return None
    masters = "system:masters" in str(s.obj)
    detail = "adding a mapping to system:masters" if masters else ""
    return Hit(summary=_did(s, detail), severity=Severity.critical if masters else None)


_CREDENTIALS = re.compile(
    r"(aws[_-](s3[_-])?access[_-]key[_-]id|aws[_-]secret[_-]access[_-]key|passw(or)?d|passphrase"
    r"|secret[_-]?key|api[_-]?key|private[_-]key)\s*[=:]|-----BEGIN [A-Z ]*PRIVATE KEY-----",
    re.I,
)

CONFIGMAP_CREDENTIALS = _spec(
    "k8s.configmap-with-credentials",
    title="Credentials stored in a ConfigMap",
    severity=Severity.medium,
    tactics=["TA0006"],
    techniques=["T1552.007"],
    description=(
        "A ConfigMap holds what looks like keys or passwords: readable by anyone who can read "
        "ConfigMaps, unlike Secrets."
    ),
)


@rule(CONFIGMAP_CREDENTIALS, resources=["configmaps"])
def _configmap_credentials(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb not in _SUBMIT_VERBS:
        return None
    data = s.obj.get("data")
    if not isinstance(data, dict):
        return None
    keys = [
        str(k)
        for k, v in data.items()
        if _CREDENTIALS.search(f"{k}={v}") or _CREDENTIALS.search(str(v))
    ]
    if not keys:
        return None
    return Hit(
        summary=_did(s, f"with credentials in {', '.join(sorted(keys))}"),
        routine_key=f"{e.action.namespace}/{e.action.object_name}",
    )


# --- secrets and tokens ---------------------------------------------------------------------------

SECRETS_ALL = _spec(
    "k8s.secrets-listed-cluster-wide",
    title="Secrets listed across all namespaces",
    severity=Severity.high,
    tactics=["TA0006"],
    techniques=["T1552.007"],
    description=(
        "One request returned the secrets of every namespace: service account tokens, TLS keys, "
        "database passwords."
    ),
)


@rule(SECRETS_ALL, resources=["secrets"])
def _secrets_all(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb not in ("list", "watch") or e.action.namespace or e.action.object_name:
        return None
    if _system(e):
        return None
    return Hit(summary=_did(s, "(all namespaces)"), routine_key="all" if _is_sa(e) else None)


SECRET_BY_PERSON = _spec(
    "k8s.secret-read-by-person",
    title="Secrets read by a person",
    severity=Severity.low,
    tactics=["TA0006"],
    techniques=["T1552.007"],
    description=(
        "A person (not a workload) read or listed Secrets; workloads mount them, people rarely "
        "need to."
    ),
)


@rule(SECRET_BY_PERSON, resources=["secrets"], failures=True)
def _secret_by_person(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    p = e.principal
    if e.action.verb not in ("get", "list", "watch") or p.type != "k8s_user":
        return None
    user = _user(e)
    if is_control_plane_user(user) or user.startswith("system:node:"):
        return None
    refused = "" if e.outcome.success else f" (refused: {e.outcome.status_code})"
    return Hit(summary=_did(s, refused), routine_key=e.action.namespace or "*")


SECRET_DENIED = _spec(
    "k8s.secret-access-denied",
    title="Secret access refused",
    severity=Severity.low,
    tactics=["TA0006", "TA0007"],
    techniques=["T1552.007"],
    description=(
        "A request for a Secret was refused or asked for one that does not exist: probing for "
        "credentials."
    ),
)


@rule(SECRET_DENIED, resources=["secrets"], failures=True, successes=False)
def _secret_denied(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb != "get" or e.outcome.status_code not in (401, 403, 404):
        return None
    user = _user(e)
    if is_control_plane_user(user) or user.startswith(
        ("system:node:", "system:serviceaccount:kube-system:")
    ):
        return None
    return Hit(
        summary=_did(s, f"and got {e.outcome.status_code}"),
        routine_key=e.action.object_name if _is_sa(e) else None,
    )


TOKEN_CREATED = _spec(
    "k8s.service-account-token-created",
    title="Service account token requested",
    severity=Severity.low,
    tactics=["TA0006", "TA0003"],
    techniques=["T1528"],
    description=(
        "A token for a service account was minted through the TokenRequest API by someone other "
        "than a node's kubelet: it lets the caller act as that service account."
    ),
)


@rule(TOKEN_CREATED, resources=["serviceaccounts"])
def _token_created(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.subresource != "token" or e.action.verb != "create":
        return None
    user = _user(e)
    if user.startswith("system:node:") or is_control_plane_user(user):
        return None
    severity = Severity.medium if e.action.namespace in _SYSTEM_NAMESPACES else None
    return Hit(
        summary=_did(s),
        severity=severity,
        routine_key=f"{e.action.namespace}/{e.action.object_name}" if _is_sa(e) else None,
    )


CSR = _spec(
    "k8s.certificate-signing-request",
    title="Client certificate requested or approved by a person",
    severity=Severity.medium,
    tactics=["TA0003", "TA0006"],
    techniques=["T1649"],
    description=(
        "A CertificateSigningRequest was created or approved outside node bootstrap: a signed "
        "client certificate is a credential that cannot be revoked before it expires."
    ),
)


@rule(CSR, resources=["certificatesigningrequests"])
def _csr(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    user = _user(e)
    if user.startswith(("system:node:", "system:bootstrap:")) or _controller(e):
        return None
    if e.action.verb == "create" and not e.action.subresource:
        usages = [str(u) for u in as_list(_get(s.obj, "spec", "usages"))]
        signer = str(_get(s.obj, "spec", "signerName") or "")
        if usages and "client auth" not in usages and not signer.endswith("apiserver-client"):
            return None
        return Hit(summary=_did(s))
    if e.action.subresource == "approval" and e.action.verb in ("update", "patch"):
        return Hit(summary=_did(s, "(approving it)"), severity=Severity.high)
    return None


SA_IN_SYSTEM = _spec(
    "k8s.service-account-in-system-namespace",
    title="Service account created in a system namespace",
    severity=Severity.low,
    tactics=["TA0003"],
    techniques=["T1136"],
    description=(
        "A new service account in kube-system or kube-public hides among the control plane's own."
    ),
)


@rule(SA_IN_SYSTEM, resources=["serviceaccounts"])
def _sa_in_system(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb != "create" or e.action.subresource:
        return None
    if e.action.namespace not in ("kube-system", "kube-public") or _controller(e):
        return None
    return Hit(summary=_did(s), routine_key=e.action.object_name if _is_sa(e) else None)


# --- access paths -----------------------------------------------------------------------------

ANONYMOUS = _spec(
    "k8s.anonymous-request",
    title="Anonymous request to the API server",
    severity=Severity.high,
    tactics=["TA0001", "TA0007"],
    techniques=["T1190", "T1613"],
    description=(
        "An unauthenticated request was allowed (high) or refused (low); the public information "
        "endpoints (/version, /healthz) are reported at low severity."
    ),
)


@rule(ANONYMOUS, failures=True)
def _anonymous(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.principal.type != "anonymous":
        return None
    uri = e.action.request_uri or ""
    what = _target(e) if e.action.resource else (uri or "?")
    if not e.outcome.success:
        return Hit(
            summary=f"an anonymous request for {what} was refused{s.where}",
            severity=Severity.low,
            title="Anonymous request refused",
            tactics=("TA0043",),
            discriminator="refused",
        )
    if not e.action.resource and uri.startswith(PUBLIC_INFO_PATHS):
        return Hit(
            summary=f"an anonymous request read {uri}{s.where}",
            severity=Severity.low,
            tactics=("TA0043",),
            discriminator="public-info",
        )
    return Hit(summary=f"an anonymous request to {e.action.verb} {what} was allowed{s.where}")


NODE_PROXY = _spec(
    "k8s.nodes-proxy-access",
    title="Kubelet API reached through nodes/proxy",
    severity=Severity.high,
    tactics=["TA0002", "TA0004"],
    techniques=["T1609"],
    description=(
        "nodes/proxy goes straight to a node's kubelet: it runs commands in any pod of the node "
        "and bypasses the API server's audit of what is done there."
    ),
)


@rule(NODE_PROXY, resources=["nodes"], failures=True)
def _node_proxy(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.subresource != "proxy" or _control_plane(e):
        return None
    if not e.outcome.success:
        return Hit(summary=_did(s, "and was refused"), severity=Severity.low)
    return Hit(summary=_did(s), routine_key="nodes/proxy" if _is_sa(e) else None)


SYSTEM_SA_OUTSIDE = _spec(
    "k8s.system-identity-from-internet",
    title="kube-system service account used from the internet",
    severity=Severity.high,
    tactics=["TA0001", "TA0006"],
    techniques=["T1528", "T1078.001"],
    description=(
        "A kube-system service account token was used from a public address: these tokens live in "
        "pods, so someone took one out of the cluster."
    ),
)


@rule(SYSTEM_SA_OUTSIDE)
def _system_sa_outside(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if not _user(e).startswith("system:serviceaccount:kube-system:"):
        return None
    if not is_public_ip(e.source_ip):
        return None
    return Hit(summary=_did(s), discriminator=e.source_ip or "")


WEBHOOK = _spec(
    "k8s.admission-webhook-created",
    title="Admission webhook created",
    severity=Severity.medium,
    tactics=["TA0003", "TA0006"],
    techniques=["T1546"],
    description=(
        "A mutating or validating webhook sees (and may change) every object it matches: a place "
        "to plant persistence or read secrets as they are written."
    ),
)


@rule(WEBHOOK, resources=["mutatingwebhookconfigurations", "validatingwebhookconfigurations"])
def _webhook(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb != "create" or _system(e):
        return None
    return Hit(summary=_did(s), routine_key=e.action.object_name if _is_sa(e) else None)


NODEPORT = _spec(
    "k8s.nodeport-service",
    title="Service exposed on every node's port",
    severity=Severity.low,
    tactics=["TA0001"],
    techniques=["T1133"],
    description=(
        "A NodePort service opens a port on every node, around the load balancers and ingress."
    ),
)


@rule(NODEPORT, resources=["services"])
def _nodeport(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb not in _SUBMIT_VERBS or _control_plane(e):
        return None
    if str(_get(s.obj, "spec", "type") or "") != "NodePort":
        return None
    return Hit(
        summary=_did(s, "as a NodePort"),
        routine_key=f"{e.action.namespace}/{e.action.object_name}",
    )


INGRESS_NO_TLS = _spec(
    "k8s.ingress-without-tls",
    title="Ingress without TLS",
    severity=Severity.low,
    tactics=["TA0009"],
    techniques=["T1040"],
    description=("A new Ingress serves plain HTTP."),
)


@rule(INGRESS_NO_TLS, resources=["ingresses"])
def _ingress_no_tls(s: Subject, cfg: RuleConfig) -> Hit | None:
    e = s.event
    if e.action.verb != "create" or e.action.namespace in _SYSTEM_NAMESPACES:
        return None
    spec_ = s.obj.get("spec")
    if not isinstance(spec_, dict) or spec_.get("tls"):
        return None
    return Hit(
        summary=_did(s, "without TLS"),
        routine_key=f"{e.action.namespace}/{e.action.object_name}",
    )
