"""JSON-LD without the network: a remote `@context` is never fetched.

The ActivityStreams and W3ID security v1 contexts are bundled in `activitypub/contexts/`
(the published documents, as served at their IRIs). `offline_document_loader` serves only
those and raises `ContextNotBundledError` for anything else, so pyld can never be made to
fetch an attacker's URL (`"@context": "http://127.0.0.1:6379/"`). Every pyld call here
passes that loader explicitly; the process-wide pyld default is never used.

Most of Dreamloom reads activities as plain JSON (see `objects`); `normalize_context` keeps
an incoming document's bundled and inline contexts and drops unknown remote ones without
fetching them, and `compact`/`expand` are there for the few places that need real JSON-LD.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from importlib import resources
from typing import Any

from pyld import jsonld

from activitypub.errors import ContextNotBundledError, JsonLdError

__all__ = [
    "BUNDLED_CONTEXT_URLS",
    "bundled_context",
    "compact",
    "expand",
    "normalize_context",
    "offline_document_loader",
]

AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
SECURITY_V1_CONTEXT = "https://w3id.org/security/v1"
_FILES = {
    AS_CONTEXT: "activitystreams.json",
    "https://www.w3.org/ns/activitystreams.jsonld": "activitystreams.json",
    "http://www.w3.org/ns/activitystreams": "activitystreams.json",
    SECURITY_V1_CONTEXT: "security-v1.json",
    "http://w3id.org/security/v1": "security-v1.json",
}
BUNDLED_CONTEXT_URLS = frozenset(_FILES)


def _canonical(url: str) -> str:
    return url.split("#", 1)[0].rstrip("/") if isinstance(url, str) else ""


@functools.cache
def _load(filename: str) -> dict[str, Any]:
    text = resources.files("activitypub").joinpath("contexts", filename).read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def bundled_context(url: str) -> dict[str, Any]:
    """A deep copy of a bundled context document; `ContextNotBundledError` otherwise."""
    filename = _FILES.get(_canonical(url))
    if filename is None:
        raise ContextNotBundledError(url)
    return copy.deepcopy(_load(filename))


def offline_document_loader(url: str, options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A pyld document loader that serves bundled contexts only and never does I/O."""
    return {
        "contentType": "application/ld+json",
        "contextUrl": None,
        "documentUrl": url,
        "document": bundled_context(url),
    }


def normalize_context(document: Mapping[str, Any]) -> dict[str, Any]:
    """A shallow copy whose `@context` keeps bundled IRIs and inline objects only.

    Unknown remote contexts are dropped without being fetched; a missing or empty result
    falls back to the ActivityStreams context.
    """
    kept: list[Any] = []
    raw = document.get("@context")
    for entry in raw if isinstance(raw, list) else [raw]:
        if isinstance(entry, str) and _canonical(entry) in BUNDLED_CONTEXT_URLS:
            kept.append(_canonical(entry))
        elif isinstance(entry, Mapping):
            kept.append(dict(entry))
    if AS_CONTEXT not in kept:
        kept.insert(0, AS_CONTEXT)
    result = dict(document)
    result["@context"] = kept[0] if len(kept) == 1 else kept
    return result


def _options(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    options: dict[str, Any] = {"documentLoader": offline_document_loader}
    options.update(extra or {})
    return options


def expand(document: Mapping[str, Any]) -> list[Any]:
    """JSON-LD expansion with bundled contexts only; unknown remote contexts raise."""
    try:
        result: list[Any] = jsonld.expand(dict(document), _options())
    except ContextNotBundledError:
        raise
    except jsonld.JsonLdError as exc:
        raise _unwrap(exc) from exc
    return result


def compact(document: Mapping[str, Any], context: Any = AS_CONTEXT) -> dict[str, Any]:
    """JSON-LD compaction against `context` with bundled contexts only."""
    try:
        result: dict[str, Any] = jsonld.compact(dict(document), context, _options())
    except ContextNotBundledError:
        raise
    except jsonld.JsonLdError as exc:
        raise _unwrap(exc) from exc
    return result


def _unwrap(exc: BaseException) -> JsonLdError:
    """pyld wraps loader errors; surface our own refusal when it is the cause."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ContextNotBundledError):
            return seen
        cause = getattr(seen, "cause", None)
        seen = cause if isinstance(cause, BaseException) else seen.__cause__ or seen.__context__
    return JsonLdError(f"JSON-LD processing failed: {exc}")
