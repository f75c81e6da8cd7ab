"""Helpers for the web page tests: a cheap password hasher, log in, read the CSRF token."""

from __future__ import annotations

import re

import httpx
import pytest
from argon2 import PasswordHasher

from instance import accounts

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@pytest.fixture
def fast_hasher(monkeypatch) -> PasswordHasher:
    """argon2id with tiny costs: the tests check the flow, not the cost."""
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", hasher)
    return hasher


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def login(client: httpx.AsyncClient, username: str, password: str = PASSWORD,
                **extra: str) -> httpx.Response:  # fmt: skip
    page = await client.get("/login")
    form = {"csrf": csrf_of(page.text), "username": username, "password": password, **extra}
    return await client.post("/login", data=form)


async def logged_in(client: httpx.AsyncClient, username: str) -> str:
    """Log in and return the session's CSRF token (from the home page's forms)."""
    r = await login(client, username)
    assert r.status_code == 303, r.text
    return csrf_of((await client.get("/compose")).text)
