"""Independent Mastodon API clients against `dreamloom serve`, as people use their apps.

Two real instances on loopback (separate `dreamloom serve` processes with every role
running, generation on builtin:tiny): A has a local user, alice, who uses apps; B has bob.

- **Mastodon.py** (PyPI `mastodon-py`): registers an app, gets alice's consent (the consent
  page filled in by an HTTP client with her login cookie, as a browser would), exchanges the
  code, then generates an image as media (the Dreamloom extension: a prompt instead of a
  file, 202 while it is made, polled with Mastodon.py's own `media()`), posts it, likes and
  boosts it, remixes it as a quote, resolves and follows bob on B, reads the home timeline
  page by page through the Link header, and sees bob's like arrive as a notification.
- **masto.js** (npm `masto`, the library the Elk web client is built on) runs the same flow
  from Node (tests/e2e/masto_js/flow.mjs), with the token Mastodon.py obtained.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from html import unescape
from pathlib import Path
from typing import Any

import httpx
import pytest
from mastodon import Mastodon

from tests.e2e.masto import masto_command
from tests.interop.peers import Dreamloom, eventually, free_port, peer_env

pytestmark = pytest.mark.slow

OOB = "urn:ietf:wg:oauth:2.0:oob"
SCOPES = ["read", "write", "follow"]
PASSWORD = "correct horse battery staple"
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
FLOW_JS = Path(__file__).resolve().parent / "masto_js" / "flow.mjs"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Dreamloom, Dreamloom]]:
    root: Path = tmp_path_factory.mktemp("clients")
    a = Dreamloom(root / "a", free_port())
    b = Dreamloom(root / "b", free_port())
    for inst in (a, b):
        inst.init()
    secret = root / "password"
    secret.write_text(PASSWORD + "\n")
    a.cli_ok("account", "create", "alice", "--password-file", str(secret))
    b.create_account("bob")
    a.start()
    b.start()
    try:
        yield a, b
    finally:
        a.stop()
        b.stop()


def consent(base: str, authorize_url: str) -> str:
    """What alice does in her browser: log in, open the app's authorize URL, approve; the
    out-of-band page shows the code."""
    with httpx.Client(base_url=base, timeout=30) as browser:
        login = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf, login.text
        r = browser.post("/login", data={"csrf": csrf.group(1), "username": "alice",
                                         "password": PASSWORD})  # fmt: skip
        assert r.status_code == 303, r.text
        page = browser.get(authorize_url)
        assert page.status_code == 200, page.text
        form = {name: unescape(value) for name, value in _HIDDEN.findall(page.text)}
        shown = browser.post("/oauth/authorize", data={**form, "decision": "approve"})
        code = re.search(r'<code class="oauth-code">([^<]+)</code>', shown.text)
        assert code, shown.text
        return unescape(code.group(1))


def generate_media(m: Mastodon, base: str, prompt: str, **recipe: Any) -> Any:
    """POST /api/v2/media with a prompt (Dreamloom's extension; Mastodon.py knows only
    files), then Mastodon.py's own `media()` until the image exists."""
    auth = {"Authorization": f"Bearer {m.access_token}"}
    form = {"prompt": prompt, "description": prompt, **recipe}
    r = httpx.post(f"{base}/api/v2/media", headers=auth, data=form, timeout=30)
    assert r.status_code == 202, r.text
    assert r.json()["url"] is None  # still being made, as Mastodon answers async uploads
    media_id = r.json()["id"]
    return eventually(lambda: (lambda a: a if a.url else None)(m.media(media_id)),
                      timeout=120, what=f"the generated image for {prompt!r}")  # fmt: skip


@pytest.fixture(scope="module")
def alice(pair: tuple[Dreamloom, Dreamloom]) -> Mastodon:
    a, _ = pair
    client_id, client_secret = Mastodon.create_app(
        "Dreamloom tests", scopes=SCOPES, redirect_uris=OOB, api_base_url=a.base
    )
    m = Mastodon(client_id=client_id, client_secret=client_secret, api_base_url=a.base)
    # allow_http: the test instances serve plain http on loopback (Mastodon.py wants https)
    url = m.auth_request_url(scopes=SCOPES, redirect_uris=OOB, allow_http=True)
    m.log_in(code=consent(a.base, url), redirect_uri=OOB, scopes=SCOPES, allow_http=True)
    return m


def test_mastodon_py_flow(pair: tuple[Dreamloom, Dreamloom], alice: Mastodon) -> None:
    a, b = pair
    m = alice
    why = lambda: a.work_summary() + "\n" + b.work_summary()  # noqa: E731
    me = m.account_verify_credentials()
    assert me.acct == "alice" and me.username == "alice"
    assert m.retrieve_mastodon_version()  # our /api/v1/instance version parses as Mastodon's

    # generate-and-post: the image is real, the status carries it with its alt text
    media = generate_media(m, a.base, "a lighthouse at dusk", width=64, height=64, steps=1)
    assert media.type == "image"  # alt text: the description, labelled as AI-made
    assert media.description == "AI-generated image: a lighthouse at dusk"
    assert httpx.get(media.url, timeout=10).content[:8] == b"\x89PNG\r\n\x1a\n"
    status = m.status_post("A lighthouse, made here", media_ids=[media], visibility="public")
    assert status.media_attachments[0].id == media.id and status.account.acct == "alice"

    # like and boost
    assert m.status_favourite(status).favourited is True
    boosted = m.status_reblog(status)
    assert boosted.reblog.id == status.id
    assert m.status(status).reblogs_count == 1 and m.status(status).favourites_count == 1

    # remix: a new image from the post, published as a quote of it
    remix_media = generate_media(m, a.base, "the lighthouse in winter", remix_of=status.id)
    remix = m.status_post("Remixed in winter", media_ids=[remix_media],
                          quoted_status_id=status.id)  # fmt: skip
    assert remix.quote and remix.quote.quoted_status.id == status.id

    # follow a remote account on the second instance, found through search
    found = m.search_v2(f"@bob@{b.host}", resolve=True, result_type="accounts")
    assert [acct.acct for acct in found.accounts] == [f"bob@{b.host}"]
    m.account_follow(found.accounts[0])
    eventually(lambda: m.account_relationships(found.accounts[0])[0].following,
               timeout=60, what="bob's Accept to reach A", explain=why)  # fmt: skip

    # the home timeline, page by page through the Link header
    first = m.timeline_home(limit=1)
    assert len(first) == 1
    second = m.fetch_next(first)
    assert second and second[0].id != first[0].id
    seen = {s.id for s in m.timeline_home(limit=40)}
    assert {status.id, remix.id} <= seen

    # bob likes alice's post from B: a favourite notification on A
    b.cli_ok("like", "bob", status.uri)
    note = eventually(
        lambda: next((n for n in m.notifications() if n.type == "favourite"), None),
        timeout=60, what="bob's like to arrive as a notification", explain=why,
    )  # fmt: skip
    assert note.account.acct == f"bob@{b.host}" and note.status.id == status.id
    only_follows = m.notifications(types=["follow"])
    assert all(n.type == "follow" for n in only_follows)


def test_masto_js_flow(pair: tuple[Dreamloom, Dreamloom], alice: Mastodon) -> None:
    """The same flow from Node with masto.js, on a token of the same OAuth flow."""
    a, b = pair
    proc = subprocess.run(
        [*masto_command(FLOW_JS), a.base, alice.access_token, f"bob@{b.host}"],
        capture_output=True, text=True, timeout=300, check=False, env=peer_env(),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["me"] == "alice"
    assert out["version"].startswith("4.")
    assert out["mediaUrl"].startswith(a.base)
    assert out["posted"] and out["favourited"] is True and out["reblogOf"] == out["posted"]
    assert out["quoteOf"] == out["posted"]
    assert out["found"] == f"bob@{b.host}" and out["following"] is True
    assert len(out["pages"]) == 2 and out["pages"][0] != out["pages"][1]
    assert "favourite" in out["notificationTypes"]
