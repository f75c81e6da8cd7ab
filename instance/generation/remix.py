"""Remixes: a new image made from another post's recipe or picture, published as a quote.

Three kinds, from a local or remote parent post:

- **new seed** (default): the parent's recipe again with another seed;
- **edited prompt** (`prompt=`): the parent's recipe with the new prompt;
- **from the image** (`from_image=True`): image-to-image from the parent's first picture,
  at `strength` (0.6 by default).

A parent without a Dreamloom recipe (a Mastodon picture) needs a prompt, or lends its alt text.
Only posts anyone may see can be remixed (instance/content/visibility.py). Once the image
exists, the job's `remix` step (`publish_remix`) publishes it as a post that links to its
parent for every reader, whatever it understands of quotes: a visible "Remix of" line, the
"RE:" line Mastodon hides when it shows the quote itself, a mention of the parent's author,
our `remixOf` and the recipe. Then it gets the parent author's approval: at once for parents
on this instance, else by a QuoteRequest, published when answered
(instance/content/quotes.py).
"""

from __future__ import annotations

import html
import math
import secrets
from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from activitypub.addressing import Visibility
from activitypub.urls import safe_link
from generator.errors import RecipeError
from generator.recipe import Recipe
from instance.content import quotes
from instance.content.posting import Draft, federate_post, publish
from instance.content.text import plain_text
from instance.content.visibility import can_quote
from instance.errors import InvalidGenerationRequest, RemixError
from instance.generation.recipes import build_recipe
from instance.generation.requests import enqueue
from instance.runtime import Runtime
from instance.storage.models import Account, GenerationJob, MediaAttachment, Post

DEFAULT_STRENGTH = 0.6
KINDS = ("seed", "prompt", "image")

def parent_recipe(parent: Post) -> Recipe | None:
    """The parent's recipe: ours, or the one another Dreamloom published in the Note."""
    data = parent.recipe or (parent.raw or {}).get("recipe")
    if not isinstance(data, dict):
        return None
    try:
        return Recipe.from_json(data)
    except (RecipeError, TypeError, ValueError):
        return None


async def _first_image(session: AsyncSession, parent: Post) -> MediaAttachment | None:
    return await session.scalar(
        select(MediaAttachment)
        .where(MediaAttachment.post_id == parent.id)
        .order_by(MediaAttachment.position)
        .limit(1)
    )


def _image_url(media: MediaAttachment, rt: Runtime) -> str:
    return rt.urls.media(media.file_name) if media.file_name else media.remote_url or ""


async def remix(
    session: AsyncSession,
    rt: Runtime,
    account: Account,
    parent: Post,
    *,
    prompt: str | None = None,
    seed: int | None = None,
    from_image: bool = False,
    strength: float = DEFAULT_STRENGTH,
    visibility: Visibility = "public",
) -> GenerationJob:
    """Queue the remix's generation; the `remix` step publishes it when the image is ready."""
    recipe = await remix_recipe(session, rt, account, parent, prompt=prompt, seed=seed,
                                from_image=from_image, strength=strength)  # fmt: skip
    kind = "image" if from_image else "prompt" if prompt else "seed"
    then = {"remix": {"parent_post_id": parent.id, "visibility": visibility, "kind": kind}}
    return await enqueue(session, rt, account, recipe, then=then, requested_by=account.uri)


async def remix_recipe(
    session: AsyncSession,
    rt: Runtime,
    account: Account,
    parent: Post,
    *,
    prompt: str | None = None,
    seed: int | None = None,
    from_image: bool = False,
    strength: float = DEFAULT_STRENGTH,
) -> Recipe:
    """The recipe of a remix of `parent` (the kinds in the module docstring); RemixError
    when the post may not be remixed or gives nothing to start from."""
    if parent.deleted_at is not None:
        raise RemixError("that post was deleted")
    if not can_quote(parent):
        raise RemixError("only public and unlisted posts can be remixed")
    base = parent_recipe(parent)
    image = await _first_image(session, parent)
    text = (
        (prompt or "").strip()
        or (base.prompt if base else "")
        or (image.description or "" if image else "")
        or plain_text(parent.content)
    )
    if not text:
        raise RemixError("that post has no recipe, alt text or text to start from: give a prompt")
    if from_image and image is None:
        raise RemixError("that post has no image to remix from")
    new_seed = secrets.randbelow(2**32) if seed is None else seed
    try:
        if base is not None:  # the parent's recipe, as published
            recipe = replace(base, prompt=text, seed=new_seed)
        else:  # a picture without a recipe: our account's own recipe for its text
            recipe = build_recipe(rt.settings, account, text, seed=new_seed)
        if from_image and image is not None:
            # image-to-image runs steps x strength denoising steps: at least one
            steps = max(recipe.steps, math.ceil(1 / strength))
            recipe = replace(recipe, parent=_image_url(image, rt), strength=strength, steps=steps)
        else:
            recipe = replace(recipe, parent=None, strength=None)
    except (RecipeError, TypeError, ValueError) as exc:
        raise RemixError(str(exc)) from None
    return recipe


def fallback_html(parent: Post, author_handle: str) -> tuple[str, str]:
    """The visible "Remix of" line, and the quote-inline "RE:" line."""
    url = html.escape(safe_link(parent.url, parent.uri) or "")
    uri = html.escape(safe_link(parent.uri) or "")
    prefix = f'<p>🎨 Remix of <a href="{url}">{html.escape(author_handle)}</a></p>'
    suffix = f'<p class="quote-inline"><br/>RE: <a href="{uri}">{url}</a></p>'
    return prefix, suffix


async def publish_remix(
    session: AsyncSession,
    rt: Runtime,
    account: Account,
    parent_id: int,
    media: MediaAttachment,
    recipe: Recipe,
    *,
    visibility: Visibility = "public",
) -> Post:
    """Publish the finished remix and get (or ask for) its parent author's approval."""
    parent = await session.get(Post, parent_id)
    if parent is None or parent.deleted_at is not None:
        raise InvalidGenerationRequest("the remixed post was deleted")
    parent_author = await session.get_one(Account, parent.account_id)
    prefix, suffix = fallback_html(parent, rt.urls.handle(parent_author))
    draft = Draft(
        text=recipe.prompt,
        visibility=visibility,
        media=[media],
        quote=parent,
        quote_state="pending",
        recipe=recipe.to_json(),
        prefix_html=prefix,
        suffix_html=suffix,
    )
    post = await publish(session, rt, account, draft, federate=False)
    if parent.local:
        await quotes.stamp_locally(session, rt, post, parent)
        await federate_post(session, rt, account, post)
    elif quotes.takes_quote_requests(parent):
        await quotes.request_quote(session, rt, account, post, parent_author)
    else:
        await quotes.publish_unapproved(session, rt, post)
    return post
