"""`POST /users/{username}/inbox` and the shared `POST /inbox`: check, store, 202.

The order is the policy; nothing that can wait runs before the 202:

1. the body, read before anything else counts the request: a declared Content-Length over
   `[federation] inbox_max_bytes` -> 413 at once; at most READS_PER_IP bodies read at a time
   from one client address -> else 429 + Retry-After; the whole body within
   BODY_DEADLINE_S -> else 408, and over the cap while streaming -> 413. A client that
   sends headers and then a byte now and then holds only its own address's reading slots,
   never the inbox;
2. overload: past `Intake.max_pending` requests verifying or storing at once -> 503 +
   Retry-After;
3. Content-Type: activity+json or ld+json with the ActivityStreams profile, else 415;
4. JSON object, else 400; then a keyId host or actor host under a suspended domain
   (instance/moderation/domains.py) -> 403, before any key fetch or signature check;
5. HTTP signature on the raw path, query and headers (activitypub.signatures) with keys from
   the KeyRing, and the Host header must be ours -> 401 with the reason; a `Delete` from a
   signer we never saw is accepted and
   dropped without fetching anything (Mastodon sends every account deletion to every server
   it knows, and the deleted actor's key can no longer be fetched);
6. the sender's allowance (instance/inbound/limits.py: per actor, per server) -> else 429 +
   Retry-After;
7. origin policy (instance.inbound.intake.admit) -> 400/403, or 202 and dropped (types we
   do not handle);
8. free disk above `[federation] inbox_min_free_disk_mb` -> else 503 + Retry-After;
9. one inbox row, once per (signer, activity id), committed -> 202.

Every answer is counted (instance/metrics.py): 202 by result (stored, dropped), a refusal by
its reason from a fixed vocabulary (`refused("signature", ...)`) and its status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from activitypub.errors import InvalidURLError, SignatureError
from activitypub.fetch import is_activitypub_content_type
from activitypub.keys import PublicKeyInfo
from activitypub.objects import id_of
from activitypub.signatures import verify_request
from activitypub.urls import host_of
from instance.errors import Refused
from instance.inbound.intake import Intake, admit
from instance.inbound.keyring import KeyRing
from instance.inbound.limits import InboxLimits
from instance.metrics import INBOX_ACCEPTED, INBOX_REFUSED
from instance.moderation.gate import InboxGate
from instance.routes.common import client_ip, error_json, runtime
from instance.runtime import Runtime

log = logging.getLogger("dreamloom.inbox")
RETRY_AFTER_S = 30
ACCEPTED = {result: INBOX_ACCEPTED.labels(result) for result in ("stored", "dropped")}
BODY_DEADLINE_S = 10.0  # the whole body, however it trickles in


class BodyTooLarge(Exception):
    pass


async def inbox(request: Request) -> Response:
    rt = runtime(request)
    intake = rt.service(Intake)
    cap = rt.settings.federation.inbox_max_bytes
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > cap):
        return refused("too_large", error_json("activity too large", 413))
    address = client_ip(request)
    if not intake.start_reading(address):
        return refused("address_busy", busy("too many requests from your address at once", 429))
    try:
        async with asyncio.timeout(BODY_DEADLINE_S):
            body = await read_capped(request, cap)
    except BodyTooLarge:
        return refused("too_large", error_json("activity too large", 413))
    except TimeoutError:
        late = f"the body did not arrive within {BODY_DEADLINE_S:g} s"
        return refused("body_timeout", error_json(late, 408))
    except ClientDisconnect:
        return refused("disconnected", Response(status_code=400))  # nobody is listening
    finally:
        intake.done_reading(address)
    if not intake.try_enter():
        return refused("overloaded", busy("too many requests in flight"))
    try:
        return await receive(request, rt, intake, body)
    except (TimeoutError, SQLAlchemyError, OSError) as exc:
        log.warning("inbox could not store an activity: %s", exc)
        return refused("storage_error", busy("could not store the activity now"))
    finally:
        intake.leave()


async def receive(request: Request, rt: Runtime, intake: Intake, body: bytes) -> Response:
    if not is_activitypub_content_type(request.headers.get("content-type")):
        wrong_type = error_json("Content-Type must be application/activity+json", 415)
        return refused("content_type", wrong_type)
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return refused("not_json", error_json("body is not JSON", 400))
    if not isinstance(document, dict):
        return refused("not_json", error_json("body is not a JSON object", 400))

    gate = rt.service(InboxGate)  # a snapshot: no query per request (moderation/gate.py)
    if await gate.first_suspended(claimed_hosts(request, document)):  # before any key fetch
        not_ours = error_json("this instance does not federate with your domain", 403)
        return refused("suspended_domain", not_ours)

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
    if not rt.urls.names_us(request.headers.get("host", "")):
        # whatever was signed (Host, @authority, @target-uri), or not: a request for another
        # server, relayed to us, is not ours to take (and costs no key fetch)
        other_host = error_json("the request names another host than this instance", 401)
        return refused("wrong_host", other_host)
    try:
        signed = await verify_request(
            request.method, target, scope["headers"], body, resolve,
            now=rt.now(), scheme=rt.settings.instance.scheme,
        )  # fmt: skip
    except SignatureError as exc:
        if is_delete and unknown_signer:
            return accepted("dropped")  # the deletion of an actor we never knew: nothing to do
        return refused("signature", error_json(exc.reason, 401))

    limits = rt.service(InboxLimits)
    wait = limits.retry_after(signed.owner, host_of(signed.owner), len(body))
    if wait:
        too_fast = busy("you are sending faster than this instance takes", 429, wait)
        return refused("rate_limited", too_fast)
    username = request.path_params.get("username")
    if username is not None and not await intake.has_account(username):
        return refused("no_account", error_json("no such account", 404))
    if await gate.refuses_actor(signed.owner):  # an admin suspended this remote account
        return refused("suspended_actor", error_json("this account is suspended here", 403))
    try:
        stored = admit(document, signed.owner, rt.urls)
        if stored is not None:
            if not limits.disk.ok():
                return refused("low_disk", busy("this instance is short of disk space"))
            await intake.store(
                stored, as_text(body, stored, document), signed.key_id, signed.owner,
                scheme=signed.scheme,
            )  # fmt: skip
    except Refused as no:
        return refused("policy", error_json(no.reason, no.status))
    return accepted("stored" if stored is not None else "dropped")


_KEY_ID = re.compile(r'keyid\s*=\s*"([^"]*)"', re.IGNORECASE)


def claimed_hosts(request: Request, document: dict[str, Any]) -> set[str]:
    """The hosts a request speaks for before anything is verified: its signature's keyId
    (draft-cavage `Signature`, RFC 9421 `Signature-Input`) and the activity's actor."""
    named: list[str] = []
    for header in ("signature", "signature-input"):
        named += _KEY_ID.findall(request.headers.get(header, ""))
    actor = id_of(document.get("actor"))  # a string, an object or a list: as admit() reads it
    if actor is not None:
        named.append(actor)
    hosts = set()
    for uri in named:
        try:
            hosts.add(host_of(uri))
        except InvalidURLError:
            continue
    return hosts


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
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise BodyTooLarge
    return bytes(body)


def accepted(result: str) -> Response:
    """202, counted: `stored` (an inbox row) or `dropped` (nothing for us to do)."""
    ACCEPTED[result].inc()
    return Response(status_code=202)


def refused(reason: str, response: Response) -> Response:
    """`response`, counted as a refusal for `reason` (one of a fixed vocabulary: the metric's
    label values must stay few)."""
    INBOX_REFUSED.labels(reason, str(response.status_code)).inc()
    return response


def busy(reason: str, status: int = 503, retry_after: int = RETRY_AFTER_S) -> Response:
    response = error_json(reason, status)
    response.headers["Retry-After"] = str(retry_after)
    return response


routes = [
    Route("/inbox", inbox, methods=["POST"]),
    Route("/actor/inbox", inbox, methods=["POST"]),  # the instance actor's
    Route("/users/{username}/inbox", inbox, methods=["POST"]),
]
