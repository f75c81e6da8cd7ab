"""A user's authorised apps, on a web page where each can be cut off.

What is checked, in our own words:
- the page lists each app that holds a live token of the logged-in user, with its scopes,
  and no app of another user;
- Revoke turns every token of that app for this user off at once (the app's next API call
  is 401), leaves the user's other apps and other users' tokens of the same app working,
  and needs the form's CSRF token;
- without a login the page sends the visitor to log in.
"""

from __future__ import annotations

import re

import pytest

from instance.api.tokens import issue_token, register_app
from tests.instance.api.api_helpers import bearer
from tests.instance.web_helpers import PASSWORD, csrf_of, fast_hasher, logged_in  # noqa: F401

pytestmark = pytest.mark.usefixtures("fast_hasher")


async def token_of(runtime, app, account, scope="read write") -> str:
    async with runtime.session() as session:
        return (await issue_token(session, app.id, account.id, scope)).access_token


async def test_revoking_an_app_cuts_it_off_and_nothing_else(client, runtime, new_account):
    alice = await new_account("alice", password=PASSWORD)
    bob = await new_account("bob", password=PASSWORD)
    async with runtime.session() as session:
        elk = (await register_app(session, "Elk", "urn:ietf:wg:oauth:2.0:oob", "read write",
                                  "https://elk.example")).app  # fmt: skip
        ivory = (await register_app(session, "Ivory", "urn:ietf:wg:oauth:2.0:oob", "read",
                                    None)).app  # fmt: skip
    alice_elk = [await token_of(runtime, elk, alice), await token_of(runtime, elk, alice)]
    alice_ivory = await token_of(runtime, ivory, alice, "read")
    bob_elk = await token_of(runtime, elk, bob)
    bob_only = await new_account("carol", password=PASSWORD)
    async with runtime.session() as session:
        tusky = (await register_app(session, "Tusky", "urn:ietf:wg:oauth:2.0:oob", "read",
                                    None)).app  # fmt: skip
    await token_of(runtime, tusky, bob_only, "read")

    await logged_in(client, "alice")
    page = await client.get("/oauth/authorized_applications")
    assert page.status_code == 200
    assert "Elk" in page.text and "Ivory" in page.text and "Tusky" not in page.text
    assert "<code>write</code>" in page.text
    forms = re.findall(r'action="(/oauth/authorized_applications/\d+/revoke)"', page.text)
    assert len(forms) == 2
    elk_form = f"/oauth/authorized_applications/{elk.id}/revoke"
    refused = await client.post(elk_form, data={"csrf": "wrong"})
    assert refused.status_code == 403
    assert (await client.get("/api/v1/apps/verify_credentials",
                             headers=bearer(alice_elk[0]))).status_code == 200  # fmt: skip
    r = await client.post(elk_form, data={"csrf": csrf_of(page.text)})
    assert r.status_code == 303
    for token in alice_elk:
        gone = await client.get("/api/v1/apps/verify_credentials", headers=bearer(token))
        assert gone.status_code == 401
    for token in (alice_ivory, bob_elk):
        still = await client.get("/api/v1/apps/verify_credentials", headers=bearer(token))
        assert still.status_code == 200
    after = await client.get("/oauth/authorized_applications")
    assert "Elk" not in after.text and "Ivory" in after.text


async def test_the_page_needs_a_login(client):
    r = await client.get("/oauth/authorized_applications")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
