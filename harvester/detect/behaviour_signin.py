"""Bursts of failed console sign-ins, keyed by where they come from and by whom they target.

* ``behav.password-spraying``: failed sign-ins for many *different* user names from one
  source network (/24 or /64) in a short time: a few passwords tried against many users.
* ``behav.sign-in-brute-force``: many failed sign-ins of one user, from one network or many:
  guessing one user's password, or trying stolen ones (credential stuffing).

Both read ConsoleLogin events only (one name comparison for every other event). A user name
that does not exist is recorded by CloudTrail as ``HIDDEN_DUE_TO_SECURITY_REASONS``: every
such attempt counts as a name of its own for spraying (guessed names mostly do not exist),
and for no user's brute force (there is no user to key it by).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from harvester.detect.behaviour import Burst, behaviour_spec
from harvester.detect.features import network_of
from harvester.detect.model import Severity
from harvester.events import Event

__all__ = ["SIGN_IN_BURSTS"]

HIDDEN_NAME = "HIDDEN_DUE_TO_SECURITY_REASONS"
# Prefix of the unit of an attempt with a hidden name (one per event: see the module).
_HIDDEN_UNIT = "?"


def _failed_sign_in(event: Event) -> bool:
    return (
        event.action.name == "ConsoleLogin"  # the one test most events pay
        and not event.outcome.success
        and event.source == "cloudtrail"
    )


def _user_of(event: Event) -> str | None:
    """The user a failed sign-in was for, named with its account; None for a hidden name."""
    p = event.principal
    account = event.account or p.account or "?"
    if p.type == "root":
        return f"root of {account}"
    name = p.name
    if not name or name == HIDDEN_NAME:
        return None
    return f"{name} in {account}"


def _sprayed_user(event: Event) -> str | None:
    if not _failed_sign_in(event):
        return None
    return _user_of(event) or f"{_HIDDEN_UNIT}{event.id}"


def _source_network(event: Event) -> str | None:
    network = network_of(event.source_ip)
    return None if network is None else f"network {network}"


def _failed_network(event: Event) -> str | None:
    if not _failed_sign_in(event) or _user_of(event) is None:
        return None
    return network_of(event.source_ip) or "an unknown network"


def _target_user(event: Event) -> str | None:
    user = _user_of(event)
    return None if user is None else f"user {user}"


def _tally(values: Sequence[str]) -> str:
    counts = Counter(values)
    shown = ", ".join(f"{value} x{n}" for value, n in counts.most_common(8))
    more = len(counts) - 8
    return shown + (f" and {more} more" if more > 0 else "")


def _explain_spray(events: Sequence[Event]) -> str:
    users = [_user_of(e) for e in events]
    named = [u for u in users if u is not None]
    hidden = len(users) - len(named)
    parts = [f"{len(events)} failed sign-ins"]
    if named:
        parts.append(f"users tried: {_tally(named)}")
    if hidden:
        parts.append(f"{hidden} with user names that do not exist (CloudTrail hides them)")
    return "; ".join(parts)


def _explain_brute_force(events: Sequence[Event]) -> str:
    networks = [network_of(e.source_ip) or "an unknown network" for e in events]
    return f"{len(events)} failed sign-ins from {len(set(networks))} network(s): {_tally(networks)}"


SIGN_IN_BURSTS: tuple[Burst, ...] = (
    Burst(
        behaviour_spec(
            "behav.password-spraying",
            title="Password spraying: failed sign-ins for many users from one network",
            severity=Severity.medium,
            tactics=["TA0006", "TA0001"],
            techniques=["T1110.003"],
            description=(
                "Failed console sign-ins for many different user names (in any account) from "
                "one source network in a short time: a few common passwords tried against many "
                "users. Attempts with user names that do not exist count one each. High when "
                "far above the threshold."
            ),
            dedup_window=timedelta(hours=1),
            learns=False,
        ),
        "spray",
        _sprayed_user,
        "user names failing to sign in",
        minimum=5,
        factor=2.0,
        variety=True,
        entity=_source_network,
        explain=_explain_spray,
    ),
    Burst(
        behaviour_spec(
            "behav.sign-in-brute-force",
            title="Brute force: many failed sign-ins of one user",
            severity=Severity.medium,
            tactics=["TA0006"],
            techniques=["T1110", "T1110.001", "T1110.004"],
            description=(
                "Many failed console sign-ins of one user in a short time, from one network "
                "(guessing its password) or from many (stolen passwords tried, credential "
                "stuffing). The networks and their counts are in the explanation. High when "
                "far above the threshold."
            ),
            dedup_window=timedelta(hours=1),
            learns=False,
        ),
        "brute",
        _failed_network,
        "failed sign-ins",
        minimum=8,
        factor=3.0,
        entity=_target_user,
        explain=_explain_brute_force,
    ),
)
