"""Thin HTTP handlers: parse, call a plain function, shape the response."""

from starlette.routing import BaseRoute

from . import actors, media, posts, web, wellknown


def all_routes() -> list[BaseRoute]:
    return [*wellknown.routes, *posts.routes, *actors.routes, *media.routes, *web.routes]
