"""``harvester web`` and ``harvester users``: the console, its people and their API tokens.

The lead registers them on the main CLI::

    app.command("web")(web_cmds.web)
    app.add_typer(web_cmds.users_app, name="users")
"""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING, Annotated

import typer

from harvester import users
from harvester.cli.context import AppContext
from harvester.cli.output import OutputFormat, console, emit, when
from harvester.inventory.validation import InvalidValue

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from harvester.db.user_models import User

__all__ = ["users_app", "web"]

PASSWORD_ENV = "HARVESTER_WEB_PASSWORD"  # noqa: S105  a variable name, not a password

users_app = typer.Typer(
    help="People who may use the web console, and their API tokens.", no_args_is_help=True
)


def _ctx(ctx: typer.Context) -> AppContext:
    app_ctx = ctx.find_object(AppContext)
    assert app_ctx is not None, "the main callback builds the context"
    return app_ctx


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def web(
    ctx: typer.Context,
    host: Annotated[
        str, typer.Option(help="Address to listen on; the default answers this machine only.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8080,
    public_read: Annotated[
        bool,
        typer.Option(
            "--public-read",
            help="Let anyone who can reach the port read pages and GET endpoints without "
            "logging in. Writes always need an admin.",
        ),
    ] = False,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-host",
            help="A Host header to answer (repeat it; e.g. the name of a proxy in front). "
            "On a loopback address only loopback names are answered unless given here.",
        ),
    ] = None,
    secure_cookies: Annotated[
        bool,
        typer.Option(
            "--secure-cookies",
            help="Mark the session cookie Secure: use when the console is served over HTTPS "
            "(for example behind a TLS-terminating proxy).",
        ),
    ] = False,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(
            "--forwarded-allow-ips",
            help="Comma-separated addresses or networks of the proxies in front whose "
            "X-Forwarded-For and X-Forwarded-Proto are believed, so the login throttle "
            "counts each real client. Others' headers are ignored. Default: none.",
        ),
    ] = None,
) -> None:
    """Serve the web console and its JSON API (/api/v1, OpenAPI at /api/v1/openapi.json).

    Log in as a user made with 'harvester users add'; scripts use a token from
    'harvester users token'. Only admins change anything; viewers read.
    """
    import uvicorn  # the server is only needed by this command

    from harvester.web import WebOptions, create_app  # keeps CLI start-up fast

    proxies = _proxies(forwarded_allow_ips)
    app_ctx = _ctx(ctx)
    out = console()
    app_ctx.ensure_schema()
    with app_ctx.session() as session:
        has_admin = any(u.role == users.ADMIN and u.enabled for u in users.list_users(session))
    if not has_admin:
        out.print(
            "notice: no admin yet; create one with 'harvester users add NAME --role admin'",
            markup=False,
        )
    if not _is_loopback(host) and not secure_cookies:
        out.print(
            f"warning: listening on {host} over plain HTTP: passwords and session cookies "
            "cross the network in clear. Put a TLS proxy in front and pass --secure-cookies.",
            markup=False,
        )
    app = create_app(
        app_ctx.settings,
        clock=app_ctx.clock,
        options=WebOptions(
            public_read=public_read,
            secure_cookies=secure_cookies,
            allowed_hosts=_allowed_hosts(host, allowed_host or []),
            forwarded_allow_ips=proxies,
        ),
    )
    out.print(f"serving the console on http://{host}:{port}/ (Ctrl-C stops it)", markup=False)
    # The app reads proxy headers itself, from --forwarded-allow-ips only; uvicorn's own
    # handling would trust 127.0.0.1 (or $FORWARDED_ALLOW_IPS) by default.
    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


def _proxies(value: str | None) -> tuple[str, ...] | None:
    """The trusted proxies, each checked as an address or network."""
    if value is None:
        return None
    proxies = tuple(p.strip() for p in value.split(",") if p.strip())
    for proxy in proxies:
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            raise InvalidValue(
                "--forwarded-allow-ips",
                proxy,
                "give IP addresses or networks (10.0.0.5, 10.0.0.0/24), comma-separated",
            ) from None
    return proxies or None


# As Host headers carry them: an IPv6 literal in brackets.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def _allowed_hosts(host: str, extra: list[str]) -> tuple[str, ...] | None:
    """Which Host headers to answer: loopback names on loopback, else any (or those given)."""
    if _is_loopback(host):
        listening = f"[{host}]" if ":" in host else host
        return tuple(dict.fromkeys([*LOOPBACK_NAMES, listening, *extra]))
    return tuple(extra) or None


def _read_password() -> str:
    from_env = os.environ.get(PASSWORD_ENV)
    if from_env:
        return from_env
    password: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return password


@users_app.command("add")
def users_add(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Login name.")],
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            help="admin (may change things) or viewer (reads only). Default: admin for the "
            "first user, viewer after that.",
        ),
    ] = None,
) -> None:
    """Add a console user. The password comes from HARVESTER_WEB_PASSWORD or is asked twice."""
    app = _ctx(ctx)
    users.validate_username(username)
    if role is not None:
        users.validate_role(role, "--role")
    with app.session() as session:
        if users.get_user_by_name(session, username=username) is not None:
            raise InvalidValue("USERNAME", username, "a user with this name exists")
    password = _read_password()
    with app.session() as session:
        chosen = role or (users.ADMIN if not users.list_users(session) else users.VIEWER)
        users.create_user(
            session, username=username, password=password, role=chosen, clock=app.clock
        )
    console().print(f"added {chosen} {username}", markup=False)


@users_app.command("list")
def users_list(
    ctx: typer.Context,
    output: Annotated[OutputFormat, typer.Option("--output", "-o")] = OutputFormat.table,
) -> None:
    """List console users and how many API tokens each has (never the tokens)."""
    app = _ctx(ctx)
    with app.session() as session:
        records = [
            {
                "username": u.username,
                "role": u.role,
                "enabled": u.enabled,
                "tokens": len(u.tokens),
                "created": when(u.created_at),
                "last_login": when(u.last_login_at) if u.last_login_at else "never",
            }
            for u in users.list_users(session)
        ]
    emit(
        output,
        records,
        ["username", "role", "enabled", "tokens", "created", "last_login"],
        "Users",
    )


@users_app.command("token")
def users_token(
    ctx: typer.Context,
    username: Annotated[str, typer.Argument(help="Whose token: it acts with this user's role.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. 'ci'.")],
) -> None:
    """Create an API token and print it once; only its hash is kept."""
    app = _ctx(ctx)
    with app.session() as session:
        user = users.get_user_by_name(session, username=username)
        if user is None:
            raise InvalidValue("USERNAME", username, "no such user (see: harvester users list)")
        token = users.create_token(session, user=user, name=name, clock=app.clock)
    # The token alone on stdout, so `TOKEN=$(harvester users token ...)` works; the notice
    # goes to stderr.
    typer.echo(token.secret)
    typer.echo(
        f"created token {name!r} for {token.username}: store it now, it is not shown again",
        err=True,
    )


def _user(session: Session, username: str) -> User:
    user = users.get_user_by_name(session, username=username)
    if user is None:
        raise InvalidValue("USERNAME", username, "no such user (see: harvester users list)")
    return user


def _set_enabled(ctx: typer.Context, username: str, *, enabled: bool) -> None:
    app = _ctx(ctx)
    with app.session() as session:
        users.set_enabled(session, user=_user(session, username), enabled=enabled)
    console().print(f"{'enabled' if enabled else 'disabled'} {username}", markup=False)


@users_app.command("disable")
def users_disable(ctx: typer.Context, username: str) -> None:
    """Stop a user from logging in; their sessions and API tokens stop working at once.

    Enabling them again later does not bring those sessions back: they log in anew.
    """
    _set_enabled(ctx, username, enabled=False)


@users_app.command("enable")
def users_enable(ctx: typer.Context, username: str) -> None:
    """Let a disabled user log in again."""
    _set_enabled(ctx, username, enabled=True)


@users_app.command("password")
def users_password(ctx: typer.Context, username: str) -> None:
    """Set a user's password (from HARVESTER_WEB_PASSWORD or asked twice); ends their sessions."""
    app = _ctx(ctx)
    with app.session() as session:
        _user(session, username)
    password = _read_password()
    with app.session() as session:
        users.set_password(session, user=_user(session, username), password=password)
    console().print(f"changed the password of {username}; their sessions ended", markup=False)


@users_app.command("logout")
def users_logout(ctx: typer.Context, username: str) -> None:
    """End every console session of a user (a lost laptop); API tokens are not affected."""
    app = _ctx(ctx)
    with app.session() as session:
        users.end_sessions(_user(session, username))
    console().print(f"ended the console sessions of {username}", markup=False)
