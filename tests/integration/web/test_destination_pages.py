"""Editing destinations in the console: admins only, the inventory file's rules, secrets write-only."""

from __future__ import annotations

from datetime import timedelta

import pytest

from harvester.db.notify_models import DestinationRecord
from harvester.detect.model import Severity
from harvester.notify.store import destination_spec
from tests.integration.web.conftest import VIEWER_PASSWORD, Web
from tests.integration.web.test_pages import _error_beside

pytestmark = pytest.mark.integration

HOOK_SECRET = "hook-signing-secret-7f3a9c"
NEW_HOOK_SECRET = "rotated-signing-secret-11b2"
SLACK_URL = "https://hooks.slack.example/services/T000/B000/XXXXsecret"


def _form(**fields: str) -> dict[str, str]:
    form = {
        "name": "soc-hook",
        "type": "webhook",
        "url": "https://soc.example.com/hooks/harvester",
        "secret": HOOK_SECRET,
        "min_severity": "medium",
        "kinds.anomaly": "on",
        "kinds.incident": "on",
        "detectors": "*",
        "renotify_after": "24h",
        "rate_limit": "60",
        "timeout": "10s",
        "max_age": "3d",
        "smtp_port": "587",
        "enabled": "on",
    }
    form.update(fields)
    return form


def _stored(web: Web, name: str = "soc-hook") -> DestinationRecord | None:
    with web.state.session() as session:
        record = session.get(DestinationRecord, name)
        if record is not None:
            session.expunge(record)
        return record


def test_a_viewer_cannot_create_edit_or_delete_destinations(web: Web) -> None:
    web.login()
    assert web.post_form("/destinations/new", _form(), page="/destinations/new").status_code == 303
    web.client.post("/logout", data={"csrf_token": web.csrf("/overview")})
    web.login("viewer", VIEWER_PASSWORD)
    listing = web.client.get("/destinations").text
    assert "soc-hook" in listing
    assert "/destinations/new" not in listing
    assert "/edit" not in listing
    assert web.client.get("/destinations/new").status_code == 403
    assert web.client.get("/destinations/soc-hook/edit").status_code == 403
    for path, data in [
        ("/destinations/new", _form(name="viewer-hook")),
        ("/destinations/soc-hook/edit", _form(min_severity="critical")),
        ("/destinations/soc-hook/delete", {}),
    ]:
        assert web.post_form(path, data).status_code == 403, path
    record = _stored(web)
    assert record is not None
    assert destination_spec(record).min_severity is Severity.medium
    assert _stored(web, "viewer-hook") is None


def test_destination_forms_need_the_csrf_token(web: Web) -> None:
    web.login()
    for path, data in [
        ("/destinations/new", _form()),
        ("/destinations/soc-hook/edit", _form()),
        ("/destinations/soc-hook/delete", {}),
    ]:
        assert web.client.post(path, data=data, follow_redirects=False).status_code == 403, path
    assert _stored(web) is None


def test_a_bad_value_is_shown_beside_its_field_and_nothing_is_written(web: Web) -> None:
    web.login()
    path = "/destinations/new"
    typed = web.post_form(path, _form(timeout="soon", rate_limit="lots"), page=path)
    assert typed.status_code == 422
    assert "not a duration" in _error_beside(typed.text, "timeout")
    assert "whole number" in _error_beside(typed.text, "rate_limit")
    assert 'value="soon"' in typed.text  # what was typed stays, to be fixed
    assert HOOK_SECRET not in typed.text  # the secret is asked again, never echoed
    # The inventory file's own rules, each shown beside the field it is about.
    for fields, field, rule in [
        ({"url": "ftp://soc.example.com/h"}, "url", "http:// or https://"),
        ({"timeout": "5m"}, "timeout", "between 1s and 2m"),
        ({"accounts": "111122223333, 12345"}, "accounts", "12 digits"),
        ({"type": "slack", "secret": ""}, "secret", "a slack destination needs secret"),
        ({"name": "-bad name"}, "name", "a name is 1-128 characters"),
    ]:
        bad = web.post_form(path, _form(**fields), page=path)
        assert bad.status_code == 422, fields
        assert rule in _error_beside(bad.text, field), fields
    assert _stored(web) is None
    assert _stored(web, "-bad name") is None


def test_a_destination_is_created_edited_and_deleted_its_secret_encrypted_and_never_shown(
    web: Web,
) -> None:
    web.login()
    created = web.post_form("/destinations/new", _form(), page="/destinations/new")
    assert created.status_code == 303
    assert created.headers["location"] == "/destinations"
    assert "Created destination soc-hook." in web.client.get("/destinations").text
    record = _stored(web)
    assert record is not None
    assert record.secret_encrypted is not None
    assert HOOK_SECRET not in record.secret_encrypted  # encrypted at rest
    assert web.state.box.decrypt(record.secret_encrypted) == HOOK_SECRET
    edit = "/destinations/soc-hook/edit"
    for page in ("/destinations", edit):
        html = web.client.get(page).text
        assert HOOK_SECRET not in html, page
        assert "****" in html, page
    assert 'value="https://soc.example.com/hooks/harvester"' in web.client.get(edit).text
    again = web.post_form("/destinations/new", _form(), page="/destinations/new")
    assert again.status_code == 422
    assert "exists" in _error_beside(again.text, "name")

    # An empty secret keeps the stored one; unticked boxes disable and narrow.
    form = _form(secret="", min_severity="high", timeout="30s")
    del form["enabled"], form["kinds.incident"]
    saved = web.post_form(edit, form, page=edit)
    assert saved.status_code == 303
    record = _stored(web)
    assert record is not None
    spec = destination_spec(record, box=web.state.box)
    assert (spec.secret, spec.enabled, spec.kinds) == (HOOK_SECRET, False, ("anomaly",))
    assert (spec.min_severity, spec.timeout) == (Severity.high, timedelta(seconds=30))
    # A bad edit writes nothing, and the stored secret is still not shown.
    bad = web.post_form(edit, _form(secret=NEW_HOOK_SECRET, url="not a url"), page=edit)
    assert bad.status_code == 422
    assert "http:// or https://" in _error_beside(bad.text, "url")
    assert NEW_HOOK_SECRET not in bad.text
    record = _stored(web)
    assert record is not None
    assert destination_spec(record, box=web.state.box).secret == HOOK_SECRET
    rotated = web.post_form(edit, _form(secret=NEW_HOOK_SECRET), page=edit)
    assert rotated.status_code == 303
    record = _stored(web)
    assert record is not None
    assert destination_spec(record, box=web.state.box).secret == NEW_HOOK_SECRET

    deleted = web.post_form("/destinations/soc-hook/delete", {}, page=edit)
    assert deleted.status_code == 303
    assert _stored(web) is None
    assert web.client.get(edit).status_code == 404
