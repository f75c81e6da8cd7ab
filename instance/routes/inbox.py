"""`POST /users/{username}/inbox` and the shared `POST /inbox`: check, store, 202.

The order is the policy; nothing that can wait runs before the 202:

1. overload: past `Intake.max_pending` requests at once -> 503 + Retry-After;
2. size: Content-Length, then the streamed body, over `[federation] inbox_max_bytes` -> 413
   before any key fetch or JSON parse;
3. Content-Type: activity+json or ld+json with the ActivityStreams profile, else 415;
4. JSON object, else 400;
5. HTTP signature on the raw path, query and headers (activitypub.signatures) with keys from
   the KeyRing -> 401 with the reason; a `Delete` from a signer we never saw is accepted and
   dropped without fetching anything (Mastodon sends every account deletion to every server
   it knows, and the deleted actor's key can no longer be fetched);
6. origin policy (instance.inbound.intake.admit) -> 400/403, or 202 and dropped (types we
   do not handle);
7. one inbox row, idempotent on the activity id, committed -> 202.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from activitypub.errors import SignatureError
from activitypub.fetch import is_activitypub_content_type
from activitypub.keys import PublicKeyInfo
from activitypub.signatures import verify_request
from instance.errors import Refused
from instance.inbound.intake import Intake, admit
from instance.inbound.keyring import KeyRing
from instance.routes.common import error_json, runtime
from instance.runtime import Runtime

log = logging.getLogger("dreamloom.inbox")
RETRY_AFTER_S = "30"


class BodyTooLarge(Exception):
    pass


async def inbox(request: Request) -> Response:
    rt = runtime(request)
    intake = rt.service(Intake)
    if not intake.try_enter():
        return busy("too many requests in flight")
    try:
        return await receive(request, rt, intake)
    except (TimeoutError, SQLAlchemyError, OSError) as exc:
        log.warning("inbox could not store an activity: %s", exc)
        return busy("could not store the activity now")
    finally:
        intake.leave()


async def receive(request: Request, rt: Runtime, intake: Intake) -> Response:
    try:
        body = await read_capped(request, rt.settings.federation.inbox_max_bytes)
    except BodyTooLarge:
        return error_json("activity too large", 413)
    if not is_activitypub_content_type(request.headers.get("content-type")):
        return error_json("Content-Type must be application/activity+json", 415)
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return error_json("body is not JSON", 400)
    if not isinstance(document, dict):
        return error_json("body is not a JSON object", 400)

    ring = rt.service(KeyRing)
    is_delete = document.get("type") == "Delete"
    unknown_signer = False

    async def resolve(key_id: str, refresh: bool) -> PublicKeyInfo | None:
        nonlocal unknown_signer
        key = await ring.resolve(key_id, refresh=refresh, may_fetch=refresh or not is_delete)
        unknown_signer = key is None
        return key

    scope = request.scope
    target = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    if scope.get("query_string"):
        target += "?" + scope["query_string"].decode("latin-1")
    try:
        signed = await verify_request(
            request.method, target, scope["headers"], body, resolve,
            now=rt.now(), scheme=rt.settings.instance.scheme,
        )  # fmt: skip
        if "host" in signed.covered and request.headers.get("host", "").lower() != rt.settings.host:
            raise SignatureError("the request was signed for another host")
    except SignatureError as exc:
        if is_delete and unknown_signer:
            return accepted()  # the deletion of an actor we never knew: nothing to do
        return error_json(exc.reason, 401)

    username = request.path_params.get("username")
    if username is not None and not await intake.has_account(username):
        return error_json("no such account", 404)
    try:
        stored = admit(document, signed.owner, rt.urls)
        if stored is not None:
            await intake.store(stored, as_text(body, stored, document), signed.key_id)
    except Refused as refused:
        return error_json(refused.reason, refused.status)
    return accepted()


def as_text(body: bytes, stored: dict[str, Any], document: dict[str, Any]) -> str:
    """What the inbox row keeps: the request's own bytes when they are UTF-8 and stored as
    sent, else the document as ASCII JSON."""
    if stored is document:
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return json.dumps(stored)


async def read_capped(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        raise BodyTooLarge
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise BodyTooLarge
    return bytes(body)


def accepted() -> Response:
    return Response(status_code=202)


def busy(reason: str) -> Response:
    response = error_json(reason, 503)
    response.headers["Retry-After"] = RETRY_AFTER_S
    return response


routes = [
    Route("/inbox", inbox, methods=["POST"]),
    Route("/actor/inbox", inbox, methods=["POST"]),  # the instance actor's
    Route("/users/{username}/inbox", inbox, methods=["POST"]),
]
