"""Thin HTTP handlers: parse, call a plain function, shape the response."""

from starlette.routing import BaseRoute

from . import actors, app_pages, inbox, media, posts, web, wellknown


def all_routes() -> list[BaseRoute]:
    return [
        *wellknown.routes,
        *inbox.routes,  # before actors: /users/{username}/{collection} would match
        *posts.routes,
        *actors.routes,
        *media.routes,
        *web.routes,
        *app_pages.routes,  # local users: login, timelines, compose, actions
    ]
