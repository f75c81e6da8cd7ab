"""The API's route table, one line per module (app.py mounts it before the HTML pages)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from instance.api import (
    accounts,
    authorized,
    instance_info,
    media,
    notifications,
    oauth,
    openapi,
    search,
    statuses,
    timelines,
)

routes: list[BaseRoute] = [
    *statuses.routes,
    *media.routes,
    *timelines.routes,
    *notifications.routes,
    *oauth.routes,
    *authorized.routes,  # the web page of a user's authorised apps
    *instance_info.routes,
    *accounts.routes,
    *search.routes,
    *openapi.routes,
]
