"""The Mastodon client API, so people use the apps they already have (Elk, Phanpy, Ivory,
Tusky, Mastodon.py, masto.js) with Dreamloom, and generation is where Mastodon has uploads.

    auth.py        the caller behind a bearer token, scopes, errors, rate limits, `@endpoint`
    scopes.py      Mastodon's scopes and which granted ones cover a required one
    tokens.py      registering apps, issuing and revoking tokens (kept as digests)
    oauth.py       /api/v1/apps, /oauth/authorize (the consent page), /oauth/token, revoke
    authorized.py  the web page of a user's authorised apps, where each can be revoked
    pagination.py  max_id/since_id/min_id/limit and the Link header
    params.py      reading the query and body (JSON or a form, files, caps) and typed values
    entities.py    rows as Mastodon's entities: Account, Status, MediaAttachment, ...
    instance_info.py  /api/v1/instance, /api/v2/instance, custom emojis
    accounts.py    accounts, follows, relationships
    statuses.py    statuses: create, show, delete, context, favourite, reblog
    media.py       /api/v2/media: uploads, and generation as media
    timelines.py   home, public, tag and account timelines
    notifications.py  notifications
    search.py      /api/v2/search
    openapi.py     the OpenAPI description of what is implemented
"""
