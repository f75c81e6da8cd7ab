"""The SSRF guard, built into the connection layer, so no remote URL reaches private hosts.

Every outgoing connection, for fetches and deliveries alike, goes through
`GuardedNetworkBackend.connect_tcp`, which

1. resolves the host itself, once (IP literals are not resolved at all);
2. refuses the connection if ANY resolved address is not a public unicast address
   (`not is_global`, plus explicit lists: 100.64.0.0/10, 0.0.0.0/8, multicast, documentation
   ranges, ULA, link-local, and IPv4 embedded in mapped/compatible/6to4/NAT64/Teredo forms);
3. dials the validated IP literal, so nothing resolves the name a second time (DNS
   rebinding); TLS still sends SNI and checks the certificate for the hostname.

`make_client()` returns the one `httpx.AsyncClient` the application should share: it uses
this backend, never follows redirects by itself, and ignores proxy environment variables
(a proxy would make the dialed address meaningless). With `allow_private_addresses=True`
(tests, LANs) loopback and private ranges are allowed; multicast and the unspecified
address never are.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

from activitypub.errors import BlockedAddressError

__all__ = [
    "DEFAULT_TIMEOUT",
    "GuardedNetworkBackend",
    "GuardedTransport",
    "Resolver",
    "address_is_public",
    "make_client",
    "system_resolver",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=10.0, write=10.0, pool=5.0)
USER_AGENT = "Dreamloom (+https://github.com/dreamloom)"

_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(net)
    for net in (
        "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.2.0/24", "192.88.99.0/24", "192.168.0.0/16",
        "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24", "224.0.0.0/4", "240.0.0.0/4",
        "::/128", "::1/128", "::ffff:0:0/96", "::/96", "64:ff9b:1::/48", "100::/64",
        "2001::/23", "2001:db8::/32", "3fff::/20", "5f00::/16", "fc00::/7", "fd00::/8",
        "fe80::/10", "fec0::/10", "ff00::/8",
    )
)  # fmt: skip
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_ALWAYS_BLOCKED = (ipaddress.ip_network("0.0.0.0/32"), ipaddress.ip_network("::/128"))


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden in a mapped, compatible, 6to4, NAT64 or Teredo IPv6 address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if int(address) >> 32 == 0 and int(address) > 1:  # deprecated IPv4-compatible ::a.b.c.d
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def address_is_public(address: IPAddress) -> bool:
    """True only for a globally routable unicast address, embedded IPv4 included."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return False
        inner = _embedded_ipv4(address)
        if inner is not None and not address_is_public(inner):
            return False
    if any(address in net for net in _BLOCKED_NETWORKS if net.version == address.version):
        return False
    return address.is_global and not address.is_multicast


def _allowed(address: IPAddress, allow_private: bool) -> bool:
    if address.is_multicast or any(address in net for net in _ALWAYS_BLOCKED
                                   if net.version == address.version):
        return False
    return allow_private or address_is_public(address)


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the event loop's getaddrinfo; addresses in the resolver's order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for *_, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in seen:
            seen.append(address)
    return seen


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """An httpcore network backend that validates, then dials, resolved IP literals."""

    def __init__(
        self,
        *,
        allow_private: bool,
        resolver: Resolver | None = None,
        inner: httpcore.AsyncNetworkBackend | None = None,
    ) -> None:
        self.allow_private = allow_private
        self.resolver = resolver or system_resolver
        self.inner = inner or httpcore.AnyIOBackend()

    async def resolve(self, host: str, port: int) -> list[str]:
        """Return the validated addresses for `host`, or raise `BlockedAddressError`."""
        literal = _ip_literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            addresses = await self._lookup(host, port)
        for address in addresses:
            if not _allowed(address, self.allow_private):
                raise BlockedAddressError(host, f"refusing to connect to {address}: not public")
        return [address.compressed for address in addresses]

    async def _lookup(self, host: str, port: int) -> list[IPAddress]:
        try:
            raw = await self.resolver(host, port)
        except OSError as exc:
            raise httpcore.ConnectError(f"could not resolve {host}: {exc}") from exc
        addresses = [ipaddress.ip_address(item.split("%", 1)[0]) for item in raw]
        if not addresses:
            raise httpcore.ConnectError(f"could not resolve {host}")
        if any("%" in item for item in raw):
            raise BlockedAddressError(host, "refusing a scoped (link-local) address")
        return addresses

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        last_error: Exception | None = None
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.resolve(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address,
                    socket_options=socket_options,
                )  # fmt: skip
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        raise httpcore.ConnectError(f"could not connect to {host}:{port}: {last_error}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError(path, "unix sockets are not allowed")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its connection pool dialing through the SSRF guard."""

    def __init__(
        self,
        *,
        allow_private_addresses: bool,
        resolver: Resolver | None = None,
        verify: ssl.SSLContext | bool = True,
        limits: httpx.Limits | None = None,
        http2: bool = False,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(verify=verify, trust_env=False, limits=limits, http2=http2)
        backend = GuardedNetworkBackend(allow_private=allow_private_addresses, resolver=resolver)
        # httpx exposes no network-backend option, so swap in an identical pool that uses ours.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=http2,
            network_backend=backend,
        )


def make_client(
    allow_private_addresses: bool,
    *,
    timeout: httpx.Timeout = DEFAULT_TIMEOUT,
    limits: httpx.Limits | None = None,
    resolver: Resolver | None = None,
    verify: ssl.SSLContext | bool = True,
    user_agent: str = USER_AGENT,
    http2: bool = False,
) -> httpx.AsyncClient:
    """The shared, SSRF-guarded client for every remote GET and every delivery."""
    transport = GuardedTransport(
        allow_private_addresses=allow_private_addresses, resolver=resolver, verify=verify,
        limits=limits, http2=http2,
    )  # fmt: skip
    return httpx.AsyncClient(
        transport=transport,
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": user_agent},
    )

