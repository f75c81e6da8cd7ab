"""What a generation job does with its image: its `then`, checked before the job is queued.

A job's `then` is a dict {kind: options}, stored on the row as JSON (the kind names are part
of what is stored: never rename one). The kinds, and the step that runs each once the image
exists (instance/generation/steps.py):

    post    publish the image as a post by the job's account
    answer  the same, as the reply to someone who asked by mention (asks.py); when the
            generation fails for good, the asker is told why instead
    remix   publish the image as a remix of another post, asking for quote approval (remix.py)
    profile make the image the account's avatar or header, {"picture": "avatar" | "header"}
            (instance/content/pictures.py), and tell its followers
    media   keep the image as the job account's unattached attachment `media_id`, made
            (without a file) when the job was queued: the Mastodon API's generation as media
            (instance/api/media.py), {"media_id": 12}

Post and answer options, all optional but the text (which defaults to the prompt as asked,
without the persona's style):

    {"visibility": "public",              # public | unlisted | followers | direct
     "text": "…",
     "in_reply_to_post_id": 12,           # a Post.id this replies to
     "mention_account_ids": [3, 4],       # Account.ids to mention and address
     "quote_post_id": 9,                  # the remix parent's Post.id
     "quote_state": "accepted",           # with quote_post_id: accepted | link | pending
     "quote_authorization_uri": "…",
     "summary": "…", "sensitive": false, "language": "en",
     "federate": true}                    # false: store only; posting.federate_post later

Remix options: {"parent_post_id": 9, "visibility": "public", "kind": "seed|prompt|image"}.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from instance.content.posting import content_warning, language_code
from instance.content.visibility import VISIBILITIES, is_visibility
from instance.errors import InvalidGenerationRequest, PostingError

Validator = Callable[[dict[str, Any], str], dict[str, Any]]


def check_post(options: dict[str, Any], prompt: str) -> dict[str, Any]:
    """Post (and answer) options; the text defaults to the prompt as asked."""
    visibility = options.get("visibility", "public")
    if not is_visibility(visibility):
        raise InvalidGenerationRequest(
            f"unknown visibility {visibility!r} (use one of {', '.join(VISIBILITIES)})"
        )
    ids = options.get("mention_account_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, int) for i in ids):
        raise InvalidGenerationRequest("mention_account_ids must be a list of account ids")
    checked = {**options, "text": options.get("text") or prompt}
    try:
        if options.get("summary") is not None:
            checked["summary"] = content_warning(str(options["summary"]))
        if options.get("language") is not None:
            checked["language"] = language_code(str(options["language"]))
    except PostingError as exc:
        raise InvalidGenerationRequest(str(exc)) from None
    return checked


def check_remix(options: dict[str, Any], prompt: str) -> dict[str, Any]:
    if not isinstance(options.get("parent_post_id"), int):
        raise InvalidGenerationRequest("a remix needs parent_post_id")
    return options


def check_profile(options: dict[str, Any], prompt: str) -> dict[str, Any]:
    if options.get("picture") not in ("avatar", "header"):
        raise InvalidGenerationRequest('a profile picture is "avatar" or "header"')
    return options


def check_media(options: dict[str, Any], prompt: str) -> dict[str, Any]:
    media_id = options.get("media_id")
    if not isinstance(media_id, int) or isinstance(media_id, bool):
        raise InvalidGenerationRequest("a media step needs media_id (the attachment to fill)")
    return {"media_id": media_id}


KINDS: dict[str, Validator] = {
    "post": check_post, "answer": check_post, "remix": check_remix, "profile": check_profile,
    "media": check_media,
}  # fmt: skip


def validate_then(then: Any, prompt: str) -> dict[str, Any]:
    """`then` as it will be stored; InvalidGenerationRequest when it is wrong."""
    if not isinstance(then, dict):
        raise InvalidGenerationRequest("then must be a dict of {step: options}")
    checked: dict[str, Any] = {}
    for kind, options in then.items():
        if kind not in KINDS:
            raise InvalidGenerationRequest(
                f"unknown then step {kind!r} (known: {', '.join(KINDS)})"
            )
        if not isinstance(options, dict):
            raise InvalidGenerationRequest(f"then[{kind!r}] must be a dict of options")
        checked[kind] = KINDS[kind](options, prompt)
    return checked
