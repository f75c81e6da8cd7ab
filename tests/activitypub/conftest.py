"""Fixtures for the activitypub tests: fixed and generated RSA keys, an in-memory key store.

Nothing here touches the network; HTTP servers used by the fetch tests bind 127.0.0.1 only.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import pytest

from activitypub.keys import KeyPair, PublicKeyInfo, generate_rsa_keypair, public_pem_of

# A fixed RSA-2048 test key (generated for these tests, used nowhere else) so that signing
# strings and signatures are byte-for-byte reproducible.
FIXED_PRIVATE_PEM = """\
-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC4Vs3C6UV3si84
MgkMNr8CwYdxcO4qXBLkrC+euKUrYuZTpD1XSY5qKQ/NgYZgci3ttni2725dsteG
Qwi1aAB3ZkGEHkdkSaStSiIcZE6GE4ZKErr9FKsw+Z6dgEio4VakVi0Fn3bepgAH
KfAWABVDc/SsIMWeTHMHd9RSo80AsfYUUUVk9150ePaLVjWUCpNGu8h9kwwPTyyI
Ymwrg6NH6RLF+NShvjH92Cq/dINgCPTiYgCd2aXREbkwgQatxXgE9EcKxtTQaCGa
lCrtS17ZZtyMEMy4ZffrsRigUG0qmcJhID3QQ2Tc7zc5DRhQTH3abcvScfWa9tbP
2N/dQLVPAgMBAAECggEAJlsleEN6iWPhkGNU3546k3O6X3/chqLe6YbsZ63K7GKp
Q0ke3F05TVya5atoTwQjC13W81WRlNyEHPMwyjJIOo/j3P5B45uxML+Gpnq2ng5M
+He6QbO9xTSDbQlG1SECGrK1roBWRxCqW9M9mg5NXlov1GsDQ6Nroeesnb9ohham
WhdS3GNXgyRSjzsRaoiNBCGQtJbg/4F3zizvuvL6/njMViMIvy1/pat6MhtegVcp
KskSiybz/UDkgVu+4bA62bbJ0qwLMktjjM6RaEAgAxdqMaasWv5W3XkAspIADKH1
6D4bCm8iWOn5wDgIeKjJVI7XwsNNcaIhLcgl7/Rm7QKBgQD2d++UXP7C07DLRRHR
RFvjwa3ZuZPJsrPCgOT+FdPSnHkInzfukEHTIKDtmT3M6DIYN31JXOULXrG6tbJM
2148nJEGG2MP8EedcvH+YC5zVvTBbwehQLQnqD73FLUeJyme8sSO/NAA69EowE6I
6WHKPrN1cjB3PNAgfdruvOuC/QKBgQC/d8eyQb3eXeypBoB0Kcx8sCMj2AH4ZdDi
NlV0Uc3HMxPZLGgamdlurWXy7/x8WhcTTGTwi49d0KWD+vBc4vy7NP5dtxA7I9Ss
9sYvsJMoXjcFfrI7MkIps8cFHxW1EjZamf7+nHEwS8kfrHC2uACoMBHtSpS/pxCS
olqJTKspOwKBgQCWQdQrbO5btFbp9XfBTp1+oorsW3i/1FRG1fHE/WWf1ojrOrYM
mKGopxG1CGFm1IAFx354BUwVvGs52p+Sv4IaDZFUWcnw45mlYXgqjlSDOJYKfzf1
lM7ABpAsbdFlSpbTMkmmqnXcuedPor2+NhnKBKO/jBgD+W0hAdlBBqfFuQKBgBgH
j1920r5yqT35W+u4Rzqq3G4mMPEczh9l1Em57op+hZIu+Y3FGz3Bs1bO+bAdmmHI
p65sxXxvsCYlOz9dGXzhRL88N2REte9TNUJM9dsOH/enk/TL9PPI5URmR1InS/0I
8LDBr47xI/e+q5Ky+xoglk9imdKHxBOzHou2vJB7AoGAbtlq2oNC+86Nxnbgq+gQ
qrWj7ITefumyWzWTyeQa3U5Oxtt4moZJKzl/f4WFWZMz4R75KV0ow1DX3RtCXHCm
xeYIsaOMDfHcQJF9OazwjZ0bdaGMdo8T2dDatv+sxZ4dHHBC7lJytCoDEx/Mmz4l
EFeNUcHJKNah5RPnwYjira8=
-----END PRIVATE KEY-----

"""


@functools.cache
def _pairs() -> tuple[KeyPair, KeyPair]:
    return generate_rsa_keypair(), generate_rsa_keypair()


@pytest.fixture
def fixed_key() -> KeyPair:
    return KeyPair(FIXED_PRIVATE_PEM, public_pem_of(FIXED_PRIVATE_PEM))


@pytest.fixture
def alice_key() -> KeyPair:
    return _pairs()[0]


@pytest.fixture
def other_key() -> KeyPair:
    return _pairs()[1]


@dataclass
class KeyStore:
    """An injected key resolver: key id -> key info, with an optional fresher copy."""

    keys: dict[str, PublicKeyInfo] = field(default_factory=dict)
    fresh: dict[str, PublicKeyInfo] = field(default_factory=dict)
    calls: list[tuple[str, bool]] = field(default_factory=list)

    def add(self, key_id: str, owner: str, public_pem: str) -> None:
        self.keys[key_id] = PublicKeyInfo(key_id, owner, public_pem)

    async def __call__(self, key_id: str, refresh: bool) -> PublicKeyInfo | None:
        self.calls.append((key_id, refresh))
        if refresh and key_id in self.fresh:
            self.keys[key_id] = self.fresh.pop(key_id)
        return self.keys.get(key_id)


@pytest.fixture
def key_store(alice_key: KeyPair) -> KeyStore:
    store = KeyStore()
    store.add(
        "https://a.example/users/alice#main-key",
        "https://a.example/users/alice",
        alice_key.public_pem,
    )
    return store


@pytest.fixture
async def server():
    """A real HTTP server on 127.0.0.1 (origin A)."""
    from tests.activitypub.httpserver import TestServer

    instance = TestServer()
    await instance.start()
    yield instance
    await instance.stop()


@pytest.fixture
async def server_b():
    """A second real HTTP server on 127.0.0.1 (origin B: another port, another origin)."""
    from tests.activitypub.httpserver import TestServer

    instance = TestServer()
    await instance.start()
    yield instance
    await instance.stop()


@pytest.fixture
async def fetcher():
    """A SafeFetcher allowed to reach loopback (the test servers)."""
    from activitypub.fetch import SafeFetcher

    instance = SafeFetcher(allow_private_addresses=True, local_hosts=["us.example"])
    yield instance
    await instance.aclose()
