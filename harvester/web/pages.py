"""Server-rendered pages: overview, audit log monitoring, anomalies, incidents, destinations, login.

Every POST is a form with the session's CSRF token and answers with a redirect (so a reload
does not post again), or re-renders the form with each error beside its field (status 422).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Query, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from harvester import users
from harvester.aws.doctor import DoctorReport, run_doctor
from harvester.aws.identity import IdentityConfigError, source_info_from_row
from harvester.crypto import SecretKeyError, mask
from harvester.db.models import Source
from harvester.detect import repository as repo
from harvester.detect.model import TACTIC_NAMES, Anomaly, Severity
from harvester.durations import format_duration
from harvester.inventory import service
from harvester.inventory.validation import PARTITIONS, known_regions
from harvester.notify.history import deliveries_of, recent_deliveries
from harvester.notify.model import TYPES, DestinationSpec
from harvester.notify.store import (
    destination_spec,
    get_destination,
    list_destinations,
    remove_destination,
)
from harvester.web import charts, queries, records
from harvester.web.auth import (
    CSRF_FIELD,
    Forbidden,
    LoginRequired,
    Principal,
    checked_form,
    page_admin,
    page_reader,
    page_writer,
    session_holder,
)
from harvester.web.destination_forms import (
    CHECKBOXES,
    destination_values,
    save_destination,
)
from harvester.web.forms import (
    FORM_LEVEL,
    AnomalyFilterInput,
    FormErrors,
    NewRoleInput,
    StorageEdit,
    apply_storage_edit,
    parse_anomaly_filter,
    parse_suppression,
)
from harvester.web.state import WebState, web_state
from harvester.web.throttle import ThrottleUnavailable

__all__ = ["render", "router"]

logger = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

Reader = Annotated[Principal, Depends(page_reader)]
Admin = Annotated[Principal, Depends(page_admin)]
Writer = Annotated[Principal, Depends(page_writer)]
Form = Annotated[dict[str, str], Depends(checked_form)]
State = Annotated[WebState, Depends(web_state)]
SourceId = Annotated[int, Path(ge=1, le=2**31 - 1)]
DestinationName = Annotated[str, Path(min_length=1, max_length=128)]
FindingId = Annotated[str, Path(min_length=4, max_length=40, pattern=r"^[0-9a-zA-Z_-]+$")]

MAX_FIELD = 4096
SEVERITIES = [s.value for s in Severity]


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    principal: Principal | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    state = web_state(request)
    holder = session_holder(request)
    base = {
        "principal": principal,
        "csrf_field": CSRF_FIELD,
        "csrf_token": holder.csrf_token(),
        "flash": holder.pop_flash(),
        "now": state.clock(),
        "public_read": state.options.public_read,
        "path": request.url.path,
    }
    return state.templates.TemplateResponse(
        request, template, {**base, **context}, status_code=status_code
    )


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=status.HTTP_303_SEE_OTHER)


def _safe_next(value: str | None) -> str:
    """Only a path on this site: an open redirect would make the login page a phishing aid."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/overview"
    if any(c in value for c in "\r\n\t") or len(value) > 2000:
        return "/overview"
    return value


def _field(form: Mapping[str, str], name: str) -> str:
    return form.get(name, "").strip()[:MAX_FIELD]


# --- login ------------------------------------------------------------------------------------


@router.get("/")
def home() -> RedirectResponse:
    return _redirect("/overview")


@router.get("/login")
def login_page(
    request: Request, next_url: Annotated[str, Query(alias="next")] = "/overview"
) -> HTMLResponse:
    return render(
        request, "login.html", {"next": _safe_next(next_url), "error": None, "username": ""}
    )


@router.post("/login")
def login(request: Request, form: Form, state: State) -> Response:
    username = _field(form, "username")[:64]
    password = form.get("password", "")
    next_url = _safe_next(form.get("next"))
    # The proxy's address unless --forwarded-allow-ips trusts it to name the client.
    client = request.client.host if request.client else "unknown"
    try:
        wait = math.ceil(state.throttle.wait(client, username).total_seconds())
    except ThrottleUnavailable as exc:
        return _logins_unavailable(request, exc, next_url=next_url, username=username)
    if wait > 0:
        response = render(
            request,
            "login.html",
            {
                "next": next_url,
                "error": "too many failed attempts: try again in "
                + format_duration(timedelta(seconds=wait)),
                "username": username,
            },
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
        )
        response.headers["retry-after"] = str(wait)
        return response
    with state.session() as session:
        user = users.authenticate(session, username=username, password=password, clock=state.clock)
        who = None if user is None else (user.id, user.session_generation)
    if who is None:
        try:
            state.throttle.failed(client, username)
        except ThrottleUnavailable as exc:
            return _logins_unavailable(request, exc, next_url=next_url, username=username)
        return render(
            request,
            "login.html",
            {"next": next_url, "error": "wrong username or password", "username": username},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )
    session_holder(request).login(user_id=who[0], generation=who[1])
    return _redirect(next_url)


def _logins_unavailable(
    request: Request, exc: ThrottleUnavailable, *, next_url: str, username: str
) -> HTMLResponse:
    logger.error("login refused: %s", exc)
    return render(
        request,
        "login.html",
        {
            "next": next_url,
            "error": "logins are unavailable: try again later",
            "username": username,
        },
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
    )


@router.post("/logout")
def logout(request: Request, _: Form, state: State) -> RedirectResponse:
    holder = session_holder(request)
    if holder.data is not None and holder.data.user_id is not None:
        # Server-side, so a copy of this cookie (and any other session of this user) is
        # worth nothing afterwards, not just the browser's own.
        with state.session() as session:
            user = users.session_user(
                session, user_id=holder.data.user_id, generation=holder.data.generation
            )
            if user is not None:
                users.end_sessions(user)
    holder.logout()
    return _redirect("/login")


# --- overview ---------------------------------------------------------------------------------


@router.get("/overview")
def overview_page(request: Request, principal: Reader, state: State) -> HTMLResponse:
    with state.session() as session:
        data = queries.overview(session, now=state.clock())
    return render(
        request,
        "overview.html",
        {
            "data": data,
            "events_chart": charts.event_chart(data.hours),
            "anomaly_chart": charts.anomaly_chart(data.days),
            "severities": SEVERITIES,
        },
        principal=principal,
    )


# --- cloud accounts: audit log monitoring -----------------------------------------------------


@router.get("/accounts")
def accounts_home() -> RedirectResponse:
    return _redirect("/accounts/audit-logs")


@router.get("/accounts/audit-logs")
def audit_logs_page(request: Request, principal: Reader, state: State) -> HTMLResponse:
    with state.session() as session:
        rows = queries.source_rows(session, now=state.clock(), kind=service.CLOUDTRAIL)
    return render(request, "sources.html", {"rows": rows, "tab": "audit-logs"}, principal=principal)


@router.get("/accounts/clusters")
def clusters_page(request: Request, principal: Reader, state: State) -> HTMLResponse:
    with state.session() as session:
        rows = queries.source_rows(session, now=state.clock(), kind=service.EKS)
    return render(request, "sources.html", {"rows": rows, "tab": "clusters"}, principal=principal)


def _source(state: WebState, source_id: int) -> tuple[queries.SourceRow, list[dict[str, str]]]:
    with state.session() as session:
        source = session.get(Source, source_id)
        if source is None:
            raise service.NotFound(f"no source with id {source_id}")
        events = queries.events_last_24h(session, now=state.clock(), source_id=source.id)
        row = queries.source_row(source, now=state.clock(), events_24h=events.get(source.id, 0))
        roles = [
            {
                "name": r.name,
                "label": r.name
                + (f" ({r.role_arn})" if r.role_arn else " (base credentials)")
                + (f", access keys {mask(r.access_key.access_key_id)}" if r.access_key else ""),
                "partition": r.partition,
            }
            for r in service.list_roles(session)
        ]
    return row, roles


def _storage_values(row: queries.SourceRow) -> dict[str, str]:
    return {
        "bucket": row.bucket,
        "region": row.region,
        "prefix": row.prefix,
        "role_mode": "existing",
        "role": row.role_name or "",
        "new_role.name": "",
        "new_role.role_arn": "",
        "new_role.via_role_arn": "",
        "new_role.session_name": "audit-harvester",
        "new_role.partition": "",
        "new_role.authentication": "instance-profile",
        "new_role.access_key_id": "",
    }


def _edit_page(
    request: Request,
    principal: Principal,
    state: WebState,
    row: queries.SourceRow,
    roles: list[dict[str, str]],
    *,
    values: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
    report: DoctorReport | None = None,
    doctor_error: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        "edit_source.html",
        {
            "row": row,
            "roles": roles,
            "values": values if values is not None else _storage_values(row),
            "errors": errors or {},
            "form_error": (errors or {}).get(FORM_LEVEL),
            "report": report,
            "doctor_error": doctor_error,
            "regions": sorted(known_regions(row.partition)),
            "partitions": PARTITIONS,
            "tab": "clusters" if row.kind == service.EKS else "audit-logs",
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/sources/{source_id}/edit")
def edit_source_page(
    request: Request, source_id: SourceId, principal: Admin, state: State
) -> HTMLResponse:
    row, roles = _source(state, source_id)
    return _edit_page(request, principal, state, row, roles)


WRITE_ONLY_FIELDS = frozenset({"new_role.secret_access_key", "new_role.external_id"})


def _storage_edit(form: Mapping[str, str], row: queries.SourceRow) -> StorageEdit:
    mode = _field(form, "role_mode") or "existing"
    if mode not in ("existing", "new"):
        raise FormErrors({"role_mode": "choose an existing role config or create one"})
    new_role = None
    if mode == "new":
        new_role = NewRoleInput(
            name=_field(form, "new_role.name"),
            role_arn=_field(form, "new_role.role_arn") or None,
            via_role_arn=_field(form, "new_role.via_role_arn") or None,
            external_id=_field(form, "new_role.external_id") or None,
            session_name=_field(form, "new_role.session_name") or "audit-harvester",
            partition=_field(form, "new_role.partition") or None,
            authentication=_field(form, "new_role.authentication") or "instance-profile",
            access_key_id=_field(form, "new_role.access_key_id") or None,
            # Not stripped: a secret is taken exactly as pasted, and validated as such.
            secret_access_key=form.get("new_role.secret_access_key", "")[:MAX_FIELD] or None,
        )
    return StorageEdit(
        bucket=_field(form, "bucket"),
        region=_field(form, "region"),
        prefix=_field(form, "prefix") if row.kind == service.CLOUDTRAIL else None,
        role=(_field(form, "role") or None) if mode == "existing" else None,
        new_role=new_role,
    )


@router.post("/sources/{source_id}/edit")
def edit_source(
    request: Request, source_id: SourceId, principal: Writer, form: Form, state: State
) -> Response:
    row, roles = _source(state, source_id)
    try:
        edit = _storage_edit(form, row)
        with state.session() as session:
            source = session.get(Source, source_id)
            if source is None:
                raise service.NotFound(f"no source with id {source_id}")
            apply_storage_edit(session, source=source, edit=edit, box=state.box, clock=state.clock)
    except FormErrors as exc:
        # Secrets are not echoed back (the external ID is masked everywhere): asked again.
        values = {k: val for k, val in form.items() if k not in WRITE_ONLY_FIELDS}
        return _edit_page(
            request,
            principal,
            state,
            row,
            roles,
            values={**_storage_values(row), **values},
            errors=exc.errors,
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    session_holder(request).set_flash(f"Saved the storage configuration of {row.label}.")
    return _redirect("/accounts/clusters" if row.kind == service.EKS else "/accounts/audit-logs")


@router.post("/sources/{source_id}/doctor")
def doctor_source(
    request: Request, source_id: SourceId, principal: Writer, _: Form, state: State
) -> HTMLResponse:
    row, roles = _source(state, source_id)
    report = None
    error = None
    with state.session() as session:
        source = session.get(Source, source_id)
        if source is None:
            raise service.NotFound(f"no source with id {source_id}")
        try:
            info = source_info_from_row(
                source, secret_box=state.box, default_external_id=state.settings.external_id
            )
        except (IdentityConfigError, SecretKeyError) as exc:
            error = str(exc)
    if error is None:
        report = run_doctor(info, session_factory=state.aws(), clock=state.clock)
    return _edit_page(request, principal, state, row, roles, report=report, doctor_error=error)


# --- anomalies --------------------------------------------------------------------------------


def mitre_url(technique_or_tactic: str) -> str:
    """The ATT&CK page of a technique (T1098, T1098.001) or a tactic (TA0003)."""
    ident = technique_or_tactic.strip().upper()
    if ident.startswith("TA"):
        return f"https://attack.mitre.org/tactics/{ident}/"
    return "https://attack.mitre.org/techniques/" + ident.replace(".", "/") + "/"


@router.get("/anomalies")
def anomalies_page(request: Request, principal: Reader, state: State) -> HTMLResponse:
    raw = AnomalyFilterInput.from_mapping(dict(request.query_params))
    errors: dict[str, str] = {}
    found: list[Anomaly] = []
    with state.session() as session:
        options = queries.filter_options(session)
        try:
            flt = parse_anomaly_filter(raw, now=state.clock())
        except FormErrors as exc:
            errors = exc.errors
        else:
            found = queries.find_anomalies(session, flt)
    return render(
        request,
        "anomalies.html",
        {
            "anomalies": found,
            "filters": raw,
            "errors": errors,
            "options": options,
            "severities": SEVERITIES,
        },
        principal=principal,
        status_code=status.HTTP_400_BAD_REQUEST if errors else 200,
    )


def _anomaly_page(
    request: Request,
    principal: Principal,
    state: WebState,
    anomaly_id: str,
    *,
    errors: Mapping[str, str] | None = None,
    values: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    with state.session() as session:
        anomaly = repo.get_anomaly(session, anomaly_id=anomaly_id)
        incidents = queries.incidents_of(session, anomaly_id=anomaly.id)
        deliveries = deliveries_of(session, subject_id=anomaly.id)
    return render(
        request,
        "anomaly.html",
        {
            "a": anomaly,
            "incidents": incidents,
            "deliveries": deliveries,
            "tactic_names": TACTIC_NAMES,
            "mitre_url": mitre_url,
            "errors": errors or {},
            "values": values
            or {
                "scope_principal": "on" if anomaly.principal else "",
                "scope_account": "on" if anomaly.account_id else "",
                "until": "7d",
                "reason": "",
            },
        },
        principal=principal,
        status_code=status_code,
    )


@router.get("/anomalies/{anomaly_id}")
def anomaly_page(
    request: Request, anomaly_id: FindingId, principal: Reader, state: State
) -> HTMLResponse:
    return _anomaly_page(request, principal, state, anomaly_id)


@router.post("/anomalies/{anomaly_id}/ack")
def ack_anomaly(
    request: Request, anomaly_id: FindingId, principal: Writer, _: Form, state: State
) -> RedirectResponse:
    with state.session() as session:
        anomaly = repo.ack_anomaly(
            session, anomaly_id=anomaly_id, clock=state.clock, by=principal.username
        )
    session_holder(request).set_flash(f"Acknowledged: {anomaly.title}")
    return _redirect(f"/anomalies/{anomaly.id}")


@router.post("/anomalies/{anomaly_id}/suppress")
def suppress_anomaly(
    request: Request, anomaly_id: FindingId, principal: Writer, form: Form, state: State
) -> Response:
    with state.session() as session:
        anomaly = repo.get_anomaly(session, anomaly_id=anomaly_id)
    # Scope comes from the anomaly itself, not from hidden fields a client could rewrite.
    try:
        rule = parse_suppression(
            detector=anomaly.detector,
            principal=(anomaly.identity or anomaly.principal)
            if form.get("scope_principal") == "on"
            else None,
            account=anomaly.account_id if form.get("scope_account") == "on" else None,
            until=_field(form, "until") or None,
            reason=_field(form, "reason") or None,
            now=state.clock(),
        )
    except FormErrors as exc:
        return _anomaly_page(
            request,
            principal,
            state,
            anomaly_id,
            errors=exc.errors,
            values={
                k: _field(form, k) for k in ("scope_principal", "scope_account", "until", "reason")
            },
            status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
        )
    with state.session() as session:
        record = repo.add_suppression(
            session,
            detector=rule.detector,
            principal=rule.principal,
            account=rule.account,
            until=rule.until,
            reason=rule.reason,
            created_by=principal.username,
            clock=state.clock,
        )
        suppression_id = record.id
    session_holder(request).set_flash(
        f"Added suppression {suppression_id}: {rule.detector} is muted"
        + (f" for {rule.principal}" if rule.principal else "")
        + (f" in account {rule.account}" if rule.account else "")
        + (f" until {rule.until:%Y-%m-%d %H:%M} UTC." if rule.until else " until removed.")
    )
    return _redirect(f"/anomalies/{anomaly.id}")


@router.get("/anomalies/{anomaly_id}/evidence/{index}")
def evidence_page(
    request: Request,
    anomaly_id: FindingId,
    index: Annotated[int, Path(ge=0, le=1000)],
    principal: Reader,
    state: State,
) -> HTMLResponse:
    """One evidence record fetched from S3 on demand (a logged-in user's click, never public)."""
    if not principal.authenticated:
        raise LoginRequired
    anomaly, fetched, error = records.fetch_evidence(state, anomaly_id=anomaly_id, index=index)
    return render(
        request,
        "record.html",
        {"a": anomaly, "index": index, "record": fetched, "error": error},
        principal=principal,
        status_code=200 if error is None else status.HTTP_502_BAD_GATEWAY,
    )


# --- notifications ----------------------------------------------------------------------------


@router.get("/destinations")
def destinations_page(request: Request, principal: Reader, state: State) -> HTMLResponse:
    """Each destination (never its secret) with its recent deliveries."""
    with state.session() as session:
        destinations = [
            (destination_spec(record), record, recent_deliveries(session, destination=record.name))
            for record in list_destinations(session)
        ]
    return render(request, "destinations.html", {"destinations": destinations}, principal=principal)


def _destination_page(
    request: Request,
    principal: Principal,
    state: WebState,
    *,
    editing: str | None,
    form: Mapping[str, str] | None = None,
    errors: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """The new-destination form (``editing`` None) or a stored one's, after an error with
    what was typed (never the secret: it is asked again)."""
    has_secret = False
    if editing is None:
        values = destination_values(DestinationSpec(name="", type="webhook"))
    else:
        # After an error the transaction rolled back: what is stored is read again.
        with state.session() as session:
            record = get_destination(session, name=editing)
            values = destination_values(destination_spec(record))
            has_secret = record.secret_encrypted is not None
    if form is not None:
        typed = {k: _field(form, k) for k in form if k not in ("secret", CSRF_FIELD)}
        typed |= {name: form.get(name, "") for name in CHECKBOXES}
        if editing is not None:
            typed |= {"name": values["name"], "type": values["type"]}
        values |= typed
    return render(
        request,
        "edit_destination.html",
        {
            "editing": editing,
            "has_secret": has_secret,
            "values": values,
            "errors": errors or {},
            "form_error": (errors or {}).get(FORM_LEVEL),
            "types": TYPES,
            "severities": SEVERITIES,
        },
        principal=principal,
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT if errors else 200,
    )


def _save_destination(
    request: Request,
    principal: Principal,
    state: WebState,
    form: Mapping[str, str],
    *,
    editing: str | None,
) -> Response:
    try:
        with state.session() as session:
            record = None if editing is None else get_destination(session, name=editing)
            name = save_destination(
                session, form, record=record, box=state.box, clock=state.clock
            ).name
    except FormErrors as exc:
        return _destination_page(
            request, principal, state, editing=editing, form=form, errors=exc.errors
        )
    verb = "Created" if editing is None else "Saved"
    session_holder(request).set_flash(f"{verb} destination {name}.")
    return _redirect("/destinations")


@router.get("/destinations/new")
def new_destination_page(request: Request, principal: Admin, state: State) -> HTMLResponse:
    return _destination_page(request, principal, state, editing=None)


@router.post("/destinations/new")
def create_destination(request: Request, principal: Writer, form: Form, state: State) -> Response:
    return _save_destination(request, principal, state, form, editing=None)


@router.get("/destinations/{name}/edit")
def edit_destination_page(
    request: Request, name: DestinationName, principal: Admin, state: State
) -> HTMLResponse:
    return _destination_page(request, principal, state, editing=name)


@router.post("/destinations/{name}/edit")
def edit_destination(
    request: Request, name: DestinationName, principal: Writer, form: Form, state: State
) -> Response:
    return _save_destination(request, principal, state, form, editing=name)


@router.post("/destinations/{name}/delete")
def delete_destination(
    request: Request, name: DestinationName, principal: Writer, _: Form, state: State
) -> RedirectResponse:
    with state.session() as session:
        remove_destination(session, get_destination(session, name=name))
    session_holder(request).set_flash(
        f"Deleted destination {name}; its pending deliveries are given up."
    )
    return _redirect("/destinations")


# --- incidents --------------------------------------------------------------------------------


@router.get("/incidents")
def incidents_page(request: Request, principal: Reader, state: State) -> HTMLResponse:
    with state.session() as session:
        incidents = repo.list_incidents(session, limit=500)
    return render(request, "incidents.html", {"incidents": incidents}, principal=principal)


@router.get("/incidents/{incident_id}")
def incident_page(
    request: Request, incident_id: FindingId, principal: Reader, state: State
) -> HTMLResponse:
    with state.session() as session:
        incident, anomalies = repo.get_incident(session, incident_id=incident_id)
    return render(
        request,
        "incident.html",
        {"i": incident, "anomalies": anomalies, "tactic_names": TACTIC_NAMES},
        principal=principal,
    )


def login_url(request: Request) -> str:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return "/login?" + urlencode({"next": _safe_next(target)})


def forbidden_page(request: Request, exc: Forbidden) -> HTMLResponse:
    return render(
        request,
        "error.html",
        {"title": "Not allowed", "message": exc.message},
        status_code=status.HTTP_403_FORBIDDEN,
    )
