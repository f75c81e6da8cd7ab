"""Fixtures for tests/instance: the fake fediverse plugged into the runtime's HTTP client."""

from __future__ import annotations

import pytest

from tests.instance.fediverse import FakeFediverse


@pytest.fixture
async def fedi(runtime) -> FakeFediverse:
    fake = FakeFediverse()
    await runtime.use_http(fake.client())
    return fake
