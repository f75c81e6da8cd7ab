"""Thin HTTP handlers: parse, call a plain function, shape the response."""

from starlette.routing import BaseRoute

from instance.routes import actors, inbox, media, posts, wellknown
from instance.web import app_pages
from instance.web import pages as web


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
