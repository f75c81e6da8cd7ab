"""Review finding 19 (docs/security.md): our pages never hotlink remote images.

A visitor's browser fetching a remote post's image from its server tells that server who
reads our pages. Pages now show remote images from our own cache (`/media/remote/<id>`),
filled once through the safe fetcher from the attachment's stored URL, and only with bytes
that are an image; every page's Content-Security-Policy allows images from us only.
"""

from __future__ import annotations

import io
import re

import httpx
from PIL import Image
from sqlalchemy import select

from instance.inbound.worker import InboxWorker
from instance.storage.models import MediaAttachment
from tests.instance.fediverse import Body
from tests.instance.inbox_helpers import post


def png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), "teal").save(out, "PNG")
    return out.getvalue()


async def test_remote_images_come_from_our_cache(client, runtime, fedi) -> None:
    image = png()
    fetched: list[str] = []

    async def transport(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith((".png", ".html")):
            fetched.append(str(request.url))
            if request.url.path.endswith(".html"):
                return httpx.Response(200, stream=Body(b"<script>x</script>"),
                                      headers={"content-type": "image/png"})  # fmt: skip
            return httpx.Response(200, stream=Body(image), headers={"content-type": "text/html"})
        return fedi(request)

    await runtime.use_http(httpx.AsyncClient(transport=httpx.MockTransport(transport)))
    alice = fedi.actor("alice")
    note = alice.note("<p>a picture</p>", attachment=[
        {"type": "Image", "mediaType": "image/png", "url": "https://remote.example/a.png"},
        {"type": "Image", "mediaType": "image/png", "url": "https://remote.example/b.html"},
    ])  # fmt: skip
    assert (await post(client, runtime, alice, alice.create(note))).status_code == 202
    await InboxWorker(runtime).run_once()

    page = await client.get("/federated")
    sources = re.findall(r'<img src="([^"]+)"', page.text)
    assert len(sources) == 2 and all(s.startswith(f"{runtime.settings.base_url}/media/remote/")
                                     for s in sources)  # fmt: skip
    assert not re.findall(r'src="https?://remote\.example', page.text)  # links are fine
    assert "img-src 'self';" in page.headers["content-security-policy"]

    async with runtime.sessions() as s:
        media = {m.remote_url: m for m in await s.scalars(select(MediaAttachment))}
    good = media["https://remote.example/a.png"].public_id
    for _ in range(3):
        r = await client.get(f"/media/remote/{good}")
        assert r.status_code == 200 and r.content == image
        assert r.headers["content-type"] == "image/png"  # from the bytes, not the remote
        assert r.headers["x-content-type-options"] == "nosniff"
    assert fetched == ["https://remote.example/a.png"]  # once
    bad = media["https://remote.example/b.html"].public_id
    assert (await client.get(f"/media/remote/{bad}")).status_code == 404  # not an image
    assert (await client.get("/media/remote/" + "0" * 26)).status_code == 404
    assert (await client.get("/media/remote/https%3A%2F%2Fevil.example%2Fx")).status_code == 404
