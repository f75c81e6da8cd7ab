"""The one exception tree of the `activitypub` package.

Every error this package raises on purpose is an `ActivityPubError`; callers map the
branches to their own policy (a 401 for a `SignatureError`, a skipped activity for a
`FetchError`, a retry row for a `DeliveryError`).

    ActivityPubError
    ├── InvalidURLError            a URL we refuse to parse or use (userinfo, bad host, scheme)
    ├── KeyFormatError             a PEM that is not a usable RSA key
    ├── SignatureError             an HTTP signature we reject; `.reason` says why (-> 401)
    ├── JsonLdError                a JSON-LD document we cannot process offline
    │   └── ContextNotBundledError a remote @context we refuse to load (never fetched)
    ├── FetchError                 a remote GET that failed or returned something unsafe
    │   ├── BlockedAddressError    the host resolves to a non-global or local address (SSRF)
    │   ├── ResponseTooLargeError  Content-Length or the streamed body exceeds the cap
    │   ├── BadContentTypeError    not activity+json / ld+json with the AS profile
    │   ├── InvalidDocumentError   not a JSON object, or third-party attribution
    │   ├── IdMismatchError        the document's `id` is not the URL it was fetched from
    │   ├── RedirectError          too many hops or an unusable Location
    │   ├── FetchTimeoutError      the overall deadline or an I/O timeout expired
    │   └── RemoteHTTPError        a non-2xx answer; `.status` holds the code
    └── DeliveryError              an outgoing POST could not even be attempted
"""

from __future__ import annotations


class ActivityPubError(Exception):
    """Base class of every error raised on purpose by the `activitypub` package."""


class InvalidURLError(ActivityPubError, ValueError):
    """A URL that is malformed or unsafe to use (userinfo, empty host, unsupported scheme)."""


class KeyFormatError(ActivityPubError, ValueError):
    """A PEM string that does not hold a usable RSA key."""


class SignatureError(ActivityPubError):
    """An HTTP signature was missing, malformed or invalid.

    `reason` is a short human sentence suitable for a 401 body and for logs.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class JsonLdError(ActivityPubError):
    """A JSON-LD document could not be processed with the bundled contexts."""


class ContextNotBundledError(JsonLdError):
    """A document referenced a remote @context that is not bundled; it was not fetched."""

    def __init__(self, url: str) -> None:
        super().__init__(f"refusing to load JSON-LD context {url!r}: not bundled")
        self.url = url


class FetchError(ActivityPubError):
    """A remote fetch failed or returned a document we must not trust."""

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{message} ({url})")
        self.url = url
        self.message = message


class BlockedAddressError(FetchError):
    """The target host is local, or resolves to a loopback/private/reserved address."""


class ResponseTooLargeError(FetchError):
    """The response body is larger than the configured cap."""


class BadContentTypeError(FetchError):
    """The response Content-Type is not an ActivityStreams JSON type."""


class InvalidDocumentError(FetchError):
    """The body is not a JSON object, or it is attributed to another origin."""


class IdMismatchError(FetchError):
    """The fetched document's `id` does not equal the URL it came from."""


class RedirectError(FetchError):
    """Too many redirects, or a redirect without a usable Location."""


class FetchTimeoutError(FetchError):
    """The fetch did not complete within its deadline."""


class RemoteHTTPError(FetchError):
    """The remote server answered with a non-2xx status."""

    def __init__(self, url: str, status: int) -> None:
        super().__init__(url, f"remote answered HTTP {status}")
        self.status = status


class DeliveryError(ActivityPubError):
    """An outgoing delivery could not be attempted at all (bad inbox URL, bad key)."""
