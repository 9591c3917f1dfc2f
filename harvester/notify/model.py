"""A notification destination as plain data (from the inventory file), and its validation.

Each type needs a few settings of its own; what is secret (a webhook's signing secret, a
Slack URL, a PagerDuty routing key, an SMTP password) lives in ``secret`` only, which is
encrypted at rest and never printed, logged or exported.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field, replace
from datetime import timedelta
from urllib.parse import urlsplit

from harvester.detect.model import Severity
from harvester.inventory import validation as v

TYPES = ("webhook", "slack", "pagerduty", "alertmanager", "sns", "email")
KINDS = ("anomaly", "incident")
EVENTS = ("new", "escalated", "acknowledged")

# What each type cannot work without (besides its name and type).
REQUIRED: dict[str, tuple[str, ...]] = {
    "webhook": ("url",),
    "slack": ("secret",),  # the incoming-webhook URL is the credential
    "pagerduty": ("secret",),  # the Events API v2 routing key
    "alertmanager": ("url",),
    "sns": ("topic_arn",),
    "email": ("smtp_host", "email_from", "email_to"),
}
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"
_TOPIC_ARN = re.compile(r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True)
class DestinationSpec:
    name: str
    type: str
    url: str | None = None
    # None on an exported/listed spec: "keep the stored secret".
    secret: str | None = field(default=None, repr=False)
    topic_arn: str | None = None
    role: str | None = None  # an inventory role for SNS; the worker's own identity when None
    region: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    # Refuse a server that does not offer STARTTLS (false only for a trusted local relay).
    smtp_starttls: bool = True
    email_from: str | None = None
    email_to: tuple[str, ...] = ()
    min_severity: Severity = Severity.medium
    kinds: tuple[str, ...] = KINDS
    detectors: tuple[str, ...] = ("*",)
    accounts: tuple[str, ...] = ()  # empty: every account
    clusters: tuple[str, ...] = ()  # empty: every cluster (and findings without one)
    renotify_after: timedelta = timedelta(hours=24)
    rate_limit: int = 60  # per minute
    timeout: timedelta = timedelta(seconds=10)
    max_age: timedelta = timedelta(days=3)
    enabled: bool = True

    def validate(
        self, where: str = "destination", *, has_stored_secret: bool = False
    ) -> DestinationSpec:
        v.entity_name(self.name, f"{where}.name")
        if self.type not in TYPES:
            raise v.InvalidValue(f"{where}.type", self.type, f"use one of {', '.join(TYPES)}")
        for name in REQUIRED[self.type]:
            if name == "secret" and (self.secret is not None or has_stored_secret):
                continue
            if not getattr(self, name):
                raise v.InvalidValue(
                    f"{where}.{name}", None, f"a {self.type} destination needs {name}"
                )
        for name in ("url",) + (("secret",) if self.type == "slack" else ()):
            value = getattr(self, name)
            if value is not None and urlsplit(value).scheme not in ("http", "https"):
                raise v.InvalidValue(
                    f"{where}.{name}", value, "an http:// or https:// URL", secret=name == "secret"
                )
        if self.topic_arn is not None and not _TOPIC_ARN.fullmatch(self.topic_arn):
            raise v.InvalidValue(
                f"{where}.topic_arn",
                self.topic_arn,
                "an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
            )
        for kind in self.kinds:
            if kind not in KINDS:
                raise v.InvalidValue(f"{where}.kinds", kind, f"use {' and/or '.join(KINDS)}")
        for i, account in enumerate(self.accounts):
            v.account_id(account, f"{where}.accounts[{i}]")
        if not 1 <= self.rate_limit <= 100_000:
            raise v.InvalidValue(f"{where}.rate_limit", self.rate_limit, "1 to 100000 per minute")
        if not timedelta(seconds=1) <= self.timeout <= timedelta(minutes=2):
            raise v.InvalidValue(f"{where}.timeout", str(self.timeout), "between 1s and 2m")
        if self.max_age < timedelta(minutes=1):
            raise v.InvalidValue(f"{where}.max_age", str(self.max_age), "at least 1m")
        if not 1 <= self.smtp_port <= 65535:
            raise v.InvalidValue(f"{where}.smtp_port", self.smtp_port, "a TCP port")
        return self

    def without_secret(self) -> DestinationSpec:
        return replace(self, secret=None)

    def detector_wanted(self, detector: str) -> bool:
        return any(fnmatch.fnmatchcase(detector, glob) for glob in self.detectors)
