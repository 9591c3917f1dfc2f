"""The server-rendered pages: login, reading, editing with CSRF, security headers, cookies."""

from __future__ import annotations

import re
from datetime import timedelta
from http.cookies import SimpleCookie

import httpx
import msgspec
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from harvester import users
from harvester.db.anomaly_models import AnomalyRecord, SuppressionRecord
from harvester.db.models import AccessKeyConfig, RoleConfig, Source
from harvester.db.user_models import User
from harvester.detect import repository as repo
from harvester.notify.model import DestinationSpec
from harvester.notify.store import upsert_destination
from tests.integration.web.conftest import ADMIN_PASSWORD, VIEWER_PASSWORD, Web, WebFactory
from tests.integration.web.seed import KEY_ID, ORG_ACCOUNT, SECRET
from tests.unit.detect.builders import ACCOUNT

pytestmark = pytest.mark.integration

PAGES = [
    "/overview",
    "/accounts/audit-logs",
    "/accounts/clusters",
    "/anomalies",
    "/incidents",
    "/destinations",
]
NEW_SECRET = "Zq9TnewSecretKeyValueForTests0123456789xy"


def _cookie(response: object) -> SimpleCookie:
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])  # type: ignore[attr-defined]
    return jar


def _error_beside(html: str, field: str) -> str:
    ident = re.escape(field.replace(".", "-"))
    match = re.search(rf'<p class="field-error" id="err-{ident}">([^<]*)</p>', html)
    assert match, f"no error shown beside {field}"
    return match.group(1)


# --- login and sessions -----------------------------------------------------------------------


def test_pages_send_anonymous_visitors_to_the_login_page(web: Web) -> None:
    for path in [*PAGES, f"/anomalies/{web.data.anomalies[0].id}", "/incidents/x1234"]:
        response = web.client.get(path, follow_redirects=False)
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/login?next=%2F"), path


def test_login_then_every_page_renders(web: Web) -> None:
    response = web.login()
    assert response.status_code == 303
    assert response.headers["location"] == "/overview"
    texts = {path: web.client.get(path).text for path in PAGES}
    assert "Events per hour" in texts["/overview"]
    assert "<svg" in texts["/overview"]
    assert "org-trail-bucket" in texts["/overview"]  # the degraded source is listed
    assert "prod-trail-logs" in texts["/accounts/audit-logs"]
    assert "the bucket policy denies" in texts["/accounts/audit-logs"]
    assert "o-abcdef1234" in texts["/accounts/audit-logs"]
    assert "checkout" in texts["/accounts/clusters"]
    assert "prod-trail-logs" not in texts["/accounts/clusters"]
    assert "CloudTrail logging stopped or reduced" in texts["/anomalies"]
    assert "Attack chain by" in texts["/incidents"]
    assert "No destinations." in texts["/destinations"]
    # Access keys are shown masked on every page, secrets never.
    for text in texts.values():
        assert SECRET not in text
        assert KEY_ID not in text


def test_session_cookie_is_httponly_strict_and_signed(web: Web) -> None:
    response = web.login()
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header
    assert "SameSite=Strict" in header
    assert "Path=/" in header
    assert "Secure" not in header  # plain HTTP on loopback by default
    assert "strict-transport-security" not in response.headers
    value = _cookie(response)["harvester_session"].value
    body, signature = value.rsplit(".", 1)
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
    web.client.cookies.set("harvester_session", forged)
    assert web.client.get("/overview", follow_redirects=False).status_code == 303
    web.client.cookies.set("harvester_session", value)
    assert web.client.get("/overview", follow_redirects=False).status_code == 200


def test_secure_cookies_use_the_host_prefix(make_web: WebFactory) -> None:
    web = make_web(secure_cookies=True)
    header = web.client.get("/login").headers["set-cookie"]
    assert header.startswith("__Host-harvester=")
    assert "Secure" in header


def test_wrong_password_and_unknown_user_look_the_same(web: Web) -> None:
    wrong = web.login(password="not the password at all")
    unknown = web.login(username="nobody", password="not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert "wrong username or password" in wrong.text
    assert "wrong username or password" in unknown.text
    assert "not the password" not in wrong.text


def _login_from(web: Web, address: str, username: str, password: str) -> httpx.Response:
    response: httpx.Response = web.client.post(
        "/login",
        data={"csrf_token": web.csrf(), "username": username, "password": password},
        headers={"x-forwarded-for": address},
        follow_redirects=False,
    )
    return response


def test_logins_from_one_address_slow_down_then_recover(web: Web) -> None:
    for n in range(5):
        assert web.login(username=f"user{n}", password="guess guess guess").status_code == 401
    # Password spraying: the sixth username from the same address has to wait.
    blocked = web.login()
    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "1"
    assert "try again in 1s" in blocked.text
    web.clock.advance(timedelta(seconds=1))
    assert web.login().status_code == 303


def test_failures_for_a_user_never_refuse_the_right_password_from_elsewhere(
    make_web: WebFactory,
) -> None:
    web = make_web(forwarded_allow_ips=("testclient",))  # the test client is the proxy
    codes = [
        _login_from(web, "203.0.113.5", "admin", "guess guess guess").status_code for _ in range(10)
    ]
    assert codes[:5] == [401] * 5
    assert set(codes[5:]) == {429}
    # The attacker's address is held up; the admin's own address is not.
    assert _login_from(web, "203.0.113.5", "admin", ADMIN_PASSWORD).status_code == 429
    assert _login_from(web, "198.51.100.9", "admin", ADMIN_PASSWORD).status_code == 303


def test_forwarded_headers_count_only_from_a_trusted_proxy(web: Web) -> None:
    # No --forwarded-allow-ips: each "client" below is really the one test client.
    for n in range(5):
        _login_from(web, f"203.0.113.{n}", "admin", "guess guess guess")
    assert _login_from(web, "198.51.100.9", "admin", ADMIN_PASSWORD).status_code == 429


def test_login_needs_the_csrf_token(web: Web) -> None:
    web.client.get("/login")
    response = web.client.post(
        "/login",
        data={"username": "admin", "password": ADMIN_PASSWORD},
        follow_redirects=False,
    )
    assert response.status_code == 403
    assert "security token" in response.text


@pytest.mark.parametrize(
    "target",
    ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"],
)
def test_login_never_redirects_off_site(web: Web, target: str) -> None:
    response = web.client.post(
        "/login",
        data={
            "csrf_token": web.csrf(),
            "username": "admin",
            "password": ADMIN_PASSWORD,
            "next": target,
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/overview"


def test_login_keeps_a_local_next_page(web: Web) -> None:
    first = web.client.get("/anomalies?severity=high", follow_redirects=False)
    assert first.headers["location"] == "/login?next=%2Fanomalies%3Fseverity%3Dhigh"
    login_page = web.client.get(first.headers["location"])
    assert 'value="/anomalies?severity=high"' in login_page.text
    response = web.client.post(
        "/login",
        data={
            "csrf_token": web.csrf(),
            "username": "admin",
            "password": ADMIN_PASSWORD,
            "next": "/anomalies?severity=high",
        },
        follow_redirects=False,
    )
    assert response.headers["location"] == "/anomalies?severity=high"


def test_login_starts_a_new_session(web: Web) -> None:
    before = web.csrf()
    web.login()
    assert web.csrf("/overview") != before


def test_logout_ends_the_session(web: Web) -> None:
    web.login()
    response = web.post_form("/logout", {})
    assert response.headers["location"] == "/login"
    assert web.client.get("/overview", follow_redirects=False).status_code == 303


def _captured(login: httpx.Response) -> str:
    """The session cookie a login set, as someone who copied it would hold it."""
    return _cookie(login)["harvester_session"].value


def _replayed(web: Web, cookie: str) -> int:
    # An explicit Cookie header: the client's own jar is neither sent nor changed by it.
    headers = {"cookie": f"harvester_session={cookie}"}
    return web.client.get("/overview", headers=headers, follow_redirects=False).status_code


def test_a_cookie_copied_before_logout_is_worthless_after_it(web: Web) -> None:
    copied = _captured(web.login())
    assert _replayed(web, copied) == 200
    web.post_form("/logout", {})
    assert _replayed(web, copied) == 303


def _admin(session: Session) -> User:
    user = session.scalar(select(User).where(User.username == "admin"))
    assert user is not None
    return user


def test_a_password_change_or_disabling_ends_sessions(web: Web) -> None:
    copied = _captured(web.login())
    with web.state.session() as session:
        users.set_password(session, user=_admin(session), password="a brand new password")
    assert _replayed(web, copied) == 303
    copied = _captured(web.login(password="a brand new password"))
    assert _replayed(web, copied) == 200
    with web.state.session() as session:
        users.set_enabled(session, user=_admin(session), enabled=False)
    assert _replayed(web, copied) == 303
    assert web.login(password="a brand new password").status_code == 401
    # Enabled again, the user logs in anew: the old cookie does not come back to life.
    with web.state.session() as session:
        users.set_enabled(session, user=_admin(session), enabled=True)
    assert _replayed(web, copied) == 303
    assert web.login(password="a brand new password").status_code == 303


# --- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login", "/api/v1/openapi.json", "/nowhere", "/static/app.css"])
def test_security_headers_everywhere(web: Web, path: str) -> None:
    headers = web.client.get(path).headers
    csp = headers["content-security-policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"


def test_pages_have_no_inline_script_or_style(web: Web) -> None:
    web.login()
    pages = [
        *PAGES,
        f"/sources/{web.data.trail_id}/edit",
        "/destinations/new",
        f"/anomalies/{web.data.anomalies[0].id}",
        f"/incidents/{web.data.incident_id}",
    ]
    for path in pages:
        html = web.client.get(path).text
        assert "<script" not in html, path
        assert " style=" not in html, path
        assert "<style" not in html, path
        assert web.client.get(path).headers["cache-control"] == "no-store"


def test_unknown_pages_are_html_404s(web: Web) -> None:
    web.login()
    for path in ("/nowhere", "/sources/9999/edit", "/anomalies/an-00000000"):
        response = web.client.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text


# --- viewers ----------------------------------------------------------------------------------


def test_a_viewer_reads_but_cannot_edit(web: Web) -> None:
    web.login("viewer", VIEWER_PASSWORD)
    listing = web.client.get("/accounts/audit-logs").text
    assert "prod-trail-logs" in listing
    assert "/edit" not in listing
    assert web.client.get(f"/sources/{web.data.trail_id}/edit").status_code == 403
    anomaly = web.data.anomalies[0]
    assert "Acknowledge" not in web.client.get(f"/anomalies/{anomaly.id}").text
    refused = web.post_form(f"/anomalies/{anomaly.id}/ack", {})
    assert refused.status_code == 403
    edit = web.post_form(f"/sources/{web.data.trail_id}/edit", {"bucket": "viewer-bucket"})
    assert edit.status_code == 403
    with web.state.session() as session:
        record = session.get(AnomalyRecord, anomaly.id)
        assert record is not None
        assert record.status == "open"


def test_public_read_shows_pages_but_forms_still_need_a_login(make_web: WebFactory) -> None:
    web = make_web(public_read=True)
    assert web.client.get("/overview", follow_redirects=False).status_code == 200
    listing = web.client.get("/accounts/audit-logs").text
    assert "/edit" not in listing
    assert "Log in" in listing
    anomaly = web.data.anomalies[0].id
    refused = web.post_form(f"/anomalies/{anomaly}/ack", {}, page="/login")
    assert refused.status_code == 303
    assert refused.headers["location"].startswith("/login")
    assert (
        web.client.get(f"/anomalies/{anomaly}/evidence/0", follow_redirects=False).status_code
        == 303
    )


# --- the storage configuration form -----------------------------------------------------------


def test_every_form_post_needs_the_csrf_token(web: Web) -> None:
    web.login()
    anomaly = web.data.anomalies[0].id
    for path, data in [
        (f"/sources/{web.data.trail_id}/edit", {"bucket": "x-bucket", "region": "us-east-1"}),
        (f"/sources/{web.data.trail_id}/doctor", {}),
        (f"/anomalies/{anomaly}/ack", {}),
        (f"/anomalies/{anomaly}/suppress", {"until": "1d"}),
        ("/logout", {}),
    ]:
        missing = web.client.post(path, data=data, follow_redirects=False)
        assert missing.status_code == 403, path
        forged = web.client.post(
            path, data={**data, "csrf_token": "forged"}, follow_redirects=False
        )
        assert forged.status_code == 403, path
    # Still logged in, nothing changed.
    assert web.client.get("/overview", follow_redirects=False).status_code == 200
    with web.state.session() as session:
        assert session.scalars(select(SuppressionRecord)).all() == []


def _storage_form(**fields: str) -> dict[str, str]:
    form = {
        "bucket": "prod-trail-logs",
        "region": "us-east-1",
        "prefix": f"AWSLogs/{ACCOUNT}",
        "role_mode": "existing",
        "role": "legacy-keys",
    }
    form.update(fields)
    return form


def test_the_edit_form_shows_current_values_and_masks_keys(web: Web) -> None:
    web.login()
    html = web.client.get(f"/sources/{web.data.trail_id}/edit").text
    assert 'value="prod-trail-logs"' in html
    assert 'value="AWSLogs/111122223333"' in html
    assert "****" + KEY_ID[-4:] in html
    assert KEY_ID not in html
    assert SECRET not in html
    eks = web.client.get(f"/sources/{web.data.cluster_id}/edit").text
    assert 'name="prefix"' not in eks  # shown, not editable
    assert f"EKSLogs/{ACCOUNT}/checkout" in eks


def test_a_bad_value_is_shown_beside_its_field_then_a_good_one_is_saved(web: Web) -> None:
    web.login()
    path = f"/sources/{web.data.trail_id}/edit"
    bad = web.post_form(path, _storage_form(bucket="Bad_Bucket", prefix="/AWSLogs"), page=path)
    assert bad.status_code == 422
    assert "S3 bucket names" in _error_beside(bad.text, "bucket")
    assert "leading slash" in _error_beside(bad.text, "prefix")
    assert 'value="Bad_Bucket"' in bad.text  # what was typed stays, to be fixed
    assert 'aria-invalid="true" aria-describedby="err-bucket"' in bad.text
    other = web.post_form(path, _storage_form(prefix="AWSLogs/555555555555"), page=path)
    assert other.status_code == 422
    assert "names account 555555555555, not 111122223333" in _error_beside(other.text, "prefix")
    good = web.post_form(path, _storage_form(bucket="fixed-trail-logs"), page=path)
    assert good.status_code == 303
    assert good.headers["location"] == "/accounts/audit-logs"
    listing = web.client.get("/accounts/audit-logs").text
    assert "Saved the storage configuration of 111122223333." in listing
    assert "fixed-trail-logs" in listing
    assert "Saved the storage" not in web.client.get("/accounts/audit-logs").text


def test_creating_an_access_key_role_from_the_form(web: Web) -> None:
    web.login()
    path = f"/sources/{web.data.org_trail_id}/edit"
    role_fields = {
        "role_mode": "new",
        "new_role.name": "org-keys",
        "new_role.role_arn": f"arn:aws:iam::{ORG_ACCOUNT}:role/reader",
        "new_role.session_name": "console",
        "new_role.authentication": "access-keys",
        "new_role.access_key_id": "AKIAIOSFODNN7EXAMPLF",
    }
    base = {
        "bucket": "org-trail-bucket",
        "region": "eu-west-1",
        "prefix": f"AWSLogs/o-abcdef1234/{ORG_ACCOUNT}",
    }
    short = web.post_form(
        path, {**base, **role_fields, "new_role.secret_access_key": "tooshort"}, page=path
    )
    assert short.status_code == 422
    assert "16-128 characters" in _error_beside(short.text, "new_role.secret_access_key")
    assert "tooshort" not in short.text
    assert 'value="org-keys"' in short.text
    saved = web.post_form(
        path, {**base, **role_fields, "new_role.secret_access_key": NEW_SECRET}, page=path
    )
    assert saved.status_code == 303
    with web.state.session() as session:
        source = session.get(Source, web.data.org_trail_id)
        assert source is not None
        assert source.role is not None
        assert source.role.name == "org-keys"
        key = session.scalar(
            select(AccessKeyConfig).where(AccessKeyConfig.access_key_id == "AKIAIOSFODNN7EXAMPLF")
        )
        assert key is not None
        assert web.state.box.decrypt(key.secret_encrypted) == NEW_SECRET
    for page in ("/accounts/audit-logs", path):
        assert NEW_SECRET not in web.client.get(page).text


def test_the_role_form_takes_a_via_role_and_an_external_id(web: Web) -> None:
    web.login()
    path = f"/sources/{web.data.org_trail_id}/edit"
    assert 'name="new_role.via_role_arn"' in web.client.get(path).text
    fields = {
        "bucket": "org-trail-bucket",
        "region": "eu-west-1",
        "prefix": f"AWSLogs/o-abcdef1234/{ORG_ACCOUNT}",
        "role_mode": "new",
        "new_role.name": "org-chained",
        "new_role.role_arn": f"arn:aws:iam::{ORG_ACCOUNT}:role/reader",
        "new_role.via_role_arn": "arn:aws:iam::999999999999:user/not-a-role",
        "new_role.external_id": "tenant-external-id-0042",
    }
    bad = web.post_form(path, fields, page=path)
    assert bad.status_code == 422
    assert "role ARN" in _error_beside(bad.text, "new_role.via_role_arn")
    assert "tenant-external-id-0042" not in bad.text  # masked everywhere, not echoed either
    via = "arn:aws:iam::999999999999:role/audit-harvester-primary"
    saved = web.post_form(path, {**fields, "new_role.via_role_arn": via}, page=path)
    assert saved.status_code == 303
    with web.state.session() as session:
        role = session.scalar(select(RoleConfig).where(RoleConfig.name == "org-chained"))
        assert role is not None
        assert (role.via_role_arn, role.external_id) == (via, "tenant-external-id-0042")
    for page in ("/accounts/audit-logs", path):
        assert "tenant-external-id-0042" not in web.client.get(page).text


def test_a_failed_edit_leaves_no_role_behind(web: Web) -> None:
    web.login()
    path = f"/sources/{web.data.trail_id}/edit"
    response = web.post_form(
        path,
        _storage_form(
            region="mars-north-1",
            role_mode="new",
            **{"new_role.name": "half-made", "new_role.authentication": "instance-profile"},
        ),
        page=path,
    )
    assert response.status_code == 422
    assert "not a region" in _error_beside(response.text, "region")
    with web.state.session() as session:
        assert session.scalar(select(RoleConfig).where(RoleConfig.name == "half-made")) is None


def test_an_unknown_role_mode_is_refused(web: Web) -> None:
    web.login()
    path = f"/sources/{web.data.trail_id}/edit"
    response = web.post_form(path, _storage_form(role_mode="sideways"), page=path)
    assert response.status_code == 422
    assert "role config" in _error_beside(response.text, "role_mode")


# --- triage -----------------------------------------------------------------------------------


def test_anomaly_detail_shows_evidence_and_mitre_links(web: Web) -> None:
    web.login()
    anomaly = web.data.anomaly("aws.cloudtrail-logging-impaired")
    html = web.client.get(f"/anomalies/{anomaly.id}").text
    assert "https://attack.mitre.org/techniques/T1562/008/" in html
    assert "https://attack.mitre.org/tactics/TA0005/" in html
    assert "s3://bucket/AWSLogs/test.json.gz" in html
    assert "record #0" in html
    assert anomaly.explanation in html
    assert f"/incidents/{web.data.incident_id}" in html
    assert f"/anomalies/{anomaly.id}/evidence/0" in html


def test_anomaly_page_shows_where_it_was_sent(web: Web) -> None:
    web.login()
    state = web.app.state.harvester
    anomaly = msgspec.structs.replace(
        web.data.anomaly("aws.cloudtrail-logging-impaired"), id="an-notified", dedup_key="n" * 32
    )
    with state.session() as session:
        upsert_destination(
            session,
            DestinationSpec(name="soc-hook", type="webhook", url="https://soc.example.com/h"),
            box=state.box,
            clock=web.clock,
        )
        repo.save_anomalies(session, [anomaly], clock=web.clock)
    html = web.client.get(f"/anomalies/{anomaly.id}").text
    assert 'id="deliveries"' in html
    assert "soc-hook" in html
    assert "pending" in html
    # Not sent anywhere: no section.
    other = web.data.anomaly("aws.cloudtrail-logging-impaired")
    assert 'id="deliveries"' not in web.client.get(f"/anomalies/{other.id}").text
    # The destination's page lists its recent deliveries, never its secret.
    page = web.client.get("/destinations").text
    assert "soc-hook" in page
    assert f'href="/anomalies/{anomaly.id}"' in page
    assert "webhook" in page


def test_anomaly_filters_on_the_page(web: Web) -> None:
    web.login()
    high = web.client.get("/anomalies?severity=high").text
    assert "GuardDuty disabled" in high
    assert "Database rebooted" not in high
    bad = web.client.get("/anomalies?severity=urgent&since=soon")
    assert bad.status_code == 400
    assert "use info, low" in _error_beside(bad.text, "severity")
    assert "give a duration" in _error_beside(bad.text, "since")


def test_acknowledge_from_the_page(web: Web) -> None:
    web.login()
    anomaly = web.data.anomaly("aws.guardduty-disabled")
    page = f"/anomalies/{anomaly.id}"
    response = web.post_form(f"{page}/ack", {}, page=page)
    assert response.status_code == 303
    html = web.client.get(page).text
    assert "Acknowledged: GuardDuty disabled" in html
    assert 'id="anomaly-status">acked' in html
    with web.state.session() as session:
        record = session.get(AnomalyRecord, anomaly.id)
        assert record is not None
        assert record.acked_by == "admin"


def test_suppress_from_the_page(web: Web) -> None:
    web.login()
    anomaly = web.data.anomaly("aws.guardduty-disabled")
    page = f"/anomalies/{anomaly.id}"
    bad = web.post_form(f"{page}/suppress", {"scope_account": "on", "until": "later"}, page=page)
    assert bad.status_code == 422
    assert "give a duration" in _error_beside(bad.text, "until")
    done = web.post_form(
        f"{page}/suppress",
        {"scope_account": "on", "until": "3d", "reason": "migration", "detector": "*"},
        page=page,
    )
    assert done.status_code == 303
    with web.state.session() as session:
        (rule,) = session.scalars(select(SuppressionRecord)).all()
        # The detector comes from the anomaly, whatever the form claims.
        assert (rule.detector, rule.account_id, rule.principal) == (
            "aws.guardduty-disabled",
            ORG_ACCOUNT,
            None,
        )
        assert rule.until == web.clock() + timedelta(days=3)
        assert rule.created_by == "admin"
    assert "Added suppression" in web.client.get(page).text


def test_incident_timeline_in_order(web: Web) -> None:
    web.login()
    html = web.client.get(f"/incidents/{web.data.incident_id}").text
    order = [
        html.index("Burst of access-denied errors"),
        html.index("Access key created for another user"),
        html.index("CloudTrail logging stopped or reduced"),
    ]
    assert order == sorted(order)
    assert "+5m" in html


def test_only_the_allowed_host_names_are_answered(make_web: WebFactory) -> None:
    web = make_web(allowed_hosts=("127.0.0.1", "localhost"))
    # A page whose DNS name was rebound to 127.0.0.1 sends its own name as the Host.
    rebound = web.client.get("/login", headers={"Host": "attacker.example"})
    assert rebound.status_code == 400
    assert web.client.get("/login", headers={"Host": "127.0.0.1:8080"}).status_code == 200


def test_secure_cookies_also_send_hsts(make_web: WebFactory) -> None:
    web = make_web(secure_cookies=True)
    assert web.client.get("/login").headers["strict-transport-security"] == "max-age=31536000"
