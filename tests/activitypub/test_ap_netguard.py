"""The SSRF guard in the connection layer: non-public addresses and DNS rebinding.

No packet leaves this machine: the event loop's resolver is replaced by a table, and
`socket.socket.connect` by a trap that records the address and refuses (or, for one fake
"public" address, splices the connection to a test server on 127.0.0.1). Each test then
asserts what the guard let through to `connect`, and that it refused before any connect.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass, field

import pytest

from activitypub.errors import BlockedAddressError, FetchError
from activitypub.fetch import SafeFetcher
from activitypub.netguard import address_is_public, make_client
from tests.activitypub.httpserver import Reply

PUBLIC = "93.184.216.34"

HOSTILE = [
    "127.0.0.1", "127.8.9.10", "10.0.0.1", "172.16.0.1", "192.168.1.1", "169.254.169.254",
    "::ffff:169.254.169.254", "::ffff:127.0.0.1", "::127.0.0.1", "::1", "fd00::1", "fc00::1",
    "fe80::1", "100.64.0.1", "100.127.255.254", "0.0.0.0", "0.1.2.3", "2001:db8::1",
    "224.0.0.1", "ff02::1", "255.255.255.255", "198.18.0.1", "192.0.2.1", "240.0.0.1",
    "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2002:7f00:1::1", "2001::1", "::",
]  # fmt: skip


@dataclass
class Trap:
    dns: dict[str, list[list[str]]] = field(default_factory=dict)
    lookups: list[str] = field(default_factory=list)
    connects: list[tuple] = field(default_factory=list)
    splice_port: int | None = None

    def answer(self, host: str) -> list[str]:
        self.lookups.append(host)
        answers = self.dns.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown host in test table")
        return answers.pop(0) if len(answers) > 1 else answers[0]


@pytest.fixture
async def trap(monkeypatch) -> Trap:
    state = Trap()
    loop = asyncio.get_running_loop()
    real_connect = socket.socket.connect

    async def fake_getaddrinfo(host, port, *, family=0, type=0, proto=0, flags=0):
        infos = []
        for address in state.answer(host):
            if ipaddress.ip_address(address).version == 6:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)))
        return infos

    def fake_connect(sock, address):
        state.connects.append(address)
        if state.splice_port is not None and address[0] == PUBLIC:
            return real_connect(sock, ("127.0.0.1", state.splice_port))
        raise ConnectionRefusedError("test trap: connection refused, nothing sent")

    monkeypatch.setattr(loop, "getaddrinfo", fake_getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", fake_connect)
    return state


@pytest.fixture
async def guarded() -> SafeFetcher:
    fetcher = SafeFetcher(allow_private_addresses=False)
    yield fetcher
    await fetcher.aclose()


@pytest.mark.parametrize("address", HOSTILE)
async def test_hostile_dns_answers_are_blocked(trap, guarded, address) -> None:
    """A name resolving to a non-public address -> blocked, no connect, no retry."""
    trap.dns["evil.example"] = [[address]]
    with pytest.raises(BlockedAddressError, match="not public"):
        await guarded.fetch_json("https://evil.example/users/x")
    assert trap.connects == []
    assert trap.lookups == ["evil.example"]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/",
        "http://[::1]/x",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://100.64.0.1/",
        "http://0.0.0.0:8080/",
        "http://[fd00::1]/",
        "http://[2001:db8::1]/",
        "http://10.1.2.3/",
    ],
)
async def test_non_public_ip_literals_are_blocked(trap, guarded, url) -> None:
    """IP-literal URLs are checked without any resolution and never dialed."""
    with pytest.raises(BlockedAddressError):
        await guarded.fetch_json(url)
    assert trap.connects == [] and trap.lookups == []


async def test_public_and_private_mix_is_rejected(trap, guarded) -> None:
    """host -> [public, private] -> rejected outright (no connect to either)."""
    trap.dns["mixed.example"] = [[PUBLIC, "10.0.0.7"]]
    with pytest.raises(BlockedAddressError, match=r"10\.0\.0\.7"):
        await guarded.fetch_json("https://mixed.example/")
    assert trap.connects == []


async def test_dns_rebinding_dials_the_validated_address(trap, guarded) -> None:
    """Resolver says public, then 127.0.0.1 -> the public IP literal is dialed
    (never re-resolved), and the second lookup is blocked: 0 loopback sockets."""
    trap.dns["rebind.example"] = [[PUBLIC], ["127.0.0.1"]]
    with pytest.raises(FetchError):
        await guarded.fetch_json("http://rebind.example/a")  # the trap refuses the public IP
    with pytest.raises(BlockedAddressError):
        await guarded.fetch_json("http://rebind.example/a")
    assert trap.connects == [(PUBLIC, 80)]
    assert trap.lookups == ["rebind.example", "rebind.example"]


async def test_redirect_to_loopback_is_blocked(trap, guarded, server) -> None:
    """A public server redirecting to http://127.0.0.1 -> blocked before connect."""
    trap.dns["public.example"] = [[PUBLIC]]
    trap.splice_port = server.port
    server.routes["/start"] = Reply.redirect(f"http://127.0.0.1:{server.port}/secret")
    server.routes["/secret"] = Reply.json({"id": "x"})
    with pytest.raises(BlockedAddressError):
        await guarded.fetch_json("http://public.example/start")
    assert [r.target for r in server.requests] == ["/start"]
    assert trap.connects == [(PUBLIC, 80)]


async def test_deliveries_share_the_guard(trap) -> None:
    """The client from make_client (used for deliveries too) is guarded."""
    async with make_client(False) as client:
        with pytest.raises(BlockedAddressError):
            await client.post("http://169.254.169.254/inbox", content=b"{}")
    assert trap.connects == []


async def test_allow_private_still_refuses_multicast_and_unspecified(trap) -> None:
    trap.dns["lan.example"] = [["224.0.0.1"]]
    fetcher = SafeFetcher(allow_private_addresses=True)
    with pytest.raises(BlockedAddressError):
        await fetcher.fetch_json("http://lan.example/")
    with pytest.raises(BlockedAddressError):
        await fetcher.fetch_json("http://0.0.0.0/")
    assert trap.connects == []
    await fetcher.aclose()


async def test_unresolvable_host_is_a_fetch_error(trap, guarded) -> None:
    with pytest.raises(FetchError, match="network error"):
        await guarded.fetch_json("https://nowhere.example/")
    assert trap.connects == []


@pytest.mark.parametrize("address", HOSTILE)
def test_address_table_hostile(address) -> None:
    """Every special-purpose range, mapped forms and 100.64/10 are non-public."""
    assert not address_is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address",
    [
        PUBLIC,
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700::1111",
        "2a00:1450:4001:80e::200e",
        "64:ff9b::808:808",
    ],
)
def test_address_table_public(address) -> None:
    assert address_is_public(ipaddress.ip_address(address))


async def test_delivery_to_blocked_address_is_permanent(trap, alice_key) -> None:
    """A blocked inbox is not retried (permanent) and never dialed."""
    from activitypub.delivery import deliver

    async with make_client(False) as client:
        outcome = await deliver(
            client,
            "http://169.254.169.254/inbox",
            b"{}",
            "https://a.example/u#k",
            alice_key.private_pem,
        )
    assert outcome.kind == "permanent" and trap.connects == []
