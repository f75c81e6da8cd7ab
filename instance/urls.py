"""Every URL this instance mints for its own objects, and the one spelling of a handle.

Actors live at /users/<name> (the instance actor at /actor), posts at /users/<name>/posts/<id>
with an HTML permalink at /@<name>/<id>; activities get ids under their actor. A handle is
always written `@user@host`, local accounts with this instance's host.
"""

from __future__ import annotations

import functools
import ipaddress
from dataclasses import dataclass
from typing import Protocol

from publicsuffixlist import PublicSuffixList

from activitypub.errors import InvalidURLError
from activitypub.urls import DEFAULT_PORTS, origin_of

INSTANCE_ACTOR_USERNAME = "instance_actor"


class Named(Protocol):
    """Anything with a handle: an account row (remote ones have a domain, ours have "")."""

    @property
    def username(self) -> str: ...

    @property
    def domain(self) -> str: ...


@dataclass(frozen=True)
class LocalUrls:
    base: str  # scheme://host[:port], no trailing slash
    media_base: str = ""  # our images' public base (instance/storage/media_store.py); "": /media/

    @property
    def host(self) -> str:
        """The host (with its port, when it has one) as handles and ids spell it."""
        return self.base.split("://", 1)[1]

    def handle(self, account: Named) -> str:
        """`@user@host` for any account; ours with this instance's host."""
        return f"@{account.username}@{account.domain or self.host}"

    def actor(self, username: str) -> str:
        if username == INSTANCE_ACTOR_USERNAME:
            return f"{self.base}/actor"
        return f"{self.base}/users/{username}"

    def key_id(self, username: str) -> str:
        return f"{self.actor(username)}#main-key"

    def inbox(self, username: str) -> str:
        return f"{self.actor(username)}/inbox"

    def shared_inbox(self) -> str:
        return f"{self.base}/inbox"

    def outbox(self, username: str) -> str:
        return f"{self.actor(username)}/outbox"

    def followers(self, username: str) -> str:
        return f"{self.actor(username)}/followers"

    def following(self, username: str) -> str:
        return f"{self.actor(username)}/following"

    def featured(self, username: str) -> str:
        return f"{self.actor(username)}/collections/featured"

    def profile(self, username: str) -> str:
        return f"{self.base}/@{username}"

    def post(self, username: str, public_id: str) -> str:
        return f"{self.actor(username)}/posts/{public_id}"

    def post_page(self, username: str, public_id: str) -> str:
        return f"{self.base}/@{username}/{public_id}"

    def activity(self, username: str, public_id: str) -> str:
        return f"{self.actor(username)}/activities/{public_id}"

    def quote_authorization(self, username: str, public_id: str) -> str:
        return f"{self.actor(username)}/quote_authorizations/{public_id}"

    def media(self, file_name: str) -> str:
        return f"{self.media_base or self.base + '/media/'}{file_name}"

    def remote_media(self, public_id: str) -> str:
        """Where our pages show a remote attachment from (instance/inbound/media_cache.py)."""
        return f"{self.base}/media/remote/{public_id}"

    def tag(self, name: str) -> str:
        return f"{self.base}/tags/{name}"

    def names_us(self, host_header: str) -> bool:
        """Whether a request's Host header is this instance's host: with or without the
        scheme's default port, and without any port at all, which is how Mastodon writes
        (and signs) it even for an instance on another port."""
        scheme = self.base.split("://", 1)[0]
        if self.is_local(f"{scheme}://{host_header.strip()}/"):
            return True
        try:
            theirs, ours = origin_of(f"{scheme}://{host_header.strip()}/"), origin_of(self.base)
        except InvalidURLError:
            return False
        return ":" not in host_header.strip().rsplit("]", 1)[-1] and theirs.host == ours.host

    def is_local(self, uri: str) -> bool:
        """Whether `uri` names something on this instance, however its host is spelled
        (case, a trailing dot, the default port, http for https): a remote server must not
        pass our own objects off as its own by writing our host another way."""
        if uri == self.base or uri.startswith(self.base + "/"):
            return True
        try:
            theirs, ours = origin_of(uri), origin_of(self.base)
        except InvalidURLError:
            return False
        if theirs.host != ours.host:
            return False
        return theirs.port == ours.port or {theirs.port, ours.port} <= set(DEFAULT_PORTS.values())


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list ships with the package: no network


@functools.lru_cache(maxsize=4096)
def site_of(host: str) -> str:
    """The registrable domain of a host (`a.b.evil.example` -> `evil.example`, by the Public
    Suffix List), without its port: what one party controls, however many hosts, ports or
    subdomains it makes. IP addresses and single names are their own site."""
    name = host.lower().rstrip(".")
    if name.startswith("["):
        return name.partition("]")[0] + "]"
    name = name.rpartition(":")[0] if name.count(":") == 1 else name
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return _suffixes().privatesuffix(name) or name
    return name
