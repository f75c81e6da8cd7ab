"""Discovery and actor documents: WebFinger, host-meta, content negotiation, actors, NodeInfo."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import httpx
import jsonschema
import pytest
from sqlalchemy import select

from activitypub.objects import property_value
from instance.content.posting import Draft, publish
from instance.inbound.worker import InboxWorker
from instance.storage.models import Account, Post
from tests.instance.inbox_helpers import post as deliver
from tests.instance_fixtures import AP_ACCEPT
from webfinger.client import finger

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


@pytest.fixture
async def bot(new_account):
    return await new_account("loombot", ai=True, display_name="Loom Bot", bio="I paint.")


async def test_webfinger_resolves_acct_case_insensitively(client, bot, settings) -> None:
    # raw and percent-encoded resources, any case, JRD content type
    for resource in (
        f"acct:loombot@{settings.host}",
        quote(f"acct:LoomBot@{settings.host}", safe=""),
        f"LOOMBOT@{settings.host}",
    ):
        r = await client.get(f"/.well-known/webfinger?resource={resource}")
        assert r.status_code == 200, resource
        assert r.headers["content-type"] == "application/jrd+json"
        jrd = r.json()
        assert jrd["subject"] == f"acct:loombot@{settings.host}"
        self_link = next(link for link in jrd["links"] if link["rel"] == "self")
        assert self_link == {
            "rel": "self",
            "type": "application/activity+json",
            "href": bot.uri,
        }


async def test_webfinger_by_actor_url_and_profile_url(client, bot) -> None:
    # Akkoma asks with the actor URL
    for resource in (bot.uri, bot.url):
        r = await client.get("/.well-known/webfinger", params={"resource": resource})
        assert r.status_code == 200
        assert r.json()["subject"].startswith("acct:loombot@")


@pytest.mark.parametrize(
    ("resource", "status"),
    [
        ("acct:nobody@{host}", 404),
        ("acct:loombot@other.example", 404),
        ("https://other.example/users/loombot", 404),
        ("", 400),
        ("acct:no-at-sign", 400),
    ],
)
async def test_webfinger_bad_resources(client, bot, settings, resource, status) -> None:
    r = await client.get(
        "/.well-known/webfinger", params={"resource": resource.format(host=settings.host)}
    )
    assert r.status_code == status
    assert "error" in r.json()


async def test_host_meta_points_at_webfinger(client, settings) -> None:
    r = await client.get("/.well-known/host-meta")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/xrd+xml")
    assert f"{settings.base_url}/.well-known/webfinger?resource={{uri}}" in r.text


async def test_actor_document_of_ai_account(client, bot, settings) -> None:
    r = await client.get(bot.uri, headers=AP_ACCEPT)
    assert r.status_code == 200
    # the exact JSON type Mastodon requires, and Vary: Accept
    assert r.headers["content-type"] == "application/activity+json"
    assert "Accept" in r.headers["vary"]
    actor = r.json()
    # the AS context string, the security context
    assert actor["@context"][0] == "https://www.w3.org/ns/activitystreams"
    assert "https://w3id.org/security/v1" in actor["@context"]
    # AI accounts are Service (shown as bots)
    assert actor["type"] == "Service"
    assert actor["id"] == bot.uri
    assert actor["preferredUsername"] == "loombot"
    for key in ("inbox", "outbox", "followers", "following", "featured"):
        assert actor[key].startswith(settings.base_url + "/users/loombot")
    assert actor["endpoints"]["sharedInbox"] == f"{settings.base_url}/inbox"
    key = actor["publicKey"]
    assert key["id"] == f"{bot.uri}#main-key"
    assert key["owner"] == bot.uri
    assert key["publicKeyPem"].startswith("-----BEGIN PUBLIC KEY-----\n")
    # FEP-2c59: the handle on the actor, which Mastodon prefers
    assert actor["webfinger"] == f"loombot@{settings.host}"
    assert actor["manuallyApprovesFollowers"] is False


async def test_rsa_key_is_2048_and_stored(client, bot) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    actor = (await client.get(bot.uri, headers=AP_ACCEPT)).json()
    key = load_pem_public_key(actor["publicKey"]["publicKeyPem"].encode())
    assert key.key_size == 2048
    assert bot.private_key_pem and "PRIVATE KEY" in bot.private_key_pem


async def test_person_and_instance_actor_types(client, new_account, settings) -> None:
    person = await new_account("alice")
    assert (await client.get(person.uri, headers=AP_ACCEPT)).json()["type"] == "Person"
    # the instance actor, fetchable without a signature
    r = await client.get("/actor", headers=AP_ACCEPT)
    assert r.status_code == 200
    app_actor = r.json()
    assert app_actor["type"] == "Application"
    assert app_actor["id"] == f"{settings.base_url}/actor"
    # and it round-trips through WebFinger too
    wf = await client.get(
        "/.well-known/webfinger",
        params={"resource": f"acct:{app_actor['preferredUsername']}@{settings.host}"},
    )
    assert wf.status_code == 200
    assert next(lk for lk in wf.json()["links"] if lk["rel"] == "self")["href"] == app_actor["id"]


async def test_every_collection_an_actor_advertises_answers(client, bot) -> None:
    """GoToSocial fetches the collections an actor names and logs an error for each 404,
    the instance actor's included; an empty one still has `first` (without it, Mastodon
    shows the collection as hidden)."""
    for actor_url in (bot.uri, "/actor"):
        actor = (await client.get(actor_url, headers=AP_ACCEPT)).json()
        for name in ("outbox", "followers", "following", "featured"):
            r = await client.get(actor[name], headers=AP_ACCEPT)
            assert r.status_code == 200, (actor_url, name)
            doc = r.json()
            assert doc["id"] == actor[name] and doc["totalItems"] == 0
            if name != "featured":  # featured lists its few items inline
                assert doc["first"] == f"{actor[name]}?page=1"
                page = (await client.get(doc["first"], headers=AP_ACCEPT)).json()
                assert page["orderedItems"] == []


async def test_profile_fields_are_html(client, bot) -> None:
    """Mastodon sends a PropertyValue's `value` as HTML: text escaped, a URL as a link."""
    actor = (await client.get(bot.uri, headers=AP_ACCEPT)).json()
    (made_by, *_) = [f for f in actor["attachment"] if f["name"] == "Made by"]
    assert made_by["value"] == "AI image generation on this instance"
    assert property_value("Site", "https://a.example/x")["value"] == (
        '<a href="https://a.example/x" rel="me nofollow noopener" target="_blank">'
        "a.example/x</a>"
    )
    assert property_value("Note", "<b>&</b>")["value"] == "&lt;b&gt;&amp;&lt;/b&gt;"


async def test_content_negotiation(client, bot) -> None:
    # ld+json with the AS profile gets JSON too
    ld = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
    r = await client.get(bot.uri, headers={"Accept": ld})
    assert r.status_code == 200 and r.json()["id"] == bot.uri
    # a browser gets HTML
    r = await client.get(bot.uri, headers={"Accept": "text/html"}, follow_redirects=True)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "Accept" in r.headers["vary"]
    # the HTML permalink links to its ActivityPub twin
    assert f'<link rel="alternate" type="application/activity+json" href="{bot.uri}">' in r.text
    assert "Loom Bot" in r.text
    assert "application/activity+json" in r.headers["link"]


async def test_unknown_account_404(client) -> None:
    r = await client.get("/users/ghost", headers=AP_ACCEPT)
    assert r.status_code == 404


async def test_collections_have_total_items_and_pages(client, bot) -> None:
    for name in ("outbox", "followers", "following"):
        head = (await client.get(f"{bot.uri}/{name}", headers=AP_ACCEPT)).json()
        assert head["type"] == "OrderedCollection"
        assert head["totalItems"] == 0
        page = (await client.get(f"{bot.uri}/{name}?page=1", headers=AP_ACCEPT)).json()
        assert page["type"] == "OrderedCollectionPage"
        assert page["partOf"] == f"{bot.uri}/{name}"
        assert page["orderedItems"] == []
    featured = (await client.get(f"{bot.uri}/collections/featured", headers=AP_ACCEPT)).json()
    assert featured["type"] == "OrderedCollection"
    assert featured["orderedItems"] == []


async def test_nodeinfo_discovery_and_schema(client, bot) -> None:
    links = (await client.get("/.well-known/nodeinfo")).json()["links"]
    rels = {link["rel"]: link["href"] for link in links}
    assert set(rels) == {
        "http://nodeinfo.diaspora.software/ns/schema/2.0",
        "http://nodeinfo.diaspora.software/ns/schema/2.1",
    }
    for version in ("2.0", "2.1"):
        r = await client.get(rels[f"http://nodeinfo.diaspora.software/ns/schema/{version}"])
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json; profile=")
        doc = r.json()
        schema = json.loads((FIXTURES / f"nodeinfo-{version}.schema.json").read_text())
        jsonschema.validate(doc, schema)
        assert doc["software"]["name"] == "dreamloom"
        assert doc["usage"]["users"]["total"] == 1  # the bot; not the instance actor


async def test_webfinger_round_trip_over_real_http(live, bot, runtime) -> None:
    # Mastodon's round trip: handle -> WebFinger -> actor -> preferredUsername@host ->
    # WebFinger -> the same id
    host = runtime.settings.host
    async with httpx.AsyncClient() as http:
        href, _ = await finger(http, f"loombot@{host}", scheme="http")
        actor = (await http.get(href, headers=AP_ACCEPT)).json()
        assert actor["id"] == href
        back, _ = await finger(
            http,
            f"{actor['preferredUsername']}@{httpx.URL(actor['id']).netloc.decode()}",
            scheme="http",
        )
        assert back == actor["id"]


async def test_a_notes_replies_collection_lists_its_public_replies(
    client, runtime, fedi, bot
) -> None:
    """Mastodon backfills a thread from the Note's `replies` collection: it lists the
    replies anyone may fetch (ours and others'), never a followers-only one."""
    async with runtime.session() as s:
        ours = await publish(s, runtime, await s.get_one(Account, bot.id), Draft(text="sea"))
    alice = fedi.actor("alice")
    public = alice.note("<p>nice</p>", inReplyTo=ours.uri)
    private = alice.note("<p>psst</p>", inReplyTo=ours.uri, to=[f"{alice.uri}/followers"],
                         cc=[])  # fmt: skip
    for note in (public, private):
        assert (await deliver(client, runtime, alice, alice.create(note))).status_code == 202
        await InboxWorker(runtime).run_once()
    note = (await client.get(ours.uri, headers=AP_ACCEPT)).json()
    head = (await client.get(note["replies"]["id"], headers=AP_ACCEPT)).json()
    assert head["totalItems"] == 1
    page = (await client.get(note["replies"]["first"], headers=AP_ACCEPT)).json()
    assert page["orderedItems"] == [public["id"]]
    async with runtime.sessions() as s:
        assert await s.scalar(select(Post.id).where(Post.uri == private["id"]))  # stored
