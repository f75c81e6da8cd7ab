// The client API flow from Node with masto.js (tests/e2e/test_api_clients.py runs it):
//   node flow.mjs BASE_URL ACCESS_TOKEN REMOTE_HANDLE
// Prints one JSON line of what it saw; exits non-zero on any error.
import { createRestAPIClient } from "masto";

const [base, accessToken, remote] = process.argv.slice(2);
const masto = createRestAPIClient({ url: base, accessToken, timeout: 60_000 });
const out = {};

const me = await masto.v1.accounts.verifyCredentials();
out.me = me.acct;
const instance = await masto.v2.instance.fetch();
out.version = instance.version;

// generation as media: a prompt instead of a file; masto polls /api/v1/media/:id until the
// image exists, as it does for any upload Mastodon processes asynchronously
const media = await masto.v2.media.create({
  prompt: "a harbour drawn from Node", description: "a harbour", width: 64, height: 64,
  steps: 1,
});
out.mediaUrl = media.url;

const status = await masto.v1.statuses.create({
  status: "Posted with masto.js", mediaIds: [media.id], visibility: "public",
});
out.posted = status.id;
out.favourited = (await masto.v1.statuses.$select(status.id).favourite()).favourited;
out.reblogOf = (await masto.v1.statuses.$select(status.id).reblog()).reblog?.id;

const remixMedia = await masto.v2.media.create({ prompt: "the harbour at night", remix_of: status.id });
const remix = await masto.v1.statuses.create({
  status: "A remix from Node", mediaIds: [remixMedia.id], quotedStatusId: status.id,
});
out.quoteOf = remix.quote?.quotedStatus?.id;

const found = await masto.v2.search.list({ q: remote, resolve: true, type: "accounts" });
out.found = found.accounts[0]?.acct;
await masto.v1.accounts.$select(found.accounts[0].id).follow();
for (let i = 0; i < 120; i++) {
  const [rel] = await masto.v1.accounts.relationships.fetch({ id: [found.accounts[0].id] });
  out.following = rel.following;
  if (rel.following) break;
  await new Promise((resolve) => setTimeout(resolve, 500));
}

// two pages of the home timeline through masto's paginator (it follows the Link header)
out.pages = [];
for await (const page of masto.v1.timelines.home.list({ limit: 1 })) {
  out.pages.push(page[0]?.id);
  if (out.pages.length === 2) break;
}

const notifications = await masto.v1.notifications.list({ limit: 40 });
out.notificationTypes = [...new Set(notifications.map((n) => n.type))];
console.log(JSON.stringify(out));
