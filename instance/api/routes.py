"""The API's route table, one line per module (app.py mounts it before the HTML pages)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from instance.api import oauth

routes: list[BaseRoute] = [
    *oauth.routes,
]
