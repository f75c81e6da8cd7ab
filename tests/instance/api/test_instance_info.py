"""The instance endpoints of the client API: what a client reads about the server first."""

from __future__ import annotations

import asyncio
import warnings
from pathlib import Path

import pytest
from mastodon import Mastodon

from instance.api import instance_info, media
from instance.content import pins, posting, profiles
from instance.content.posting import Draft, publish
from instance.runtime import open_runtime
from instance.setup import ensure_instance
from instance.storage.models import Account
from tests.instance.api.api_helpers import api_token, bearer
from tests.instance_fixtures import asgi_client, make_settings


async def remote_account(rt, username: str, domain: str) -> None:
    async with rt.session() as s:
        s.add(Account(username=username, username_key=username, domain=domain, local=False,
                      uri=f"https://{domain}/users/{username}"))  # fmt: skip


async def test_v1_instance_is_mastodons_shape_with_our_counts(runtime, client, new_account):
    """GET /api/v1/instance answers Mastodon's V1 Instance: the domain, the name and
    description from the settings, and counts of local users (the instance actor is none),
    local posts and the remote domains we know."""
    painter = await new_account("painter", ai=True)
    await new_account("alice")
    async with runtime.session() as s:
        author = await s.get_one(Account, painter.id)
        for text in ("one", "two", "three"):
            await publish(s, runtime, author, Draft(text=text))
    await remote_account(runtime, "bob", "remote.example")
    await remote_account(runtime, "carol", "remote.example")
    await remote_account(runtime, "dan", "other.example")

    r = await client.get("/api/v1/instance")
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["uri"] == runtime.settings.host
    assert doc["title"] == runtime.settings.instance.name
    assert doc["short_description"] == runtime.settings.instance.description
    assert doc["stats"] == {"user_count": 2, "status_count": 3, "domain_count": 2}
    assert doc["urls"]["streaming_api"] == f"ws://{runtime.settings.host}"
    assert doc["thumbnail"].startswith(runtime.settings.base_url)
    assert doc["registrations"] is False and doc["approval_required"] is False
    assert doc["invites_enabled"] is False
    assert doc["contact_account"] is None and doc["rules"] == []
    assert isinstance(doc["email"], str) and doc["languages"] == ["en"]
    assert r.headers["X-RateLimit-Limit"] == "300"


async def test_limits_are_the_ones_the_code_enforces(client):
    """The configuration limits a client shows are the constants posting, profiles, pins and
    uploads check, in both versions of the instance entity; only images are accepted."""
    v1 = (await client.get("/api/v1/instance")).json()["configuration"]
    v2 = (await client.get("/api/v2/instance")).json()["configuration"]
    for config in (v1, v2):
        assert config["statuses"] == {
            "max_characters": posting.MAX_TEXT,
            "max_media_attachments": posting.MAX_MEDIA,
            "characters_reserved_per_url": posting.URL_CHARACTERS,
        }
        attachments = config["media_attachments"]
        assert attachments["image_size_limit"] == media.MAX_UPLOAD_BYTES
        assert attachments["image_matrix_limit"] == media.MAX_PIXELS
        assert sorted(attachments["supported_mime_types"]) == [
            "image/jpeg", "image/png", "image/webp"]  # fmt: skip
        assert attachments["video_size_limit"] == 0
        assert config["polls"]["max_options"] == 0
    assert v2["accounts"]["max_pinned_statuses"] == pins.MAX_PINNED
    assert v2["accounts"]["max_profile_fields"] == profiles.MAX_FIELDS
    assert v2["accounts"]["max_note_length"] == profiles.MAX_BIO
    assert v2["media_attachments"]["description_limit"] == media.MAX_DESCRIPTION


async def test_v2_instance_has_api_versions_and_registrations(runtime, client, new_account):
    """GET /api/v2/instance answers Mastodon's V2 Instance with `api_versions.mastodon`
    (Mastodon 4.3+ clients read it), the users active this month (local accounts that
    posted), registrations closed by default, and a contact without an account."""
    painter = await new_account("painter", ai=True)
    await new_account("quiet")
    async with runtime.session() as s:
        await publish(s, runtime, await s.get_one(Account, painter.id), Draft(text="hello"))
    doc = (await client.get("/api/v2/instance")).json()
    assert doc["domain"] == runtime.settings.host
    assert doc["api_versions"] == {"mastodon": instance_info.MASTODON_API_VERSION}
    assert doc["usage"] == {"users": {"active_month": 1}}
    assert doc["registrations"]["enabled"] is False
    assert doc["registrations"]["approval_required"] is False
    assert doc["contact"] == {"email": "", "account": None}
    assert doc["thumbnail"]["url"].startswith(runtime.settings.base_url)
    assert doc["configuration"]["urls"]["streaming"] == f"ws://{runtime.settings.host}"
    assert doc["configuration"]["translation"] == {"enabled": False}
    assert doc["version"] == (await client.get("/api/v1/instance")).json()["version"]
    assert doc["rules"] == [] and doc["source_url"].startswith("https://")


async def test_registrations_follow_the_setting(tmp_path: Path):
    """`registrations` says what `[instance] open_registrations` says (as NodeInfo does)."""
    settings = make_settings(tmp_path / "open", instance={"open_registrations": True})
    rt = await open_runtime(settings)
    try:
        await ensure_instance(rt)
        async with asgi_client(rt) as client:
            v1 = (await client.get("/api/v1/instance")).json()
            v2 = (await client.get("/api/v2/instance")).json()
    finally:
        await rt.aclose()
    assert v1["registrations"] is True
    assert v2["registrations"]["enabled"] is True


def test_version_is_mastodon_compatible_and_names_dreamloom():
    """The version starts with the Mastodon release whose API we follow and names Dreamloom
    and its own version after it, as other Mastodon-compatible servers do."""
    from instance import __version__

    version = instance_info.version()
    assert version == f"{instance_info.MASTODON_VERSION} (compatible; Dreamloom {__version__})"
    major, minor, _patch = (int(p) for p in version.split(" ")[0].split("."))
    assert (major, minor) >= (4, 3)


async def test_mastodon_py_reads_the_version_and_api_level(live):
    """Mastodon.py, an independent client, reads our version as Mastodon 4.5.0 and our API
    level from /api/v2/instance, without the warning it gives a 4.3+ server that has none."""

    def check() -> tuple[str, int, list[str]]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            api = Mastodon(api_base_url=live, version_check_mode="none")
            found = api.retrieve_mastodon_version(fail_hard=True)
            instance = api.instance_v1()
        assert instance["uri"]
        return found, api.mastodon_api_version, [str(w.message) for w in caught]

    found, api_level, said = await asyncio.to_thread(check)
    assert found == instance_info.MASTODON_VERSION
    assert api_level == instance_info.MASTODON_API_VERSION
    assert not [w for w in said if "API version" in w]


async def test_custom_emojis_is_an_empty_list(client):
    """There are no custom emoji here: the list is empty, and anyone may read it."""
    r = await client.get("/api/v1/custom_emojis")
    assert r.status_code == 200 and r.json() == []


async def test_trailing_slash_answers_as_mastodon_py_asks(client):
    """Mastodon.py asks for /api/v1/instance/ with a slash: it gets the same answer."""
    slash, plain = await client.get("/api/v1/instance/"), await client.get("/api/v1/instance")
    assert slash.status_code == 200 and slash.json()["uri"] == plain.json()["uri"]


async def test_a_bad_token_is_refused_even_here(runtime, client, new_account):
    """Anyone may read the instance, but a token that does not work answers 401 with the
    Bearer challenge, as Mastodon does; a working one is fine."""
    r = await client.get("/api/v2/instance", headers=bearer("not-a-token"))
    assert r.status_code == 401 and "error" in r.json()
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    token = await api_token(runtime, await new_account("alice"), "read")
    assert (await client.get("/api/v2/instance", headers=bearer(token))).status_code == 200


@pytest.mark.parametrize("path", ["/api/v1/instance", "/api/v2/instance"])
async def test_an_app_only_token_may_read_the_instance(runtime, client, path):
    """An app's own token (client credentials, no user) reads the instance too."""
    token = await api_token(runtime, None, "read")
    assert (await client.get(path, headers=bearer(token))).status_code == 200


async def test_max_characters_is_enforced_as_clients_count(runtime, new_account):
    """A post of exactly max_characters, a link counted as characters_reserved_per_url and a
    remote mention as its user part (as Mastodon clients count), is taken; one more
    character is refused."""
    from instance.errors import PostingError

    bob = await new_account("bob")
    link = "https://example.com/" + "a" * 200
    fixed = f"@zoe@remote.example {link} "
    fill = posting.MAX_TEXT - len("@zoe ") - posting.URL_CHARACTERS - 1
    text = fixed + "x" * fill
    assert posting.text_length(text) == posting.MAX_TEXT
    async with runtime.session() as s:
        author = await s.get_one(Account, bob.id)
        await publish(s, runtime, author, Draft(text=text))
        with pytest.raises(PostingError, match="too long"):
            await publish(s, runtime, author, Draft(text=text + "y"))
