"""The OpenAPI description of the client API (instance/api/openapi.py): it is a valid
OpenAPI 3.1 document, served at /api/openapi.json, it describes exactly the routes the API
has, and schemathesis, generating requests from it against the app, finds no server error
and no answer that breaks it (schema, status code, content type)."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from instance.accounts import NewAccount, create_account
from instance.api import media, openapi
from instance.api.auth import RATE_WINDOW
from instance.api.routes import routes as api_routes
from instance.app import create_app
from instance.content import actions
from instance.content.posting import Draft, publish
from instance.runtime import Runtime, open_runtime, wall_clock
from instance.setup import ensure_instance
from instance.storage.models import Account, Notification
from tests.instance.api.api_helpers import api_token, bearer
from tests.instance_fixtures import make_settings

EXAMPLES = 25  # per operation: the whole run stays within a few minutes on two cores
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


def test_document_is_valid_openapi_31() -> None:
    """The description is a valid OpenAPI 3.1 document (schemathesis validates it against
    the OpenAPI meta-schema when it loads it), and each component is a valid JSON Schema
    whose references all resolve."""
    doc = openapi.document()
    assert doc["openapi"] == "3.1.0"
    loaded = schemathesis.openapi.from_dict(doc)
    loaded.validate()
    assert len(list(loaded.get_all_operations())) == len(openapi.OPERATIONS)
    for name in doc["components"]["schemas"]:
        standalone = openapi.schema(name)
        jsonschema.Draft202012Validator.check_schema(standalone)
        jsonschema.Draft202012Validator(standalone).is_valid({})  # resolves every $ref


def test_document_is_not_valid_when_broken() -> None:
    """The validation above can fail: a document whose operation has no answers, or a
    component of an unknown type, is refused."""
    doc = openapi.document()
    broken = {**doc, "paths": {"/x": {"get": {"summary": "no responses", "responses": 1}}}}
    with pytest.raises(Exception):
        schemathesis.openapi.from_dict(broken).validate()
    with pytest.raises(KeyError):
        openapi.schema("NoSuchEntity")


def route_table() -> set[tuple[str, str]]:
    out = set()
    for route in api_routes:
        assert isinstance(route, Route)
        for method in route.methods or ():
            if method != "HEAD":
                out.add((method, route.path))
    return out


def test_every_route_is_described_and_nothing_else() -> None:
    """Every method and path of instance/api/routes.py has an operation in the description,
    and every operation described is one of those routes."""
    described = {(op.method, op.path) for op in openapi.OPERATIONS}
    routes = route_table()
    assert routes - described == set(), "routes missing from instance/api/openapi.py"
    assert described - routes == set(), "operations described without a route"
    assert len(described) == len(openapi.OPERATIONS), "an operation is described twice"


async def test_served_at_api_openapi_json(client) -> None:
    """GET /api/openapi.json serves the document, with this instance as its server, to
    anyone (no token)."""
    answer = await client.get("/api/openapi.json")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    doc = answer.json()
    assert doc["servers"] == [{"url": str(client.base_url).rstrip("/")}]
    assert doc["paths"] == openapi.document()["paths"]
    security = doc["components"]["securitySchemes"]
    assert security["bearer"] == {**security["bearer"], "type": "http", "scheme": "bearer"}
    home = doc["paths"]["/api/v1/timelines/home"]["get"]
    assert home["security"] == [{"bearer": ["read:statuses"]}]
    public = doc["paths"]["/api/v1/timelines/public"]["get"]
    assert public["security"] == [{}, {"bearer": []}]


async def test_schema_validates_entities(client, runtime, new_account) -> None:
    """`openapi.schema(name)` checks a real entity: a Status and its Account as the API
    serves them validate, and one missing a required field does not."""
    alice = await new_account("alice")
    token = await api_token(runtime, alice)
    posted = await client.post("/api/v1/statuses", data={"status": "hello #sea"},
                               headers=bearer(token))  # fmt: skip
    assert posted.status_code == 200
    status = posted.json()
    jsonschema.validate(status, openapi.schema("Status"))
    jsonschema.validate(status["account"], openapi.schema("Account"))
    del status["account"]["acct"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(status, openapi.schema("Status"))


NUL_REQUESTS = [
    ("GET", "/api/v1/timelines/tag/sea%00", {}),
    ("GET", "/api/v1/timelines/public?max_id=%00", {}),
    ("POST", "/api/v1/statuses", {"json": {"status": "a\u0000b"}}),
    ("POST", "/api/v1/statuses", {"data": {"status": "ab", "media_ids[]": ["\x00"]}}),
    ("PATCH", "/api/v1/accounts/update_credentials", {"files": {"note": (None, "a\x00")}}),
    ("POST", "/api/v2/media", {"json": {"prompt": "a\u0000"}}),
    ("POST", "/oauth/token", {"data": {"grant_type": "client_credentials", "client_id": "\x00"}}),
    ("POST", "/api/v1/apps", {"json": {"client_name": "\u0000", "redirect_uris": "x:y"}}),
]


@pytest.mark.parametrize(("method", "url", "body"), NUL_REQUESTS)
async def test_nul_characters_are_refused(client, runtime, new_account, method, url, body):
    """A NUL character in a request's path, query or body (JSON, url-encoded or multipart)
    answers 400 in Mastodon's error shape before any query sees it (PostgreSQL's text
    cannot hold one: schemathesis found these answering 500 there)."""
    token = await api_token(runtime, await new_account("alice"))
    answer = await client.request(method, url, headers=bearer(token), **body)
    assert answer.status_code == 400, answer.text
    assert answer.json() == {"error": "The request contains a NUL character"}


# -- schemathesis against the app ----------------------------------------------------------
def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 120, 40)).save(out, "PNG")
    return out.getvalue()


def offline(request: httpx.Request) -> httpx.Response:
    """No server but this one may be reached (tests only talk to 127.0.0.1): a lookup
    elsewhere (search with resolve=true) fails as an unreachable server does."""
    raise httpx.ConnectError("offline in this test", request=request)


@dataclass
class Seeded:
    """What the fuzzed app holds, for requests to name real rows."""

    token: str = ""  # alice's, with every scope
    ids: dict[str, list[str]] = field(default_factory=dict)  # path kind -> ids
    tags: list[str] = field(default_factory=list)
    host: str = ""
    model: str = ""


async def seed_instance(rt: Runtime) -> Seeded:
    """Accounts (the caller alice; bob, who follows her and likes and boosts her posts;
    carol, locked, whom alice asks to follow; dave, who asks to follow alice once she is
    locked), posts with a reply and a hashtag, a boost, an upload, and a token of alice's
    with every scope."""
    made = Seeded()
    async with rt.session() as s:
        people = {}
        for name, locked in (("alice", False), ("bob", False), ("carol", True), ("dave", False)):
            people[name] = await create_account(s, rt.urls, NewAccount(name))
            people[name].manually_approves_followers = locked
        alice, bob, carol, dave = people.values()
        first = await publish(s, rt, alice, Draft("the sea at dawn #sea"))
        second = await publish(s, rt, alice, Draft("followers only", visibility="followers"))
        reply = await publish(s, rt, bob, Draft("lovely", in_reply_to=first))
        await publish(s, rt, bob, Draft("a lighthouse #lighthouse", summary="light"))
        await actions.follow(s, rt, bob, alice)
        await actions.like(s, rt, bob, first)
        boost = await actions.boost(s, rt, bob, first)
        await actions.follow(s, rt, alice, carol)
        alice.manually_approves_followers = True
        await actions.follow(s, rt, dave, alice)
        upload = await media.store_upload(rt, alice, png())
        s.add(upload)
        await s.flush()
        made.ids["accounts"] = [str(a.id) for a in people.values()]
        made.ids["statuses"] = [p.public_id for p in (first, second, reply)] + [boost.public_id]
        made.ids["media"] = [upload.public_id]
        made.tags = ["sea", "lighthouse"]
        made.host, made.model = rt.settings.host, rt.settings.generator.model
        notes = await s.scalars(select_notifications(alice))
        made.ids["notifications"] = [str(n.id) for n in notes]
    made.token = await api_token(rt, alice)
    return made


def select_notifications(account: Account) -> Any:
    from sqlalchemy import select

    return select(Notification).where(Notification.account_id == account.id)


class FuzzedInstance:
    """An ASGI app that opens its runtime in the loop serving it (schemathesis runs ASGI
    apps in a thread of its own), plugs in the offline transport, seeds it, and serves the
    instance's app. Its clock runs `ahead` of the wall clock."""

    def __init__(self, directory: Path) -> None:
        self.settings = make_settings(directory)
        self.seeded = Seeded()
        self.app: Any = None
        self.ahead = timedelta(0)

    def next_rate_window(self) -> None:
        """Move the clock past the rate limit's window (300 requests per account), as a
        client spreading its requests over time would see it: each operation's examples
        get a window of their own."""
        self.ahead += RATE_WINDOW

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        rt = await open_runtime(self.settings)
        rt.clock = lambda: wall_clock() + self.ahead
        try:
            await ensure_instance(rt)
            await rt.use_http(httpx.AsyncClient(transport=httpx.MockTransport(offline)))
            self.seeded = await seed_instance(rt)
            self.app = create_app(self.settings, run_workers=False, runtime=rt)
            async with self.app.router.lifespan_context(self.app):
                yield
        finally:
            await rt.aclose()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        await receive()  # lifespan.startup
        try:
            async with self.running():
                await send({"type": "lifespan.startup.complete"})
                await receive()  # lifespan.shutdown
        except BaseException as exc:
            await send({"type": "lifespan.startup.failed", "message": repr(exc)})
            raise
        await send({"type": "lifespan.shutdown.complete"})


PATH_KINDS = {
    "/api/v1/accounts/": "accounts",
    "/api/v1/follow_requests/": "accounts",
    "/api/v1/statuses/": "statuses",
    "/api/v1/media/": "media",
    "/api/v1/notifications/": "notifications",
}


def known_values(seeded: Seeded, path: str) -> dict[str, list[Any]]:
    """Values of real rows by parameter or field name, which a request uses for about half
    of the names it has (random ids alone would nearly always find nothing)."""
    ids = seeded.ids
    statuses, accounts = ids["statuses"], ids["accounts"]
    known: dict[str, list[Any]] = {
        "in_reply_to_id": statuses, "quoted_status_id": statuses, "remix_of": statuses,
        "media_ids": [[m] for m in ids["media"]], "media_ids[]": [[m] for m in ids["media"]],
        "acct": ["alice", "@bob", "carol@" + seeded.host], "account_id": accounts,
        "id[]": [accounts], "q": ["al", "#se", "sea", "bob@" + seeded.host],
        "tagged": seeded.tags, "model": [seeded.model],
    }  # fmt: skip
    if "{hashtag}" in path:
        known["hashtag"] = seeded.tags
    for prefix, kind in PATH_KINDS.items():
        if path.startswith(prefix) and "{id}" in path:
            known["id"] = ids[kind]
    return known


def last_if_destructive(operation: Any) -> tuple[int, str]:
    """What deletes or undoes runs after everything else (clearing every notification
    last), so the seeded rows are there for the rest."""
    if operation.path.endswith("/clear"):
        return (2, operation.label)
    undoes = operation.method.upper() == "DELETE" or operation.path.endswith(
        ("/dismiss", "/reject", "/authorize", "/unfollow")
    )
    return (1 if undoes else 0, operation.label)


@pytest.fixture
def fuzzed(tmp_path: Path) -> Iterator[tuple[Any, FuzzedInstance]]:
    from schemathesis.python import asgi

    instance = FuzzedInstance(tmp_path / "instance")
    try:
        yield schemathesis.openapi.from_asgi(openapi.PATH, instance), instance
    finally:
        asgi.shutdown_lifespans()  # the runtime is closed before its database is dropped


@pytest.mark.slow
def test_schemathesis_finds_no_errors(fuzzed) -> None:
    """schemathesis generates requests from the description for every operation (with a
    token holding every scope; ids and names of real rows for about half of the
    parameters that name one) and checks each answer: no 5xx, a status code the operation
    declares, its declared content type, and a body that matches its schema. Every
    failure found is listed, and most operations must have answered with success."""
    schema, instance = fuzzed
    failures: list[str] = []
    operations = sorted((r.ok() for r in schema.get_all_operations()), key=last_if_destructive)
    # every operation but the document itself, which schemathesis leaves out
    assert len(operations) == len(openapi.OPERATIONS) - 1
    answered: dict[str, list[int]] = {}
    for operation in operations:
        instance.next_rate_window()
        failures += fuzz(operation, instance, answered.setdefault(operation.label, []))
    assert not failures, "\n\n".join(failures)
    # the run reached the endpoints' work, not only their refusals
    succeeded = [label for label, codes in answered.items() if any(c < 300 for c in codes)]
    assert all(answered.values()), "an operation was never called"
    assert len(succeeded) >= 0.75 * len(operations), {
        k: sorted(set(v)) for k, v in answered.items()
    }


def fuzz(operation: Any, instance: FuzzedInstance, answers: list[int]) -> list[str]:
    """Run one operation's examples; the failures found (the smallest failing request
    hypothesis shrank to, with why). `answers` gets each status code."""
    headers = bearer(instance.seeded.token)
    known = known_values(instance.seeded, operation.path)

    def use_known(values: Any, data: st.DataObject) -> None:
        if not isinstance(values, dict):
            return
        for key in list(values):
            if known.get(key) and data.draw(st.booleans()):
                values[key] = data.draw(st.sampled_from(known[key]))

    @hypothesis_settings(
        max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
        suppress_health_check=list(HealthCheck), print_blob=True,
    )  # fmt: skip
    @given(case=operation.as_strategy(), data=st.data())
    def run(case: Any, data: st.DataObject) -> None:
        for values in (case.path_parameters, case.query, case.body):
            use_known(values, data)
        response = case.call_and_validate(headers=headers, checks=CHECKS)
        answers.append(response.status_code)

    try:
        run()
    except (Exception, BaseExceptionGroup) as exc:  # schemathesis' failures are a group
        return [f"{operation.label}:\n" + "\n".join(reasons(exc))]
    return []


def reasons(exc: BaseException) -> list[str]:
    """Every failure in `exc`, groups opened (hypothesis wraps flaky ones in one)."""
    if isinstance(exc, BaseExceptionGroup):
        return [line for inner in exc.exceptions for line in reasons(inner)]
    cause = exc.__cause__ or exc.__context__
    return [str(exc), *(reasons(cause) if cause is not None and "unreliable" in str(exc) else [])]
