"""Host normalisation (two spellings of one host are one origin) and key handling."""

from __future__ import annotations

import pytest

from activitypub.errors import InvalidURLError, KeyFormatError
from activitypub.keys import generate_rsa_keypair, load_private_key, load_public_key, public_pem_of
from activitypub.urls import authority_of, host_of, normalize_host, origin_of, same_origin


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://A.EXAMPLE./users/x", "https://a.example/users/y"),
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("https://BÜCHER.example/", "https://xn--bcher-kva.example/"),
        ("https://a.example:443/", "https://a.example/"),
        ("http://a.example:80/", "http://a.example/"),
        ("https://[::FFFF:1.2.3.4]/", "https://[::ffff:102:304]/"),
    ],
)
def test_spellings_of_one_origin_are_the_same_origin(a: str, b: str) -> None:
    """`A.EXAMPLE.`, IDN vs `xn--`, default ports -> the same origin."""
    assert same_origin(a, b)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("https://a.example/", "http://a.example/"),
        ("https://a.example/", "https://a.example:8443/"),
        ("https://a.example/", "https://a.example.evil/"),
        ("https://a.example/", "https://b.example/"),
        ("https://evil.example@a.example/", "https://a.example/"),  # userinfo: never equal
    ],
)
def test_different_origins_never_compare_equal(a: str, b: str) -> None:
    assert not same_origin(a, b)


@pytest.mark.parametrize(
    "url",
    ["https://a@b.example/", "https://user:pw@b.example/", "ftp://a.example/", "javascript:x",
     "https:///path", "https://a..b/", "https://a b/", "https://a.example:99999/", "", "//a/"],
)
def test_userinfo_and_malformed_urls_are_refused(url: str) -> None:
    """Userinfo (`https://a@b/`), bad schemes, hosts and ports are refused."""
    with pytest.raises(InvalidURLError):
        origin_of(url)


def test_host_helpers() -> None:
    assert host_of("https://Mastodon.Social./@x") == "mastodon.social"
    assert authority_of("https://a.example:443/") == "a.example"
    assert authority_of("http://a.example:8080/") == "a.example:8080"
    assert authority_of("http://[::1]:8080/") == "[::1]:8080"
    assert str(origin_of("HTTPS://A.example/x")) == "https://a.example"
    assert normalize_host("[::1]") == "::1"


def test_keypair_format() -> None:
    pair = generate_rsa_keypair()
    assert pair.private_pem.startswith("-----BEGIN PRIVATE KEY-----\n")
    assert pair.public_pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert public_pem_of(pair.private_pem) == pair.public_pem
    assert load_public_key(pair.public_pem).key_size == 2048


def test_bad_pems() -> None:
    with pytest.raises(KeyFormatError):
        load_public_key("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(KeyFormatError):
        load_private_key("not a key")
    with pytest.raises(KeyFormatError):
        load_public_key(generate_rsa_keypair(bits=1024).public_pem)  # too small


def test_public_key_loading_is_cached() -> None:
    pem = generate_rsa_keypair().public_pem
    assert load_public_key(pem) is load_public_key(pem)
