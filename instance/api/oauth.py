"""OAuth 2 for the client API, on authlib's authorization server.

    POST /api/v1/apps                       register a client (its secret shown once)
    GET  /api/v1/apps/verify_credentials    the app behind a token
    GET  /oauth/authorize                   the consent page (log in first), PKCE, `oob`
    POST /oauth/authorize                   approve or deny: a code to the redirect URI
    POST /oauth/token                       authorization_code, client_credentials, refresh_token
    POST /oauth/revoke                      RFC 7009
    GET  /.well-known/oauth-authorization-server   RFC 8414 metadata

authlib validates the protocol (parameters, client authentication, redirect URIs, PKCE
S256, grant rules, error bodies); its hooks are synchronous, so each OAuth request is a unit
of work: what authlib may ask for (the client, the code, the refresh token, the user) is
loaded first, in the request's transaction; authlib runs over it; what it wants written
(a code, a token, a deletion, a revocation) is then applied in the same transaction. A code
or refresh token is used with a conditional UPDATE/DELETE, so two requests racing with one
code get one token between them.

Mastodon's choices, kept here: a scope left out means `read`; an app may be authorised only
for scopes it registered; access tokens do not expire (apps assume so) but may be revoked,
and a refresh turns the old pair off; codes live ten minutes and work once; only S256
challenges; the client authenticates with its secret (HTTP Basic or in the form).
"""

from __future__ import annotations

import hmac
import json
import re
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    ClientMixin,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
    grants,
)
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from instance.api import scopes as scope_rules
from instance.api.auth import (
    ApiError,
    Caller,
    RateLimits,
    cookieless,
    digest,
    endpoint,
    error_response,
    json_response,
    refuse_nul,
)
from instance.api.tokens import OOB, new_secret, register_app
from instance.moderation import suspension
from instance.routes.common import client_ip, runtime
from instance.runtime import Runtime
from instance.storage.models import Account, OAuthApp, OAuthCode, OAuthToken
from instance.web.common import to_login
from instance.web.forms import form_post
from instance.web.sessions import current_account, ensure_session, set_cookie
from instance.web.templating import page

CODE_LIFETIME = timedelta(minutes=10)
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
MAX_OAUTH_FIELDS = 30
CSP_SOURCE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:(//[A-Za-z0-9.\[\]:-]+)?")


# -- authlib's models over our rows ----------------------------------------------------------
class Client(ClientMixin):  # type: ignore[misc]
    def __init__(self, row: OAuthApp) -> None:
        self.row = row

    def get_client_id(self) -> str:
        return self.row.client_id

    def get_default_redirect_uri(self) -> str | None:
        uris: list[str] = self.row.redirect_uris
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        asked = scope_rules.parse(scope) or [scope_rules.DEFAULT]
        allowed = scope_rules.parse(self.row.scopes)
        return scope_rules.text(s for s in asked if scope_rules.covers(allowed, s))

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.row.redirect_uris  # exact match, never a prefix

    def check_client_secret(self, client_secret: str) -> bool:
        return hmac.compare_digest(digest(client_secret), self.row.secret_digest)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in AUTH_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "client_credentials", "refresh_token")


class Code:
    """An authorization code row as authlib's AuthorizationCodeMixin."""

    def __init__(self, row: OAuthCode) -> None:
        self.row = row

    def get_redirect_uri(self) -> str:
        return self.row.redirect_uri

    def get_scope(self) -> str:
        return self.row.scope


class Token(TokenMixin):  # type: ignore[misc]
    def __init__(self, row: OAuthToken, client_id: str, now: datetime) -> None:
        self.row = row
        self.client_id = client_id
        self.now = now

    def check_client(self, client: Client) -> bool:
        return bool(client.row.id == self.row.app_id)

    def get_scope(self) -> str:
        return self.row.scope

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return self.row.expires_at is not None and self.row.expires_at <= self.now

    def is_revoked(self) -> bool:
        return self.row.revoked_at is not None


# -- one OAuth request as a unit of work ------------------------------------------------------
Write = Callable[[AsyncSession], Awaitable[None]]


@dataclass
class Work:
    """What authlib may read, loaded before it runs, and what it asked to write."""

    rt: Runtime
    now: datetime
    clients: dict[str, Client] = field(default_factory=dict)
    codes: dict[str, Code] = field(default_factory=dict)  # by digest
    tokens: dict[str, Token] = field(default_factory=dict)  # by access or refresh digest
    users: dict[int, Account] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)


class Lost(Exception):
    """A code or refresh token was used by another request first."""


class Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._data: dict[str, str] = {}
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in pairs:
            self._data.setdefault(key, value)
            self._datalist[key].append(value)

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class Req(OAuth2Request):  # type: ignore[misc]
    def __init__(self, uri: str, method: str, headers: dict[str, str],
                 query: list[tuple[str, str]], form: list[tuple[str, str]]) -> None:  # fmt: skip
        super().__init__(method, uri, headers=headers)
        self.payload = Payload(query + form)
        self._args = dict(query)
        self._form = dict(form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


def asked_scopes(request: Req) -> list[str]:
    return scope_rules.parse(request.payload.scope) or [scope_rules.DEFAULT]


class Scoped:
    """Mastodon's scope rule for every grant: none asked means `read`; each asked scope must
    be one we know and one the app registered."""

    request: Req

    def validate_requested_scope(self) -> None:
        asked = asked_scopes(self.request)
        client: Client | None = self.request.client
        registered = scope_rules.parse(client.row.scopes) if client is not None else asked
        if scope_rules.unknown(asked) or not scope_rules.within(asked, registered):
            raise InvalidScopeError()


class CodeGrant(Scoped, grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    server: Server

    def save_authorization_code(self, code: str, request: Req) -> None:
        row = OAuthCode(
            code_digest=digest(code),
            app_id=request.client.row.id,
            account_id=request.user.id,
            redirect_uri=request.payload.redirect_uri or request.client.get_default_redirect_uri(),
            scope=scope_rules.text(asked_scopes(request)),
            code_challenge=request.payload.data.get("code_challenge"),
            code_challenge_method=request.payload.data.get("code_challenge_method"),
            expires_at=self.server.work.now + CODE_LIFETIME,
        )

        async def write(session: AsyncSession) -> None:
            session.add(row)

        self.server.work.writes.append(write)

    def query_authorization_code(self, code: str, client: Client) -> Code | None:
        found = self.server.work.codes.get(digest(code))
        if found is None or found.row.app_id != client.row.id:
            return None
        if found.row.expires_at <= self.server.work.now:
            return None
        return found

    def delete_authorization_code(self, authorization_code: Code) -> None:
        code_id = authorization_code.row.id

        async def write(session: AsyncSession) -> None:
            gone = await session.execute(delete(OAuthCode).where(OAuthCode.id == code_id))
            if gone.rowcount != 1:  # type: ignore[attr-defined]
                raise Lost

        self.server.work.writes.insert(0, write)  # claim the code before the token is saved

    def authenticate_user(self, authorization_code: Code) -> Account | None:
        return self.server.work.users.get(authorization_code.row.account_id)


class S256(CodeChallenge):  # type: ignore[misc]
    """PKCE with S256 only, as Mastodon: a challenge must name its method."""

    SUPPORTED_CODE_CHALLENGE_METHOD: ClassVar[list[str]] = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: CodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if data.get("code_challenge") and not data.get("code_challenge_method"):
            raise InvalidRequestError("code_challenge_method must be S256")
        super().validate_code_challenge(grant, redirect_uri)

    def get_authorization_code_challenge(self, authorization_code: Code) -> str | None:
        return authorization_code.row.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code: Code) -> str | None:
        return authorization_code.row.code_challenge_method


class ClientCredentials(Scoped, grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS


class Refresh(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = AUTH_METHODS
    INCLUDE_NEW_REFRESH_TOKEN = True
    server: Server

    def authenticate_refresh_token(self, refresh_token: str) -> Token | None:
        found = self.server.work.tokens.get(digest(refresh_token))
        if found is None or found.row.refresh_digest != digest(refresh_token):
            return None
        if found.is_revoked() or found.is_expired():
            return None
        return found

    def authenticate_user(self, refresh_token: Token) -> Account | None:
        if refresh_token.row.account_id is None:
            return None
        return self.server.work.users.get(refresh_token.row.account_id)

    def revoke_old_credential(self, refresh_token: Token) -> None:
        token_id, now = refresh_token.row.id, self.server.work.now

        async def write(session: AsyncSession) -> None:
            done = await session.execute(
                update(OAuthToken)
                .where(OAuthToken.id == token_id, OAuthToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            if done.rowcount != 1:  # type: ignore[attr-defined]
                raise Lost

        self.server.work.writes.insert(0, write)


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = AUTH_METHODS
    server: Server

    def query_token(self, token_string: str, token_type_hint: str | None) -> Token | None:
        return self.server.work.tokens.get(digest(token_string))

    def revoke_token(self, token: Token, request: Req) -> None:
        token_id, now = token.row.id, self.server.work.now

        async def write(session: AsyncSession) -> None:
            await session.execute(
                update(OAuthToken)
                .where(OAuthToken.id == token_id, OAuthToken.revoked_at.is_(None))
                .values(revoked_at=now)
            )

        self.server.work.writes.append(write)


@dataclass
class Answer:
    status: int
    body: Any
    headers: list[tuple[str, str]]


class Server(AuthorizationServer):  # type: ignore[misc]
    """authlib's server over one `Work`; made per request (it is cheap and holds state)."""

    def __init__(self, work: Work) -> None:
        super().__init__(scopes_supported=list(scope_rules.SUPPORTED))
        self.work = work
        self.register_grant(CodeGrant, [S256(required=False)])
        self.register_grant(ClientCredentials)
        self.register_grant(Refresh)
        self.register_endpoint(Revocation)
        self.register_token_generator("default", self._token)

    def query_client(self, client_id: str) -> Client | None:
        return self.work.clients.get(client_id)

    def create_oauth2_request(self, request: Req) -> Req:
        return request  # built by `oauth_request` from the Starlette request

    def _token(self, grant_type: str, client: Client, user: Account | None = None,
               scope: str | None = None, expires_in: int | None = None,
               include_refresh_token: bool = True) -> dict[str, Any]:  # fmt: skip
        token: dict[str, Any] = {
            "access_token": new_secret(),
            "token_type": "Bearer",
            "scope": scope or scope_rules.DEFAULT,
            "created_at": int(self.work.now.timestamp()),
        }
        if include_refresh_token and user is not None:
            token["refresh_token"] = new_secret()
        return token

    def save_token(self, token: dict[str, Any], request: Req) -> None:
        refresh = token.get("refresh_token")
        row = OAuthToken(
            access_digest=digest(token["access_token"]),
            refresh_digest=digest(refresh) if refresh else None,
            app_id=request.client.row.id,
            account_id=request.user.id if request.user is not None else None,
            scope=token["scope"],
            created_at=self.work.now,
        )

        async def write(session: AsyncSession) -> None:
            session.add(row)

        self.work.writes.append(write)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def handle_response(self, status: int, body: Any, headers: list[tuple[str, str]]) -> Answer:
        return Answer(status, body, list(headers))


# -- loading what a request needs -------------------------------------------------------------
async def load(session: AsyncSession, work: Work, pairs: list[tuple[str, str]],
               headers: dict[str, str]) -> None:  # fmt: skip
    """Everything authlib may look up for a request with these parameters."""
    values = dict(reversed(pairs))  # the first value of each name, as authlib reads them
    values = {k: v for k, v in values.items() if "\x00" not in v}  # no row has a NUL
    client_id = values.get("client_id")
    basic_id, _ = extract_basic_authorization(headers)
    for cid in {c for c in (client_id, basic_id) if c and "\x00" not in c}:
        app = (await session.execute(select(OAuthApp).where(OAuthApp.client_id == cid))).scalar()
        if app is not None:
            work.clients[cid] = Client(app)
    if code := values.get("code"):
        found = (
            await session.execute(select(OAuthCode).where(OAuthCode.code_digest == digest(code)))
        ).scalar()
        if found is not None:
            work.codes[found.code_digest] = Code(found)
            await _load_user(session, work, found.account_id)
    for secret in {s for s in (values.get("refresh_token"), values.get("token")) if s}:
        d = digest(secret)
        row = (
            await session.execute(
                select(OAuthToken).where(
                    (OAuthToken.access_digest == d) | (OAuthToken.refresh_digest == d)
                )
            )
        ).scalar()
        if row is not None:
            app_row = await session.get(OAuthApp, row.app_id)
            work.tokens[d] = Token(row, app_row.client_id if app_row else "", work.now)
            if row.account_id is not None:
                await _load_user(session, work, row.account_id)


async def _load_user(session: AsyncSession, work: Work, account_id: int) -> None:
    account = await session.get(Account, account_id)
    if account is not None and account.local and suspension.may_log_in(account):
        work.users[account.id] = account


async def apply(session: AsyncSession, work: Work) -> None:
    for write in work.writes:
        await write(session)


def oauth_request(request: Request, form: list[tuple[str, str]]) -> Req:
    rt = runtime(request)
    uri = rt.settings.base_url + request.url.path
    query = list(request.query_params.multi_items())
    return Req(uri, request.method, dict(request.headers), query, form)


async def read_pairs(request: Request) -> list[tuple[str, str]]:
    """The token and revoke endpoints' bodies: url-encoded (the standard) or JSON (some
    Mastodon clients send JSON), size-capped."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > 64 * 1024:
        raise ApiError(413, "The request is too large")
    if ctype == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "The request body is not JSON") from None
        if not isinstance(data, dict):
            raise ApiError(400, "The request body must be a JSON object")
        pairs = [(str(k), str(v)) for k, v in data.items() if isinstance(v, str | int)]
        refuse_nul(pairs)
        return pairs
    if ctype in ("application/x-www-form-urlencoded", ""):
        try:
            pairs = parse_qsl(body.decode(), keep_blank_values=True,
                              max_num_fields=MAX_OAUTH_FIELDS)  # fmt: skip
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "The request body could not be read") from None
        refuse_nul(pairs)
        return pairs
    raise ApiError(415, "Send the parameters url-encoded or as JSON")


def to_response(answer: Answer) -> Response:
    if isinstance(answer.body, dict):
        response = json_response(answer.body, answer.status)
    else:
        response = Response(answer.body or b"", answer.status)
    for name, value in answer.headers:
        if name.lower() != "content-type":
            response.headers[name] = value
    response.headers["Cache-Control"] = "no-store"
    return response


# -- endpoints --------------------------------------------------------------------------------
@cookieless
async def create_app(request: Request) -> Response:
    """POST /api/v1/apps: Mastodon's Application with its credentials."""
    try:
        pairs = await read_pairs(request)
        values = dict(pairs)
        uris: str | list[str] | None = [v for k, v in pairs if k in ("redirect_uris[]",)] or \
            values.get("redirect_uris")  # fmt: skip
        rt = runtime(request)
        remaining, reset = rt.service(RateLimits).hit(f"ip:{client_ip(request)}", rt.now())
        if remaining < 0:  # an app is a token factory: registering counts as the address's
            raise ApiError(429, "Too many requests", {"Retry-After": str(reset)})
        async with rt.session() as session:
            registered = await register_app(
                session, values.get("client_name", ""), uris, values.get("scopes"),
                values.get("website"),
            )  # fmt: skip
            entity = application(registered.app)
    except ApiError as exc:
        return error_response(exc)
    return json_response({**entity, "client_id": registered.app.client_id,
                          "client_secret": registered.client_secret,
                          "client_secret_expires_at": 0})  # fmt: skip


def application(app: OAuthApp) -> dict[str, Any]:
    """Mastodon's Application entity (without credentials)."""
    uris: list[str] = app.redirect_uris
    return {
        "id": str(app.id),
        "name": app.name,
        "website": app.website,
        "scopes": scope_rules.parse(app.scopes),
        "redirect_uri": "\n".join(uris),
        "redirect_uris": uris,
        "vapid_key": "",
    }


@endpoint()
async def verify_app(request: Request, caller: Caller) -> Any:
    """GET /api/v1/apps/verify_credentials: the app the token belongs to."""
    if caller.app_id is None:
        raise ApiError(401, "The access token is invalid")
    async with runtime(request).session() as session:
        app = await session.get(OAuthApp, caller.app_id)
        if app is None:
            raise ApiError(401, "The access token is invalid")
        return application(app)


async def authorize_page(request: Request) -> Response:
    """GET /oauth/authorize: who asks for what, for the logged-in user to approve."""
    rt = runtime(request)
    async with rt.session() as session:
        me = await current_account(request, session)
        work = Work(rt, rt.now())
        pairs = list(request.query_params.multi_items())
        await load(session, work, pairs, {})
        try:
            grant = Server(work).get_consent_grant(oauth_request(request, []), me)
        except OAuth2Error as exc:
            return _oauth_error_page(request, exc)
    if me is None:
        return to_login(request)
    client: Client = grant.client
    asked = scope_rules.parse(grant.request.payload.scope) or [scope_rules.DEFAULT]
    s, fresh = ensure_session(request)
    response = page(request, "oauth_authorize.html", {
        "app": client.row, "scopes": asked, "me": me,
        "fields": [(k, v) for k, v in pairs if k != "csrf"],
    })  # fmt: skip
    redirect = grant.request.payload.redirect_uri or client.get_default_redirect_uri() or ""
    _allow_form_redirect(response, redirect)
    if fresh:
        set_cookie(request, response, s)
    return response


@form_post()
async def authorize_decision(request: Request, form: dict[str, str]) -> Response:
    """POST /oauth/authorize: approve (a code for the client) or deny (access_denied)."""
    rt = runtime(request)
    pairs = [(k, v) for k, v in form.items() if k not in ("csrf", "decision")]
    async with rt.session() as session:
        me = await current_account(request, session)
        if me is None:
            return RedirectResponse("/login", status_code=303)
        work = Work(rt, rt.now())
        await load(session, work, pairs, {})
        server = Server(work)
        req = Req(rt.settings.base_url + request.url.path, "GET", {}, pairs, [])
        try:
            grant = server.get_consent_grant(req, me)
        except OAuth2Error as exc:
            return _oauth_error_page(request, exc)
        approved = form.get("decision") == "approve"
        answer: Answer = server.create_authorization_response(req, me if approved else None, grant)
        await apply(session, work)
    location = dict((k.lower(), v) for k, v in answer.headers).get("location", "")
    if location.startswith(OOB):
        code = dict(parse_qsl(urlsplit(location).query)).get("code")
        if not approved or code is None:
            return page(request, "oauth_code.html", {"app": grant.client.row, "code": None})
        response = page(request, "oauth_code.html", {"app": grant.client.row, "code": code})
        response.headers["Cache-Control"] = "no-store"
        return response
    return RedirectResponse(location, status_code=302)


def _allow_form_redirect(response: Response, redirect_uri: str) -> None:
    """Browsers apply `form-action` to where a form's answer redirects, so the consent
    page's policy names the client's redirect URI (its origin, or its scheme for an app's
    own scheme such as `myapp:/callback`)."""
    if not redirect_uri or redirect_uri == OOB:
        return
    parts = urlsplit(redirect_uri)
    source = f"{parts.scheme}://{parts.netloc}" if parts.netloc else f"{parts.scheme}:"
    if not CSP_SOURCE.fullmatch(source):  # `;` or a space would add directives of its own
        return
    policy = response.headers["Content-Security-Policy"]
    response.headers["Content-Security-Policy"] = policy.replace(
        "form-action 'self'", f"form-action 'self' {source}"
    )


def _oauth_error_page(request: Request, exc: OAuth2Error) -> Response:
    """An authorization request in error goes back to the app with `error=` once authlib
    has checked the redirect URI against the app's (RFC 6749 4.1.2.1); otherwise (an
    unknown app, a redirect URI it did not register, `oob`) the user sees the error here."""
    if exc.redirect_uri and exc.redirect_uri != OOB:
        status, _, headers = exc()
        location = dict(headers).get("Location")
        if status == 302 and location:
            return RedirectResponse(location, status_code=302)
    message = exc.description or exc.error
    return page(request, "error.html", {"error": f"This app's request cannot be authorised: "
                                                 f"{message}"}, status=400)  # fmt: skip


@cookieless
async def token(request: Request) -> Response:
    """POST /oauth/token."""
    return await _token_endpoint(request, lambda server, req: server.create_token_response(req))


@cookieless
async def revoke(request: Request) -> Response:
    """POST /oauth/revoke: 200 `{}` whether or not the token existed (RFC 7009)."""
    return await _token_endpoint(
        request, lambda server, req: server.create_endpoint_response("revocation", req)
    )


async def _token_endpoint(request: Request, run: Callable[[Server, Req], Answer]) -> Response:
    rt = runtime(request)
    try:
        pairs = await read_pairs(request)
    except ApiError as exc:
        return error_response(exc)
    req = oauth_request(request, pairs)
    try:
        async with rt.session() as session:
            work = Work(rt, rt.now())
            await load(session, work, pairs, dict(request.headers))
            answer = run(Server(work), req)
            if answer.status == 200:
                await apply(session, work)
    except Lost:
        answer = Answer(*InvalidGrantError()())
    return to_response(answer)


async def metadata(request: Request) -> Response:
    """RFC 8414, as Mastodon 4.3 serves it (with its app registration endpoint)."""
    base = runtime(request).settings.base_url
    return json_response({
        "issuer": base + "/",
        "service_documentation": "https://docs.joinmastodon.org/",
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "revocation_endpoint": f"{base}/oauth/revoke",
        "app_registration_endpoint": f"{base}/api/v1/apps",
        "scopes_supported": list(scope_rules.SUPPORTED),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
    })  # fmt: skip


routes: list[BaseRoute] = [
    Route("/api/v1/apps", create_app, methods=["POST"]),
    Route("/api/v1/apps/verify_credentials", verify_app, methods=["GET"]),
    Route("/oauth/authorize", authorize_page, methods=["GET"]),
    Route("/oauth/authorize", authorize_decision, methods=["POST"]),
    Route("/oauth/token", token, methods=["POST"]),
    Route("/oauth/revoke", revoke, methods=["POST"]),
    Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
]
