"""The OpenAPI 3.1 description of the client API this instance implements, at
`GET /api/openapi.json`.

Everything comes from one table, `OPERATIONS`: one `Op` per route of instance/api/routes.py
(method, path as the route writes it, summary, the scopes any one of which lets a token in,
query and header parameters, the request body's fields, the answer's schema and the other
status codes it may answer). The entity schemas under `components.schemas` are written from
what instance/api/entities.py and the endpoint modules return, with Mastodon's field names
and types (docs.joinmastodon.org/entities); tests/instance/api/test_openapi.py checks that
every route is described, that nothing described lacks a route, and runs schemathesis
against the app, which checks every answer against this document.

Rules the table follows, from instance/api/auth.py `@endpoint`: every endpoint may answer
400 (a NUL character in the path or query), 401 (a token that does not work) and 429 (rate
limit); one that needs a scope 403 (a token
without it) and, when it needs a user, 422 (an app-only token). A read anyone may make has
`security: [{}, {bearer: [scope]}]`. Request bodies are read as JSON, url-encoded or
multipart forms alike (Mastodon.py sends forms, masto.js JSON); a form writes a list as
repeated `name[]` fields, JSON as a list under `name`.

`schema(name)` gives one component as a standalone JSON Schema (2020-12), for tests that
check an entity with jsonschema.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from instance import __version__
from instance.api import scopes as scope_rules
from instance.api.auth import cookieless, json_response
from instance.api.instance_info import MASTODON_VERSION
from instance.content import posting, profiles
from instance.routes.common import runtime

Schema = dict[str, Any]
PATH = "/api/openapi.json"
JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"


# -- schema helpers --------------------------------------------------------------------------
def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def null(s: Schema) -> Schema:
    """`s` or null."""
    if "$ref" in s or "type" not in s:
        return {"anyOf": [s, {"type": "null"}]}
    kinds = s["type"] if isinstance(s["type"], list) else [s["type"]]
    return {**s, "type": [*kinds, "null"]}


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def obj(required: dict[str, Schema], optional: dict[str, Schema] | None = None,
        description: str | None = None) -> Schema:  # fmt: skip
    """An object with these properties; more may come (Mastodon adds fields over time)."""
    out: Schema = {"type": "object", "properties": {**required, **(optional or {})}}
    if required:
        out["required"] = list(required)
    if description:
        out["description"] = description
    return out


STR: Schema = {"type": "string"}
INT: Schema = {"type": "integer"}
NUM: Schema = {"type": "number"}
BOOL: Schema = {"type": "boolean"}
TIME: Schema = {"type": "string", "format": "date-time"}
DATE: Schema = {"type": "string", "format": "date"}
URL: Schema = {"type": "string", "format": "uri"}
ID: Schema = {"type": "string", "description": "an id (ids are strings)"}
EMPTY: Schema = {"type": "object", "maxProperties": 0}
FILE: Schema = {"type": "string", "format": "binary"}
VISIBILITY: Schema = {"type": "string", "enum": ["public", "unlisted", "private", "direct"]}
NOTIFICATION_TYPE: Schema = {
    "type": "string",
    "enum": [
        "mention", "status", "reblog", "follow", "follow_request", "favourite", "poll",
        "update", "quote", "quoted_update", "admin.sign_up", "admin.report",
        "severed_relationships", "moderation_warning",
    ],
}  # fmt: skip
QUOTE_STATE: Schema = {
    "type": "string",
    "enum": [
        "pending", "accepted", "rejected", "revoked", "deleted", "unauthorized",
        "blocked_account", "blocked_domain", "muted_account",
    ],
}  # fmt: skip


# -- entities --------------------------------------------------------------------------------
def _components() -> dict[str, Schema]:
    field = obj({"name": STR, "value": STR, "verified_at": null(TIME)})
    account = obj(
        {
            "id": ID, "username": STR, "acct": STR, "url": STR, "uri": STR,
            "display_name": STR, "note": STR, "avatar": URL, "avatar_static": URL,
            "header": URL, "header_static": URL, "locked": BOOL, "fields": array(ref("Field")),
            "emojis": array(ref("CustomEmoji")), "bot": BOOL, "group": BOOL,
            "discoverable": null(BOOL), "noindex": null(BOOL), "indexable": BOOL,
            "hide_collections": null(BOOL), "created_at": TIME, "last_status_at": null(DATE),
            "statuses_count": INT, "followers_count": INT, "following_count": INT,
            "roles": array({"type": "object"}),
        },
        {"suspended": BOOL, "limited": BOOL, "memorial": BOOL, "moved": null(ref("Account"))},
        "Mastodon's Account (entities.py `account`)",
    )  # fmt: skip
    source = obj({
        "note": STR, "fields": array(ref("Field")), "privacy": VISIBILITY, "sensitive": BOOL,
        "language": null(STR), "follow_requests_count": INT,
    })  # fmt: skip
    dimensions = obj({"width": INT, "height": INT}, {"size": STR, "aspect": NUM})
    media = obj(
        {
            "id": ID,
            "type": {"type": "string", "enum": ["unknown", "image", "gifv", "video", "audio"]},
            "url": null(STR), "preview_url": null(STR), "remote_url": null(STR),
            "meta": obj({}, {"original": dimensions, "small": dimensions,
                             "focus": obj({"x": NUM, "y": NUM})}),
            "description": null(STR), "blurhash": null(STR),
        },
        {"preview_remote_url": null(STR), "text_url": null(STR)},
        "Mastodon's MediaAttachment: url and preview_url are null while it is generated",
    )  # fmt: skip
    quote_approval = obj({
        "automatic": array(STR), "manual": array(STR),
        "current_user": {"type": "string", "enum": ["automatic", "manual", "denied", "unknown"]},
    })  # fmt: skip
    status = obj(
        {
            "id": ID, "uri": STR, "url": null(STR), "created_at": TIME, "edited_at": null(TIME),
            "account": ref("Account"), "content": STR, "visibility": VISIBILITY,
            "sensitive": BOOL, "spoiler_text": STR, "language": null(STR),
            "media_attachments": array(ref("MediaAttachment")),
            "application": null({"type": "object"}),
            "mentions": array(obj({"id": ID, "username": STR, "url": STR, "acct": STR})),
            "tags": array(obj({"name": STR, "url": STR})),
            "emojis": array(ref("CustomEmoji")),
            "reblogs_count": INT, "favourites_count": INT, "replies_count": INT,
            "quotes_count": INT, "in_reply_to_id": null(ID), "in_reply_to_account_id": null(ID),
            "reblog": null(ref("Status")), "poll": null({"type": "object"}),
            "card": null({"type": "object"}),
            "quote": {"anyOf": [ref("Quote"), ref("ShallowQuote"), {"type": "null"}]},
            "quote_approval": quote_approval,
        },
        {
            "text": null(STR), "favourited": BOOL, "reblogged": BOOL, "muted": BOOL,
            "bookmarked": BOOL, "pinned": BOOL, "filtered": array({"type": "object"}),
        },
        "Mastodon's Status (entities.py `status`); a boost is a Status whose `reblog` is the "
        "boosted one",
    )  # fmt: skip
    notification = obj(
        {"id": ID, "type": NOTIFICATION_TYPE, "created_at": TIME, "account": ref("Account")},
        {"group_key": STR, "status": ref("Status")},
        "Mastodon's Notification; favourite, reblog, mention and quote ones carry the status",
    )
    relationship = obj({
        "id": ID, "following": BOOL, "showing_reblogs": BOOL, "notifying": BOOL,
        "languages": null(array(STR)), "followed_by": BOOL, "blocking": BOOL, "blocked_by": BOOL,
        "muting": BOOL, "muting_notifications": BOOL, "requested": BOOL, "requested_by": BOOL,
        "domain_blocking": BOOL, "endorsed": BOOL, "note": STR,
    })  # fmt: skip
    application = obj(
        {"name": STR, "website": null(STR), "scopes": array(STR), "redirect_uri": STR,
         "redirect_uris": array(STR)},
        {"id": ID, "vapid_key": STR},
        "Mastodon's Application",
    )  # fmt: skip
    credential_application = {
        "allOf": [application, obj({"client_id": STR, "client_secret": STR},
                                   {"client_secret_expires_at": INT})],
        "description": "an Application with its credentials (the secret is shown once)",
    }  # fmt: skip
    token = obj(
        {"access_token": STR, "token_type": STR, "scope": STR, "created_at": INT},
        {"refresh_token": STR, "expires_in": INT},
        "an OAuth 2 token, as Mastodon's Token",
    )
    statuses_config = obj({
        "max_characters": INT, "max_media_attachments": INT, "characters_reserved_per_url": INT,
    })  # fmt: skip
    media_config = obj({
        "supported_mime_types": array(STR), "image_size_limit": INT, "image_matrix_limit": INT,
        "video_size_limit": INT, "video_frame_rate_limit": INT, "video_matrix_limit": INT,
    }, {"description_limit": INT})  # fmt: skip
    polls_config = obj({
        "max_options": INT, "max_characters_per_option": INT, "min_expiration": INT,
        "max_expiration": INT,
    })  # fmt: skip
    rule = obj({"id": ID, "text": STR}, {"hint": STR})
    instance_v1 = obj(
        {
            "uri": STR, "title": STR, "short_description": STR, "description": STR,
            "email": STR, "version": STR, "urls": obj({"streaming_api": STR}),
            "stats": obj({"user_count": INT, "status_count": INT, "domain_count": INT}),
            "thumbnail": null(STR), "languages": array(STR), "registrations": BOOL,
            "approval_required": BOOL, "invites_enabled": BOOL,
            "configuration": obj({
                "statuses": statuses_config, "media_attachments": media_config,
                "polls": polls_config,
            }, {"accounts": obj({"max_featured_tags": INT})}),
            "contact_account": null(ref("Account")), "rules": array(rule),
        },
        description="Mastodon's V1::Instance",
    )  # fmt: skip
    instance_v2 = obj(
        {
            "domain": STR, "title": STR, "version": STR, "source_url": STR, "description": STR,
            "usage": obj({"users": obj({"active_month": INT})}),
            "thumbnail": obj({"url": STR}, {"blurhash": null(STR), "versions": {"type": "object"}}),
            "icon": array(obj({"src": STR, "size": STR})),
            "languages": array(STR),
            "configuration": obj(
                {
                    "urls": obj({"streaming": STR}, {
                        "status": null(STR), "about": null(STR), "privacy_policy": null(STR),
                        "terms_of_service": null(STR),
                    }),
                    "accounts": obj({"max_featured_tags": INT}, {
                        "max_note_length": INT, "max_pinned_statuses": INT,
                        "max_profile_fields": INT, "profile_field_name_limit": INT,
                        "profile_field_value_limit": INT,
                    }),
                    "statuses": statuses_config, "media_attachments": media_config,
                    "polls": polls_config, "translation": obj({"enabled": BOOL}),
                },
                {"limited_federation": BOOL},
            ),
            "registrations": obj(
                {"enabled": BOOL, "approval_required": BOOL, "message": null(STR)},
                {"url": null(STR), "reason_required": null(BOOL), "min_age": null(INT)},
            ),
            "api_versions": obj({"mastodon": INT}),
            "contact": obj({"email": STR, "account": null(ref("Account"))}),
            "rules": array(rule),
        },
        description="Mastodon's Instance (v2)",
    )  # fmt: skip
    return {
        "Account": account,
        "CredentialAccount": {"allOf": [account, obj({"source": source})],
                              "description": "the caller's own Account, with its `source`"},
        "Field": field,
        "CustomEmoji": obj({"shortcode": STR, "url": STR, "static_url": STR,
                            "visible_in_picker": BOOL}, {"category": null(STR)}),
        "MediaAttachment": media,
        "Status": status,
        "Quote": obj({"state": QUOTE_STATE, "quoted_status": null(ref("Status"))},
                     description="Mastodon 4.5's Quote"),
        "ShallowQuote": obj({"state": QUOTE_STATE, "quoted_status_id": null(ID)},
                            description="a quoted status's own quote (Mastodon's ShallowQuote)"),
        "StatusSource": obj({"id": ID, "text": STR, "spoiler_text": STR}),
        "Context": obj({"ancestors": array(ref("Status")), "descendants": array(ref("Status"))}),
        "Tag": obj({"name": STR, "url": STR},
                   {"id": ID, "history": array(obj({"day": STR, "uses": STR, "accounts": STR})),
                    "following": BOOL, "featuring": BOOL}),
        "Search": obj({"accounts": array(ref("Account")), "statuses": array(ref("Status")),
                       "hashtags": array(ref("Tag"))}),
        "Notification": notification,
        "Relationship": relationship,
        "Application": application,
        "CredentialApplication": credential_application,
        "Token": token,
        "Instance": instance_v2,
        "InstanceV1": instance_v1,
        "OAuthServerMetadata": obj({
            "issuer": STR, "authorization_endpoint": STR, "token_endpoint": STR,
            "scopes_supported": array(STR), "response_types_supported": array(STR),
            "grant_types_supported": array(STR),
        }, {
            "service_documentation": STR, "revocation_endpoint": STR,
            "app_registration_endpoint": STR, "response_modes_supported": array(STR),
            "code_challenge_methods_supported": array(STR),
            "token_endpoint_auth_methods_supported": array(STR),
        }),
        "Error": obj({"error": STR}, {"error_description": STR},
                     "Mastodon's Error (OAuth errors add `error_description`)"),
    }  # fmt: skip


# -- parameters ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Param:
    name: str
    schema: Schema
    description: str = ""
    where: str = "query"  # "query" | "header"
    required: bool = False

    def openapi(self) -> Schema:
        out: Schema = {"name": self.name, "in": self.where, "schema": self.schema}
        if self.description:
            out["description"] = self.description
        if self.required:
            out["required"] = True
        if self.schema.get("type") == "array":
            out.update(style="form", explode=True)
        return out


def flag(name: str, description: str) -> Param:
    return Param(name, BOOL, description)


PAGE = (
    Param("max_id", STR, "items older than this id"),
    Param("since_id", STR, "items newer than this id, the newest first"),
    Param("min_id", STR, "items newer than this id, the oldest of them first"),
    Param("limit", INT, "how many (20 by default, at most 40; numbers beyond are clamped)"),
)
ACCOUNT_PAGE = (*PAGE[:3], Param("limit", INT, "how many (40 by default, at most 80)"))
PUBLIC_FILTERS = (
    flag("local", "only this instance's posts"),
    flag("remote", "only other servers' posts"),
    flag("only_media", "only posts with attachments"),
)
PATH_PARAMS: dict[str, Schema] = {
    "id:int": {"type": "string", "pattern": "^[0-9]+$", "description": "an account id"},
    "id": {"type": "string", "pattern": "^[0-9A-Za-z]+$", "description": "the id"},
    "hashtag": {"type": "string", "pattern": r"^\w+$", "description": "a hashtag, no #"},
}
"""Path parameters by how the route writes them."""


# -- operations ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Op:
    method: str
    path: str  # as instance/api/routes.py writes it (`{id:int}`)
    summary: str
    response: Schema | None  # the 200 answer's JSON; None: see `content`
    scope: tuple[str, ...] = ()  # any one of these; () with `auth="none"`: anyone
    auth: str = "required"  # a token: "required" | "optional" (anyone may read) | "none"
    user: bool = True  # a user's token, not an app-only one (with a scope)
    params: tuple[Param, ...] = ()
    body: Schema | None = None  # the fields, as JSON names them
    body_types: tuple[str, ...] = (JSON, FORM, MULTIPART)
    body_required: bool = False
    codes: dict[int, str] | None = None  # other answers: status -> what it means
    content: str = JSON  # the media type of the answers
    paged: bool = False  # answers a Link header
    rate_limited: bool = True  # an `@endpoint`: 401/429 and X-RateLimit-* headers

    @property
    def openapi_path(self) -> str:
        return self.path.replace(":int}", "}")


def fields(required: dict[str, Schema] | None = None, **optional: Schema) -> Schema:
    return obj(required or {}, optional)


STATUS_FIELDS: dict[str, Schema] = {
    "status": {**STR, "description": "the text (may be empty with media_ids)"},
    "spoiler_text": {**STR, "description": "the content warning"},
    "sensitive": BOOL,
    "language": {
        **STR,
        "pattern": "^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
        "maxLength": posting.MAX_LANGUAGE,
        "description": "an ISO 639 language code, maybe with a region (pt-BR)",
    },
    "media_ids": {**array(STR), "maxItems": 4, "description": "attachments from /api/v2/media"},
}
NOT_FOUND = {404: "no such item, or one the caller may not see"}
INVALID = {422: "the request is invalid (the error says why)"}
MEDIA_CODES = {
    206: "the image is still being generated (the attachment, url null)",
    **NOT_FOUND,
    422: "the generation failed or the request is invalid (the error says why)",
}
GENERATION_FIELDS: dict[str, Schema] = {
    "description": {**STR, "description": "alt text (at most 1500 characters)"},
    "focus": {**STR, "description": "the focal point, `x,y` in -1..1"},
    "prompt": {**STR, "description": "Dreamloom: generate the image from this prompt"},
    "negative_prompt": STR,
    "seed": INT,
    "steps": INT,
    "width": INT,
    "height": INT,
    "size": {**STR, "description": "WIDTHxHEIGHT, instead of width and height"},
    "guidance": NUM,
    "model": {**STR, "description": "only this instance's model"},
    "remix_of": {**STR, "description": "a status id: start from that post, as a remix"},
    "from_image": BOOL,
    "strength": NUM,
}
PROFILE_FIELDS: dict[str, Schema] = {
    "display_name": STR,
    "note": {**STR, "description": "the bio, as plain text"},
    "avatar": FILE,
    "header": FILE,
    "locked": BOOL,
    "bot": {**BOOL, "description": "only what the account is (AI accounts are bots)"},
    "discoverable": BOOL,
    "fields_attributes": array(obj({}, {"name": STR, "value": STR})),
}
OAUTH_ERRORS = {
    400: "an OAuth error (invalid_request, invalid_grant, unsupported_grant_type, ...)",
    401: "the client could not be authenticated (invalid_client)",
    413: "the request is too large",
    415: "the body is neither url-encoded nor JSON",
}
OAUTH_AUTHORIZE = (
    Param("response_type", {"type": "string", "enum": ["code"]}),
    Param("client_id", STR),
    Param("redirect_uri", STR),
    Param("scope", STR, "scopes, space-separated (default read)"),
    Param("state", STR),
    Param("code_challenge", STR),
    Param("code_challenge_method", {"type": "string", "enum": ["S256"]}),
)

OPERATIONS: tuple[Op, ...] = (
    # oauth.py
    Op("POST", "/api/v1/apps", "Register an app (its client secret is shown once)",
       ref("CredentialApplication"), auth="none", rate_limited=False, body_types=(JSON, FORM),
       body=fields({"client_name": {**STR, "minLength": 1, "maxLength": 255},
                    "redirect_uris": {"anyOf": [URL, array(URL)],
                                      "description": "absolute URIs (space-separated), or "
                                      "urn:ietf:wg:oauth:2.0:oob"}},
                   scopes={**STR, "description": "space-separated (default read)"},
                   website=null({**URL, "description": "an http(s) URL"})),
       body_required=True,
       codes={400: "the body could not be read", 413: "the body is too large",
              415: "the body is neither url-encoded nor JSON", **INVALID}),
    Op("GET", "/api/v1/apps/verify_credentials", "The app the token belongs to",
       ref("Application"), user=False),
    Op("GET", "/oauth/authorize", "The consent page (log in first)", None, auth="none",
       rate_limited=False, content="text/html", params=OAUTH_AUTHORIZE,
       codes={302: "back to the app with an error", 303: "to the login page",
              400: "the request cannot be authorised (an HTML page)"}),
    Op("POST", "/oauth/authorize", "Approve or deny (the consent page's form)", None,
       auth="none", rate_limited=False, content="text/html", body_types=(FORM,),
       body=fields({"csrf": STR}, decision={"type": "string", "enum": ["approve", "deny"]},
                   **{p.name: p.schema for p in OAUTH_AUTHORIZE}),
       codes={302: "to the app's redirect URI with the code", 303: "to the login page",
              400: "the request cannot be authorised", 403: "no valid CSRF token (text)",
              413: "the form is too large (text)"}),
    # authorized.py
    Op("GET", "/oauth/authorized_applications", "The apps the logged-in user authorised "
       "(a web page)", None, auth="none", rate_limited=False, content="text/html",
       codes={303: "to the login page"}),
    Op("POST", "/oauth/authorized_applications/{id}/revoke", "Revoke every token of "
       "that app for the logged-in user (the page's form)", None, auth="none",
       rate_limited=False, content="text/html", body_types=(FORM,), body=fields({"csrf": STR}),
       codes={303: "back to the page, or to the login page", 403: "no valid CSRF token (text)",
              413: "the form is too large (text)"}),
    Op("POST", "/oauth/token", "Get a token (authorization_code, client_credentials, "
       "refresh_token)", ref("Token"), auth="none", rate_limited=False,
       body_types=(FORM, JSON), body_required=True,
       body=fields({"grant_type": {"type": "string", "enum": [
           "authorization_code", "client_credentials", "refresh_token"]}},
           code=STR, redirect_uri=STR, client_id=STR, client_secret=STR, scope=STR,
           refresh_token=STR, code_verifier=STR),
       codes=OAUTH_ERRORS),
    Op("POST", "/oauth/revoke", "Revoke a token (RFC 7009)", EMPTY, auth="none",
       rate_limited=False, body_types=(FORM, JSON), body_required=True,
       body=fields({"token": STR}, token_type_hint=STR, client_id=STR, client_secret=STR),
       codes={**OAUTH_ERRORS, 403: "the token is another client's (unauthorized_client)"}),
    Op("GET", "/.well-known/oauth-authorization-server", "OAuth server metadata (RFC 8414)",
       ref("OAuthServerMetadata"), auth="none", rate_limited=False),
    # instance_info.py
    Op("GET", "/api/v1/instance", "This server (Mastodon's v1 Instance)", ref("InstanceV1"),
       auth="optional"),
    Op("GET", "/api/v1/instance/", "The same, as Mastodon.py asks for it", ref("InstanceV1"),
       auth="optional"),
    Op("GET", "/api/v2/instance", "This server (Mastodon's Instance)", ref("Instance"),
       auth="optional"),
    Op("GET", "/api/v1/custom_emojis", "Custom emoji (none here)", array(ref("CustomEmoji")),
       auth="optional"),
    # accounts.py
    Op("GET", "/api/v1/accounts/verify_credentials", "The caller's own account",
       ref("CredentialAccount"), scope=("read:accounts", "profile")),
    Op("PATCH", "/api/v1/accounts/update_credentials", "Change the caller's profile",
       ref("CredentialAccount"), scope=("write:accounts",), body=fields(**PROFILE_FIELDS),
       codes={413: "the body is too large", **INVALID}),
    Op("GET", "/api/v1/accounts/lookup", "An account this instance knows, by acct",
       ref("Account"), scope=("read:accounts",), auth="optional",
       params=(Param("acct", STR, "user, @user or user@host", required=True),),
       codes={**NOT_FOUND, **INVALID}),
    Op("GET", "/api/v1/accounts/relationships", "The caller's relationship with accounts",
       array(ref("Relationship")), scope=("read:follows",),
       params=(Param("id[]", array(STR), "account ids"),)),
    Op("GET", "/api/v1/accounts/{id:int}", "One account", ref("Account"),
       scope=("read:accounts",), auth="optional", codes=NOT_FOUND),
    Op("GET", "/api/v1/accounts/{id:int}/statuses", "An account's posts and boosts",
       array(ref("Status")), scope=("read:statuses",), auth="optional", paged=True,
       params=(*PAGE, flag("only_media", "only posts with attachments"),
               flag("exclude_replies", "no replies (but those to itself)"),
               flag("exclude_reblogs", "no boosts"), flag("pinned", "only pinned posts"),
               Param("tagged", STR, "only posts with this hashtag")),
       codes={**NOT_FOUND, **INVALID}),
    Op("GET", "/api/v1/accounts/{id:int}/followers", "Who follows the account",
       array(ref("Account")), scope=("read:accounts",), auth="optional", paged=True,
       params=ACCOUNT_PAGE, codes={**NOT_FOUND, **INVALID}),
    Op("GET", "/api/v1/accounts/{id:int}/following", "Whom the account follows",
       array(ref("Account")), scope=("read:accounts",), auth="optional", paged=True,
       params=ACCOUNT_PAGE, codes={**NOT_FOUND, **INVALID}),
    Op("POST", "/api/v1/accounts/{id:int}/follow", "Follow (or ask to)", ref("Relationship"),
       scope=("write:follows",), codes={**NOT_FOUND, **INVALID}),
    Op("POST", "/api/v1/accounts/{id:int}/unfollow", "Unfollow (or take the request back)",
       ref("Relationship"), scope=("write:follows",), codes={**NOT_FOUND, **INVALID}),
    Op("GET", "/api/v1/follow_requests", "Who waits for the caller's approval",
       array(ref("Account")), scope=("read:follows",), paged=True, params=ACCOUNT_PAGE,
       codes=INVALID),
    Op("POST", "/api/v1/follow_requests/{id:int}/authorize", "Accept a follow request",
       ref("Relationship"), scope=("write:follows",), codes=NOT_FOUND),
    Op("POST", "/api/v1/follow_requests/{id:int}/reject", "Refuse a follow request",
       ref("Relationship"), scope=("write:follows",), codes=NOT_FOUND),
    # statuses.py
    Op("POST", "/api/v1/statuses", "Post a status", ref("Status"), scope=("write:statuses",),
       params=(Param("Idempotency-Key", STR, "the same key again answers the first status",
                     where="header"),),
       body=fields(**STATUS_FIELDS, visibility=VISIBILITY, in_reply_to_id=ID,
                   quoted_status_id={**ID, "description": "quote (remix) this status"}),
       codes={**NOT_FOUND, **INVALID}),
    Op("GET", "/api/v1/statuses/{id}", "One status", ref("Status"), scope=("read:statuses",),
       auth="optional", codes=NOT_FOUND),
    Op("PUT", "/api/v1/statuses/{id}", "Edit the caller's status", ref("Status"),
       scope=("write:statuses",), body=fields(**STATUS_FIELDS),
       codes={**NOT_FOUND, **INVALID}),
    Op("DELETE", "/api/v1/statuses/{id}", "Delete the caller's status (answered with its "
       "text, to redraft)", ref("Status"), scope=("write:statuses",), codes=NOT_FOUND),
    Op("GET", "/api/v1/statuses/{id}/source", "The text of the caller's status as typed",
       ref("StatusSource"), scope=("read:statuses",), codes=NOT_FOUND),
    Op("GET", "/api/v1/statuses/{id}/context", "What it replies to and the replies below it",
       ref("Context"), scope=("read:statuses",), auth="optional", codes=NOT_FOUND),
    Op("POST", "/api/v1/statuses/{id}/favourite", "Like", ref("Status"),
       scope=("write:favourites",), codes={**NOT_FOUND, **INVALID}),
    Op("POST", "/api/v1/statuses/{id}/unfavourite", "Take the like back", ref("Status"),
       scope=("write:favourites",), codes={**NOT_FOUND, **INVALID}),
    Op("POST", "/api/v1/statuses/{id}/reblog", "Boost (the answer's `reblog` is the status)",
       ref("Status"), scope=("write:statuses",), codes={**NOT_FOUND, **INVALID}),
    Op("POST", "/api/v1/statuses/{id}/unreblog", "Take the boost back", ref("Status"),
       scope=("write:statuses",), codes={**NOT_FOUND, **INVALID}),
    Op("GET", "/api/v1/statuses/{id}/favourited_by", "Who liked it", array(ref("Account")),
       scope=("read:statuses",), auth="optional", paged=True, params=ACCOUNT_PAGE,
       codes={**NOT_FOUND, **INVALID}),
    Op("GET", "/api/v1/statuses/{id}/reblogged_by", "Who boosted it", array(ref("Account")),
       scope=("read:statuses",), auth="optional", paged=True, params=ACCOUNT_PAGE,
       codes={**NOT_FOUND, **INVALID}),
    # media.py
    Op("POST", "/api/v2/media", "Upload an image (200), or generate one from a prompt "
       "(Dreamloom: 202, the attachment with url null until the image exists)",
       ref("MediaAttachment"), scope=("write:media",),
       body={"oneOf": [
           fields({"file": {**FILE, "description": "a PNG, JPEG or WebP image"}},
                  description=GENERATION_FIELDS["description"],
                  focus=GENERATION_FIELDS["focus"]),
           fields({"prompt": GENERATION_FIELDS["prompt"]}, **GENERATION_FIELDS),
       ]},
       codes={202: "the image is being generated (the attachment, url null)", **NOT_FOUND,
              413: "the file is too large", **INVALID,
              503: "the generation queue is full (try again after Retry-After)"}),
    Op("GET", "/api/v1/media/{id}", "An attachment of the caller's, not in a status yet",
       ref("MediaAttachment"), scope=("write:media",), codes=MEDIA_CODES),
    Op("PUT", "/api/v1/media/{id}", "Change its description or focus",
       ref("MediaAttachment"), scope=("write:media",),
       body=fields(description=GENERATION_FIELDS["description"],
                   focus=GENERATION_FIELDS["focus"]),
       codes={**MEDIA_CODES, 413: "the body is too large"}),
    # timelines.py
    Op("GET", "/api/v1/timelines/home", "The caller's home timeline", array(ref("Status")),
       scope=("read:statuses",), paged=True, params=PAGE, codes=INVALID),
    Op("GET", "/api/v1/timelines/public", "The public timeline", array(ref("Status")),
       auth="optional", paged=True, params=(*PAGE, *PUBLIC_FILTERS), codes=INVALID),
    Op("GET", "/api/v1/timelines/tag/{hashtag}", "Public posts with a hashtag",
       array(ref("Status")), auth="optional", paged=True, params=(*PAGE, *PUBLIC_FILTERS),
       codes=INVALID),
    # notifications.py
    Op("GET", "/api/v1/notifications", "The caller's notifications",
       array(ref("Notification")), scope=("read:notifications",), paged=True,
       params=(*ACCOUNT_PAGE, Param("types[]", array(NOTIFICATION_TYPE), "only these types"),
               Param("exclude_types[]", array(NOTIFICATION_TYPE), "not these types"),
               Param("account_id", STR, "only those from this account")),
       codes=INVALID),
    Op("POST", "/api/v1/notifications/clear", "Delete all of the caller's notifications",
       EMPTY, scope=("write:notifications",)),
    Op("GET", "/api/v1/notifications/{id}", "One notification", ref("Notification"),
       scope=("read:notifications",), codes=NOT_FOUND),
    Op("POST", "/api/v1/notifications/{id}/dismiss", "Delete one notification", EMPTY,
       scope=("write:notifications",), codes=NOT_FOUND),
    # search.py
    Op("GET", "/api/v2/search", "Accounts, statuses (by URL) and hashtags",
       ref("Search"), scope=("read:search",), auth="optional",
       params=(Param("q", STR, "what to find", required=True),
               Param("type", {"type": "string", "enum": ["accounts", "statuses", "hashtags"]}),
               flag("resolve", "look up what this instance does not hold (WebFinger, URLs)"),
               Param("limit", INT, "how many of each (20 by default, at most 40)"),
               Param("offset", INT, "skip this many (with type)"),
               flag("following", "only accounts the caller follows"),
               Param("account_id", STR, "only statuses of this account"),
               Param("max_id", STR), Param("min_id", STR),
               flag("exclude_unreviewed", "accepted; no hashtag waits for review here")),
       codes={400: "q is missing, or limit or offset is negative",
              401: "resolve or offset without a user's token", **INVALID}),
    # openapi.py
    Op("GET", PATH, "This description", {"type": "object"}, auth="none",
       rate_limited=False),
)  # fmt: skip


# -- the document ----------------------------------------------------------------------------
RATE_HEADERS = {
    "X-RateLimit-Limit": {"schema": INT, "description": "requests allowed per window"},
    "X-RateLimit-Remaining": {"schema": INT, "description": "requests left in this window"},
    "X-RateLimit-Reset": {"schema": STR, "description": "when the window resets (ISO 8601)"},
}
ERROR_CODES = {
    400: "the path or query contains a NUL character",
    401: "the token does not work (unknown, revoked, or its account may no longer log in)",
    403: "the token lacks the scope this needs",
    422: "this needs a user's token, not an app's",
    429: "too many requests (X-RateLimit-Reset says until when)",
}


def _security(op: Op) -> list[dict[str, list[str]]]:
    if op.auth == "none":
        return []
    need = {"bearer": list(op.scope)}
    return [{}, need] if op.auth == "optional" else [need]


def _body(op: Op) -> Schema:
    """The request body in each media type: a form names lists `name[]`; JSON and
    url-encoded bodies carry no files (a variant that needs one is left out)."""
    assert op.body is not None
    content: Schema = {}
    for media_type in op.body_types:
        variants = op.body.get("oneOf", [op.body])
        if media_type == MULTIPART and len(variants) > 1:  # one form with every field
            merged = {k: v for variant in variants for k, v in variant["properties"].items()}
            variants = [{"type": "object", "properties": merged}]
        if media_type != MULTIPART:
            variants = [
                v
                for v in variants
                if not any(_binary(v["properties"][n]) for n in v.get("required", []))
            ]
        shaped = [_json(v) if media_type == JSON else _form(v, media_type == MULTIPART)
                  for v in variants]  # fmt: skip
        content[media_type] = {"schema": shaped[0] if len(shaped) == 1 else {"oneOf": shaped}}
    return {"required": op.body_required, "content": content}


def _binary(s: Schema) -> bool:
    return s.get("format") == "binary"


def _json(body: Schema) -> Schema:
    return {**body, "properties": {k: v for k, v in body["properties"].items()
                                   if not _binary(v)}}  # fmt: skip


def _form(body: Schema, files: bool) -> Schema:
    """The body's fields as a form names them: a list as repeated `name[]` fields,
    `fields_attributes` as Rails' `fields_attributes[i][name]`."""
    props: Schema = {}
    for name, s in body["properties"].items():
        if _binary(s) and not files:
            continue
        if name == "fields_attributes":
            for i in range(profiles.MAX_FIELDS):
                for part in ("name", "value"):
                    props[f"fields_attributes[{i}][{part}]"] = STR
        elif s.get("type") == "array":
            props[f"{name}[]"] = s
        elif "anyOf" in s and any(a.get("type") == "array" for a in s["anyOf"]):
            props[name] = next(a for a in s["anyOf"] if a.get("type") != "array")
            props[f"{name}[]"] = next(a for a in s["anyOf"] if a.get("type") == "array")
        else:
            props[name] = s
    out: Schema = {"type": "object", "properties": props}
    if body.get("required"):
        out["required"] = body["required"]
    return out


def _content(op: Op, schema: Schema | None) -> Schema:
    if op.content != JSON:
        return {op.content: {"schema": STR}}
    return {JSON: {"schema": schema if schema is not None else {"type": "object"}}}


def _responses(op: Op) -> Schema:
    ok: Schema = {"description": "OK", "content": _content(op, op.response)}
    headers: Schema = dict(RATE_HEADERS) if op.rate_limited else {}
    if op.paged:
        headers["Link"] = {"schema": STR, "description": 'rel="next" and rel="prev" pages'}
    if headers:
        ok["headers"] = headers
    out: Schema = {"200": ok}
    codes: dict[int, str] = {}
    if op.rate_limited:
        codes[400] = ERROR_CODES[400]
        codes[401] = ERROR_CODES[401]
        codes[429] = ERROR_CODES[429]
        if op.scope:
            codes[403] = ERROR_CODES[403]
            if op.user and op.auth == "required":
                codes[422] = ERROR_CODES[422]
        if op.auth == "optional" and op.scope:
            codes[403] = ERROR_CODES[403]
    for code, text in (op.codes or {}).items():
        codes[code] = f"{codes[code]}; or {text}" if code in codes else text
    for code in sorted(codes):
        answer: Schema = {"description": codes[code]}
        if code in (301, 302, 303):
            answer["headers"] = {"Location": {"schema": STR}}
        elif code in (202, 206):
            answer["content"] = _content(op, op.response)
        elif op.content != JSON and code in (403, 413):
            answer["content"] = {"text/plain": {"schema": STR}}
        elif op.content != JSON:
            answer["content"] = _content(op, None)
        else:
            answer["content"] = {JSON: {"schema": ref("Error")}}
        out[str(code)] = answer
    return out


def _operation(op: Op) -> Schema:
    names = [n for n in op.openapi_path.split("/") if n and not n.startswith("{")]
    out: Schema = {
        "operationId": "_".join([op.method.lower(), *names]).replace(".", "_").replace("-", "_"),
        "summary": op.summary,
        "tags": [_tag(op.path)],
        "security": _security(op),
        "responses": _responses(op),
    }
    params = [p.openapi() for p in op.params]
    for part in op.path.split("/"):
        if part.startswith("{"):
            name = part.strip("{}").split(":")[0]
            params.insert(0, {"name": name, "in": "path", "required": True,
                              "schema": PATH_PARAMS[part.strip("{}")]})  # fmt: skip
    if params:
        out["parameters"] = params
    if op.body is not None:
        out["requestBody"] = _body(op)
    return out


def _tag(path: str) -> str:
    parts = [p for p in path.split("/") if p and not p.startswith("{")]
    if parts[0] == "oauth" or parts[0] == ".well-known" or path.startswith("/api/v1/apps"):
        return "oauth"
    if parts[-1] == "openapi.json":
        return "openapi"
    return parts[2] if len(parts) > 2 else parts[-1]


def _scopes() -> dict[str, str]:
    return {s: f"Mastodon's {s}" for s in scope_rules.SUPPORTED}


@functools.lru_cache(maxsize=8)
def document(base_url: str = "http://localhost") -> Schema:
    """The OpenAPI 3.1 document of the instance at `base_url` (its server, and where its
    OAuth endpoints are)."""
    paths: Schema = {}
    for op in OPERATIONS:
        paths.setdefault(op.openapi_path, {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Dreamloom client API",
            "version": __version__,
            "summary": f"The subset of Mastodon's client API ({MASTODON_VERSION}) this "
                       "instance implements, with generation as media",
            "license": {"name": "AGPL-3.0-or-later", "identifier": "AGPL-3.0-or-later"},
        },
        "servers": [{"url": base_url}],
        "paths": paths,
        "components": {
            "schemas": _components(),
            "securitySchemes": {
                "bearer": {
                    "type": "http", "scheme": "bearer",
                    "description": "an OAuth 2 access token (from /oauth/token); each operation "
                                   "names the scopes any one of which it accepts",
                },
                "oauth2": {
                    "type": "oauth2",
                    "flows": {
                        "authorizationCode": {
                            "authorizationUrl": f"{base_url}/oauth/authorize",
                            "tokenUrl": f"{base_url}/oauth/token",
                            "refreshUrl": f"{base_url}/oauth/token", "scopes": _scopes(),
                        },
                        "clientCredentials": {
                            "tokenUrl": f"{base_url}/oauth/token", "scopes": _scopes(),
                        },
                    },
                },
            },
        },
    }  # fmt: skip


def schema(name: str) -> Schema:
    """Component `name` as a standalone JSON Schema (2020-12) whose references resolve."""
    components = document()["components"]["schemas"]
    if name not in components:
        raise KeyError(f"no component schema {name!r} (have: {', '.join(sorted(components))})")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$ref": f"#/components/schemas/{name}",
        "components": {"schemas": copy.deepcopy(components)},
    }


@cookieless
async def serve(request: Request) -> Response:
    """GET /api/openapi.json, with this instance as its server."""
    return json_response(document(runtime(request).settings.base_url))


routes: list[BaseRoute] = [Route(PATH, serve, methods=["GET"])]
