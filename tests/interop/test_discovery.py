"""Discovery, actor documents and signatures, judged by software nobody here wrote.

fediverse-pasture's verify_actor (the tool behind funfedi.dev's support tables) fetches each
kind of Dreamloom actor and POSTs to its inbox as six test actors:

- alice and dean: unsigned GET of the actor, unsigned POST (which must be **rejected**);
- bob and emily: signed GET, signed POST (accepted);
- claire and frank: as bob, but their own actor documents answer only signed GETs, so the POST
  is accepted only if Dreamloom signs the key fetch it makes while verifying;
- `webfinger`: acct:preferredUsername@host resolves back to exactly the actor id.

Its JSON verdict is `{"result": {name: {"get_actor", "post_inbox"}, "webfinger"}, "messages"}`
(fediverse_pasture/verify_actor.py, server/verify_actor.py): `post_inbox` is True for a signed
actor when the POST raised nothing or got a 400, and for an unsigned one when the status was
in 101..399; the HTML page turns the same facts into warnings, which we require to be none.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.interop.conftest import AI_ACCOUNT, PERSON_ACCOUNT
from tests.interop.peers import Dreamloom, Herd, Pasture

pytestmark = pytest.mark.interop

VERIFY = "fediverse-pasture verify_actor"
KINDS = {
    "Service": AI_ACCOUNT,  # an AI account
    "Person": PERSON_ACCOUNT,
    "Application": None,  # the instance actor at /actor
}
SIGNED = ("bob", "claire", "emily", "frank")
UNSIGNED = ("alice", "dean")

_verdicts: dict[str, dict[str, Any]] = {}


def target_uri(dreamloom: Dreamloom, kind: str) -> str:
    """acct: for accounts (so verify_actor resolves WebFinger itself), the URL for /actor."""
    username = KINDS[kind]
    return f"acct:{dreamloom.handle(username)}" if username else f"{dreamloom.base}/actor"


def verdict(verify_actor: Pasture, dreamloom: Dreamloom, kind: str) -> dict[str, Any]:
    if kind not in _verdicts:
        _verdicts[kind] = verify_actor.verify(target_uri(dreamloom, kind))
    return _verdicts[kind]


def explain(v: dict[str, Any]) -> str:
    return "\n".join(str(m)[:400] for m in v["messages"])


def warnings(result: dict[str, Any]) -> list[str]:
    """The warnings verify_actor's HTML page would show (verify_actor.py, same conditions)."""
    out = []
    if result.get("alice", {}).get("post_inbox"):
        out.append("Alice should not be able to post to the inbox without signing her request.")
    for name in ("bob", "claire"):
        if name in result and not result[name]["get_actor"]:
            out.append(f"{name} should be able to retrieve the actor")
        if name in result and not result[name]["post_inbox"]:
            out.append(f"{name} should be able to post to the inbox")
    if not result.get("webfinger"):
        out.append("Webfinger result does not match actor URI")
    return out


kind_param = pytest.mark.parametrize("kind", list(KINDS))


@kind_param
@pytest.mark.capability(VERIFY, "actor document fetched unsigned and signed")
def test_actor_fetchable(verify_actor: Pasture, dreamloom: Dreamloom, kind: str) -> None:
    v = verdict(verify_actor, dreamloom, kind)
    for name in (*UNSIGNED, *SIGNED):
        assert v["result"][name]["get_actor"], f"{name} could not fetch the actor\n{explain(v)}"


@kind_param
@pytest.mark.capability(VERIFY, "unsigned POST to the inbox rejected with 401")
def test_unsigned_post_rejected(verify_actor: Pasture, dreamloom: Dreamloom, kind: str) -> None:
    v = verdict(verify_actor, dreamloom, kind)
    for name in UNSIGNED:
        assert not v["result"][name]["post_inbox"], f"{name}'s unsigned POST was accepted"
    statuses = [
        int(m.group(1))
        for m in (re.search(r"Got (\d+) for unsigned POST", str(s)) for s in v["messages"])
        if m
    ]
    assert statuses == [401, 401], (
        f"unsigned POSTs should get 401 (so senders retry signed), got {statuses}\n{explain(v)}"
    )


@kind_param
@pytest.mark.capability(VERIFY, "signed POST to the inbox accepted")
def test_signed_post_accepted(verify_actor: Pasture, dreamloom: Dreamloom, kind: str) -> None:
    v = verdict(verify_actor, dreamloom, kind)
    assert v["result"]["bob"]["post_inbox"], f"bob's signed POST failed\n{explain(v)}"


@kind_param
@pytest.mark.capability(VERIFY, "key fetch signed (authorized-fetch senders accepted)")
def test_key_fetch_signed(verify_actor: Pasture, dreamloom: Dreamloom, kind: str) -> None:
    v = verdict(verify_actor, dreamloom, kind)
    assert v["result"]["claire"]["post_inbox"], (
        f"claire (key only served to signed GETs) could not post\n{explain(v)}"
    )


def post_statuses(v: dict[str, Any]) -> dict[str, int]:
    """The HTTP status each signed test actor's POST got, read from verify_actor's log."""
    out: dict[str, int] = {}
    current = None
    for step in map(str, v["messages"]):
        if step.startswith("Running verification for "):
            current = step.removeprefix("Running verification for ").strip()
        elif current and current not in out:
            if step == "Successfully posted to inbox with result":
                out[current] = 202
            found = re.search(r"status=(\d+)", step)
            if found:
                out[current] = int(found.group(1))
    return out


@kind_param
@pytest.mark.capability(VERIFY, "actors without preferredUsername/WebFinger: 2xx or clean 4xx")
def test_actors_without_webfinger(verify_actor: Pasture, dreamloom: Dreamloom, kind: str) -> None:
    """emily and frank have no preferredUsername and no WebFinger. verify_actor's report does
    not warn about them (Mastodon refuses such actors too); what we require is a deliberate
    answer, accepted or refused with a 4xx, never a server error."""
    v = verdict(verify_actor, dreamloom, kind)
    statuses = post_statuses(v)
    for name in ("emily", "frank"):
        assert name in statuses, f"no POST result for {name}\n{explain(v)}"
        assert statuses[name] < 500, f"{name} got {statuses[name]}\n{explain(v)}"


@kind_param
@pytest.mark.capability(VERIFY, "WebFinger round trip")
def test_webfinger_round_trip(verify_actor: Pasture, dreamloom: Dreamloom, kind: str) -> None:
    v = verdict(verify_actor, dreamloom, kind)
    assert v["result"]["webfinger"] is True, explain(v)
    assert any("webfinger result matches expectations" in str(m) for m in v["messages"])


@kind_param
@pytest.mark.capability(VERIFY, "no warnings on the verify_actor report")
def test_no_warnings(verify_actor: Pasture, dreamloom: Dreamloom, kind: str) -> None:
    v = verdict(verify_actor, dreamloom, kind)
    found = warnings(v["result"])
    assert found == [], f"{'; '.join(found)}\n{explain(v)}"


# -- bovine-herd ----------------------------------------------------------------------------
@pytest.mark.capability("bovine-herd", "WebFinger lookup + signed fetch of an AI account")
def test_herd_looks_up_ai_account(herd: Herd, dreamloom: Dreamloom) -> None:
    user = herd.register("lookout")
    found = user.client("lookup", dreamloom.handle(AI_ACCOUNT))
    assert found["actor_id"] == dreamloom.actor(AI_ACCOUNT)
    actor = found["actor"]
    assert actor["id"] == dreamloom.actor(AI_ACCOUNT)
    assert actor["type"] == "Service"
    assert actor["preferredUsername"] == AI_ACCOUNT
    assert actor["inbox"] == f"{dreamloom.actor(AI_ACCOUNT)}/inbox"
    assert actor.get("publicKey"), actor


@pytest.mark.capability("bovine-herd", "WebFinger lookup + signed fetch of a person")
def test_herd_looks_up_person(herd: Herd, dreamloom: Dreamloom) -> None:
    user = herd.register("lookout")
    found = user.client("lookup", dreamloom.handle(PERSON_ACCOUNT))
    assert found["actor_id"] == dreamloom.actor(PERSON_ACCOUNT)
    assert found["actor"]["type"] == "Person"
