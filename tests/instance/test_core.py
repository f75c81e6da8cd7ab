"""The core every wing stands on: the runtime's clock, wake-ups and per-process services,
the queue table, the one spelling of a handle, and the User-Agent remote admins see."""

from __future__ import annotations

from datetime import timedelta

from activitypub.delivery import MAX_RETRIES
from instance.generation.worker import GenerationWorker
from instance.queues import DELIVERY, GENERATION, INBOX
from instance.runtime import Runtime, user_agent
from instance.storage.models import Account
from instance.urls import LocalUrls
from tests.instance_fixtures import make_settings


class Counter:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.n = 0


async def test_a_service_is_made_once_per_runtime_and_can_be_forgotten(runtime) -> None:
    first = runtime.service(Counter)
    first.n += 1
    assert runtime.service(Counter) is first and first.rt is runtime
    runtime.forget_service(Counter)
    assert runtime.service(Counter).n == 0


async def test_wake_reaches_the_workers_of_this_process_only_when_there_are_some(runtime) -> None:
    runtime.wake("inbox")  # no workers here: nothing happens, nothing fails
    woken: list[str] = []
    runtime.waker = woken.append
    runtime.wake("delivery")
    assert woken == ["delivery"]


def test_every_queue_gives_up_after_its_attempts() -> None:
    """The table is the only place attempts and delays are spelled: the inbox retries network
    trouble 4 times, a delivery 16 times on Mastodon's curve, a generation twice (doubling)."""
    for queue, attempts in ((INBOX, 5), (DELIVERY, MAX_RETRIES + 1), (GENERATION, 3)):
        assert queue.retry_delay(attempts - 1) is not None
        assert queue.retry_delay(attempts) is None
    assert GENERATION.retry_delay(1) == timedelta(seconds=30)
    assert GENERATION.retry_delay(2) == timedelta(seconds=60)
    assert DELIVERY.retry_delay(1, retry_after=600) == timedelta(seconds=600)


async def test_the_gpu_worker_retries_as_often_as_the_generation_queue_allows(runtime) -> None:
    worker = GenerationWorker(runtime)
    try:
        assert worker.inner.max_attempts == GENERATION.max_attempts
    finally:
        await worker.aclose()


async def test_a_handle_is_always_user_at_host(runtime) -> None:
    ours = Account(username="painter", domain="")
    theirs = Account(username="alice", domain="mastodon.example")
    assert runtime.urls.handle(ours) == f"@painter@{runtime.settings.host}"
    assert runtime.urls.handle(theirs) == "@alice@mastodon.example"


def test_the_user_agent_names_the_instance_and_its_contact(tmp_path) -> None:
    plain = make_settings(tmp_path / "a")
    assert user_agent(plain).endswith(f"(+{plain.base_url}/)")
    contact = make_settings(tmp_path / "b", federation={"user_agent_contact": "admin@a.example"})
    assert user_agent(contact).endswith(f"(+{contact.base_url}/; admin@a.example)")


def test_our_own_urls_are_ours_however_their_host_is_spelled() -> None:
    """A remote server must not pass our objects off as its own by spelling our host another
    way: case, a trailing dot, the default port, http instead of https."""
    urls = LocalUrls("https://ours.example")
    for uri in ("https://ours.example/users/me", "https://OURS.EXAMPLE/users/me",
                "https://ours.example./users/me", "https://ours.example:443/users/me",
                "http://ours.example/users/me"):  # fmt: skip
        assert urls.is_local(uri), uri
    for uri in ("https://ours.example.evil/users/me", "https://evil.example/ours.example",
                "https://ours.example:8443/users/me", "not a url"):  # fmt: skip
        assert not urls.is_local(uri), uri
    loopback = LocalUrls("http://127.0.0.1:8000")
    assert loopback.is_local("http://127.0.0.1:8000/x")
    assert not loopback.is_local("http://127.0.0.1:9000/x")  # a peer on another port
