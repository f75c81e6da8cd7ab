// A small Fedify server for Dreamloom's interop tests (tests/interop/test_fedify_flows.py).
//
// One actor, Person "fedi", with an RSA key pair (RSASSA-PKCS1-v1_5, so draft-cavage works)
// and an Ed25519 one, generated at start; MemoryKvStore and InProcessMessageQueue, so
// deliveries go through Fedify's own queue, signed its way (RFC 9421 first knock, then
// draft-cavage). Everything binds 127.0.0.1 and speaks plain http.
//
// The federation side: WebFinger, the actor, its inbox (and a shared one), its followers,
// and the objects it made. Inbox listeners record every verified activity and accept every
// Follow. Every request that reaches an inbox is logged with its headers and status.
//
// The control side (JSON, loopback only, for the test to drive):
//   GET  /_control/health                     {"actor": URI, "handle": "fedi@host"}
//   GET  /_control/received                   activities the listeners took (verified)
//   GET  /_control/requests                   inbox requests: method, path, headers, status
//   GET  /_control/errors                     outbox delivery errors Fedify reported
//   POST /_control/follow   {handle | actor}  Follow (a handle is resolved over http WebFinger)
//   POST /_control/note     {to:[uri], html, mentions:[uri], inReplyTo?}  Create(Note)
//   POST /_control/like     {object}          Like, sent to the object's author
//   POST /_control/announce {object}          Announce, sent to the object's author
// Each POST answers {"id": activity URI, "object"?: note URI} once the activity is queued.
//
// Usage: node peer.mjs --port PORT

import { AsyncLocalStorage } from "node:async_hooks";
import { createServer } from "node:http";
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";

import { configure, getConsoleSink } from "@logtape/logtape";
import { Temporal } from "@js-temporal/polyfill";
import {
  createFederation,
  generateCryptoKeyPair,
  InProcessMessageQueue,
  MemoryKvStore,
} from "@fedify/fedify";
import {
  Accept,
  Activity,
  Announce,
  Create,
  Endpoints,
  Follow,
  isActor,
  Like,
  Mention,
  Note,
  Person,
  PUBLIC_COLLECTION,
} from "@fedify/vocab";

const { values: args } = parseArgs({
  options: { port: { type: "string" }, host: { type: "string", default: "127.0.0.1" } },
});
if (!args.port) {
  console.error("usage: node peer.mjs --port PORT");
  process.exit(2);
}
const HOST = args.host;
const PORT = Number(args.port);
const ORIGIN = `http://${HOST}:${PORT}`;
const ME = "fedi";

await configure({
  contextLocalStorage: new AsyncLocalStorage(),
  sinks: { console: getConsoleSink() },
  loggers: [
    { category: "fedify", sinks: ["console"], lowestLevel: process.env.FEDIFY_LOG_LEVEL || "info" },
    { category: ["logtape", "meta"], sinks: ["console"], lowestLevel: "warning" },
  ],
});

const keyPairs = [
  await generateCryptoKeyPair("RSASSA-PKCS1-v1_5"),
  await generateCryptoKeyPair("Ed25519"),
];

const received = []; // {type, id, actor, json} per activity a listener took
const requests = []; // {method, path, headers, body, status} per inbox request
const errors = []; // {activity, error} per outbox error
const followers = new Map(); // actor URI -> actor object
const objects = new Map(); // "Class/id" -> object we made (served back by id)

const federation = createFederation({
  kv: new MemoryKvStore(),
  queue: new InProcessMessageQueue(),
  origin: ORIGIN,
  allowPrivateAddress: true,
  onOutboxError: (error, activity) => {
    errors.push({ activity: activity?.id?.href ?? null, error: String(error?.stack ?? error) });
    console.error("outbox error", activity?.id?.href, error);
  },
});

federation
  .setActorDispatcher("/users/{identifier}", async (ctx, identifier) => {
    if (identifier !== ME) return null;
    const keys = await ctx.getActorKeyPairs(identifier);
    return new Person({
      id: ctx.getActorUri(identifier),
      preferredUsername: identifier,
      name: "Fedify peer",
      summary: "An interop test peer built on Fedify.",
      url: new URL(`/@${identifier}`, ORIGIN),
      inbox: ctx.getInboxUri(identifier),
      endpoints: new Endpoints({ sharedInbox: ctx.getInboxUri() }),
      followers: ctx.getFollowersUri(identifier),
      publicKey: keys[0].cryptographicKey,
      assertionMethods: keys.map((k) => k.multikey),
      manuallyApprovesFollowers: false,
    });
  })
  .mapHandle((_ctx, username) => (username === ME ? ME : null))
  .setKeyPairsDispatcher((_ctx, identifier) => (identifier === ME ? keyPairs : []));

federation
  .setFollowersDispatcher("/users/{identifier}/followers", (_ctx, identifier) => {
    if (identifier !== ME) return null;
    const items = [...followers.values()].map((a) => ({
      id: a.id,
      inboxId: a.inboxId,
      endpoints: a.endpoints,
    }));
    return { items };
  })
  .setCounter((_ctx, identifier) => (identifier === ME ? followers.size : null));

for (const [cls, path] of [
  [Note, "/notes/{id}"],
  [Create, "/creates/{id}"],
  [Follow, "/follows/{id}"],
  [Accept, "/accepts/{id}"],
  [Like, "/likes/{id}"],
  [Announce, "/announces/{id}"],
]) {
  federation.setObjectDispatcher(cls, path, (_ctx, values) => {
    return objects.get(`${cls.name}/${values.id}`) ?? null;
  });
}

async function record(ctx, activity) {
  const json = await activity.toJsonLd({ contextLoader: ctx.contextLoader });
  received.push({
    type: json.type ?? activity.constructor.name,
    id: activity.id?.href ?? null,
    actor: activity.actorId?.href ?? null,
    json,
  });
  console.log("received", activity.constructor.name, activity.id?.href);
}

federation
  .setInboxListeners("/users/{identifier}/inbox", "/inbox")
  .on(Follow, async (ctx, follow) => {
    await record(ctx, follow);
    const me = ctx.getActorUri(ME);
    if (follow.objectId?.href !== me.href) return;
    const follower = await follow.getActor(ctx);
    if (follower == null || !isActor(follower)) return;
    followers.set(follower.id.href, follower);
    const accept = remember(
      new Accept({ id: newId(ctx, Accept), actor: me, object: follow, to: follower.id }),
    );
    await ctx.sendActivity({ identifier: ME }, follower, accept);
  })
  .on(Activity, record)
  .onError((_ctx, error) => console.error("inbox listener error", error));

// -- helpers --------------------------------------------------------------------------------
function newId(ctx, cls) {
  return ctx.getObjectUri(cls, { id: randomUUID() });
}

function remember(object) {
  const id = object.id.pathname.split("/").pop();
  objects.set(`${object.constructor.name}/${id}`, object);
  return object;
}

async function actorOf(ctx, uri) {
  const found = await ctx.lookupObject(uri);
  if (found == null || !isActor(found)) throw new Error(`${uri} is not an actor`);
  return found;
}

async function authorOf(ctx, objectUri) {
  const object = await ctx.lookupObject(objectUri);
  if (object == null) throw new Error(`${objectUri} could not be fetched`);
  const author = object.attributionId ?? (object instanceof Activity ? object.actorId : null);
  if (author == null) throw new Error(`${objectUri} has no author`);
  return actorOf(ctx, author.href);
}

async function webfinger(handle) {
  // Fedify looks acct: handles up over https only; these instances speak http.
  const bare = handle.replace(/^@/, "");
  const host = bare.split("@").pop();
  const url = `http://${host}/.well-known/webfinger?resource=${encodeURIComponent(`acct:${bare}`)}`;
  const r = await fetch(url, { headers: { Accept: "application/jrd+json" } });
  if (!r.ok) throw new Error(`WebFinger ${url} answered ${r.status}`);
  const jrd = await r.json();
  const self = (jrd.links ?? []).find(
    (l) => l.rel === "self" && /activity\+json|ld\+json/.test(l.type ?? ""),
  );
  if (!self?.href) throw new Error(`WebFinger ${url} has no self link: ${JSON.stringify(jrd)}`);
  return self.href;
}

const control = {
  async follow(ctx, body) {
    const uri = body.actor ?? (await webfinger(body.handle));
    const target = await actorOf(ctx, uri);
    const follow = remember(
      new Follow({ id: newId(ctx, Follow), actor: ctx.getActorUri(ME), object: target.id }),
    );
    await ctx.sendActivity({ identifier: ME }, target, follow);
    return { id: follow.id.href, actor: target.id.href };
  },

  async note(ctx, body) {
    const me = ctx.getActorUri(ME);
    const mentioned = await Promise.all((body.mentions ?? []).map((u) => actorOf(ctx, u)));
    const recipients = await Promise.all(
      (body.to ?? body.mentions ?? []).map((u) => actorOf(ctx, u)),
    );
    const published = Temporal.Now.instant();
    const note = remember(
      new Note({
        id: newId(ctx, Note),
        attribution: me,
        content: body.html,
        mediaType: "text/html",
        to: PUBLIC_COLLECTION,
        ccs: [ctx.getFollowersUri(ME), ...mentioned.map((a) => a.id)],
        tags: mentioned.map(
          (a) => new Mention({ href: a.id, name: `@${a.preferredUsername}@${a.id.host}` }),
        ),
        replyTarget: body.inReplyTo ? new URL(body.inReplyTo) : null,
        published,
      }),
    );
    const create = remember(
      new Create({
        id: newId(ctx, Create),
        actor: me,
        object: note,
        to: PUBLIC_COLLECTION,
        ccs: [ctx.getFollowersUri(ME), ...mentioned.map((a) => a.id)],
        published,
      }),
    );
    await ctx.sendActivity({ identifier: ME }, recipients, create);
    return { id: create.id.href, object: note.id.href };
  },

  async like(ctx, body) {
    const author = await authorOf(ctx, body.object);
    const like = remember(
      new Like({ id: newId(ctx, Like), actor: ctx.getActorUri(ME), object: new URL(body.object) }),
    );
    await ctx.sendActivity({ identifier: ME }, author, like);
    return { id: like.id.href };
  },

  async announce(ctx, body) {
    const author = await authorOf(ctx, body.object);
    const announce = remember(
      new Announce({
        id: newId(ctx, Announce),
        actor: ctx.getActorUri(ME),
        object: new URL(body.object),
        to: PUBLIC_COLLECTION,
        ccs: [author.id, ctx.getFollowersUri(ME)],
        published: Temporal.Now.instant(),
      }),
    );
    await ctx.sendActivity({ identifier: ME }, author, announce);
    return { id: announce.id.href };
  },
};

// -- HTTP -----------------------------------------------------------------------------------
function json(status, value) {
  return new Response(JSON.stringify(value, null, 1), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

async function handleControl(request, path) {
  const ctx = federation.createContext(new URL(ORIGIN), undefined);
  const action = path.slice("/_control/".length);
  if (request.method === "GET") {
    if (action === "health") {
      return json(200, { actor: ctx.getActorUri(ME).href, handle: `${ME}@${HOST}:${PORT}` });
    }
    if (action === "received") return json(200, received);
    if (action === "requests") return json(200, requests);
    if (action === "errors") return json(200, errors);
    return json(404, { error: `no GET /_control/${action}` });
  }
  if (request.method !== "POST" || !(action in control)) {
    return json(404, { error: `no ${request.method} /_control/${action}` });
  }
  let body;
  try {
    body = await request.json();
  } catch (error) {
    return json(400, { error: `the body is not JSON: ${error}` });
  }
  try {
    return json(200, await control[action](ctx, body));
  } catch (error) {
    console.error(`/_control/${action} failed`, error);
    return json(500, { error: String(error?.stack ?? error) });
  }
}

function isInbox(path) {
  return path === "/inbox" || /^\/users\/[^/]+\/inbox$/.test(path);
}

async function handle(request) {
  const url = new URL(request.url);
  if (url.pathname.startsWith("/_control/")) return handleControl(request, url.pathname);
  let entry = null;
  if (request.method === "POST" && isInbox(url.pathname)) {
    const text = await request.clone().text();
    let body = text;
    try {
      body = JSON.parse(text);
    } catch {
      // keep the text
    }
    entry = {
      method: request.method,
      path: url.pathname,
      headers: Object.fromEntries(request.headers),
      body,
      status: null,
    };
    requests.push(entry);
  }
  const response = await federation.fetch(request, {
    contextData: undefined,
    onNotFound: () => new Response("Not Found", { status: 404 }),
    onNotAcceptable: () => new Response("Not Acceptable", { status: 406 }),
  });
  if (entry) {
    entry.status = response.status;
    console.log("inbox", entry.path, response.status, entry.body?.type, entry.body?.id);
  }
  return response;
}

const server = createServer(async (req, res) => {
  try {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
    }
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    const request = new Request(new URL(req.url, ORIGIN), {
      method: req.method,
      headers,
      body: hasBody ? Buffer.concat(chunks) : undefined,
    });
    const response = await handle(request);
    res.writeHead(response.status, Object.fromEntries(response.headers));
    res.end(Buffer.from(await response.arrayBuffer()));
  } catch (error) {
    console.error("request failed", req.method, req.url, error);
    if (!res.headersSent) res.writeHead(500, { "Content-Type": "text/plain" });
    res.end(String(error));
  }
});

server.listen(PORT, HOST, () => console.log(`fedify peer listening on ${ORIGIN}`));
for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
