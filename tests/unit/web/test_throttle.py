"""The login throttle's rules, on the in-memory store (tests/integration/web has Redis)."""

from __future__ import annotations

from datetime import timedelta

from harvester.web.throttle import LoginThrottle, MemoryFailures, address_key
from tests.conftest import FixedClock

WINDOW = timedelta(hours=1)


def throttle(clock: FixedClock) -> LoginThrottle:
    return LoginThrottle(clock, MemoryFailures(window=WINDOW), free_failures=3)


def fail(t: LoginThrottle, client: str, username: str, times: int) -> None:
    for _ in range(times):
        assert t.wait(client, username) == timedelta(0)
        t.failed(client, username)


def test_delays_grow_after_the_free_failures_and_are_capped(clock: FixedClock) -> None:
    t = throttle(clock)
    fail(t, "10.0.0.1", "alice", 3)
    waits = []
    for _ in range(14):
        waits.append(t.wait("10.0.0.1", "alice").total_seconds())
        clock.advance(timedelta(seconds=waits[-1]))
        t.failed("10.0.0.1", "alice")
    assert waits[:5] == [1, 2, 4, 8, 16]
    assert waits[-1] == 900  # max_delay
    assert waits == sorted(waits)


def test_one_address_spraying_many_usernames_is_slowed(clock: FixedClock) -> None:
    t = throttle(clock)
    for i in range(3):
        fail(t, "10.0.0.1", f"user{i}", 1)
    # A fourth username from the same address has to wait: the address counts, not the name.
    assert t.wait("10.0.0.1", "user3") == timedelta(seconds=1)


def test_failures_against_a_user_never_hold_up_a_clean_address(clock: FixedClock) -> None:
    t = throttle(clock)
    for client in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        fail(t, client, "admin2", 1)
    t.failed("10.0.0.1", "admin2")
    assert t.wait("10.0.0.1", "admin2") > timedelta(0)
    # The real admin, elsewhere, has the password checked at once.
    assert t.wait("192.0.2.7", "admin2") == timedelta(0)


def test_the_username_delay_applies_to_every_address_that_failed(clock: FixedClock) -> None:
    """A distributed guesser: each address gets one free try, then the username's delay."""
    t = throttle(clock)
    for n in range(6):
        fail(t, f"10.0.1.{n}", "admin2", 1)
    # 10.0.1.0 has failed once itself, but admin2 has failed six times from anywhere.
    assert t.wait("10.0.1.0", "admin2") == timedelta(seconds=8)
    assert t.wait("10.0.1.0", "bob") == timedelta(0)


def test_failures_are_forgotten_after_the_window(clock: FixedClock) -> None:
    t = throttle(clock)
    fail(t, "10.0.0.1", "alice", 3)
    assert t.wait("10.0.0.1", "alice") > timedelta(0)
    clock.advance(WINDOW)
    assert t.wait("10.0.0.1", "alice") == timedelta(0)
    t.failed("10.0.0.1", "alice")
    assert t.wait("10.0.0.1", "alice") == timedelta(0)  # counting starts over


def test_usernames_are_counted_case_insensitively(clock: FixedClock) -> None:
    t = throttle(clock)
    for n in range(4):
        fail(t, f"10.0.2.{n}", "Alice" if n % 2 else "alice", 1)
    t.failed("10.0.2.0", "ALICE")
    assert t.wait("10.0.2.0", "alice") == timedelta(seconds=4)


def test_ipv6_clients_count_by_their_64() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("192.0.2.1") == "addr:192.0.2.1"


def test_memory_store_is_bounded(clock: FixedClock) -> None:
    store = MemoryFailures(window=WINDOW, max_keys=10)
    now = clock().timestamp()
    for n in range(50):
        store.add(f"k{n}", now=now + n)
    assert store.get("k0", now=now + 50) is None
    assert store.get("k49", now=now + 50) is not None
