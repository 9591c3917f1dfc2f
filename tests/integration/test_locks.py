from datetime import timedelta

from harvester.locks import Lease


def test_one_holder_at_a_time(redis_client) -> None:  # type: ignore[no-untyped-def]
    first = Lease(redis_client, "t:lease", timedelta(seconds=30))
    second = Lease(redis_client, "t:lease", timedelta(seconds=30))
    assert first.acquire()
    assert not second.acquire()
    assert not second.renew()
    # Only the holder's release frees it.
    second.release()
    assert redis_client.get("t:lease") == first.token.encode()
    first.release()
    assert second.acquire()


def test_renew_extends_ttl(redis_client) -> None:  # type: ignore[no-untyped-def]
    lease = Lease(redis_client, "t:renew", timedelta(seconds=2))
    assert lease.acquire()
    lease.ttl = timedelta(seconds=60)
    assert lease.renew()
    assert redis_client.pttl("t:renew") > 2_000


def test_expired_lease_can_be_taken_over(redis_client) -> None:  # type: ignore[no-untyped-def]
    dead = Lease(redis_client, "t:dead", timedelta(seconds=30))
    assert dead.acquire()
    redis_client.pexpire("t:dead", 1)  # the holder died: its TTL runs out
    successor = Lease(redis_client, "t:dead", timedelta(seconds=30))
    from tests.conftest import wait_until

    wait_until(successor.acquire, timeout=5, what="the expired lease")
    assert not dead.renew()
