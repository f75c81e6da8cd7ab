"""The inbox over HTTP: size, content type, signatures, keys, origin policy, idempotency,
overload. Each threat is driven end to end through POST /inbox with its status and DB
effect (no row for anything refused)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy.exc import OperationalError

from instance.inbound.intake import Intake
from instance.inbound.keyring import KeyRing
from instance.storage.models import Account, InboxItem, RemoteKey
from tests.instance.fediverse import AS
from tests.instance.inbox_helpers import count, inbox_rows, post


@pytest.fixture
async def bob(new_account):
    return await new_account("bob")


@pytest.fixture
def alice(fedi):
    return fedi.actor("alice")


async def test_signed_create_is_stored_and_answered_202(client, runtime, fedi, alice, bob):
    activity = alice.create(alice.note(tag=[{"type": "Mention", "href": bob.uri}]))
    r = await post(client, runtime, alice, activity)
    assert r.status_code == 202
    [row] = await inbox_rows(runtime)
    assert (row.activity_uri, row.actor_uri, row.signer_key_id, row.status) == (
        activity["id"], alice.uri, alice.key_id, "queued",
    )
    assert json.loads(row.body) == activity
    # the key was fetched once, signed by our instance actor (authorized-fetch servers
    # refuse unsigned GETs), and stored
    [get] = [r for r in fedi.requests if r.method == "GET"]
    assert str(get.url) == alice.uri
    assert 'keyId="' + runtime.urls.key_id("instance_actor") in get.headers["signature"]
    assert await count(runtime, RemoteKey, RemoteKey.key_id == alice.key_id) == 1
    assert await count(runtime, Account, Account.uri == alice.uri) == 1


async def test_personal_inbox_and_unknown_user(client, runtime, alice, bob):
    r = await post(client, runtime, alice, alice.create(), "/users/bob/inbox")
    assert r.status_code == 202
    r = await post(client, runtime, alice, alice.create(), "/users/nobody/inbox")
    assert r.status_code == 404
    assert len(await inbox_rows(runtime)) == 1


async def test_known_key_is_not_fetched_again(client, runtime, fedi, alice):
    for _ in range(3):
        assert (await post(client, runtime, alice, alice.create())).status_code == 202
    runtime.forget_service(KeyRing)  # a restart: the key now comes from the database
    assert (await post(client, runtime, alice, alice.create())).status_code == 202
    assert fedi.gets() == [alice.uri]


async def test_gotosocial_key_stub_form(client, runtime, fedi):
    """GoToSocial's keyId `<actor>/main-key` names a key document whose owner lists it."""
    gts = fedi.actor("carol", "gts.example", key=1, key_style="stub")
    assert (await post(client, runtime, gts, gts.create())).status_code == 202
    assert fedi.gets() == [gts.key_id, gts.uri]


async def test_rotated_key_is_refetched_once(client, runtime, fedi, alice):
    """A blind key rotation; verification fails, the key is re-fetched."""
    assert (await post(client, runtime, alice, alice.create())).status_code == 202
    rotated = fedi.actor("alice", key=2)
    assert (await post(client, runtime, rotated, rotated.create())).status_code == 202
    assert fedi.gets() == [alice.uri, alice.uri]
    async with runtime.sessions() as s:
        assert (await s.get(RemoteKey, alice.key_id)).public_key_pem == rotated.public_pem


# -- signatures --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("signature", "reason"),
    [
        (None, "not signed"),
        ("garbage", "malformed"),
        ('keyId="https://remote.example/users/alice#main-key",algorithm="rsa-sha1",'
         'headers="(request-target) host date digest",signature="AAAA"', "unsupported"),
    ],
)
async def test_unsigned_or_malformed_signature_401(client, runtime, alice, signature, reason):
    """No or garbage Signature, or rsa-sha1 -> 401 with the reason, no row."""
    body = json.dumps(alice.create()).encode()
    headers = alice.signed_headers(runtime.settings.base_url + "/inbox", body, now=runtime.now())
    del headers["Signature"]
    if signature is not None:
        headers["Signature"] = signature
    r = await client.post("/inbox", content=body, headers=headers)
    assert r.status_code == 401
    assert reason in r.json()["error"]
    assert await inbox_rows(runtime) == []


async def test_body_swap_401(client, runtime, alice):
    """Sign body A, send body B -> 401 digest mismatch; an unsigned digest -> 401."""
    a, b = json.dumps(alice.create()).encode(), json.dumps(alice.create()).encode()
    headers = alice.signed_headers(runtime.settings.base_url + "/inbox", a, now=runtime.now())
    r = await client.post("/inbox", content=b, headers=headers)
    assert r.status_code == 401
    assert "digest mismatch" in r.json()["error"]
    unsigned = headers | {"Signature": headers["Signature"].replace(" digest", "")}
    r = await client.post("/inbox", content=a, headers=unsigned)
    assert r.status_code == 401
    assert "Digest" in r.json()["error"]
    assert await inbox_rows(runtime) == []


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("/users/bob/inbox", {}),  # signed for /inbox, sent to another path
        ("/inbox?x=2", {}),  # query added
        ("/inbox", {"Host": "other.example"}),  # another Host
    ],
)
async def test_request_target_or_host_tamper_401(client, runtime, alice, bob, path, extra):
    """Path, query and Host are part of what was signed."""
    body = json.dumps(alice.create()).encode()
    headers = alice.signed_headers(runtime.settings.base_url + "/inbox", body, now=runtime.now())
    r = await client.post(path, content=body, headers=headers | extra)
    assert r.status_code == 401
    assert await inbox_rows(runtime) == []


async def test_replay_signed_for_another_host_401(client, runtime, alice):
    """A request signed for another server (Host signed) is not ours."""
    body = json.dumps(alice.create()).encode()
    headers = alice.signed_headers("https://other.example/inbox", body, now=runtime.now())
    r = await client.post("/inbox", content=body, headers=headers)
    assert r.status_code == 401
    assert "another host" in r.json()["error"]


@pytest.mark.parametrize(
    ("shift", "status"),
    [(timedelta(hours=-2), 401), (timedelta(hours=2), 401), (timedelta(seconds=-30), 202)],
)
async def test_date_window(client, runtime, alice, shift, status):
    """A Date 2 h old or 2 h ahead -> 401 (no replay of old requests); 30 s old -> accepted."""
    r = await post(client, runtime, alice, alice.create(), now=runtime.now() + shift)
    assert r.status_code == status
    assert len(await inbox_rows(runtime)) == (status == 202)


async def test_unparsable_date_401(client, runtime, alice):
    """A Date that is not an HTTP date -> 401."""
    body = json.dumps(alice.create()).encode()
    headers = alice.signed_headers(runtime.settings.base_url + "/inbox", body, now=runtime.now())
    r = await client.post("/inbox", content=body, headers=headers | {"Date": "yesterday"})
    assert r.status_code == 401
    assert await inbox_rows(runtime) == []


# -- idempotency -------------------------------------------------------------------------------
@pytest.mark.parametrize("copies", [1, 2, 50])
async def test_same_activity_concurrently_makes_one_row(client, runtime, alice, copies):
    """The same signed request 1x, 2x, 50x at once -> one row, all 202."""
    activity = alice.create()
    body = json.dumps(activity).encode()
    headers = alice.signed_headers(runtime.settings.base_url + "/inbox", body, now=runtime.now())
    answers = await asyncio.gather(
        *(client.post("/inbox", content=body, headers=headers) for _ in range(copies))
    )
    assert [r.status_code for r in answers] == [202] * copies
    assert [row.activity_uri for row in await inbox_rows(runtime)] == [activity["id"]]


# -- who may say what --------------------------------------------------------------------------
async def test_signer_is_not_the_actor_403(client, runtime, fedi, alice):
    """Alice signs a Like claiming to be Mallory's -> 403, nothing stored."""
    mallory = fedi.actor("mallory", "other.example", key=1)
    forged = mallory.activity("Like", "https://other.example/users/mallory/statuses/1")
    r = await post(client, runtime, alice, forged)
    assert r.status_code == 403
    assert "is not the actor" in r.json()["error"]
    assert await inbox_rows(runtime) == []


async def test_forwarded_create_keeps_only_the_object_id(client, runtime, fedi, alice):
    """A Create signed by someone else is stored as a reference to the object,
    which the worker fetches from its origin (see test_inbox_worker)."""
    mallory = fedi.actor("mallory", "other.example", key=1)
    forged = mallory.create(mallory.note("<p>words mallory never wrote</p>"))
    r = await post(client, runtime, alice, forged)
    assert r.status_code == 202
    [row] = await inbox_rows(runtime)
    assert json.loads(row.body) == {
        "id": forged["id"], "type": "Create", "actor": mallory.uri,
        "object": forged["object"]["id"],
    }  # fmt: skip


@pytest.mark.parametrize(
    "key_doc",
    [
        # a key document on another origin naming the victim as its owner
        {"id": "https://evil.example/k", "owner": "https://remote.example/users/alice"},
        # a key document naming the signer as owner, but the owner does not list it
        {"id": "https://remote.example/keys/extra", "owner": "https://remote.example/users/alice"},
    ],
)
async def test_key_not_bound_to_actor_401(client, runtime, fedi, alice, key_doc):
    """keyId and owner must share an origin, and the owner must list the key."""
    fedi.serve(key_doc["id"], {"@context": AS, **key_doc, "publicKeyPem": alice.public_pem})
    r = await post(client, runtime, alice, alice.create(), key_id=key_doc["id"])
    assert r.status_code == 401
    assert await inbox_rows(runtime) == []


async def test_actor_listing_a_foreign_key_401(client, runtime, fedi):
    """An actor document listing a key on another origin does not bind it."""
    victim = fedi.actor("victim", "victim.example", key=1)
    doc = victim.document()
    doc["publicKey"] = {"id": "https://evil.example/users/e#main-key", "owner": victim.uri,
                        "publicKeyPem": victim.public_pem}  # fmt: skip
    fedi.serve("https://evil.example/users/e", doc)
    r = await post(client, runtime, victim, victim.create(),
                   key_id="https://evil.example/users/e#main-key")  # fmt: skip
    assert r.status_code == 401
    assert await inbox_rows(runtime) == []


@pytest.mark.parametrize(
    "change",
    [
        {"id": "https://other.example/statuses/1"},  # object on another host
        {"attributedTo": "https://other.example/users/mallory"},  # third-party attribution
    ],
)
async def test_third_party_attribution_403(client, runtime, alice, change):
    """A Create whose object or author is not on the actor's origin -> 403."""
    r = await post(client, runtime, alice, alice.create(alice.note(**change)))
    assert r.status_code == 403
    assert await inbox_rows(runtime) == []


async def test_remote_object_claiming_local_author_403(client, runtime, alice, bob):
    """A remote Note attributed to our user, or with our id, is refused."""
    for change in ({"attributedTo": bob.uri}, {"id": f"{bob.uri}/posts/forged"}):
        r = await post(client, runtime, alice, alice.create(alice.note(**change)))
        assert r.status_code == 403
    assert await inbox_rows(runtime) == []


# -- types -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("content_type", "status"),
    [
        ("application/activity+json", 202),
        ("application/activity+json; charset=utf-8", 202),
        ('application/ld+json; profile="https://www.w3.org/ns/activitystreams"', 202),
        ("application/json", 415),
        ("text/html", 415),
    ],
)
async def test_content_types(client, runtime, alice, content_type, status):
    r = await post(client, runtime, alice, alice.create(), content_type=content_type)
    assert r.status_code == status


async def test_unsupported_type_202_and_dropped(client, runtime, alice):
    r = await post(client, runtime, alice, alice.activity("Listen", "https://music.example/tracks/1"))
    assert r.status_code == 202
    assert await inbox_rows(runtime) == []


async def test_malformed_json_400(client, runtime, alice):
    r = await post(client, runtime, alice, None, body=b'{"type": ')
    assert r.status_code == 400
    r = await post(client, runtime, alice, None, body=b'["not an object"]')
    assert r.status_code == 400


async def test_delete_from_unknown_actor_202_without_fetch(client, runtime, fedi):
    """A gone account's Delete; its key is not fetched (it would be a 410)."""
    gone = fedi.actor("gone", "gone.example", key=1)
    fedi.serve(gone.uri, {"error": "gone"}, status=410)
    r = await post(client, runtime, gone, gone.activity("Delete", gone.uri))
    assert r.status_code == 202
    assert fedi.requests == []
    assert await inbox_rows(runtime) == []


# -- limits ------------------------------------------------------------------------------------
async def test_oversized_body_413_before_key_fetch(client, runtime, fedi, alice):
    """1.5 MB -> 413 before any key fetch or JSON parse, declared or streamed."""
    note = alice.note("<p>" + "x" * 1_500_000 + "</p>")
    r = await post(client, runtime, alice, alice.create(note))
    assert r.status_code == 413
    body = json.dumps(alice.create(note)).encode()
    headers = alice.signed_headers(runtime.settings.base_url + "/inbox", body, now=runtime.now())

    async def chunks():
        for i in range(0, len(body), 65536):
            yield body[i : i + 65536]

    r = await client.post("/inbox", content=chunks(), headers=headers)
    assert r.status_code == 413
    assert fedi.requests == []
    assert await inbox_rows(runtime) == []


async def test_overload_answers_503_with_retry_after(client, runtime, alice, monkeypatch):
    """Past the in-flight bound -> 503 + Retry-After, never 500; every 202 kept."""
    assert (await post(client, runtime, alice, alice.create())).status_code == 202  # warm key
    intake = runtime.service(Intake)
    intake.max_pending = 3
    release = asyncio.Event()
    write = intake.writer.write

    async def slow_write(row, **how):
        await release.wait()
        await write(row, **how)

    monkeypatch.setattr(intake.writer, "write", slow_write)
    activities = [alice.create() for _ in range(12)]
    tasks = [asyncio.ensure_future(post(client, runtime, alice, a)) for a in activities]

    async def three_waiting() -> None:
        while intake.pending < 3:
            await asyncio.sleep(0.001)

    await asyncio.wait_for(three_waiting(), 10)
    release.set()
    responses = await asyncio.gather(*tasks)
    answers = [r.status_code for r in responses]
    assert sorted(set(answers)) == [202, 503]
    assert {r.headers["retry-after"] for r in responses if r.status_code == 503} == {"30"}
    assert answers.count(202) == 3
    assert (await post(client, runtime, alice, alice.create())).status_code == 202  # recovered
    stored = {row.activity_uri for row in await inbox_rows(runtime)}
    accepted = {a["id"] for a, code in zip(activities, answers, strict=True) if code == 202}
    assert accepted <= stored


async def test_database_failure_is_503_not_500(client, runtime, alice, monkeypatch):
    """A locked or failing database -> 503 + Retry-After."""

    async def broken(batch):
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(runtime.service(Intake).writer, "_insert", broken)
    r = await post(client, runtime, alice, alice.create())
    assert r.status_code == 503
    assert r.headers["retry-after"] == "30"
    assert await count(runtime, InboxItem) == 0

