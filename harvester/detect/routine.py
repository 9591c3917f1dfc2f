"""Baseline-aware severity for routine actions: what an actor does habitually is info.

A rule hit with a ``routine_key`` is an action people do as part of their work (exec into a
pod, rotate a Lambda's code, read a parameter). Reporting it at the rule's severity every time
buries the rare one that matters, and dropping repeats hides an attacker who reuses a habit.
So the engine keeps, per detector and actor, the days the actor did it in the last fortnight
and the networks and tools it did it from, and grades each hit:

- never done before: the rule's severity (a first time stays what the rule says);
- done on a day or two before: low, saying so;
- done on ``HABITUAL_DAYS`` or more of the last ``WINDOW_DAYS`` days: info, saying how often;
- a habit, but now from a network or user agent the actor never used for it: the rule's
  severity again, saying what is new (an occasional action stays low and says so).

Repeats of one detector for one actor fold into one anomaly per day (the engine's dedup key
drops the rule's discriminator for routine hits), so a habit costs one row a day, not one a pod.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from harvester.detect.model import Severity

WINDOW_DAYS = 14
HABITUAL_DAYS = 3
DAYS_FIELD = "days"
# Routine hits of one detector and actor share this discriminator: one anomaly per day.
FOLD = "routine"


def epoch_day(moment: datetime) -> int:
    return int(moment.timestamp()) // 86400


def prior_days(text: str | None, today: int) -> list[int]:
    """The days of the window before ``today`` on which the action was done, oldest first."""
    if not text:
        return []
    days: set[int] = set()
    for part in text.split():
        if part.isdigit() and today - WINDOW_DAYS <= int(part) < today:
            days.add(int(part))
    return sorted(days)


def with_day(text: str | None, today: int) -> str:
    """The days field after doing the action ``today`` (the window and today, nothing older)."""
    return " ".join(str(d) for d in [*prior_days(text, today), today])


@dataclass(frozen=True, slots=True)
class Grade:
    severity: Severity | None  # None: keep what the rule said
    context: str


def grade(
    *,
    rule_severity: Severity,
    days: list[int],
    key_known: bool,
    new_network: bool,
    new_agent: bool,
    network: str,
    agent: str,
) -> Grade:
    """How serious a routine hit is, given the actor's history with this detector."""
    if not days and not key_known:
        return Grade(None, "")
    count = len(days)
    often = f"on {count} of the last {WINDOW_DAYS} days" if count else "earlier today"
    new_places = [
        part
        for part, new in (
            (f"a network it never did it from ({network})", new_network),
            (f"a user agent it never did it with ({agent})", new_agent),
        )
        if new
    ]
    where = f", but this time from {' and '.join(new_places)}" if new_places else ""
    if count >= HABITUAL_DAYS:
        if new_places:
            # A habit is what an attacker with the actor's credentials would imitate: the
            # same action from somewhere the actor never did it is worth the rule's severity.
            return Grade(None, f"It does this routinely ({often}){where}.")
        return Grade(Severity.info, f"Habitual: it did this {often}.")
    lower = Severity.low if rule_severity.rank > Severity.low.rank else rule_severity
    return Grade(lower, f"It did this before ({often}){where}.")
