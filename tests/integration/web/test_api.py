"""The JSON API on SQLite and PostgreSQL: every endpoint, bad input, missing authentication."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from harvester.db.anomaly_models import AnomalyRecord, SuppressionRecord
from harvester.db.models import AccessKeyConfig, RoleConfig, Source
from harvester.db.user_models import User
from tests.integration.web.conftest import Web, WebFactory
from tests.integration.web.seed import KEY_ID, ORG_ACCOUNT, SECRET
from tests.unit.detect.builders import ACCOUNT

pytestmark = pytest.mark.integration

NEW_SECRET = "Zq9TnewSecretKeyValueForTests0123456789xy"


def reads(web: Web) -> list[str]:
    a = web.data.anomalies[0].id
    return [
        "/api/v1/me",
        "/api/v1/accounts",
        "/api/v1/clusters",
        "/api/v1/sources",
        f"/api/v1/sources/{web.data.trail_id}",
        "/api/v1/roles",
        "/api/v1/anomalies",
        f"/api/v1/anomalies/{a}",
        "/api/v1/incidents",
        f"/api/v1/incidents/{web.data.incident_id}",
        "/api/v1/suppressions",
        "/api/v1/overview",
    ]


def writes(web: Web) -> list[tuple[str, str, dict[str, object]]]:
    a = web.data.anomalies[0].id
    return [
        ("PUT", f"/api/v1/sources/{web.data.trail_id}/storage", {"bucket": "changed-bucket"}),
        ("POST", "/api/v1/roles", {"name": "another"}),
        ("POST", f"/api/v1/sources/{web.data.trail_id}/doctor", {}),
        ("POST", f"/api/v1/anomalies/{a}/ack", {}),
        ("POST", "/api/v1/suppressions", {"detector": "aws.guardduty-disabled"}),
    ]


# --- authentication and authorization ---------------------------------------------------------


def test_every_read_needs_a_user(web: Web) -> None:
    for path in reads(web):
        anonymous = web.client.get(path)
        assert anonymous.status_code == 401, path
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        wrong = web.client.get(path, headers=web.bearer("hvt_not-a-real-token"))
        assert wrong.status_code == 401, path
        assert web.client.get(path, headers=web.viewer).status_code == 200, path


def test_every_write_needs_an_admin_and_changes_nothing_otherwise(web: Web) -> None:
    for method, path, body in writes(web):
        assert web.client.request(method, path, json=body).status_code == 401, path
        garbage = web.client.request(method, path, json=body, headers={"Authorization": "Basic x"})
        assert garbage.status_code == 401, path
        viewer = web.client.request(method, path, json=body, headers=web.viewer)
        assert viewer.status_code == 403, path
    with web.state.session() as session:
        trail = session.get(Source, web.data.trail_id)
        assert trail is not None
        assert trail.bucket == "prod-trail-logs"
        assert session.scalar(select(RoleConfig).where(RoleConfig.name == "another")) is None
        assert session.scalars(select(SuppressionRecord)).all() == []
        assert {r.status for r in session.scalars(select(AnomalyRecord))} == {"open"}


def test_a_disabled_users_token_stops_working(web: Web) -> None:
    assert web.client.get("/api/v1/me", headers=web.viewer).json()["username"] == "viewer"
    with web.state.session() as session:
        user = session.scalar(select(User).where(User.username == "viewer"))
        assert user is not None
        user.enabled = False
    assert web.client.get("/api/v1/me", headers=web.viewer).status_code == 401


def test_a_session_cookie_write_needs_the_csrf_header(web: Web) -> None:
    assert web.login().status_code == 303
    path = f"/api/v1/anomalies/{web.data.anomalies[0].id}/ack"
    refused = web.client.post(path)
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["detail"]
    token = web.csrf("/overview")
    assert web.client.post(path, headers={"X-CSRF-Token": "forged"}).status_code == 403
    accepted = web.client.post(path, headers={"X-CSRF-Token": token})
    assert accepted.status_code == 200
    assert accepted.json()["status"] == "acked"


def test_me_says_who_and_how(web: Web) -> None:
    assert web.client.get("/api/v1/me", headers=web.admin).json() == {
        "username": "admin",
        "role": "admin",
        "via": "token",
    }


def test_public_read_opens_reads_but_not_writes(make_web: WebFactory) -> None:
    web = make_web(public_read=True)
    assert web.client.get("/api/v1/sources").status_code == 200
    assert web.client.get("/api/v1/me").json()["role"] == "anonymous"
    # A wrong token is still refused, so a client learns its token was revoked.
    assert web.client.get("/api/v1/sources", headers=web.bearer("hvt_x")).status_code == 401
    for method, path, body in writes(web):
        assert web.client.request(method, path, json=body).status_code == 401, path
    # Reading raw records from S3 uses stored credentials: never for anonymous callers.
    anomaly = web.data.anomalies[0].id
    assert web.client.get(f"/api/v1/anomalies/{anomaly}/evidence/0").status_code == 401


def test_openapi_document_lists_the_api(web: Web) -> None:
    document = web.client.get("/api/v1/openapi.json").json()
    paths = document["paths"]
    for path in (
        "/api/v1/accounts",
        "/api/v1/clusters",
        "/api/v1/sources",
        "/api/v1/sources/{source_id}/storage",
        "/api/v1/roles",
        "/api/v1/anomalies",
        "/api/v1/anomalies/{anomaly_id}/ack",
        "/api/v1/incidents",
        "/api/v1/suppressions",
    ):
        assert path in paths, path
    assert not any(p.startswith(("/login", "/overview")) for p in paths)
    assert "put" in paths["/api/v1/sources/{source_id}/storage"]
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert paths["/api/v1/roles"]["post"]["security"] == [{"HTTPBearer": []}]
    assert web.client.get("/docs").status_code == 404


# --- inventory reads --------------------------------------------------------------------------


def test_accounts(web: Web) -> None:
    accounts = web.client.get("/api/v1/accounts", headers=web.viewer).json()
    assert [(a["account_id"], a["name"], a["organization_id"]) for a in accounts] == [
        (ACCOUNT, "prod", None),
        (ORG_ACCOUNT, "payments", "o-abcdef1234"),
    ]


def test_sources_show_storage_health_lag_and_events(web: Web) -> None:
    sources = web.client.get("/api/v1/sources", headers=web.viewer).json()
    by_id = {s["id"]: s for s in sources}
    trail = by_id[web.data.trail_id]
    assert trail["bucket"] == "prod-trail-logs"
    assert trail["role_display"] == f"arn:aws:iam::{ACCOUNT}:role/audit-reader"
    assert trail["health"] == "ok"
    assert trail["lag_seconds"] == 7 * 60
    # 24 ledger objects of 1200 events, more during the day, 7 more per hour back.
    assert trail["events_24h"] > 24 * 1200
    org = by_id[web.data.org_trail_id]
    assert org["health"] == "degraded"
    assert "AccessDenied" in org["health_reason"]
    # Only the objects delivered within 24 hours count: 18 hourly objects ending 6 h ago.
    assert 18 * 800 <= org["events_24h"] < 24 * 800 * 2
    only_eks = web.client.get("/api/v1/sources?kind=eks", headers=web.viewer).json()
    assert [s["id"] for s in only_eks] == [web.data.cluster_id]
    assert only_eks[0]["role_display"] == "instance profile"
    assert web.client.get("/api/v1/sources?kind=s3", headers=web.viewer).status_code == 422


def test_clusters_and_one_source(web: Web) -> None:
    clusters = web.client.get("/api/v1/clusters", headers=web.viewer).json()
    assert [(c["cluster"], c["prefix"]) for c in clusters] == [
        ("checkout", f"EKSLogs/{ACCOUNT}/checkout")
    ]
    one = web.client.get(f"/api/v1/sources/{web.data.cluster_id}", headers=web.viewer)
    assert one.json()["source"] == f"{ACCOUNT}/checkout"
    assert web.client.get("/api/v1/sources/9999", headers=web.viewer).status_code == 404
    assert web.client.get("/api/v1/sources/abc", headers=web.viewer).status_code == 422
    assert web.client.get("/api/v1/sources/0", headers=web.viewer).status_code == 422


def test_roles_mask_access_keys_and_never_return_secrets(web: Web) -> None:
    response = web.client.get("/api/v1/roles", headers=web.viewer)
    roles = {r["name"]: r for r in response.json()}
    assert roles["legacy-keys"]["access_key_id"] == "****" + KEY_ID[-4:]
    assert roles["legacy-keys"]["has_secret"] is True
    assert roles["org-reader"]["access_key_id"] is None
    assert SECRET not in response.text
    assert KEY_ID not in response.text


# --- storage edits ----------------------------------------------------------------------------


def test_edit_storage_saves_what_is_given_and_keeps_the_rest(web: Web) -> None:
    response = web.client.put(
        f"/api/v1/sources/{web.data.trail_id}/storage",
        json={
            "bucket": "new-trail-bucket",
            "region": "eu-central-1",
            "prefix": "logs/AWSLogs/111122223333",
        },
        headers=web.admin,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["bucket"], body["region"], body["prefix"], body["role"]) == (
        "new-trail-bucket",
        "eu-central-1",
        "logs/AWSLogs/111122223333",
        "legacy-keys",
    )
    cleared = web.client.put(
        f"/api/v1/sources/{web.data.trail_id}/storage", json={"role": None}, headers=web.admin
    )
    assert cleared.json()["role"] is None
    with web.state.session() as session:
        source = session.get(Source, web.data.trail_id)
        assert source is not None
        assert (source.bucket, source.role_config_id) == ("new-trail-bucket", None)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"bucket": "Bad_Bucket"}, "bucket"),
        ({"bucket": "192.168.1.1"}, "bucket"),
        ({"region": "mars-north-1"}, "region"),
        ({"prefix": "/AWSLogs"}, "prefix"),
        ({"prefix": "AWSLogs//x"}, "prefix"),
        ({"prefix": ""}, "prefix"),
        ({"prefix": "AWSLogs/555555555555"}, "prefix"),
        ({"prefix": "AWSLogs/../x"}, "prefix"),
        ({"role": "no-such-role"}, "role"),
        ({"role": "org-reader", "new_role": {"name": "x"}}, "role"),
        ({"new_role": {"name": "org-reader"}}, "new_role.name"),
        ({"new_role": {"name": "r2", "role_arn": "arn:aws:iam::1:role/x"}}, "new_role.role_arn"),
        (
            {"new_role": {"name": "r2", "role_arn": "arn:aws-cn:iam::111122223333:role/x"}},
            "new_role.role_arn",
        ),
        ({"new_role": {"name": "r2", "partition": "aws-cn"}}, "new_role.partition"),
        ({"new_role": {"name": "r2", "session_name": "x"}}, "new_role.session_name"),
        (
            {"new_role": {"name": "r2", "via_role_arn": "arn:aws:iam::111122223333:role/x"}},
            "new_role.via_role_arn",
        ),
        ({"new_role": {"name": "r2", "external_id": "has spaces"}}, "new_role.external_id"),
        ({"new_role": {"name": "r2", "authentication": "access-keys"}}, "new_role.access_key_id"),
        (
            {
                "new_role": {
                    "name": "r2",
                    "authentication": "access-keys",
                    "access_key_id": "AKIAIOSFODNN7EXAMPLF",
                }
            },
            "new_role.secret_access_key",
        ),
        (
            {
                "new_role": {
                    "name": "r2",
                    "authentication": "access-keys",
                    "access_key_id": "akia-lowercase",
                    "secret_access_key": NEW_SECRET,
                }
            },
            "new_role.access_key_id",
        ),
    ],
)
def test_edit_storage_refuses_bad_values_by_field(
    web: Web, body: dict[str, object], field: str
) -> None:
    response = web.client.put(
        f"/api/v1/sources/{web.data.trail_id}/storage", json=body, headers=web.admin
    )
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]["errors"]
    assert NEW_SECRET not in response.text
    with web.state.session() as session:
        source = session.get(Source, web.data.trail_id)
        assert source is not None
        assert (source.bucket, source.region) == ("prod-trail-logs", "us-east-1")
        assert session.scalar(select(RoleConfig).where(RoleConfig.name == "r2")) is None


def test_edit_storage_rejects_unknown_fields_and_bad_bodies(web: Web) -> None:
    path = f"/api/v1/sources/{web.data.trail_id}/storage"
    unknown = web.client.put(path, json={"bucket_name": "x"}, headers=web.admin)
    assert unknown.status_code == 422
    not_json = web.client.put(path, content=b"bucket=x", headers=web.admin)
    assert not_json.status_code == 422
    too_long = web.client.put(path, json={"bucket": "b" * 300}, headers=web.admin)
    assert too_long.status_code == 422
    assert (
        web.client.put("/api/v1/sources/9999/storage", json={}, headers=web.admin).status_code
        == 404
    )


def test_an_eks_prefix_cannot_be_edited(web: Web) -> None:
    path = f"/api/v1/sources/{web.data.cluster_id}/storage"
    refused = web.client.put(path, json={"prefix": "elsewhere"}, headers=web.admin)
    assert refused.status_code == 422
    assert "derived" in refused.json()["detail"]["errors"]["prefix"]
    moved = web.client.put(path, json={"bucket": "other-eks-logs"}, headers=web.admin)
    assert moved.status_code == 200
    assert moved.json()["prefix"] == f"EKSLogs/{ACCOUNT}/checkout"


def test_edit_storage_with_a_new_access_key_role(web: Web) -> None:
    response = web.client.put(
        f"/api/v1/sources/{web.data.cluster_id}/storage",
        json={
            "new_role": {
                "name": "eks-keys",
                "role_arn": f"arn:aws:iam::{ACCOUNT}:role/eks-audit-reader",
                "session_name": "console",
                "authentication": "access-keys",
                "access_key_id": "AKIAIOSFODNN7EXAMPLF",
                "secret_access_key": NEW_SECRET,
            }
        },
        headers=web.admin,
    )
    assert response.status_code == 200, response.text
    assert response.json()["role"] == "eks-keys"
    assert NEW_SECRET not in response.text
    with web.state.session() as session:
        key = session.scalar(
            select(AccessKeyConfig).where(AccessKeyConfig.access_key_id == "AKIAIOSFODNN7EXAMPLF")
        )
        assert key is not None
        assert NEW_SECRET not in key.secret_encrypted
        assert web.state.box.decrypt(key.secret_encrypted) == NEW_SECRET
    roles = web.client.get("/api/v1/roles", headers=web.admin)
    assert NEW_SECRET not in roles.text


def test_secrets_are_not_echoed_by_schema_errors(web: Web) -> None:
    too_long = "S" * 200
    response = web.client.post(
        "/api/v1/roles",
        json={
            "name": "k",
            "authentication": "access-keys",
            "access_key_id": "AKIAIOSFODNN7EXAMPLF",
            "secret_access_key": too_long,
        },
        headers=web.admin,
    )
    assert response.status_code == 422
    assert too_long not in response.text
    assert response.json()["detail"][0]["loc"][-1] == "secret_access_key"


# --- roles ------------------------------------------------------------------------------------


def test_create_role(web: Web) -> None:
    created = web.client.post(
        "/api/v1/roles",
        json={
            "name": "gov-reader",
            "role_arn": "arn:aws-us-gov:iam::111122223333:role/reader",
            "partition": "aws-us-gov",
        },
        headers=web.admin,
    )
    assert created.status_code == 201, created.text
    assert created.json()["partition"] == "aws-us-gov"
    again = web.client.post("/api/v1/roles", json={"name": "gov-reader"}, headers=web.admin)
    assert again.status_code == 422
    assert "name" in again.json()["detail"]["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": " leading-space"}, "name"),
        ({"name": "r", "role_arn": "arn:aws:iam::123:role/x"}, "role_arn"),
        ({"name": "r", "partition": "aws-moon"}, "partition"),
        (
            {"name": "r", "authentication": "access-keys", "access_key_id": "AKIAIOSFODNN7EXAMPLF"},
            "secret_access_key",
        ),
        ({"name": "r", "access_key_id": "AKIAIOSFODNN7EXAMPLF"}, "authentication"),
        (
            {
                "name": "r",
                "authentication": "access-keys",
                "access_key_id": "AKIAIOSFODNN7EXAMPLF",
                "secret_access_key": "short",
            },
            "secret_access_key",
        ),
    ],
)
def test_create_role_refuses_bad_values(web: Web, body: dict[str, object], field: str) -> None:
    response = web.client.post("/api/v1/roles", json=body, headers=web.admin)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]["errors"]
    assert "short" not in response.text.replace("shortest", "")


def test_create_role_schema_errors(web: Web) -> None:
    for body in ({}, {"name": "r", "authentication": "password"}, {"name": "r", "extra": 1}):
        assert web.client.post("/api/v1/roles", json=body, headers=web.admin).status_code == 422


# --- anomalies --------------------------------------------------------------------------------


def _detectors(web: Web, query: str) -> set[str]:
    response = web.client.get(f"/api/v1/anomalies?{query}", headers=web.viewer)
    assert response.status_code == 200, response.text
    return {a["detector"] for a in response.json()}


def test_anomaly_filters(web: Web) -> None:
    everything = _detectors(web, "")
    assert len(everything) == 6
    assert _detectors(web, "severity=high") == {
        "aws.cloudtrail-logging-impaired",
        "aws.iam-access-key-for-other-user",
        "aws.guardduty-disabled",
    }
    assert _detectors(web, f"account={ORG_ACCOUNT}") == {"aws.guardduty-disabled"}
    assert _detectors(web, "cluster=prod") == {"k8s.pod-exec"}
    assert _detectors(web, "detector=aws.iam-*") == {"aws.iam-access-key-for-other-user"}
    assert _detectors(web, "since=24h") == {
        "aws.cloudtrail-logging-impaired",
        "aws.iam-access-key-for-other-user",
        "behav.access-denied-burst",
    }
    assert _detectors(web, "until=3d") == {"aws.database-disruption"}
    assert _detectors(web, "since=2026-01-14T00:00:00Z&until=2026-01-14T12:00:00Z") == {
        "k8s.pod-exec"
    }
    assert _detectors(web, "status=acked") == set()
    assert len(web.client.get("/api/v1/anomalies?limit=2", headers=web.viewer).json()) == 2


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("severity=urgent", "severity"),
        ("account=12345", "account"),
        ("cluster=-bad", "cluster"),
        ("detector=a%20b", "detector"),
        ("status=closed", "status"),
        ("since=yesterday", "since"),
        ("since=99999999d", "since"),
        ("since=1h&until=2d", "until"),
        ("limit=0", "limit"),
        ("limit=x", "limit"),
    ],
)
def test_anomaly_filters_refuse_bad_values(web: Web, query: str, field: str) -> None:
    response = web.client.get(f"/api/v1/anomalies?{query}", headers=web.viewer)
    assert response.status_code == 422
    assert field in response.json()["detail"]["errors"]


def test_one_anomaly_by_id_or_prefix(web: Web) -> None:
    anomaly = web.data.anomaly("aws.cloudtrail-logging-impaired")
    full = web.client.get(f"/api/v1/anomalies/{anomaly.id}", headers=web.viewer).json()
    assert full["mitre"]["techniques"] == ["T1562.008"]
    assert full["evidence"][0]["key"] == "AWSLogs/test.json.gz"
    prefix = web.client.get(f"/api/v1/anomalies/{anomaly.id[:10]}", headers=web.viewer)
    assert prefix.json()["id"] == anomaly.id
    assert web.client.get("/api/v1/anomalies/an-00000000", headers=web.viewer).status_code == 404
    assert web.client.get("/api/v1/anomalies/a'--", headers=web.viewer).status_code == 422


def test_ack_an_anomaly(web: Web) -> None:
    anomaly = web.data.anomaly("k8s.pod-exec")
    response = web.client.post(f"/api/v1/anomalies/{anomaly.id}/ack", headers=web.admin)
    assert response.status_code == 200
    assert response.json()["status"] == "acked"
    with web.state.session() as session:
        record = session.get(AnomalyRecord, anomaly.id)
        assert record is not None
        assert (record.acked_by, record.acked_at) == ("admin", web.clock())
    assert _detectors(web, "status=acked") == {"k8s.pod-exec"}
    assert (
        web.client.post("/api/v1/anomalies/an-00000000/ack", headers=web.admin).status_code == 404
    )


# --- suppressions -----------------------------------------------------------------------------


def test_add_and_list_suppressions(web: Web) -> None:
    created = web.client.post(
        "/api/v1/suppressions",
        json={
            "detector": "aws.guardduty-disabled",
            "account": ORG_ACCOUNT,
            "until": "7d",
            "reason": "planned migration",
        },
        headers=web.admin,
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["created_by"] == "admin"
    assert body["until"] == (web.clock() + timedelta(days=7)).isoformat()
    listed = web.client.get("/api/v1/suppressions?active=true", headers=web.viewer).json()
    assert [s["id"] for s in listed] == [body["id"]]
    web.clock.advance(timedelta(days=8))
    assert web.client.get("/api/v1/suppressions?active=true", headers=web.viewer).json() == []
    assert len(web.client.get("/api/v1/suppressions", headers=web.viewer).json()) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"detector": "aws.no-such-detector"}, "detector"),
        ({"detector": "drop table"}, "detector"),
        ({"detector": "aws.*", "account": "12"}, "account"),
        ({"detector": "aws.*", "until": "2020-01-01T00:00:00Z"}, "until"),
        ({"detector": "aws.*", "until": "soon"}, "until"),
    ],
)
def test_suppressions_refuse_bad_values(web: Web, body: dict[str, object], field: str) -> None:
    response = web.client.post("/api/v1/suppressions", json=body, headers=web.admin)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]["errors"]


# --- incidents and overview -------------------------------------------------------------------


def test_incidents(web: Web) -> None:
    listed = web.client.get("/api/v1/incidents", headers=web.viewer).json()
    assert [i["id"] for i in listed] == [web.data.incident_id]
    one = web.client.get(f"/api/v1/incidents/{web.data.incident_id}", headers=web.viewer).json()
    assert [a["detector"] for a in one["anomalies"]] == [
        "behav.access-denied-burst",
        "aws.iam-access-key-for-other-user",
        "aws.cloudtrail-logging-impaired",
    ]
    assert web.client.get("/api/v1/incidents/in-00000000", headers=web.viewer).status_code == 404
    assert web.client.get("/api/v1/incidents?limit=0", headers=web.viewer).status_code == 422
    critical = web.client.get("/api/v1/incidents?severity=critical&since=24h", headers=web.viewer)
    assert [i["id"] for i in critical.json()] == [web.data.incident_id]
    web.clock.advance(timedelta(days=2))
    assert web.client.get("/api/v1/incidents?since=24h", headers=web.viewer).json() == []
    bad = web.client.get("/api/v1/incidents?severity=x&since=y", headers=web.viewer)
    assert bad.status_code == 422
    assert set(bad.json()["detail"]["errors"]) == {"severity", "since"}


def test_overview_numbers(web: Web) -> None:
    data = web.client.get("/api/v1/overview", headers=web.viewer).json()
    assert (data["accounts"], data["sources"], data["open_anomalies"]) == (2, 3, 6)
    assert data["open_incidents"] == 1
    assert [s["id"] for s in data["degraded_sources"]] == [web.data.org_trail_id]
    hours = data["events_per_hour"]
    assert len(hours) == 24
    # The 24 UTC hours ending with the current one (12:00, still empty at 12:00 sharp).
    assert hours[-1] == {"hour": "2026-01-15T12:00:00+00:00", "events": 0}
    assert hours[0]["hour"] == "2026-01-14T13:00:00+00:00"
    # 11:55: the trail's object (1200, +50% in office hours) and the cluster's (300, +50%).
    assert hours[-2]["events"] == 1800 + 450
    # 05:55: the degraded trail's newest object (800) and the others' of 6 hours back.
    assert hours[-8]["events"] == 800 + (1200 + 6 * 7) + (300 + 6 * 7)
    # Objects of 12:00-13:00 yesterday are within 24 hours but before the chart's first hour.
    assert sum(h["events"] for h in hours) < data["events_24h"]
    days = data["anomalies_per_day"]
    assert len(days) == 14
    assert sum(sum(d["by_severity"].values()) for d in days) == 6
    assert days[-1]["by_severity"]["critical"] == 1
