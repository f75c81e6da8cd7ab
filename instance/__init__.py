"""The Dreamloom application: settings, storage, HTTP routes, workers, CLI and web pages.

This package may import `activitypub`, `webfinger` and `generator`; none of them imports it.
"""

__version__ = "0.1.0"
