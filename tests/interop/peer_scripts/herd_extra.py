"""What ../shared/peers/herd_client.py does not cover, with the same bovine client calls.

Runs inside the bovine-herd peer venv, in the herd's working directory (seeded JSON-LD cache):

  herd_extra.py --domain http://127.0.0.1:P --secret z... CMD [ARGS]

CMD:
  reply NOTE_URL TEXT        fetch the note (signed, via proxyUrl), Create a reply to it
  unfollow ACTOR_URL         Undo this user's Follow of ACTOR_URL (bovine sends the Follow's id)
  accept-follows             Accept every Follow of this user found in its inbox
  inbox-json [N]             the N newest inbox items, each resolved to its full JSON
"""

import argparse
import asyncio
import json
import os
import sys

sys.path[:] = [p for p in sys.path if p not in ("", os.getcwd())]

import aiohttp  # noqa: E402
from bovine import BovineClient  # noqa: E402


def ident(value):
    return value.get("id") if isinstance(value, dict) else value


async def items(client, url, n):
    out = []
    async for item in client.collection_helper(url, resolve=True):
        out.append(item)
        if len(out) >= n:
            break
    return out


async def main(a):
    async with aiohttp.ClientSession() as session:
        client = BovineClient(domain=a.domain, secret=a.secret)
        await client.init(session=session)
        af, of = client.factories
        me = client.information["id"]
        if a.cmd == "reply":
            note = await client.proxy(a.args[0])
            reply = of.reply(note, content=" ".join(a.args[1:]) or "a reply").build()
            r = await client.send_to_outbox(af.create(reply).build())
            out = {"status": r.status, "location": r.headers.get("location")}
        elif a.cmd == "unfollow":
            target = a.args[0]
            follows = [
                x
                for x in await items(client, client.information["outbox"], 50)
                if x.get("type") == "Follow" and ident(x.get("object")) == target
            ]
            if not follows:
                sys.exit(f"no Follow of {target} in the outbox")
            undo = af.undo(follows[0]).build()
            r = await client.send_to_outbox(undo)
            out = {"status": r.status, "undo": undo}
        elif a.cmd == "accept-follows":
            accepted = []
            for x in await items(client, client.information["inbox"], 50):
                if x.get("type") == "Follow" and ident(x.get("object")) == me:
                    r = await client.send_to_outbox(af.accept(x).build())
                    accepted.append({"follow": x.get("id"), "status": r.status})
            out = accepted
        elif a.cmd == "inbox-json":
            out = await items(client, client.information["inbox"], int(a.args[0] or 20))
        else:
            sys.exit(__doc__)
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    p = argparse.ArgumentParser(usage=__doc__)
    p.add_argument("--domain", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("cmd")
    p.add_argument("args", nargs="*")
    asyncio.run(main(p.parse_args()))
