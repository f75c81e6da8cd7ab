"""Property-based fuzzing of the inbox's origin policy, `instance.inbound.intake.admit`.

Requirement (security issue): an activity posted to our inbox is hostile input even once its
signature verified, and the origin policy must answer it with a decision, never with an
exception the route does not expect. For any JSON value (whatever `json.loads` can return,
lone surrogates included) and for documents shaped like activities with random ids, actors,
objects and authors, local, remote, malformed or of the wrong JSON type, signed by the
actor or by somebody else, `admit` returns a dict or None, or raises `Refused` with status
400 or 403; nothing else.

What it decides is checked too, against the policy in its docstring:

- None only for a type we do not handle;
- a stored activity names a remote actor and an id that are storable strings (UTF-8, no
  control character), neither local, the id on the actor's origin;
- signed by its actor, a `Create`/`Update` keeps the document itself, and its object and
  authors are remote and on the actor's origin;
- signed by anybody else, only a forwarded `Create` passes, reduced to
  `{id, type, actor, object}` with the object's id on the actor's origin.

CI runs a fixed, small set of examples: `derandomize=True`, no example database, no
deadline. To fuzz longer locally set `FUZZ_EXAMPLES` (examples per test), e.g.
`FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -p no:cacheprovider <this file>`. It is not
called DREAMLOOM_FUZZ_EXAMPLES because tests/conftest.py deletes every DREAMLOOM_* variable
at import. Everything runs in-process: no database, no network, no temporary files.
"""

from __future__ import annotations

import os
import unicodedata
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from activitypub.objects import Activity, ids_of
from activitypub.urls import origin_of
from instance.errors import Refused
from instance.inbound.intake import HANDLED_TYPES, admit
from instance.urls import LocalUrls


def fuzz(ci_examples: int) -> settings:
    """Bounded and reproducible in CI; `FUZZ_EXAMPLES` overrides the count locally."""
    return settings(
        max_examples=int(os.environ.get("FUZZ_EXAMPLES", ci_examples)),
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


LOCAL = "https://ours.example"
URLS = LocalUrls(LOCAL)
ALICE = "https://a.example/users/alice"
MALLORY = "https://m.example/users/mallory"
SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]

json_text = st.text(st.one_of(st.characters(), st.sampled_from(SURROGATES)), max_size=16)
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), json_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(json_text, inner, max_size=4)
    ),
    max_leaves=20,
)

# ids: remote and local, the same host spelled differently, look-alikes, non-URLs
hosts = st.sampled_from([
    "a.example", "m.example", "ours.example", "OURS.example", "ours.example:443",
    "ours.example.evil", "a.example:8443", "a.example.", "[::1]", "xn--bcher-kva.example",
    "b\u00fccher.example", "a.example@ours.example", "",
])  # fmt: skip
paths = st.sampled_from([
    "", "/", "/users/alice", "/users/alice/activities/1", "/users/alice/notes/1", "#delete",
    "/users/mallory", "/users/me", "/users/me/posts/1", "/x\x00", "/\ud800", "/" + "a" * 3000,
])  # fmt: skip
built_urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}{path}",
    st.sampled_from(["https", "http", "HTTPS", "ftp"]), hosts, paths,
)  # fmt: skip
uris = st.one_of(
    st.sampled_from([ALICE, ALICE + "/activities/1", ALICE + "/notes/1", MALLORY, LOCAL,
                     LOCAL + "/users/me", LOCAL + "/users/me/posts/1", LOCAL + "/"]),
    built_urls, json_text,
)  # fmt: skip
references = st.one_of(
    uris,
    st.fixed_dictionaries({"id": uris}),
    st.lists(st.one_of(uris, st.fixed_dictionaries({"id": uris})), max_size=3),
    json_values,
)
types = st.one_of(
    st.sampled_from(sorted(HANDLED_TYPES)),
    st.sampled_from(["Note", "Move", "Add", "create", "", "Create "]),
    st.lists(st.sampled_from(["Create", "Update", "Note", "Follow"]), max_size=3),
    json_values,
)
objects = st.one_of(
    references,
    st.fixed_dictionaries(
        {"id": references, "type": st.sampled_from(["Note", "Question", "Person"])},
        optional={"attributedTo": references, "content": json_text},
    ),
    st.lists(st.fixed_dictionaries({"id": uris, "attributedTo": references}), max_size=2),
)


def own_note(author: str) -> st.SearchStrategy[dict[str, Any]]:
    """A Note by `author` on its server, the author given in each form the views read."""
    return st.fixed_dictionaries({
        "id": st.just(author + "/notes/1"), "type": st.just("Note"),
        "attributedTo": st.sampled_from([author, [author], {"id": author}]),
    })  # fmt: skip


@st.composite
def activities(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """An activity-shaped document and its signer: mostly coherent (one actor on one server,
    ids under it, signed by it), each part swapped for a hostile one a quarter of the time."""

    def pick(coherent: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]) -> Any:
        return draw(coherent if draw(st.integers(0, 3)) else hostile)

    actor = pick(st.sampled_from([ALICE, MALLORY, "https://b\u00fccher.example/u"]), references)
    base = actor if isinstance(actor, str) else ALICE
    document: dict[str, Any] = {
        "id": pick(st.sampled_from([base + "/activities/1", base + "#delete"]), references),
        "type": pick(st.sampled_from(sorted(HANDLED_TYPES)), types),
        "actor": actor,
        "object": pick(st.one_of(st.just(base + "/notes/1"), own_note(base)), objects),
    }
    if not draw(st.integers(0, 7)):
        del document[draw(st.sampled_from(sorted(document)))]
    extra = draw(st.dictionaries(
        st.sampled_from(["to", "cc", "attributedTo", "@context", "target", "published"]),
        references, max_size=3,
    ))  # fmt: skip
    document.update(extra)
    signer = pick(st.just(Activity(document).actor or ALICE), st.one_of(st.just(MALLORY), uris))
    return document, signer


def storable(value: object) -> bool:
    if not isinstance(value, str) or not value:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return not any(unicodedata.category(c) == "Cc" for c in value)


def check_decision(document: Any, signer: str) -> None:
    """`admit` decides, with one of the answers its contract allows, and decides rightly."""
    try:
        result = admit(document, signer, URLS)
    except Refused as refused:
        assert refused.status in (400, 403), refused.status
        assert refused.reason
        event(f"refused {refused.status}")
        return
    activity = Activity(document)
    if result is None:
        event("dropped")
        assert activity.type not in HANDLED_TYPES
        return
    assert isinstance(result, dict)
    event("stored" if result is document else "forwarded")
    actor, activity_id = activity.actor, activity.id
    assert activity.type in HANDLED_TYPES
    assert result["id"] == activity_id and Activity(result).actor == actor
    assert storable(activity_id) and storable(actor)
    assert not URLS.is_local(actor) and not URLS.is_local(activity_id)
    assert origin_of(activity_id) == origin_of(actor)
    if result is not document:  # somebody else's activity: only a forwarded Create
        assert actor != signer
        assert result == {"id": activity_id, "type": "Create", "actor": actor,
                          "object": activity.object_id}  # fmt: skip
        assert storable(activity.object_id)
        assert origin_of(activity.object_id) == origin_of(actor)
        return
    assert actor == signer
    if activity.type in ("Create", "Update"):
        embedded = activity.object
        authors = ids_of(embedded.get("attributedTo")) if embedded is not None else []
        for uri in (activity.object_id, *authors):
            assert uri is not None and not URLS.is_local(uri)
            assert origin_of(uri) == origin_of(actor)


@fuzz(500)
@given(json_values, st.one_of(st.just(ALICE), uris))
@example([], ALICE)
@example({"id": "\ud800", "actor": ALICE, "type": "Create"}, ALICE)
@example({"id": 7, "actor": {"id": None}, "type": ["Create"]}, ALICE)
def test_admit_any_json_value(document: Any, signer: str) -> None:
    check_decision(document, signer)


@fuzz(800)
@given(activities())
@example(({"id": ALICE + "/a", "type": "Create", "actor": ALICE,
           "object": {"id": ALICE + "/n", "attributedTo": [ALICE, LOCAL + "/users/me"]}},
          ALICE))  # fmt: skip
@example(({"id": ALICE + "/a", "type": "Create", "actor": ALICE, "object": ALICE + "/\ud800"},
          MALLORY))  # fmt: skip
@example(({"id": ALICE + "#delete", "type": "Delete", "actor": ALICE, "object": ALICE},
          MALLORY))  # fmt: skip
@example(({"id": MALLORY + "/1", "type": "Delete", "actor": ALICE, "object": ALICE}, ALICE))
@example(({"id": ALICE + "/a", "type": "Update", "actor": ALICE, "object": []}, ALICE))
def test_admit_activity_shaped_documents(case: tuple[dict[str, Any], str]) -> None:
    document, signer = case
    check_decision(document, signer)
