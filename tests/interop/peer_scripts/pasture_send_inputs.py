"""Send every fediverse-pasture-inputs variant as a signed Create{Note} from one_actor.

Runs inside the pasture peer venv, in the one_actor server's working directory (its data.toml
holds the actor's key, so the running one_actor serves the key these POSTs are signed with):

  pasture_send_inputs.py --domain http://127.0.0.1:P --target ACTOR_URL --out results.json

Each variant goes through fediverse_pasture's own ActivitySender (init_create_note with the
input merged in, exactly as `python -m fediverse_pasture.send --input_name --input_number`
does, plus `--mention`); only the final POST is made here so that the status and body of a
refusal are kept. Hosts in the inputs are moved onto loopback first: `pasture-one-actor` becomes
the running one_actor, and every other host (remote.example, mastodon.social, ...) a distinct
127.0.0.x address with nothing listening, so that no fetch leaves the machine and
"different origin" stays different.
"""

import argparse
import asyncio
import json
import os
import re
import sys

sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]

import fediverse_pasture_inputs  # noqa: E402
from bovine.activitystreams.utils import combine_as_list  # noqa: E402
from fediverse_pasture.one_actor import bovine_actor_and_session  # noqa: E402
from fediverse_pasture.runner import ActivitySender  # noqa: E402
from fediverse_pasture.runner.config import SendingConfig  # noqa: E402

KEEP_HOSTS = {
    "www.w3.org",
    "w3id.org",
    "schema.org",
    "misskey-hub.net",
    "purl.archive.org",
    "joinmastodon.org",
    "ns.mastodon.social",
}
URL = re.compile(r"(?P<scheme>https?)://(?P<host>[A-Za-z0-9_.\-]+(?::\d+)?)")
HANDLE = re.compile(r"(?P<user>@[A-Za-z0-9_.\-]+)@(?P<host>[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*)")


class HostMap:
    def __init__(self, pasture_host: str) -> None:
        self.pasture_host = pasture_host
        self.mapped: dict[str, str] = {}

    def host(self, host: str) -> str:
        if host in KEEP_HOSTS or host.startswith("127."):
            return host
        if host == "pasture-one-actor":
            return self.pasture_host
        if host not in self.mapped:
            self.mapped[host] = f"127.0.0.{len(self.mapped) + 2}:9"
        return self.mapped[host]

    def rewrite(self, value):
        text = json.dumps(value)
        text = URL.sub(lambda m: f"{m['scheme']}://{self.host(m['host'])}", text)
        text = HANDLE.sub(lambda m: f"{m['user']}@{self.host(m['host'])}", text)
        return json.loads(text)


async def main(a) -> None:
    hosts = HostMap(a.domain.split("://", 1)[1])
    results = []
    async with bovine_actor_and_session(a.domain) as (bovine_actor, actor, _session):
        inbox = None
        for name, data in sorted(fediverse_pasture_inputs.available.items()):
            for number, example in enumerate(data.examples):
                info = hosts.rewrite(example)
                sender = ActivitySender.for_actor(bovine_actor, actor)
                sender.sending_config = SendingConfig(include_mention=True)
                sender.sleep_after_getting_inbox = False
                sender.init_create_note(lambda x, info=info: {**x, "content": "text", **info})
                if inbox is None:
                    inbox = await sender._resolve_inbox(a.target)
                # ActivitySender.send(), minus its POST (which would hide a refusal's body)
                note = {**sender.note}
                note["to"] = combine_as_list(note.get("to", []), [a.target])
                note["tag"] = combine_as_list(
                    note.get("tag", []), [{"type": "Mention", "href": a.target}]
                )
                create = sender.activity_factory.create(
                    note, id=sender.make_id(activity=True)
                ).build()
                if "@context" in note:
                    create["@context"] = note["@context"]
                else:
                    create["@context"] = [
                        create["@context"],
                        {"Hashtag": "as:Hashtag", "sensitive": "as:sensitive"},
                    ]
                try:
                    response = await bovine_actor.client.post(inbox, json.dumps(create))
                    status, body = response.status, (await response.text())[:500]
                except Exception as exc:  # a dropped connection is a result too
                    status, body = 0, repr(exc)
                results.append(
                    {
                        "input": name,
                        "number": number,
                        "object_id": sender.object_id,
                        "activity_id": create["id"],
                        "status": status,
                        "body": body,
                        "sent": create,
                    }
                )
    with open(a.out, "w") as fp:
        json.dump({"results": results, "hosts": hosts.mapped}, fp, indent=1)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--domain", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--out", required=True)
    asyncio.run(main(p.parse_args()))
