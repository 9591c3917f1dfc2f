"""Request parameters read the way AWS means them, shared by the rule modules.

CloudTrail records what the caller sent, in whatever shape the API and SDK used: booleans as
``true`` or ``"true"``, lists bare or wrapped as ``{"items": [...]}``, documents as maps, JSON
text or URL-encoded JSON, keys in camelCase or PascalCase depending on the service. A CIDR
means what the network stack makes of it (``10.0.0.0/0`` is the whole internet, as is
``::/0``), and a port range admits every port between its ends. Everything here is pure.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable, Iterator
from typing import Any

from harvester.detect.features import as_list, load_json

__all__ = [
    "ALL_PORTS",
    "Network",
    "PortRange",
    "as_int",
    "broad_network",
    "covers",
    "dig",
    "every_port",
    "falsy",
    "find",
    "internet_network",
    "items",
    "name_in",
    "network",
    "pick",
    "port_range",
    "port_text",
    "same_name",
    "structured",
    "truthy",
]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
# (low, high), both inclusive; ALL_PORTS when the rule admits every port of every protocol.
PortRange = tuple[int, int]
ALL_PORTS: PortRange = (0, 65535)


def truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def falsy(value: Any) -> bool:
    return value is False or (isinstance(value, str) and value.strip().lower() == "false")


def structured(value: Any) -> Any:
    """A map or list that may have arrived as JSON text or URL-encoded JSON; else as given."""
    if isinstance(value, str):
        parsed = load_json(value)
        return value if parsed is None else parsed
    return value


def pick(data: Any, *names: str) -> Any:
    """The first non-empty value of ``names`` in a map, keys compared without case.

    The same parameter is ``groupId`` in one API and ``GroupId`` in another (and in request
    structures the newer SDKs send); a rule names it once.
    """
    data = structured(data)
    if not isinstance(data, dict):
        return None
    for name in names:
        value = data.get(name)
        if value not in (None, "", [], {}):
            return value
    wanted = {n.lower() for n in names}
    for key, value in data.items():
        if isinstance(key, str) and key.lower() in wanted and value not in (None, "", [], {}):
            return value
    return None


def dig(data: Any, *path: str) -> Any:
    """A value down a path of keys (each compared as ``pick`` does), parsing text on the way."""
    for part in path:
        data = pick(data, part)
        if data is None:
            return None
    return structured(data)


def items(data: Any) -> list[Any]:
    """A list however it was recorded: bare, EC2's ``{"items": [...]}``, JSON text, one value."""
    data = structured(data)
    if isinstance(data, dict):
        inner = pick(data, "items", "item")
        if inner is not None or not data:
            return as_list(structured(inner))
    return as_list(data)


def find(data: Any, name: str, *, depth: int = 6) -> Iterator[Any]:
    """Every value under a key called ``name`` (without case) at any depth, text parsed.

    One setting nests differently from API to API (an instance type is top-level in
    RunInstances, under launch specifications in spot requests, under overrides in fleets).
    """
    if depth < 0:
        return
    data = structured(data)
    wanted = name.lower()
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(key, str) and key.lower() == wanted:
                yield structured(value)
            elif isinstance(value, (dict, list, str)):
                yield from find(value, name, depth=depth - 1)
    elif isinstance(data, list):
        for value in data:
            yield from find(value, name, depth=depth - 1)


def as_int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def same_name(a: Any, b: Any) -> bool:
    """IAM user, role, group and policy names, and instance ids, ignore case in AWS."""
    return a is not None and b is not None and str(a).casefold() == str(b).casefold()


def name_in(value: Any, names: Iterable[str]) -> bool:
    folded = str(value).casefold()
    return any(folded == n.casefold() for n in names)


# --- networks -----------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4096)
def _parse_network(text: str) -> Network | None:
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def network(value: Any) -> Network | None:
    """A CIDR as the network stack reads it: host bits are dropped, so ``8.8.8.8/0`` is /0."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    if not text:
        return None
    return _parse_network(text)


def internet_network(net: Network) -> bool:
    """Every address: a prefix of 0, whatever address bits were written (and ``::/0``).

    A range based at ``0.0.0.0`` or ``::`` (``0.0.0.0/16``) is read the same: it holds no
    address anyone connects from, so whoever wrote it meant "everyone" and mistyped the mask.
    """
    return net.prefixlen == 0 or (
        int(net.network_address) == 0 and net.prefixlen < net.max_prefixlen
    )


def broad_network(net: Network) -> bool:
    """A range so wide it is the internet in practice: a /8 or wider (IPv4), /16 (IPv6)."""
    return net.prefixlen <= (8 if net.version == 4 else 16)


# --- ports --------------------------------------------------------------------------------------

_ALL_PROTOCOLS = frozenset(("-1", "all", ""))
_NO_PORTS = frozenset(("icmp", "1", "icmpv6", "58"))


def port_range(protocol: Any, low: Any, high: Any) -> PortRange | None:
    """The ports a rule admits, or None when it admits none that a service listens on.

    Protocol ``-1`` (or ``all``) is every port of every protocol; TCP/UDP ``-1`` ends or a
    missing end mean the whole range; ICMP has types, not ports.
    """
    proto = str(protocol if protocol is not None else "").strip().lower()
    if proto in _ALL_PROTOCOLS:
        return ALL_PORTS
    if proto in _NO_PORTS:
        return None
    start, end = as_int(low), as_int(high)
    if start is None or start < 0:
        start = 0
    if end is None or end < 0:
        end = 65535
    if end < start:
        start, end = end, start
    return (start, end)


def covers(ports: PortRange, port: int) -> bool:
    return ports[0] <= port <= ports[1]


def every_port(ports: PortRange) -> bool:
    return ports[0] <= 1 and ports[1] >= 65535


def port_text(ports: PortRange) -> str:
    if every_port(ports):
        return "all ports"
    return f"port {ports[0]}" if ports[0] == ports[1] else f"ports {ports[0]}-{ports[1]}"
