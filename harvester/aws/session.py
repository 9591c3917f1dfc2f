"""The AWS session factory: (role chain, region) → a boto3 session with refreshing credentials.

Modelled on cloud-custodian's ``c7n/credentials.py``, with two differences that matter in a
worker serving many accounts: sessions and clients are cached by the whole identity (never by
region alone, which would hand one account's credentials to another), and the cache belongs
to one process (it is dropped when the pid changes, so a forked worker never shares a
connection pool or credentials object with its parent).

Credentials are built hop by hop: base credentials (the default chain, or a stored access
key), then each configured AssumeRole. Every assumed hop is a ``RefreshableCredentials``
whose refresh function assumes the role again from the previous hop's (themselves
refreshing) credentials, so a harvest that outlives a one-hour chained session carries on.

Endpoints are left to botocore: it honours ``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_S3`` and
``AWS_ENDPOINT_URL_STS``; the factory only sets an endpoint when given one explicitly.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, cast

import boto3
import botocore.session
from botocore.config import Config
from botocore.credentials import RefreshableCredentials

from harvester import __version__
from harvester.aws.errors import AssumeRoleRefused, convert
from harvester.aws.identity import Hop, RoleChain
from harvester.clock import utcnow

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_eks import EKSClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_kms import KMSClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

__all__ = [
    "AwsSessions",
    "ClientSettings",
    "SessionFactory",
    "resolve_region",
]

log = logging.getLogger(__name__)

EventHook = tuple[str, Callable[..., Any]]


@dataclass(frozen=True)
class ClientSettings:
    """botocore client settings shared by every client the factory makes.

    ``max_attempts`` counts retries after the first try, as botocore's ``Config`` does;
    ``fetch_concurrency`` is the number of objects fetched at once, which sizes the pool.
    """

    fetch_concurrency: int = 16
    max_attempts: int = 5
    connect_timeout: float = 5.0
    read_timeout: float = 60.0

    def to_config(self) -> Config:
        return Config(
            retries={"mode": "standard", "max_attempts": self.max_attempts},
            # A few connections beyond the fetch workers for listing and HEAD requests
            # made while the fetches run.
            max_pool_connections=self.fetch_concurrency + 4,
            user_agent_extra=f"audit-harvester/{__version__}",
            connect_timeout=self.connect_timeout,
            read_timeout=self.read_timeout,
            tcp_keepalive=True,
        )


def resolve_region(chain: RoleChain, region: str | None) -> str:
    """The region to use: the given one, else the default region of the chain's partition."""
    return region or chain.default_region


def refresh_windows(duration_seconds: int) -> tuple[int, int]:
    """(advisory, mandatory) refresh windows in seconds for a session of that duration.

    botocore's defaults (15 and 10 minutes) would put a 15-minute session inside its
    refresh window from birth, assuming the role again on every request.
    """
    advisory = min(15 * 60, duration_seconds // 3)
    mandatory = min(10 * 60, duration_seconds // 6)
    return advisory, mandatory


class AwsSessions(Protocol):
    """What the doctor and the harvest need from a session factory (tests may fake it)."""

    def session(self, chain: RoleChain, region: str | None = None) -> boto3.Session: ...
    def s3(self, chain: RoleChain, region: str | None = None) -> S3Client: ...
    def sts(self, chain: RoleChain, region: str | None = None) -> STSClient: ...
    def iam(self, chain: RoleChain, region: str | None = None) -> IAMClient: ...
    def kms(self, chain: RoleChain, region: str | None = None) -> KMSClient: ...
    def eks(self, chain: RoleChain, region: str | None = None) -> EKSClient: ...


class SessionFactory:
    """Turns a :class:`RoleChain` and a region into cached boto3 sessions and clients.

    Make one per process, after fork. ``time_fetcher`` is the clock the refreshable
    credentials compare their expiry with (inject a fake one to test refreshes);
    ``event_hooks`` are ``(event name, handler)`` pairs registered on every botocore
    session made (metrics, fault injection in tests).
    """

    def __init__(
        self,
        *,
        settings: ClientSettings | None = None,
        endpoint_url: str | None = None,
        time_fetcher: Callable[[], datetime] = utcnow,
        event_hooks: Sequence[EventHook] = (),
    ) -> None:
        self.settings = settings or ClientSettings()
        self._config = self.settings.to_config()
        self._endpoint_url = endpoint_url
        self._time_fetcher = time_fetcher
        self._event_hooks = tuple(event_hooks)
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        # Re-created after fork: a lock held by another thread at fork time stays held forever.
        self._lock = threading.RLock()
        self._count_lock = threading.Lock()
        self._sessions: dict[tuple[tuple[str, ...], str], boto3.Session] = {}
        self._clients: dict[tuple[tuple[str, ...], str, str], Any] = {}
        self.refreshes = 0

    def _check_pid(self) -> None:
        if self._pid != os.getpid():
            log.debug("process forked: dropping the AWS session cache of pid %d", self._pid)
            self._reset()

    def clear(self) -> None:
        """Drop every cached session and client (after an inventory change, or in tests)."""
        self._reset()

    # --- sessions ---------------------------------------------------------------------

    def __call__(self, chain: RoleChain, region: str | None = None) -> boto3.Session:
        return self.session(chain, region)

    def session(self, chain: RoleChain, region: str | None = None) -> boto3.Session:
        """A boto3 session whose credentials are the end of ``chain``, in ``region``.

        Assuming the roles happens here, so a refused AssumeRole raises
        :class:`~harvester.aws.errors.AssumeRoleRefused` naming the hop.
        """
        self._check_pid()
        region = resolve_region(chain, region)
        cache_key = (chain.identity_key(), region)
        with self._lock:
            cached = self._sessions.get(cache_key)
        if cached is not None:
            return cached
        # Built outside the lock: AssumeRole is a network call, and holding the lock through
        # it could deadlock with a credentials refresh waiting on another thread.
        created = self._build_session(chain, region)
        with self._lock:
            return self._sessions.setdefault(cache_key, created)

    def _new_botocore_session(self, region: str) -> botocore.session.Session:
        core = botocore.session.Session()
        core.set_config_variable("region", region)
        # Regional STS endpoints: a GovCloud or China role is assumed in its own partition,
        # and a regional outage of us-east-1 does not stop other regions.
        core.set_config_variable("sts_regional_endpoints", "regional")
        core.set_default_client_config(self._config)
        for event, handler in self._event_hooks:
            core.register(event, handler)
        return core

    def _build_session(self, chain: RoleChain, region: str) -> boto3.Session:
        core = self._new_botocore_session(region)
        hops = chain.hops
        if hops:
            parent = chain.truncated(len(hops) - 1)
            core._credentials = self._assumed_credentials(  # type: ignore[attr-defined]
                parent, hops[-1], len(hops) - 1, chain, region
            )
        elif chain.access_key is not None:
            core.set_credentials(chain.access_key.access_key_id, chain.access_key.secret_access_key)
        # instance-profile without roles: botocore's default chain (environment, web identity
        # for IRSA, container role, instance profile) resolves lazily on first use.
        return boto3.Session(botocore_session=core, region_name=region)

    def _assumed_credentials(
        self, parent: RoleChain, hop: Hop, index: int, chain: RoleChain, region: str
    ) -> RefreshableCredentials:
        duration = chain.hop_duration(index)
        parent_arn = parent.final_role_arn
        # Taken once: the refresh function must not need the factory's lock (see session()).
        sts = self.sts(parent, region)

        def assume() -> dict[str, Any]:
            params: dict[str, Any] = {
                "RoleArn": hop.role_arn,
                "RoleSessionName": chain.session_name,
                "DurationSeconds": duration,
            }
            if hop.external_id:
                params["ExternalId"] = hop.external_id
            try:
                response = sts.assume_role(**params)
            except Exception as exc:  # noqa: BLE001  every failure becomes a domain error
                error = convert(
                    exc,
                    operation="AssumeRole",
                    role_arn=hop.role_arn,
                    principal=parent_arn,
                    region=region,
                )
                if isinstance(error, AssumeRoleRefused):
                    error.hop = hop.label
                raise error from None
            creds = response["Credentials"]
            log.info(
                "assumed %s %s as session %s until %s",
                hop.label,
                hop.role_arn,
                chain.session_name,
                creds["Expiration"].isoformat(),
            )
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].isoformat(),
            }

        def refresh() -> dict[str, Any]:
            metadata = assume()
            with self._count_lock:
                self.refreshes += 1
            return metadata

        advisory, mandatory = refresh_windows(duration)
        credentials = RefreshableCredentials.create_from_metadata(
            metadata=assume(),
            refresh_using=refresh,
            method="assume-role-chain",
            advisory_timeout=advisory,
            mandatory_timeout=mandatory,
        )
        # create_from_metadata takes no clock; the injected one decides when to refresh.
        credentials._time_fetcher = self._time_fetcher  # type: ignore[attr-defined]
        return credentials

    # --- clients ----------------------------------------------------------------------

    def client(self, chain: RoleChain, service: str, region: str | None = None) -> BaseClient:
        """A cached client of ``service`` for the identity ``chain`` in ``region``."""
        self._check_pid()
        region = resolve_region(chain, region)
        cache_key = (chain.identity_key(), region, service)
        with self._lock:
            cached = self._clients.get(cache_key)
        if cached is not None:
            return cast("BaseClient", cached)
        # Outside the lock: the session may have to assume roles first (see session()).
        session = self.session(chain, region)
        kwargs: dict[str, Any] = {"region_name": region}
        if self._endpoint_url is not None:
            kwargs["endpoint_url"] = self._endpoint_url
        # Under the lock: a boto3 session is not safe to make clients from concurrently.
        with self._lock:
            cached = self._clients.get(cache_key)
            if cached is None:
                cached = session.client(service, **kwargs)  # type: ignore[call-overload]
                self._clients[cache_key] = cached
            return cast("BaseClient", cached)

    def s3(self, chain: RoleChain, region: str | None = None) -> S3Client:
        return cast("S3Client", self.client(chain, "s3", region))

    def sts(self, chain: RoleChain, region: str | None = None) -> STSClient:
        return cast("STSClient", self.client(chain, "sts", region))

    def iam(self, chain: RoleChain, region: str | None = None) -> IAMClient:
        return cast("IAMClient", self.client(chain, "iam", region))

    def kms(self, chain: RoleChain, region: str | None = None) -> KMSClient:
        return cast("KMSClient", self.client(chain, "kms", region))

    def eks(self, chain: RoleChain, region: str | None = None) -> EKSClient:
        return cast("EKSClient", self.client(chain, "eks", region))
