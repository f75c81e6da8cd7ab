"""`SafeFetcher`: the one fetcher for every remote GET.

On top of the SSRF-guarded client (`netguard.make_client`) it enforces, per fetch:

- never our own hosts, at every hop (what we own comes from our database, not the network);
- at most 3 redirects, as Mastodon, each hop checked again; the result belongs to the final
  URL, so a redirect cannot pass one host's document off as another's;
- a size cap read against Content-Length before any body byte, and while streaming and
  decompressing (gzip bombs stop at the cap with bounded memory);
- one overall deadline on top of the per-phase timeouts, so a trickling body cannot hold us;
- for JSON: an ActivityStreams Content-Type (plain JSON, e.g. an uploaded file, is not an
  actor); `id` equal to the final URL, or one re-fetch by the document's own same-origin `id`
  that must then match; `actor`/`attributedTo` on the object's origin, so no server can
  speak for another's users.

Signed GETs (authorized-fetch servers) take `signer=(key_id, private_pem)`.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from activitypub.errors import (
    BadContentTypeError,
    BlockedAddressError,
    FetchError,
    FetchTimeoutError,
    IdMismatchError,
    InvalidDocumentError,
    InvalidURLError,
    RedirectError,
    RemoteHTTPError,
    ResponseTooLargeError,
)
from activitypub.netguard import make_client
from activitypub.objects import ids_of
from activitypub.signatures import sign_request_headers
from activitypub.urls import DEFAULT_PORTS, normalize_host, origin_of, same_origin

__all__ = [
    "ACTIVITY_ACCEPT",
    "AS_PROFILE",
    "FetchedResponse",
    "SafeFetcher",
    "Signer",
    "is_activitypub_content_type",
]

AS_PROFILE = "https://www.w3.org/ns/activitystreams"
ACTIVITY_ACCEPT = f'application/activity+json, application/ld+json; profile="{AS_PROFILE}"'
JSON_MAX_BYTES = 1024 * 1024
MEDIA_MAX_BYTES = 40 * 1024 * 1024
MAX_REDIRECTS = 3
DEADLINE_SECONDS = 30.0
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ATTRIBUTION_FIELDS = ("actor", "attributedTo")

Signer = tuple[str, str]
"""(key_id, private_pem) used to sign a GET."""


@dataclass(frozen=True, slots=True)
class FetchedResponse:
    """A successful (2xx) response: the final URL after redirects and the capped body."""

    url: str
    status: int
    content_type: str
    body: bytes


def is_activitypub_content_type(value: str | None) -> bool:
    """`application/activity+json`, or `application/ld+json` whose profile lists the AS IRI."""
    if not value:
        return False
    media_type, *params = (part.strip() for part in value.split(";"))
    media_type = media_type.lower()
    if media_type == "application/activity+json":
        return True
    if media_type != "application/ld+json":
        return False
    for param in params:
        name, _, raw = param.partition("=")
        if name.strip().lower() == "profile" and AS_PROFILE in raw.strip().strip('"').split():
            return True
    return False


class SafeFetcher:
    """Fetch remote JSON and media safely. Share one per application.

    Pass the application's shared client (it must come from `netguard.make_client`), or
    let the fetcher make its own guarded client with `allow_private_addresses`.
    """

    def __init__(
        self,
        client: httpx.AsyncClient | None = None,
        *,
        allow_private_addresses: bool = False,
        local_hosts: Iterable[str] = (),
        json_max_bytes: int = JSON_MAX_BYTES,
        media_max_bytes: int = MEDIA_MAX_BYTES,
        deadline: float = DEADLINE_SECONDS,
        max_redirects: int = MAX_REDIRECTS,
    ) -> None:
        self._owns_client = client is None
        self.client = client or make_client(allow_private_addresses)
        self.json_max_bytes = json_max_bytes
        self.media_max_bytes = media_max_bytes
        self.deadline = deadline
        self.max_redirects = max_redirects
        self.host_guard: Callable[[str], Awaitable[str | None]] | None = None
        """The instance's rule for a host (set by the instance): a refusal reason or None,
        asked at every hop."""
        self._local_any_port: set[str] = set()
        self._local_exact: set[tuple[str, int | None]] = set()
        for entry in local_hosts:
            self._add_local_host(entry)

    def _add_local_host(self, entry: str) -> None:
        parts = urlsplit("//" + entry.strip().lower())
        host = normalize_host(parts.hostname or "")
        if parts.port is None:
            self._local_any_port.add(host)
        else:
            self._local_exact.add((host, parts.port))

    async def aclose(self) -> None:
        """Close the client if this fetcher made it."""
        if self._owns_client:
            await self.client.aclose()

    def is_local(self, url: str) -> bool:
        """True when `url` points at one of our own hosts (those are never fetched)."""
        host, port = origin_of(url)[1:]
        return host in self._local_any_port or (host, port) in self._local_exact

    # ------------------------------------------------------------------ JSON

    async def fetch_json(
        self, url: str, *, signer: Signer | None = None, expect_id_match: bool = True
    ) -> dict[str, Any]:
        """Fetch an ActivityStreams document and check its Content-Type, `id` and attribution.

        With `expect_id_match` the document's `id` must equal the final URL; otherwise one
        re-fetch by its own same-origin `id` is made, and that one must match exactly.
        """
        document, final_url = await self._fetch_document(url, signer)
        if expect_id_match and document.get("id") != final_url:
            document, final_url = await self._refetch_by_id(url, document, final_url, signer)
        _check_attribution(document, final_url)
        return document

    async def _refetch_by_id(
        self, url: str, document: dict[str, Any], final_url: str, signer: Signer | None
    ) -> tuple[dict[str, Any], str]:
        claimed = document.get("id")
        if not isinstance(claimed, str) or not claimed:
            raise IdMismatchError(url, "document has no id")
        if not same_origin(claimed, final_url):
            raise IdMismatchError(url, f"document id {claimed} is not on the origin it came from")
        refetched, refetched_url = await self._fetch_document(claimed, signer)
        if refetched.get("id") != refetched_url:
            raise IdMismatchError(url, f"document id does not match {refetched_url} after re-fetch")
        return refetched, refetched_url

    async def _fetch_document(self, url: str, signer: Signer | None) -> tuple[dict[str, Any], str]:
        response = await self.fetch_raw(
            url, accept=ACTIVITY_ACCEPT, max_bytes=self.json_max_bytes, signer=signer
        )
        if not is_activitypub_content_type(response.content_type):
            raise BadContentTypeError(
                response.url, f"not an ActivityStreams document: {response.content_type!r}"
            )
        return parse_json_object(response.body, response.url), response.url

    # ------------------------------------------------------------------ media

    async def fetch_media(self, url: str, max_bytes: int | None = None) -> tuple[bytes, str]:
        """Fetch a media file (unsigned) under a size cap; returns (bytes, content type)."""
        response = await self.fetch_raw(
            url, accept="*/*", max_bytes=max_bytes or self.media_max_bytes
        )
        return response.body, response.content_type

    # ------------------------------------------------------------------ raw

    async def fetch_raw(
        self, url: str, *, accept: str, max_bytes: int, signer: Signer | None = None
    ) -> FetchedResponse:
        """GET with every transport-level check; a 2xx body or a `FetchError`."""
        try:
            async with asyncio.timeout(self.deadline):
                return await self._follow(url, accept, max_bytes, signer)
        except TimeoutError as exc:
            raise FetchTimeoutError(url, f"no complete answer within {self.deadline:g} s") from exc
        except httpx.TimeoutException as exc:
            raise FetchTimeoutError(url, f"timed out: {type(exc).__name__}") from exc
        except httpx.HTTPError as exc:
            raise FetchError(url, f"network error: {type(exc).__name__}: {exc}") from exc

    async def _follow(
        self, url: str, accept: str, max_bytes: int, signer: Signer | None
    ) -> FetchedResponse:
        current = url
        for _ in range(self.max_redirects + 1):
            self._check_target(current)
            if self.host_guard is not None:
                reason = await self.host_guard(origin_of(current).host)
                if reason:
                    raise BlockedAddressError(current, reason)
            request = self._build_request(current, accept, signer)
            response = await self.client.send(request, stream=True)
            try:
                if response.status_code in _REDIRECTS:
                    current = _redirect_target(current, response)
                    continue
                if not 200 <= response.status_code < 300:
                    raise RemoteHTTPError(current, response.status_code)
                body = await read_capped(response, max_bytes, current)
            finally:
                await response.aclose()
            content_type = response.headers.get("content-type", "")
            return FetchedResponse(current, response.status_code, content_type, body)
        raise RedirectError(url, f"more than {self.max_redirects} redirects")

    def _check_target(self, url: str) -> None:
        try:
            local = self.is_local(url)
        except InvalidURLError as exc:
            raise FetchError(url, f"refusing to fetch: {exc}") from exc
        if local:
            raise BlockedAddressError(url, "refusing to fetch one of our own URLs")

    def _build_request(self, url: str, accept: str, signer: Signer | None) -> httpx.Request:
        headers = {"Accept": accept, "Accept-Encoding": "gzip"}
        if signer is not None:
            key_id, private_pem = signer
            headers.update(sign_request_headers("GET", url, key_id=key_id, private_pem=private_pem))
        return self.client.build_request("GET", url, headers=headers)


def _redirect_target(current: str, response: httpx.Response) -> str:
    location: str | None = response.headers.get("location")
    if not location:
        raise RedirectError(current, f"HTTP {response.status_code} without a Location")
    target = urljoin(current, location.strip())
    if urlsplit(target).scheme.lower() not in DEFAULT_PORTS:
        raise RedirectError(current, "redirect to a non-http(s) URL")
    return target


async def read_capped(response: httpx.Response, max_bytes: int, url: str) -> bytes:
    """Read a streamed body, decompressing gzip/deflate ourselves, never past `max_bytes`."""
    declared = response.headers.get("content-length")
    if declared is not None and declared.strip().isdigit() and int(declared) > max_bytes:
        raise ResponseTooLargeError(url, f"Content-Length {declared} exceeds {max_bytes} bytes")
    decoder = _decoder_for(response.headers.get("content-encoding", ""), url)
    body = bytearray()
    async for chunk in response.aiter_raw():
        data = chunk
        while data:
            out, data = decoder(data, max_bytes + 1 - len(body))
            body += out
            if len(body) > max_bytes:
                raise ResponseTooLargeError(url, f"body exceeds {max_bytes} bytes")
    return bytes(body)


_Decoder = Callable[[bytes, int], tuple[bytes, bytes]]


def _decoder_for(encoding: str, url: str) -> _Decoder:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return lambda data, limit: (data, b"")
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise FetchError(url, f"unsupported Content-Encoding {encoding!r}")
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected

    def decode(data: bytes, limit: int) -> tuple[bytes, bytes]:
        try:
            out = inflater.decompress(data, max(limit, 1))
        except zlib.error as exc:
            raise FetchError(url, f"corrupt {encoding} body") from exc
        return out, inflater.unconsumed_tail

    return decode


def parse_json_object(body: bytes, url: str) -> dict[str, Any]:
    """Parse a JSON object; anything else (or pathological nesting) is `InvalidDocumentError`."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise InvalidDocumentError(url, "body is not valid JSON") from exc
    if not isinstance(document, dict):
        raise InvalidDocumentError(url, "document is not a JSON object")
    return document


def _check_attribution(document: dict[str, Any], final_url: str) -> None:
    """`actor`/`attributedTo` must be on the origin of the object's id (no third-party authors)."""
    object_id = document.get("id")
    origin_url = object_id if isinstance(object_id, str) else final_url
    for field in _ATTRIBUTION_FIELDS:
        for author in ids_of(document.get(field)):
            if not same_origin(author, origin_url):
                raise InvalidDocumentError(
                    final_url, f"{field} {author} is not on the origin of {origin_url}"
                )
